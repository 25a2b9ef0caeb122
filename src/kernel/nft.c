/*
 * nft.c - the daemon's nftables tables, over netlink (libnftnl + libmnl):
 * the socket, batches, elements and their acknowledgements.  What the
 * tables hold is nft_rules.c's.
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
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter_ipv4.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "nft_impl.h"

struct nft *nft_open(const struct nft_config *cfg)
{
	struct nft *n = calloc(1, sizeof(*n));
	int one = 1, err;

	if (!n)
		return NULL;
	snprintf(n->table, sizeof(n->table), "%s", cfg->table);
	snprintf(n->chain, sizeof(n->chain), "%s", cfg->chain);
	snprintf(n->ifname, sizeof(n->ifname), "%s", cfg->external_interface);
	n->pinhole_mark = cfg->pinhole_mark;
	n->pinhole_mask = cfg->pinhole_mask;
	n->cap = 2 * NFT_MSG_ROOM;
	n->buf = malloc(n->cap);
	n->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->buf || !n->nl || mnl_socket_bind(n->nl, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	/* Acknowledgements of failed messages need not carry the message back. */
	(void)mnl_socket_setsockopt(n->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	n->seq = (uint32_t)time(NULL);
	return n;
fail:
	err = errno;
	nft_close(n);
	errno = err ? err : ENOMEM;
	return NULL;
}

uint32_t nft_portid(const struct nft *n)
{
	return mnl_socket_get_portid(n->nl);
}

static void nft_drop_pending(struct nft *n)
{
	for (size_t i = 0; i < NFT_N_SETS; i++) {
		if (n->pending[i].elems)
			nftnl_set_free(n->pending[i].elems);
		n->pending[i] = (struct nft_pending){ 0 };
	}
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	nft_drop_pending(n);
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

void nft_push(struct nft *n, struct nlmsghdr *nlh)
{
	n->len += NLMSG_ALIGN(nlh->nlmsg_len);
	n->n_msgs++;
}

struct nlmsghdr *nft_msg(struct nft *n, uint16_t family, uint16_t type, uint16_t flags)
{
	char *at = nft_room(n);

	if (!at)
		return NULL;
	n->last_seq = n->seq;
	return nftnl_nlmsg_build_hdr(at, type, family, flags | NLM_F_ACK, n->seq++);
}

static void nft_flush_set(struct nft *n, size_t set)
{
	struct nft_pending *p = &n->pending[set];
	struct nlmsghdr *nlh;

	if (!p->elems)
		return;
	if ((nlh = nft_msg(n, nft_sets[set].family, p->type, p->type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0)) !=
	    NULL) {
		nftnl_set_elems_nlmsg_build_payload(nlh, p->elems);
		nft_push(n, nlh);
	}
	nftnl_set_free(p->elems);
	*p = (struct nft_pending){ 0 };
}

void nft_flush_all(struct nft *n)
{
	for (size_t i = 0; i < NFT_N_SETS; i++)
		nft_flush_set(n, i);
}

void nft_begin(struct nft *n)
{
	nft_drop_pending(n);
	n->n_msgs = 0;
	n->n_elems = 0;
	n->error = 0;
	n->batch_seq = n->seq++;
	nftnl_batch_begin(n->buf, n->batch_seq);
	n->len = NLMSG_ALIGN(((struct nlmsghdr *)n->buf)->nlmsg_len);
}

/* --- elements --- */

/* Queues one element operation on a set; data NULL for deletions and plain sets. */
static int nft_elem(struct nft *n, size_t set, uint16_t type, const void *key, const void *data, uint32_t timeout)
{
	const struct nft_set_def *d = &nft_sets[set];
	struct nft_pending *p = &n->pending[set];
	struct nftnl_set_elem *e;

	if (n->error)
		return n->error;
	if (p->elems && (p->type != type || p->n == NFT_ELEMS_PER_MSG))
		nft_flush_set(n, set);
	if (!p->elems) {
		if (!(p->elems = nftnl_set_alloc()))
			return n->error = -ENOMEM;
		nftnl_set_set_str(p->elems, NFTNL_SET_TABLE, n->table);
		nftnl_set_set_str(p->elems, NFTNL_SET_NAME, d->name);
		nftnl_set_set_u32(p->elems, NFTNL_SET_FAMILY, d->family);
		p->type = type;
	}
	if (!key)
		return 0; /* a set-wide operation: the message carries no element */
	if (!(e = nftnl_set_elem_alloc()))
		return n->error = -ENOMEM;
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, d->key_len);
	if (type == NFT_MSG_NEWSETELEM && data)
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, data, d->data_len);
	if (type == NFT_MSG_NEWSETELEM && (d->flags & NFT_SET_TIMEOUT))
		nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, (uint64_t)timeout * 1000);
	nftnl_set_elem_add(p->elems, e);
	p->n++;
	n->n_elems++;
	return 0;
}

/* Both maps' elements for m: (protocol . external port : client . internal port) and
 * (client . protocol . internal port : external port), in network byte order. */
static int nft_mapping_elems(struct nft *n, uint16_t type, const struct table_mapping *m, uint32_t timeout)
{
	uint8_t fwd_key[2 * NFT_REG_LEN] = { 0 }, fwd_data[2 * NFT_REG_LEN] = { 0 };
	uint8_t src_key[3 * NFT_REG_LEN] = { 0 }, src_data[NFT_REG_LEN] = { 0 };
	uint16_t eport = htons(m->external_port), iport = htons(m->internal_port);

	/* An IPv6 client's mapping is a pinhole: one element, (address . protocol . port), in table ip6. */
	if (!table_addr_is_v4(&m->client)) {
		uint8_t hole[6 * NFT_REG_LEN] = { 0 };
		memcpy(hole, m->client.v6, 16);
		hole[16] = m->protocol;
		memcpy(hole + 20, &iport, 2);
		return nft_elem(n, NFT_SET_PINHOLES, type, hole, NULL, timeout);
	}
	fwd_key[0] = m->protocol;
	memcpy(fwd_key + 4, &eport, 2);
	memcpy(fwd_data, &m->client.v4, 4);
	memcpy(fwd_data + 4, &iport, 2);
	memcpy(src_key, &m->client.v4, 4);
	src_key[4] = m->protocol;
	memcpy(src_key + 8, &iport, 2);
	memcpy(src_data, &eport, 2);
	if (nft_elem(n, NFT_SET_MAPPINGS, type, fwd_key, fwd_data, timeout) < 0)
		return n->error;
	return nft_elem(n, NFT_SET_SOURCES, type, src_key, src_data, timeout);
}

/* The probe's element, in the forward map only. */
static int nft_elem_put_raw(struct nft *n, const struct table_mapping *m, uint32_t timeout)
{
	uint8_t key[2 * NFT_REG_LEN] = { 0 }, data[2 * NFT_REG_LEN] = { 0 };

	key[0] = m->protocol;
	return nft_elem(n, NFT_SET_MAPPINGS, NFT_MSG_NEWSETELEM, key, data, timeout);
}

static int nft_elem_del_raw(struct nft *n, const struct table_mapping *m)
{
	uint8_t key[2 * NFT_REG_LEN] = { 0 };

	key[0] = m->protocol;
	return nft_elem(n, NFT_SET_MAPPINGS, NFT_MSG_DELSETELEM, key, NULL, 0);
}

int nft_put(struct nft *n, const struct table_mapping *m, uint32_t timeout)
{
	return nft_mapping_elems(n, NFT_MSG_NEWSETELEM, m, timeout);
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
	if (n->timeout_update)
		return nft_mapping_elems(n, NFT_MSG_NEWSETELEM, m, timeout);
	if (nft_mapping_elems(n, NFT_MSG_NEWSETELEM, m, timeout) < 0 ||
	    nft_mapping_elems(n, NFT_MSG_DELSETELEM, m, 0) < 0)
		return n->error;
	return nft_mapping_elems(n, NFT_MSG_NEWSETELEM, m, timeout);
}

int nft_del(struct nft *n, const struct table_mapping *m)
{
	if (nft_mapping_elems(n, NFT_MSG_NEWSETELEM, m, 1) < 0)
		return n->error;
	return nft_mapping_elems(n, NFT_MSG_DELSETELEM, m, 0);
}

int nft_set_external(struct nft *n, const uint32_t *addrs, size_t n_addrs)
{
	/* A deletion that names no element empties the set. */
	nft_flush_set(n, NFT_SET_EXTERNAL);
	if (nft_elem(n, NFT_SET_EXTERNAL, NFT_MSG_DELSETELEM, NULL, NULL, 0) < 0)
		return n->error;
	nft_flush_set(n, NFT_SET_EXTERNAL);
	for (size_t i = 0; i < n_addrs; i++)
		if (nft_elem(n, NFT_SET_EXTERNAL, NFT_MSG_NEWSETELEM, &addrs[i], NULL, 0) < 0)
			return n->error;
	return 0;
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
		int left = (int)len; /* what is left of this read, as libmnl counts it */
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			const struct nlmsgerr *err;
			/* Within [batch_seq, last_seq], counted from batch_seq: the numbers wrap. */
			if (nlh->nlmsg_type != NLMSG_ERROR ||
			    (uint32_t)(nlh->nlmsg_seq - n->batch_seq) > (uint32_t)(last_seq - n->batch_seq))
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
	char *at, *small;
	int r;

	nft_flush_all(n);
	if (n->error)
		return n->error;
	if (n->n_msgs == 0)
		return 0;
	last_seq = n->last_seq;
	if (!(at = nft_room(n)))
		return n->error;
	nftnl_batch_end(at, n->seq++);
	n->len += NLMSG_ALIGN(((struct nlmsghdr *)at)->nlmsg_len);

	nft_size_socket(n, n->len);
	(void)setsockopt(mnl_socket_get_fd(n->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (mnl_socket_sendto(n->nl, n->buf, n->len) < 0)
		return -errno;
	r = nft_wait_acks(n, last_seq);
	/* A full reinstall of a large table needs megabytes once; a turn needs kilobytes. */
	if (n->cap > NFT_KEEP_BYTES && (small = realloc(n->buf, 2 * NFT_MSG_ROOM)) != NULL) {
		n->buf = small;
		n->cap = 2 * NFT_MSG_ROOM;
		n->len = 0;
	}
	return r;
}

/* Reads the answer to a GETSETELEM: the first element's timeout in ms, 0 if it has none. */
static int nft_elem_timeout_cb(const struct nlmsghdr *nlh, void *data)
{
	uint64_t *timeout = data;
	struct nftnl_set *set = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;

	if (!set)
		return MNL_CB_ERROR;
	if (nftnl_set_elems_nlmsg_parse(nlh, set) == 0 && (it = nftnl_set_elems_iter_create(set)) != NULL) {
		if ((e = nftnl_set_elems_iter_cur(it)) != NULL)
			*timeout = nftnl_set_elem_get_u64(e, NFTNL_SET_ELEM_TIMEOUT);
		nftnl_set_elems_iter_destroy(it);
	}
	nftnl_set_free(set);
	return MNL_CB_OK;
}

/*
 * Sends one request (built in buf with sequence number seq and NLM_F_ACK)
 * and reads until its acknowledgement, each answer through cb (NULL: none
 * wanted).  0, or -errno: the kernel's error (ENOENT when what was asked
 * for does not exist) or the socket's.
 */
static int nft_ask(struct nft *n, char *buf, const struct nlmsghdr *nlh, uint32_t seq, mnl_cb_t cb, void *data)
{
	ssize_t len;
	int r;

	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	do {
		if ((len = mnl_socket_recvfrom(n->nl, buf, NFT_RECV_SIZE)) < 0)
			return -errno;
		r = mnl_cb_run(buf, (size_t)len, seq, mnl_socket_get_portid(n->nl), cb, data);
	} while (r > MNL_CB_STOP);
	return r < 0 ? -errno : 0;
}

static int nft_get_timeout(struct nft *n, const struct table_mapping *m, uint64_t *timeout)
{
	char buf[NFT_RECV_SIZE];
	struct nftnl_set *set = nftnl_set_alloc();
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();
	uint8_t key[2 * NFT_REG_LEN] = { 0 };
	uint16_t eport = htons(m->external_port);
	struct nlmsghdr *nlh;
	uint32_t seq = n->seq++;

	if (!set || !e) {
		nftnl_set_free(set);
		nftnl_set_elem_free(e);
		return -ENOMEM;
	}
	key[0] = m->protocol;
	memcpy(key + 4, &eport, 2);
	nftnl_set_set_str(set, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(set, NFTNL_SET_NAME, NFT_MAP_NAME);
	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, sizeof(key));
	nftnl_set_elem_add(set, e);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, NFPROTO_IPV4, NLM_F_ACK, seq);
	nftnl_set_elems_nlmsg_build_payload(nlh, set);
	nftnl_set_free(set);
	*timeout = 0;
	return nft_ask(n, buf, nlh, seq, nft_elem_timeout_cb, timeout);
}

/*
 * Since Linux 6.10 adding an element that exists updates its timeout;
 * before, it is a no-op and a renewal must delete and add again.  Asked of
 * the kernel rather than guessed from its version: a probe element (protocol
 * 0, never matched by traffic) added with 10 s, added again with 1000 s,
 * read back, removed.
 */
int nft_probe_timeout_update(struct nft *n)
{
	struct table_mapping probe = { .protocol = 0, .external_port = 0, .internal_port = 0 };
	uint64_t timeout = 0;
	int r;

	nft_begin(n);
	if ((r = nft_elem_put_raw(n, &probe, 10)) < 0 || (r = nft_commit(n)) < 0)
		return r;
	nft_begin(n);
	if ((r = nft_elem_put_raw(n, &probe, 1000)) == 0 && (r = nft_commit(n)) == 0)
		r = nft_get_timeout(n, &probe, &timeout);
	nft_begin(n);
	if (nft_elem_del_raw(n, &probe) == 0)
		(void)nft_commit(n);
	if (r < 0)
		return r;
	n->timeout_update = timeout >= 500 * 1000;
	return n->timeout_update;
}

int nft_remove(struct nft *n)
{
	nft_begin(n);
	if (nft_table_msg(n, NFPROTO_IPV4, NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 ||
	    nft_table_msg(n, NFPROTO_IPV4, NFT_MSG_DELTABLE, 0) < 0 ||
	    nft_table_msg(n, NFPROTO_IPV6, NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 ||
	    nft_table_msg(n, NFPROTO_IPV6, NFT_MSG_DELTABLE, 0) < 0)
		return n->error;
	return nft_commit(n);
}

/* Whether table <family> <name> exists: 1, 0, or -errno; one GETTABLE round trip. */
static int nft_table_there(struct nft *n, uint16_t family)
{
	char buf[NFT_RECV_SIZE];
	struct nftnl_table *t = nftnl_table_alloc();
	uint32_t seq = n->seq++;
	struct nlmsghdr *nlh;
	int r;

	if (!t)
		return -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
	nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, family, NLM_F_ACK, seq);
	nftnl_table_nlmsg_build_payload(nlh, t);
	nftnl_table_free(t);
	r = nft_ask(n, buf, nlh, seq, NULL, NULL);
	return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

size_t nft_queued(const struct nft *n)
{
	return n->n_elems;
}

/* Reads NEWGEN, the answer to GETGEN: its generation id. */
static int nft_gen_cb(const struct nlmsghdr *nlh, void *data)
{
	const struct nlattr *attr;

	mnl_attr_for_each(attr, nlh, sizeof(struct nfgenmsg))
		if (mnl_attr_get_type(attr) == NFTA_GEN_ID && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
			*(uint32_t *)data = ntohl(mnl_attr_get_u32(attr));
	return MNL_CB_OK;
}

int nft_generation(struct nft *n, uint32_t *gen)
{
	char buf[NFT_RECV_SIZE];
	uint32_t seq = n->seq++;
	struct nlmsghdr *nlh = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETGEN, NFPROTO_UNSPEC, NLM_F_ACK, seq);
	int r;

	*gen = 0;
	if ((r = nft_ask(n, buf, nlh, seq, nft_gen_cb, gen)) < 0)
		return r;
	/* The kernel's generation is never 0: an answer without one is not an answer. */
	return *gen ? 0 : -EPROTO;
}

int nft_installed(struct nft *n)
{
	int r = nft_table_there(n, NFPROTO_IPV4);

	return r == 1 ? nft_table_there(n, NFPROTO_IPV6) : r;
}
