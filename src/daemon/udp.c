/*
 * udp.c - receiving requests and sending replies on the listen interfaces.
 */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/udp.h"

static void udp_refresh_subnets(struct udp_socket *u, int64_t now)
{
	struct netif_addr a[UDP_MAX_SUBNETS];
	int n = netif_ipv4_all(u->ifname, a, UDP_MAX_SUBNETS);

	u->refreshed = now;
	/* A failed query (out of file descriptors or memory) says nothing about the interface: keep what we knew. */
	if (n < 0 && n != -ENODEV)
		return;
	u->n_subnets = n < 0 ? 0 : n;
	memcpy(u->subnets, a, (size_t)u->n_subnets * sizeof(a[0]));
}

int udp_open(struct udp_socket *u, const char *ifname, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, rcvbuf = UDP_RCVBUF, err;

	memset(u, 0, sizeof(*u));
	strncpy(u->ifname, ifname, sizeof(u->ifname) - 1);
	u->ifindex = if_nametoindex(ifname);
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return -errno;
	/* Several sockets share the port, one per interface. */
	if (setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(u->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0 ||
	    setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
	    bind(u->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		err = -errno;
		close(u->fd);
		u->fd = -1;
		return err;
	}
	/*
	 * Room for a burst (many clients at once, or a client mapping a
	 * hundred ports) while a turn is being made durable: the default
	 * buffer holds only a few hundred datagrams.
	 */
	if (setsockopt(u->fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(u->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	udp_refresh_subnets(u, 0);
	return 0;
}

void udp_close(struct udp_socket *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

int udp_recv(struct udp_socket *u, struct udp_packet *pkts, int max)
{
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cmsg[UDP_BATCH];
	int n;

	if (max > UDP_BATCH)
		max = UDP_BATCH;
	for (int i = 0; i < max; i++) {
		iov[i] = (struct iovec){ .iov_base = pkts[i].data, .iov_len = sizeof(pkts[i].data) };
		msgs[i].msg_hdr = (struct msghdr){
			.msg_name = &pkts[i].peer,
			.msg_namelen = sizeof(pkts[i].peer),
			.msg_iov = &iov[i],
			.msg_iovlen = 1,
			.msg_control = cmsg[i].buf,
			.msg_controllen = sizeof(cmsg[i].buf),
		};
	}
	n = recvmmsg(u->fd, msgs, (unsigned int)max, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
	for (int i = 0; i < n; i++) {
		struct udp_packet *p = &pkts[i];
		struct cmsghdr *c;

		p->len = msgs[i].msg_len;
		p->reply_len = 0;
		p->local.s_addr = INADDR_ANY;
		/* Oversized datagrams are cut to the buffer; MSG_TRUNC marks them. */
		if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			p->len = sizeof(p->data);
		for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				/* ipi_spec_dst is the local address a unicast request was sent to. */
				p->local = pi.ipi_spec_dst;
			}
		}
	}
	return n;
}

int udp_send(struct udp_socket *u, struct udp_packet *pkts, int n)
{
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cmsg[UDP_BATCH];
	int count = 0, sent = 0;

	for (int i = 0; i < n && i < UDP_BATCH; i++) {
		struct udp_packet *p = &pkts[i];
		struct cmsghdr *c;
		struct in_pktinfo pi = { .ipi_spec_dst = p->local };

		if (!p->reply_len)
			continue;
		iov[count] = (struct iovec){ .iov_base = p->reply, .iov_len = p->reply_len };
		msgs[count].msg_hdr = (struct msghdr){
			.msg_name = &p->peer,
			.msg_namelen = sizeof(p->peer),
			.msg_iov = &iov[count],
			.msg_iovlen = 1,
			.msg_control = cmsg[count].buf,
			.msg_controllen = sizeof(cmsg[count].buf),
		};
		c = CMSG_FIRSTHDR(&msgs[count].msg_hdr);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof(pi));
		memcpy(CMSG_DATA(c), &pi, sizeof(pi));
		count++;
	}
	while (sent < count) {
		int r = sendmmsg(u->fd, msgs + sent, (unsigned int)(count - sent), MSG_DONTWAIT);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			/* A client that vanished (ICMP unreachable) must not stop the others. */
			log_debug("send on %s: %s", u->ifname, strerror(errno));
			sent++;
			continue;
		}
		sent += r;
	}
	return count;
}

int udp_announce(struct udp_socket *u, const uint8_t *buf, size_t len, int64_t now)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(NATPMP_CLIENT_PORT),
				  .sin_addr.s_addr = htonl(INADDR_ALLHOSTS_GROUP) };
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} cmsg;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cmsg.buf, .msg_controllen = sizeof(cmsg.buf) };
	struct in_pktinfo pi = { 0 };
	struct cmsghdr *c;

	if (now != u->refreshed)
		udp_refresh_subnets(u, now);
	if (u->n_subnets == 0)
		return -EADDRNOTAVAIL;
	/* The interface and source address of a multicast datagram, chosen per datagram. */
	pi.ipi_ifindex = (int)u->subnets[0].ifindex;
	pi.ipi_spec_dst.s_addr = u->subnets[0].addr;
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(pi));
	memcpy(CMSG_DATA(c), &pi, sizeof(pi));
	return sendmsg(u->fd, &msg, MSG_DONTWAIT) < 0 ? -errno : 0;
}

/*
 * Looks addr up among the interface's addresses (local) or inside their
 * subnets (a peer).  An address added since the last look is found by
 * asking again, at most once a second.
 */
static bool udp_match(struct udp_socket *u, uint32_t addr, bool local, int64_t now)
{
	for (int pass = 0; pass < 2; pass++) {
		bool inside = false;
		for (int i = 0; i < u->n_subnets; i++) {
			const struct netif_addr *a = &u->subnets[i];
			/* A peer is never one of the router's own addresses, whichever subnet it lies in. */
			if (addr == a->addr)
				return local;
			if (((addr ^ a->addr) & a->mask) == 0)
				inside = true;
		}
		if (inside && !local)
			return true;
		if (pass == 0 && now != u->refreshed)
			udp_refresh_subnets(u, now);
		else
			break;
	}
	return false;
}

bool udp_host_allowed(struct udp_socket *u, struct in_addr host, int64_t now)
{
	uint32_t h = ntohl(host.s_addr);

	if (!udp_match(u, host.s_addr, false, now))
		return false;
	/* Not a subnet's network or broadcast address (subnets of /31 and /32 have neither). */
	for (int i = 0; i < u->n_subnets; i++) {
		uint32_t mask = ntohl(u->subnets[i].mask);
		if (((host.s_addr ^ u->subnets[i].addr) & u->subnets[i].mask) == 0 && mask < 0xfffffffe &&
		    ((h & ~mask) == 0 || (h & ~mask) == ~mask))
			return false;
	}
	return true;
}

bool udp_source_allowed(struct udp_socket *u, struct in_addr src, int64_t now)
{
	return udp_match(u, src.s_addr, false, now);
}

bool udp_local_allowed(struct udp_socket *u, struct in_addr local, int64_t now)
{
	return udp_match(u, local.s_addr, true, now);
}
