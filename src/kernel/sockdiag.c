/*
 * sockdiag.c - is a local port taken?  Asked over NETLINK_SOCK_DIAG (libmnl).
 *
 * A query is one SOCK_DIAG_BY_FAMILY dump for AF_INET and, when that finds
 * nothing, one for AF_INET6.  Each request carries a two-op inet_diag
 * bytecode program, "source port == P", so the kernel sends back only the
 * sockets on that port: the reply is a handful of messages whether the host
 * has ten sockets or a million.  The kernel still walks its whole listening
 * (TCP) or bound (UDP) hash table to find them, which costs a few tens of
 * nanoseconds a socket; the full text of /proc/net/tcp costs far more.
 *
 * A dump is always read to its NLMSG_DONE, even once the answer is known,
 * so that nothing is left on the socket for the next query.  Replies to a
 * query that timed out may still arrive later; they carry an older sequence
 * number and are skipped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "kernel/sockdiag.h"

/* How long the kernel may take to answer one dump request. */
#define SOCKDIAG_TIMEOUT_SEC 2
/*
 * Room for one read.  The kernel sizes a dump's datagrams after the largest
 * buffer it has seen passed to recvmsg, capped at 32 KiB, so a buffer of
 * that size can never get a truncated datagram.
 */
#define SOCKDIAG_RECV_SIZE 32768

struct sockdiag {
	struct mnl_socket *nl;
	uint32_t seq;
	_Alignas(struct nlmsghdr) char buf[SOCKDIAG_RECV_SIZE];
};

struct sockdiag *sockdiag_open(void)
{
	struct timeval tv = { .tv_sec = SOCKDIAG_TIMEOUT_SEC };
	struct sockdiag *d = malloc(sizeof(*d));
	int err;

	if (!d)
		return NULL;
	d->seq = (uint32_t)time(NULL);
	d->nl = mnl_socket_open2(NETLINK_SOCK_DIAG, SOCK_CLOEXEC);
	if (!d->nl || mnl_socket_bind(d->nl, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    setsockopt(mnl_socket_get_fd(d->nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
		goto fail;
	return d;
fail:
	err = errno;
	sockdiag_close(d);
	errno = err ? err : ENOMEM;
	return NULL;
}

void sockdiag_close(struct sockdiag *d)
{
	if (!d)
		return;
	if (d->nl)
		mnl_socket_close(d->nl);
	free(d);
}

/*
 * Whether a socket bound to this message's source address receives IPv4
 * traffic for one of addrs.  An IPv6 socket on :: counts even with
 * IPV6_V6ONLY: the port is plainly one of the router's services, and
 * keeping a mapping off it costs one port out of tens of thousands.
 */
static int sockdiag_match(const struct inet_diag_msg *m, const uint32_t *addrs, size_t n_addrs)
{
	const uint32_t *src = m->id.idiag_src;
	uint32_t v4;

	if (m->idiag_family == AF_INET) {
		v4 = src[0];
	} else if (m->idiag_family == AF_INET6) {
		if ((src[0] | src[1] | src[2] | src[3]) == 0)
			return 1;
		/* Any other IPv6 address but ::ffff:a.b.c.d never sees IPv4 traffic. */
		if (src[0] != 0 || src[1] != 0 || src[2] != htonl(0xffff))
			return 0;
		v4 = src[3]; /* ::ffff:0.0.0.0 binds the IPv4 wildcard */
	} else {
		return 0;
	}
	if (v4 == htonl(INADDR_ANY))
		return 1;
	for (size_t i = 0; i < n_addrs; i++)
		if (addrs[i] == v4)
			return 1;
	return 0;
}

/*
 * Sends one dump request: the sockets of family and protocol in the given
 * states whose source port is port.
 *
 * The bytecode runs op by op; the kernel keeps a socket when the run ends
 * exactly at the end of the program.  S_EQ compares the source port with
 * the `no` field of the op after it (host order), then jumps `yes` bytes on
 * a match (to the end: keep) or `no` bytes otherwise (4 bytes past the end,
 * the one out-of-bounds target the kernel's checker allows: drop).
 * idiag_sport repeats the port because the kernel checks it before running
 * any bytecode, which spares it the program for every other socket.
 */
static int sockdiag_request(struct sockdiag *d, uint8_t family, uint8_t protocol, uint32_t states, uint16_t port)
{
	/* Port 0: every socket, for sockdiag_ports_in_use(). */
	_Alignas(struct nlmsghdr) char buf[MNL_NLMSG_HDRLEN + MNL_ALIGN(sizeof(struct inet_diag_req_v2)) +
					   MNL_ATTR_HDRLEN + MNL_ALIGN(2 * sizeof(struct inet_diag_bc_op))];
	struct inet_diag_bc_op bc[2] = {
		{ .code = INET_DIAG_BC_S_EQ, .yes = sizeof(bc), .no = sizeof(bc) + 4 },
		{ .no = port },
	};
	struct inet_diag_req_v2 *req;
	struct nlmsghdr *nlh;

	nlh = mnl_nlmsg_put_header(buf);
	nlh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = ++d->seq;
	req = mnl_nlmsg_put_extra_header(nlh, sizeof(*req));
	req->sdiag_family = family;
	req->sdiag_protocol = protocol;
	req->idiag_states = states;
	req->id.idiag_sport = htons(port);
	req->id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req->id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	if (port)
		mnl_attr_put(nlh, INET_DIAG_REQ_BYTECODE, sizeof(bc), bc);
	if (mnl_socket_sendto(d->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	return 0;
}

/*
 * Reads the answer to the last request to its end; 1 if a socket on port
 * matched, 0 if none did.  With a bitmap, every matching socket's port is
 * marked in it instead.
 */
static int sockdiag_read(struct sockdiag *d, uint16_t port, const uint32_t *addrs, size_t n_addrs, uint8_t *bitmap)
{
	int found = 0;

	for (;;) {
		ssize_t len = mnl_socket_recvfrom(d->nl, d->buf, sizeof(d->buf));
		int left = (int)len;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -ETIMEDOUT : -errno;
		}
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)d->buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left)) {
			size_t plen = mnl_nlmsg_get_payload_len(nlh);
			const void *p = mnl_nlmsg_get_payload(nlh);

			if (nlh->nlmsg_seq != d->seq)
				continue;
			if (nlh->nlmsg_type == NLMSG_DONE) {
				/* A dump that failed part-way says so here. */
				int err = 0;
				if (plen >= sizeof(err))
					memcpy(&err, p, sizeof(err));
				return err < 0 ? err : found;
			}
			if (nlh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = p;
				if (plen < sizeof(*e))
					return -EPROTO;
				return e->error < 0 ? e->error : found;
			}
			if (nlh->nlmsg_type == SOCK_DIAG_BY_FAMILY && plen >= sizeof(struct inet_diag_msg)) {
				const struct inet_diag_msg *m = p;
				uint16_t sport = ntohs(m->id.idiag_sport);
				if (bitmap && sockdiag_match(m, addrs, n_addrs))
					bitmap[sport / 8] |= (uint8_t)(1u << (sport % 8));
				/* The kernel filtered on the port already; checked again as it costs nothing. */
				else if (!bitmap && sport == port && sockdiag_match(m, addrs, n_addrs))
					found = 1;
			}
		}
	}
}

/* A TCP socket takes connections only while listening; a UDP socket takes datagrams once bound. */
static uint32_t sockdiag_states(uint8_t protocol)
{
	return protocol == IPPROTO_TCP ? 1U << TCP_LISTEN : ~0U;
}

static const uint8_t sockdiag_families[] = { AF_INET, AF_INET6 };

int sockdiag_port_in_use(struct sockdiag *d, uint8_t protocol, uint16_t port, const uint32_t *addrs,
			 size_t n_addrs)
{
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	if (port == 0 || (!addrs && n_addrs > 0))
		return -EINVAL;
	for (size_t i = 0; i < sizeof(sockdiag_families); i++) {
		int r = sockdiag_request(d, sockdiag_families[i], protocol, sockdiag_states(protocol), port);
		if (r == 0)
			r = sockdiag_read(d, port, addrs, n_addrs, NULL);
		if (r != 0)
			return r;
	}
	return 0;
}

int sockdiag_ports_in_use(struct sockdiag *d, uint8_t protocol, const uint32_t *addrs, size_t n_addrs,
			  uint8_t bitmap[SOCKDIAG_BITMAP_BYTES])
{
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return -EPROTONOSUPPORT;
	if (!addrs && n_addrs > 0)
		return -EINVAL;
	memset(bitmap, 0, SOCKDIAG_BITMAP_BYTES);
	for (size_t i = 0; i < sizeof(sockdiag_families); i++) {
		int r = sockdiag_request(d, sockdiag_families[i], protocol, sockdiag_states(protocol), 0);
		if (r == 0)
			r = sockdiag_read(d, 0, addrs, n_addrs, bitmap);
		if (r < 0)
			return r;
	}
	return 0;
}
