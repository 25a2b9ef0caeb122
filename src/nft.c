/*
 * nft.c - the daemon's nftables table, over netlink (libnftnl + libmnl).
 *
 * Messages are built into one growing buffer between nft_begin() and
 * nft_commit(), framed by NFNL_MSG_BATCH_BEGIN/END, and sent with one
 * sendmsg: the kernel applies the batch as one transaction or not at all.
 * Every message asks for an acknowledgement, so the commit knows the
 * outcome of each one; element operations that follow each other are
 * coalesced into one message so that a large batch does not turn into tens
 * of thousands of acknowledgements.
 *
 * The kernel's copy is never read back: the table in memory is the truth
 * and the kernel holds a copy of it (see server.c).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "nft.h"

/* nft's datatype numbers; a concatenation is (first << 6) | second. */
#define NFT_TYPE_IPADDR 7
#define NFT_TYPE_INET_PROTOCOL 12
#define NFT_TYPE_INET_SERVICE 13
#define NFT_TYPE_BITS 6
#define NFT_KEY_TYPE (NFT_TYPE_INET_PROTOCOL << NFT_TYPE_BITS | NFT_TYPE_INET_SERVICE)
#define NFT_DATA_TYPE (NFT_TYPE_IPADDR << NFT_TYPE_BITS | NFT_TYPE_INET_SERVICE)
/* Each part of a concatenation takes a whole 32-bit register. */
#define NFT_CONCAT_LEN 8

/* Elements per message: well under a page each, and few acknowledgements. */
#define NFT_ELEMS_PER_MSG 256
/* Room kept free in the buffer for the next message. */
#define NFT_MSG_ROOM (64 * 1024)
/* How long the kernel may take to acknowledge a batch. */
#define NFT_ACK_TIMEOUT_SEC 5
/* Room for one read of acknowledgements. */
#define NFT_RECV_SIZE 16384

struct nft {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	char table[64];
	char chain[64];
	char ifname[IFNAMSIZ];

	char *buf; /* the batch being built */
	size_t len, cap;
	uint32_t batch_seq; /* seq of NFNL_MSG_BATCH_BEGIN */
	size_t n_msgs;      /* messages after BEGIN */
	int error;          /* first failure while building: reported by nft_commit() */

	/* Element operations waiting to become one message. */
	struct nftnl_set *pending;
	uint16_t pending_type; /* NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM */
	size_t pending_n;
};

struct nft *nft_open(const struct nft_config *cfg)
{
	struct nft *n = calloc(1, sizeof(*n));
	int one = 1, err;

	if (!n)
		return NULL;
	snprintf(n->table, sizeof(n->table), "%s", cfg->table);
	snprintf(n->chain, sizeof(n->chain), "%s", cfg->chain);
	snprintf(n->ifname, sizeof(n->ifname), "%s", cfg->external_interface);
	n->cap = 2 * NFT_MSG_ROOM;
	n->buf = malloc(n->cap);
	n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->buf || !n->nl || mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	/* Acknowledgements of failed messages need not carry the message back. */
	(void)mnl_socket_setsockopt(n->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	n->portid = mnl_socket_get_portid(n->nl);
	n->seq = (uint32_t)time(NULL);
	return n;
fail:
	err = errno;
	nft_close(n);
	errno = err ? err : ENOMEM;
	return NULL;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	if (n->pending)
		nftnl_set_free(n->pending);
	free(n->buf);
	free(n);
}

/* Makes room for one more message of at most NFT_MSG_ROOM bytes. */
static char *nft_room(struct nft *n)
{
	if (n->cap - n->len < NFT_MSG_ROOM) {
		size_t cap = n->cap * 2;
		char *b = realloc(n->buf, cap);
		if (!b) {
			n->error = -ENOMEM;
			return NULL;
		}
		n->buf = b;
		n->cap = cap;
	}
	return n->buf + n->len;
}

static void nft_push(struct nft *n, struct nlmsghdr *nlh)
{
	n->len += NLMSG_ALIGN(nlh->nlmsg_len);
	n->n_msgs++;
}

static struct nlmsghdr *nft_msg(struct nft *n, uint16_t type, uint16_t flags)
{
	char *at = nft_room(n);

	if (!at)
		return NULL;
	return nftnl_nlmsg_build_hdr(at, type, NFPROTO_IPV4, flags | NLM_F_ACK, n->seq++);
}

static void nft_flush_elems(struct nft *n)
{
	struct nlmsghdr *nlh;
	uint16_t flags;

	if (!n->pending)
		return;
	flags = n->pending_type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0;
	if ((nlh = nft_msg(n, n->pending_type, flags)) != NULL) {
		nftnl_set_elems_nlmsg_build_payload(nlh, n->pending);
		nft_push(n, nlh);
	}
	nftnl_set_free(n->pending);
	n->pending = NULL;
	n->pending_n = 0;
}

void nft_begin(struct nft *n)
{
	if (n->pending)
		nftnl_set_free(n->pending);
	n->pending = NULL;
	n->pending_n = 0;
	n->len = 0;
	n->n_msgs = 0;
	n->error = 0;
	n->batch_seq = n->seq++;
	nftnl_batch_begin(n->buf, n->batch_seq);
	n->len = NLMSG_ALIGN(((struct nlmsghdr *)n->buf)->nlmsg_len);
}

size_t nft_pending(const struct nft *n)
{
	return n->n_msgs + (n->pending ? 1 : 0);
}

/* --- the table --- */

static int nft_table_msg(struct nft *n, uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return n->error = -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
	if ((nlh = nft_msg(n, type, flags)) != NULL) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		nft_push(n, nlh);
	}
	nftnl_table_free(t);
	return n->error;
}

static int nft_set_msg(struct nft *n)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s)
		return n->error = -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, NFT_MAP_NAME);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, NFPROTO_IPV4);
	nftnl_set_set_u32(s, NFTNL_SET_ID, 1);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP | NFT_SET_TIMEOUT);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, NFT_KEY_TYPE);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, NFT_CONCAT_LEN);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, NFT_DATA_TYPE);
	nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, NFT_CONCAT_LEN);
	if ((nlh = nft_msg(n, NFT_MSG_NEWSET, NLM_F_CREATE)) != NULL) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		nft_push(n, nlh);
	}
	nftnl_set_free(s);
	return n->error;
}

static int nft_chain_msg(struct nft *n)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return n->error = -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, n->chain);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, "nat");
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, NF_INET_PRE_ROUTING);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, -100); /* dstnat */
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	if ((nlh = nft_msg(n, NFT_MSG_NEWCHAIN, NLM_F_CREATE)) != NULL) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nft_push(n, nlh);
	}
	nftnl_chain_free(c);
	return n->error;
}

static struct nftnl_expr *expr_add(struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (e)
		nftnl_rule_add_expr(r, e);
	return e;
}

/*
 * iifname "<external>" fib daddr type local
 *     dnat ip to meta l4proto . th dport map @mappings
 *
 * The concatenated key is built in registers 1 (protocol) and 9 (the
 * second 32-bit word of register 1: the destination port), which is how
 * nft itself lays out a concatenation, so `nft list` shows the rule as
 * written above.
 */
static int nft_rule_msg(struct nft *n)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr *e[8];
	struct nlmsghdr *nlh;
	char ifname[IFNAMSIZ] = { 0 };
	uint32_t local = RTN_LOCAL;
	size_t i = 0;

	if (!r)
		return n->error = -ENOMEM;
	memcpy(ifname, n->ifname, strnlen(n->ifname, IFNAMSIZ - 1));
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, n->chain);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, NFPROTO_IPV4);

	if ((e[i] = expr_add(r, "meta")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_META_KEY, NFT_META_IIFNAME);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	if ((e[++i] = expr_add(r, "cmp")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e[i], NFTNL_EXPR_CMP_DATA, ifname, sizeof(ifname));
	}
	if ((e[++i] = expr_add(r, "fib")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_FIB_DREG, NFT_REG_1);
	}
	if ((e[++i] = expr_add(r, "cmp")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_CMP_OP, NFT_CMP_EQ);
		nftnl_expr_set(e[i], NFTNL_EXPR_CMP_DATA, &local, sizeof(local));
	}
	if ((e[++i] = expr_add(r, "meta")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_META_KEY, NFT_META_L4PROTO);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_META_DREG, NFT_REG_1);
	}
	if ((e[++i] = expr_add(r, "payload")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_PAYLOAD_OFFSET, 2); /* destination port */
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_PAYLOAD_LEN, 2);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_PAYLOAD_DREG, NFT_REG32_01);
	}
	if ((e[++i] = expr_add(r, "lookup")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
		nftnl_expr_set_str(e[i], NFTNL_EXPR_LOOKUP_SET, NFT_MAP_NAME);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_LOOKUP_SET_ID, 1);
	}
	if ((e[++i] = expr_add(r, "nat")) != NULL) {
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01);
		nftnl_expr_set_u32(e[i], NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
	}
	for (size_t k = 0; k <= i; k++)
		if (!e[k])
			n->error = -ENOMEM;
	if (!n->error && (nlh = nft_msg(n, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND)) != NULL) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nft_push(n, nlh);
	}
	nftnl_rule_free(r);
	return n->error;
}

int nft_install(struct nft *n)
{
	nft_flush_elems(n);
	/* Create-if-missing then delete: replaces any table of ours, never fails on absence. */
	if (nft_table_msg(n, NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 || nft_table_msg(n, NFT_MSG_DELTABLE, 0) < 0 ||
	    nft_table_msg(n, NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 || nft_set_msg(n) < 0 || nft_chain_msg(n) < 0 ||
	    nft_rule_msg(n) < 0)
		return n->error;
	return 0;
}

/* --- elements --- */

static void nft_elem_key(const struct table_mapping *m, uint8_t key[NFT_CONCAT_LEN])
{
	uint16_t port = htons(m->external_port);

	memset(key, 0, NFT_CONCAT_LEN);
	key[0] = m->protocol;
	memcpy(key + 4, &port, 2);
}

static void nft_elem_data(const struct table_mapping *m, uint8_t data[NFT_CONCAT_LEN])
{
	uint16_t port = htons(m->internal_port);

	memset(data, 0, NFT_CONCAT_LEN);
	memcpy(data, &m->client, 4);
	memcpy(data + 4, &port, 2);
}

static int nft_elem(struct nft *n, uint16_t type, const struct table_mapping *m, uint32_t timeout)
{
	struct nftnl_set_elem *e;
	uint8_t key[NFT_CONCAT_LEN], data[NFT_CONCAT_LEN];

	if (n->error)
		return n->error;
	if (n->pending && (n->pending_type != type || n->pending_n == NFT_ELEMS_PER_MSG))
		nft_flush_elems(n);
	if (!n->pending) {
		if (!(n->pending = nftnl_set_alloc()))
			return n->error = -ENOMEM;
		nftnl_set_set_str(n->pending, NFTNL_SET_TABLE, n->table);
		nftnl_set_set_str(n->pending, NFTNL_SET_NAME, NFT_MAP_NAME);
		nftnl_set_set_u32(n->pending, NFTNL_SET_FAMILY, NFPROTO_IPV4);
		n->pending_type = type;
	}
	if (!(e = nftnl_set_elem_alloc()))
		return n->error = -ENOMEM;
	nft_elem_key(m, key);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
	if (type == NFT_MSG_NEWSETELEM) {
		nft_elem_data(m, data);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, sizeof(data));
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, (uint64_t)timeout * 1000);
	}
	nftnl_set_elem_add(n->pending, e);
	n->pending_n++;
	return 0;
}

int nft_put(struct nft *n, const struct table_mapping *m, uint32_t timeout)
{
	return nft_elem(n, NFT_MSG_NEWSETELEM, m, timeout);
}

/*
 * Adding an element that exists with the same data is a no-op, and older
 * kernels (before 6.10) never update its timeout; deleting one that does
 * not exist fails the whole batch.  So a renewal adds (in case the element
 * is gone), deletes, and adds again with the new timeout, and a deletion
 * adds before it deletes: both succeed whatever the kernel's copy holds,
 * unless the key is held by another client's data, which is real drift.
 */
int nft_renew(struct nft *n, const struct table_mapping *m, uint32_t timeout)
{
	if (nft_elem(n, NFT_MSG_NEWSETELEM, m, timeout) < 0 || nft_elem(n, NFT_MSG_DELSETELEM, m, 0) < 0)
		return n->error;
	return nft_elem(n, NFT_MSG_NEWSETELEM, m, timeout);
}

int nft_del(struct nft *n, const struct table_mapping *m)
{
	if (nft_elem(n, NFT_MSG_NEWSETELEM, m, 1) < 0)
		return n->error;
	return nft_elem(n, NFT_MSG_DELSETELEM, m, 0);
}

/* --- sending a batch --- */

/* Lets the socket carry a batch of len bytes and its acknowledgements. */
static void nft_size_socket(struct nft *n, size_t len)
{
	int fd = mnl_socket_get_fd(n->nl);
	/* An acknowledgement costs the receive buffer a whole small skb (truesize), not its 36 bytes. */
	int snd = (int)(len + 4096), rcv = (int)(n->n_msgs * 1024 + 131072);

	if (len + 4096 > 128 * 1024 &&
	    setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &snd, sizeof(snd)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof(snd));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
}

/*
 * Reads acknowledgements until the last message's has come.  A batch the
 * kernel refuses as a whole (no permission, say) gets one error against
 * BATCH_BEGIN's sequence number instead.  Answers to an earlier batch that
 * timed out have older sequence numbers and are skipped.
 */
static int nft_wait_acks(struct nft *n, uint32_t last_seq)
{
	char buf[NFT_RECV_SIZE];
	int first_error = 0;

	for (;;) {
		ssize_t len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf));
		if (len < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, (int)len);
		     nlh = mnl_nlmsg_next(nlh, (int *)&len)) {
			const struct nlmsgerr *err;
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq < n->batch_seq ||
			    nlh->nlmsg_seq > last_seq)
				continue;
			err = mnl_nlmsg_get_payload(nlh);
			if (err->error && !first_error)
				first_error = err->error;
			if (nlh->nlmsg_seq == last_seq || nlh->nlmsg_seq == n->batch_seq || err->error == -ENOMEM)
				return first_error;
		}
	}
}

int nft_commit(struct nft *n)
{
	struct timeval tv = { .tv_sec = NFT_ACK_TIMEOUT_SEC };
	uint32_t last_seq;
	char *at;

	nft_flush_elems(n);
	if (n->error)
		return n->error;
	if (n->n_msgs == 0)
		return 0;
	last_seq = n->seq - 1;
	if (!(at = nft_room(n)))
		return n->error;
	nftnl_batch_end(at, n->seq++);
	n->len += NLMSG_ALIGN(((struct nlmsghdr *)at)->nlmsg_len);

	nft_size_socket(n, n->len);
	(void)setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (mnl_socket_sendto(n->nl, n->buf, n->len) < 0)
		return -errno;
	return nft_wait_acks(n, last_seq);
}

int nft_remove(struct nft *n)
{
	nft_begin(n);
	if (nft_table_msg(n, NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 || nft_table_msg(n, NFT_MSG_DELTABLE, 0) < 0)
		return n->error;
	return nft_commit(n);
}
