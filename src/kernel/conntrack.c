/*
 * conntrack.c - deleting a mapping's conntrack entries over ctnetlink (libmnl).
 *
 * A flush is one dump of the IPv4 table (IPCTNL_MSG_CT_GET, NLM_F_DUMP), and
 * one of the IPv6 table when IPv6 pinholes are among the mappings,
 * matched in user space against the mappings, then one IPCTNL_MSG_CT_DELETE
 * per match.  ctnetlink's own dump filter cannot say "this port in one
 * direction or that address and port in the other", so the kernel is asked
 * at most to leave out the other protocols (CTA_FILTER, Linux 5.8 and
 * later; older kernels ignore the attribute, and one that refuses it gets a
 * plain dump).  The matching here is authoritative either way.
 *
 * Matches are collected first and deleted after the dump has ended, so
 * that the socket carries one conversation at a time and the kernel's walk
 * of the hash table is not disturbed by deletions behind it.  A deletion
 * names its entry by original tuple, zone and CTA_ID; the ID makes the
 * kernel refuse (ENOENT) an entry that was replaced by a new one with the
 * same tuple since the dump.
 *
 * Every failure replaces the socket instead of draining it: after a timeout
 * or an overflow its contents are unknown, and closing it also ends a dump
 * the kernel may still be running for it, which would make the next dump
 * fail with EBUSY.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "kernel/conntrack.h"

/* Dumps per flush when one is interrupted (NLM_F_DUMP_INTR) or overflows (ENOBUFS). */
#define CT_ATTEMPTS 3
/* Deletions in flight: their acknowledgements fit the default receive buffer. */
#define CT_DEL_PER_SEND 64
/* Room for one deletion or dump request (a deletion takes about 90 bytes). */
#define CT_MSG_ROOM 256
/* The kernel builds dump messages of up to 32 KiB for a reader that offers as much. */
#define CT_RECV_SIZE 32768
#define CT_SEND_SIZE (CT_DEL_PER_SEND * CT_MSG_ROOM)

/*
 * CTA_FILTER_ORIG_FLAGS bit "match CTA_PROTO_NUM": the kernel's
 * CTA_FILTER_F_CTA_PROTO_NUM, which is ABI but not in the uapi headers.
 */
#define CT_FILTER_PROTO_NUM (1u << 3)

struct ct {
	struct mnl_socket *nl;
	uint32_t portid;
	uint32_t seq;
	bool no_filter; /* the kernel refused CTA_FILTER once: do not ask again */
	char *rbuf;     /* CT_RECV_SIZE */
	char *sbuf;     /* CT_SEND_SIZE */
};

/* One direction of an entry; addresses in network order, ports in host order. */
struct ct_tuple {
	uint32_t src, dst;	   /* IPv4 */
	uint8_t src6[16], dst6[16]; /* IPv6 */
	uint16_t sport, dport;
	uint8_t protocol;
	bool has_zone;
	uint16_t zone;
};

/* What a deletion needs: the original tuple and the entry's identity. */
struct ct_entry {
	struct ct_tuple orig;
	uint16_t zone;
	bool has_id;
	uint32_t id; /* as dumped (network order) */
};

/* One flush: the mappings, indexed, and the entries found so far. */
struct ct_flush {
	const struct table_mapping **by_ext; /* by protocol, external port */
	const struct table_mapping **by_int; /* by protocol, client, internal port */
	size_t n;
	uint8_t protocol; /* shared by all the mappings, or 0 */
	bool v6;	  /* the mappings are IPv6 pinholes: the IPv6 table is dumped */
	struct ct_entry *found;
	size_t n_found, cap_found;
	bool interrupted;
};

/* --- the socket --- */

/* Opens (or replaces) the socket. */
static int ct_connect(struct ct *c)
{
	struct timeval tv = { .tv_sec = CT_RECV_TIMEOUT_SEC };
	int one = 1, err;

	if (c->nl)
		mnl_socket_close(c->nl);
	c->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!c->nl)
		return errno ? -errno : -ENOMEM;
	if (mnl_socket_bind(c->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(c->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		err = errno;
		mnl_socket_close(c->nl);
		c->nl = NULL;
		return -err;
	}
	/* Acknowledgements need not carry the deletion back: more of them fit the buffer. */
	(void)mnl_socket_setsockopt(c->nl, NETLINK_CAP_ACK, &one, sizeof(one));
	c->portid = mnl_socket_get_portid(c->nl);
	return 0;
}

struct ct *ct_open(void)
{
	struct ct *c = calloc(1, sizeof(*c));
	int err;

	if (!c)
		return NULL;
	c->rbuf = malloc(CT_RECV_SIZE);
	c->sbuf = malloc(CT_SEND_SIZE);
	if (!c->rbuf || !c->sbuf) {
		err = ENOMEM;
		goto fail;
	}
	if ((err = -ct_connect(c)) != 0)
		goto fail;
	c->seq = (uint32_t)time(NULL);
	return c;
fail:
	ct_close(c);
	errno = err;
	return NULL;
}

void ct_close(struct ct *c)
{
	if (!c)
		return;
	if (c->nl)
		mnl_socket_close(c->nl);
	free(c->rbuf);
	free(c->sbuf);
	free(c);
}

/*
 * One read into rbuf.  SO_RCVTIMEO bounds each wait; a signal restarts the
 * wait only while the first one's time is not up, so that a stream of
 * signals cannot stretch it forever.
 */
static int ct_recv(struct ct *c)
{
	struct timespec now, deadline = { 0, 0 };

	for (;;) {
		ssize_t len = mnl_socket_recvfrom(c->nl, c->rbuf, CT_RECV_SIZE);
		if (len >= 0)
			return (int)len;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return -ETIMEDOUT;
		if (errno != EINTR)
			return -errno;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (deadline.tv_sec == 0)
			deadline.tv_sec = now.tv_sec + CT_RECV_TIMEOUT_SEC;
		else if (now.tv_sec >= deadline.tv_sec)
			return -ETIMEDOUT;
	}
}

/* The error an NLMSG_ERROR (0 for an acknowledgement) or NLMSG_DONE carries. */
static int ct_msg_errno(const struct nlmsghdr *nlh)
{
	int err;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(err))
		return nlh->nlmsg_type == NLMSG_DONE ? 0 : -EBADMSG;
	memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof(err));
	return err < 0 ? err : 0;
}

/* Starts a message at at, which has CT_MSG_ROOM bytes. */
static struct nlmsghdr *ct_msg(struct ct *c, char *at, uint8_t type, uint16_t flags, uint8_t family)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	/* libmnl (1.0.4 at least) leaves attribute padding as it finds it: send zeros, not stale bytes. */
	memset(at, 0, CT_MSG_ROOM);
	nlh = mnl_nlmsg_put_header(at);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	nlh->nlmsg_flags = NLM_F_REQUEST | flags;
	nlh->nlmsg_seq = ++c->seq;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = family;
	nfg->version = NFNETLINK_V0;
	nfg->res_id = 0;
	return nlh;
}

/* --- parsing a dumped entry --- */

/* Which attributes of a nest are wanted, and as what; the others are skipped. */
struct ct_attrs {
	const struct nlattr **tb;
	const enum mnl_attr_data_type *types; /* MNL_TYPE_UNSPEC: not wanted */
	uint16_t max;
};

static const enum mnl_attr_data_type ct_top_types[CTA_MAX + 1] = {
	[CTA_TUPLE_ORIG] = MNL_TYPE_NESTED,
	[CTA_TUPLE_REPLY] = MNL_TYPE_NESTED,
	[CTA_ID] = MNL_TYPE_U32,
	[CTA_ZONE] = MNL_TYPE_U16,
};

static const enum mnl_attr_data_type ct_tuple_types[CTA_TUPLE_MAX + 1] = {
	[CTA_TUPLE_IP] = MNL_TYPE_NESTED,
	[CTA_TUPLE_PROTO] = MNL_TYPE_NESTED,
	[CTA_TUPLE_ZONE] = MNL_TYPE_U16,
};

static const enum mnl_attr_data_type ct_ip_types[CTA_IP_MAX + 1] = {
	[CTA_IP_V4_SRC] = MNL_TYPE_U32,
	[CTA_IP_V4_DST] = MNL_TYPE_U32,
	[CTA_IP_V6_SRC] = MNL_TYPE_BINARY,
	[CTA_IP_V6_DST] = MNL_TYPE_BINARY,
};

static const enum mnl_attr_data_type ct_proto_types[CTA_PROTO_MAX + 1] = {
	[CTA_PROTO_NUM] = MNL_TYPE_U8,
	[CTA_PROTO_SRC_PORT] = MNL_TYPE_U16,
	[CTA_PROTO_DST_PORT] = MNL_TYPE_U16,
};

static int ct_attr_cb(const struct nlattr *attr, void *data)
{
	const struct ct_attrs *a = data;
	uint16_t type = mnl_attr_get_type(attr);

	/* Unknown attributes (a newer kernel's, say) are not an error. */
	if (type > a->max || a->types[type] == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	/* A wanted attribute of the wrong size is: nothing of it would be trustworthy. */
	if (mnl_attr_validate(attr, a->types[type]) < 0)
		return MNL_CB_ERROR;
	a->tb[type] = attr;
	return MNL_CB_OK;
}

static bool ct_parse_nested(const struct nlattr *nest, const struct nlattr **tb,
			    const enum mnl_attr_data_type *types, uint16_t max)
{
	struct ct_attrs a = { .tb = tb, .types = types, .max = max };

	return mnl_attr_parse_nested(nest, ct_attr_cb, &a) >= MNL_CB_STOP;
}

/* Reads an IPv4 (IPv6) TCP/UDP-style tuple; false if anything in it is missing or malformed. */
static bool ct_parse_tuple(const struct nlattr *nest, struct ct_tuple *t, bool v6)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1] = { 0 };
	const struct nlattr *ip[CTA_IP_MAX + 1] = { 0 };
	const struct nlattr *proto[CTA_PROTO_MAX + 1] = { 0 };

	if (!ct_parse_nested(nest, tb, ct_tuple_types, CTA_TUPLE_MAX) || !tb[CTA_TUPLE_IP] ||
	    !tb[CTA_TUPLE_PROTO])
		return false;
	if (!ct_parse_nested(tb[CTA_TUPLE_IP], ip, ct_ip_types, CTA_IP_MAX))
		return false;
	if (v6) {
		if (!ip[CTA_IP_V6_SRC] || !ip[CTA_IP_V6_DST] || mnl_attr_get_payload_len(ip[CTA_IP_V6_SRC]) != 16 ||
		    mnl_attr_get_payload_len(ip[CTA_IP_V6_DST]) != 16)
			return false;
		memcpy(t->src6, mnl_attr_get_payload(ip[CTA_IP_V6_SRC]), 16);
		memcpy(t->dst6, mnl_attr_get_payload(ip[CTA_IP_V6_DST]), 16);
	} else if (!ip[CTA_IP_V4_SRC] || !ip[CTA_IP_V4_DST]) {
		return false;
	}
	if (!ct_parse_nested(tb[CTA_TUPLE_PROTO], proto, ct_proto_types, CTA_PROTO_MAX) ||
	    !proto[CTA_PROTO_NUM] || !proto[CTA_PROTO_SRC_PORT] || !proto[CTA_PROTO_DST_PORT])
		return false;
	/* Addresses stay in network order, as in struct table_mapping. */
	t->src = v6 ? 0 : mnl_attr_get_u32(ip[CTA_IP_V4_SRC]);
	t->dst = v6 ? 0 : mnl_attr_get_u32(ip[CTA_IP_V4_DST]);
	t->protocol = mnl_attr_get_u8(proto[CTA_PROTO_NUM]);
	t->sport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_SRC_PORT]));
	t->dport = ntohs(mnl_attr_get_u16(proto[CTA_PROTO_DST_PORT]));
	t->has_zone = tb[CTA_TUPLE_ZONE] != NULL;
	t->zone = t->has_zone ? ntohs(mnl_attr_get_u16(tb[CTA_TUPLE_ZONE])) : 0;
	return true;
}

/* --- matching --- */

static int ct_cmp(uint32_t a, uint32_t b)
{
	return a < b ? -1 : a > b;
}

static int ct_cmp_ext(const void *pa, const void *pb)
{
	const struct table_mapping *a = *(const struct table_mapping *const *)pa;
	const struct table_mapping *b = *(const struct table_mapping *const *)pb;

	if (a->protocol != b->protocol)
		return ct_cmp(a->protocol, b->protocol);
	return ct_cmp(a->external_port, b->external_port);
}

static int ct_cmp_int(const void *pa, const void *pb)
{
	const struct table_mapping *a = *(const struct table_mapping *const *)pa;
	const struct table_mapping *b = *(const struct table_mapping *const *)pb;

	if (a->protocol != b->protocol)
		return ct_cmp(a->protocol, b->protocol);
	if (a->client.v4 != b->client.v4)
		return ct_cmp(a->client.v4, b->client.v4);
	return ct_cmp(a->internal_port, b->internal_port);
}

/* Index of the first mapping in v not ordered before *key (qsort's comparison). */
static size_t ct_lower_bound(const struct table_mapping *const *v, size_t n, const struct table_mapping *const *key,
			     int (*cmp)(const void *, const void *))
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp(&v[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Binary searches rather than a scan of the mappings: a flush after a long
 * outage may carry thousands of mappings against a table of a hundred
 * thousand entries.
 */
static bool ct_matches(const struct ct_flush *f, const struct ct_tuple *o, const struct ct_tuple *r)
{
	struct table_mapping key = { .protocol = o->protocol };
	const struct table_mapping *k = &key;
	size_t i;

	if (o->protocol != r->protocol)
		return false;
	/*
	 * A pinhole translates nothing: its flows are those that came in
	 * through it, to the client's own address and port.
	 */
	if (f->v6) {
		key.external_port = o->dport;
		for (i = ct_lower_bound(f->by_ext, f->n, &k, ct_cmp_ext); i < f->n && ct_cmp_ext(&f->by_ext[i], &k) == 0;
		     i++)
			if (memcmp(f->by_ext[i]->client.v6, o->dst6, 16) == 0)
				return true;
		return false;
	}
	/* Not translated by anything: not a flow through any mapping. */
	if (o->src == r->dst && o->dst == r->src && o->sport == r->dport && o->dport == r->sport)
		return false;

	/* Inbound: to the external port, answered by the client's internal port. */
	key.external_port = o->dport;
	for (i = ct_lower_bound(f->by_ext, f->n, &k, ct_cmp_ext); i < f->n && ct_cmp_ext(&f->by_ext[i], &k) == 0; i++)
		if (f->by_ext[i]->client.v4 == r->src && f->by_ext[i]->internal_port == r->sport)
			return true;

	/* Outbound: from the client's internal port, answered at the external port. */
	key.client = table_addr_v4(o->src);
	key.internal_port = o->sport;
	for (i = ct_lower_bound(f->by_int, f->n, &k, ct_cmp_int); i < f->n && ct_cmp_int(&f->by_int[i], &k) == 0; i++)
		if (f->by_int[i]->external_port == r->dport)
			return true;
	return false;
}

/* Looks at one dumped entry; 0, or -ENOMEM when a match cannot be kept. */
static int ct_dump_entry(struct ct_flush *f, const struct nlmsghdr *nlh)
{
	const struct nlattr *tb[CTA_MAX + 1] = { 0 };
	struct ct_attrs a = { .tb = tb, .types = ct_top_types, .max = CTA_MAX };
	const struct nfgenmsg *nfg;
	struct ct_tuple orig, reply;
	struct ct_entry *e;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*nfg))
		return 0;
	nfg = mnl_nlmsg_get_payload(nlh);
	/* A malformed entry is skipped, not fatal: the others still need deleting. */
	if (nfg->nfgen_family != (f->v6 ? AF_INET6 : AF_INET) || mnl_attr_parse(nlh, sizeof(*nfg), ct_attr_cb, &a) < MNL_CB_STOP ||
	    !tb[CTA_TUPLE_ORIG] || !tb[CTA_TUPLE_REPLY] || !ct_parse_tuple(tb[CTA_TUPLE_ORIG], &orig, f->v6) ||
	    !ct_parse_tuple(tb[CTA_TUPLE_REPLY], &reply, f->v6) || !ct_matches(f, &orig, &reply))
		return 0;

	if (f->n_found == f->cap_found) {
		size_t cap = f->cap_found ? f->cap_found * 2 : 16;
		struct ct_entry *p = cap < SIZE_MAX / sizeof(*p) ? realloc(f->found, cap * sizeof(*p)) : NULL;
		if (!p)
			return -ENOMEM;
		f->found = p;
		f->cap_found = cap;
	}
	e = &f->found[f->n_found++];
	e->orig = orig;
	/* A zone set for the original direction only is the one its lookup uses. */
	e->zone = orig.has_zone ? orig.zone : tb[CTA_ZONE] ? ntohs(mnl_attr_get_u16(tb[CTA_ZONE])) : 0;
	e->has_id = tb[CTA_ID] != NULL;
	e->id = e->has_id ? mnl_attr_get_u32(tb[CTA_ID]) : 0;
	return 0;
}

/* --- the dump --- */

static void ct_put_proto_num(struct nlmsghdr *nlh, uint8_t protocol)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	struct nlattr *proto = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);

	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, protocol);
	mnl_attr_nest_end(nlh, proto);
	mnl_attr_nest_end(nlh, tuple);
}

/* Reads the whole dump into f->found; 0 or -errno. */
static int ct_dump_once(struct ct *c, struct ct_flush *f, bool filter)
{
	struct nlmsghdr *nlh = ct_msg(c, c->sbuf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, f->v6 ? AF_INET6 : AF_INET);
	uint32_t seq = nlh->nlmsg_seq;
	int len, r;

	f->n_found = 0;
	f->interrupted = false;
	if (filter) {
		struct nlattr *nest;
		ct_put_proto_num(nlh, f->protocol);
		nest = mnl_attr_nest_start(nlh, CTA_FILTER);
		mnl_attr_put_u32(nlh, CTA_FILTER_ORIG_FLAGS, CT_FILTER_PROTO_NUM);
		mnl_attr_nest_end(nlh, nest);
	}
	if (mnl_socket_sendto(c->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	for (;;) {
		if ((len = ct_recv(c)) < 0)
			return len;
		for (nlh = (struct nlmsghdr *)c->rbuf; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			if (nlh->nlmsg_seq != seq || nlh->nlmsg_pid != c->portid)
				continue;
			/* The table changed under the dump: entries may be missing from it. */
			if (nlh->nlmsg_flags & NLM_F_DUMP_INTR)
				f->interrupted = true;
			if (nlh->nlmsg_type == NLMSG_DONE)
				return ct_msg_errno(nlh);
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				/* Only a refused request is answered so; an acknowledgement was not asked for. */
				if ((r = ct_msg_errno(nlh)) < 0)
					return r;
				continue;
			}
			if (NFNL_SUBSYS_ID(nlh->nlmsg_type) == NFNL_SUBSYS_CTNETLINK &&
			    NFNL_MSG_TYPE(nlh->nlmsg_type) == IPCTNL_MSG_CT_NEW && (r = ct_dump_entry(f, nlh)) < 0)
				return r;
		}
	}
}

static int ct_dump(struct ct *c, struct ct_flush *f)
{
	bool filter = f->protocol != 0 && !c->no_filter;
	int r = ct_dump_once(c, f, filter);

	/* A kernel that knows CTA_FILTER but not this use of it: the matching here suffices. */
	if (filter && (r == -EINVAL || r == -EOPNOTSUPP)) {
		c->no_filter = true;
		r = ct_dump_once(c, f, false);
	}
	return r;
}

/* --- deleting --- */

static void ct_put_delete(struct ct *c, char *at, const struct ct_entry *e, bool v6)
{
	struct nlmsghdr *nlh = ct_msg(c, at, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, v6 ? AF_INET6 : AF_INET);
	struct nlattr *tuple, *nest;

	/* Never without the tuple: a deletion that names no entry flushes the whole table. */
	tuple = mnl_attr_nest_start(nlh, CTA_TUPLE_ORIG);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	if (v6) {
		mnl_attr_put(nlh, CTA_IP_V6_SRC, 16, e->orig.src6);
		mnl_attr_put(nlh, CTA_IP_V6_DST, 16, e->orig.dst6);
	} else {
		mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, e->orig.src);
		mnl_attr_put_u32(nlh, CTA_IP_V4_DST, e->orig.dst);
	}
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, e->orig.protocol);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(e->orig.sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(e->orig.dport));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
	if (e->zone)
		mnl_attr_put_u16(nlh, CTA_ZONE, htons(e->zone));
	if (e->has_id)
		mnl_attr_put_u32(nlh, CTA_ID, e->id);
}

/* Deletes n (at most CT_DEL_PER_SEND) entries with one send; returns how many went, or -errno. */
static int ct_delete_some(struct ct *c, const struct ct_entry *e, size_t n, bool v6)
{
	uint32_t first = c->seq + 1;
	size_t len = 0, acked = 0;
	int deleted = 0, first_error = 0, got;

	for (size_t i = 0; i < n; i++) {
		ct_put_delete(c, c->sbuf + len, &e[i], v6);
		len += NLMSG_ALIGN(((struct nlmsghdr *)(c->sbuf + len))->nlmsg_len);
	}
	if (mnl_socket_sendto(c->nl, c->sbuf, len) < 0)
		return -errno;
	while (acked < n) {
		if ((got = ct_recv(c)) < 0)
			return got;
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)c->rbuf; mnl_nlmsg_ok(nlh, got);
		     nlh = mnl_nlmsg_next(nlh, &got)) {
			int err;
			/* Unsigned difference: correct across a wrap of the sequence numbers. */
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_pid != c->portid ||
			    nlh->nlmsg_seq - first >= n)
				continue;
			acked++;
			err = ct_msg_errno(nlh);
			if (err == 0)
				deleted++;
			else if (err != -ENOENT && !first_error) /* ENOENT: gone meanwhile, or replaced */
				first_error = err;
		}
	}
	return first_error ? first_error : deleted;
}

static int ct_delete_found(struct ct *c, const struct ct_flush *f)
{
	int deleted = 0, r;

	for (size_t i = 0; i < f->n_found; i += CT_DEL_PER_SEND) {
		size_t n = f->n_found - i < CT_DEL_PER_SEND ? f->n_found - i : CT_DEL_PER_SEND;
		if ((r = ct_delete_some(c, f->found + i, n, f->v6)) < 0)
			return r;
		deleted += r;
	}
	return deleted;
}

/* --- flushing --- */

/* The flush of the mappings of one family, IPv4 (v6 false) or IPv6: one dump of that family's table. */
static int ct_flush_family(struct ct *c, const struct table_mapping *ms, size_t n, bool v6)
{
	struct ct_flush f = { .v6 = v6 };
	int deleted = 0, r = 0;

	if (n == 0)
		return 0;
	if (n > SIZE_MAX / (2 * sizeof(*f.by_ext)) || !(f.by_ext = malloc(2 * n * sizeof(*f.by_ext))))
		return -ENOMEM;
	f.by_int = f.by_ext + n;
	f.protocol = ms[0].protocol;
	for (size_t i = 0; i < n; i++) {
		if (table_addr_is_v4(&ms[i].client) == v6)
			continue;
		f.by_ext[f.n] = f.by_int[f.n] = &ms[i];
		f.n++;
		if (ms[i].protocol != f.protocol)
			f.protocol = 0;
	}
	if (f.n == 0) {
		free(f.by_ext);
		return 0;
	}
	qsort(f.by_ext, f.n, sizeof(*f.by_ext), ct_cmp_ext);
	qsort(f.by_int, f.n, sizeof(*f.by_int), ct_cmp_int);

	/* A failed replacement earlier left no socket. */
	if (!c->nl && (r = ct_connect(c)) < 0)
		goto out;
	for (int attempt = 1;; attempt++) {
		r = ct_dump(c, &f);
		/* Even an interrupted dump's matches are real: delete them, then look again. */
		if (r == 0 && (r = ct_delete_found(c, &f)) >= 0) {
			deleted += r;
			r = 0;
		}
		if (r < 0) {
			int err = ct_connect(c);
			/*
			 * An overflow lost messages, perhaps acknowledgements of
			 * deletions that happened: the next dump no longer sees
			 * those entries, so they go uncounted, never undeleted.
			 */
			if (r != -ENOBUFS || err < 0)
				break;
		} else if (!f.interrupted) {
			break;
		}
		if (attempt == CT_ATTEMPTS) {
			if (r == 0)
				r = -EINTR;
			break;
		}
	}
out:
	free(f.by_ext);
	free(f.found);
	return r < 0 ? r : deleted;
}

int ct_flush_mappings(struct ct *c, const struct table_mapping *ms, size_t n)
{
	int v4 = ct_flush_family(c, ms, n, false), v6;

	if (v4 < 0)
		return v4;
	if ((v6 = ct_flush_family(c, ms, n, true)) < 0)
		return v6;
	return v4 + v6;
}

int ct_flush_mapping(struct ct *c, const struct table_mapping *m)
{
	return ct_flush_mappings(c, m, 1);
}
