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
	struct netif_addr6 a6[UDP_MAX_SUBNETS];
	int n = u->family == AF_INET6 ? netif_ipv6_all(u->ifname, a6, UDP_MAX_SUBNETS)
				      : netif_ipv4_all(u->ifname, a, UDP_MAX_SUBNETS);

	u->refreshed = now;
	/* A failed query (out of file descriptors or memory) says nothing about the interface: keep what we knew. */
	if (n < 0 && n != -ENODEV)
		return;
	u->n_subnets = n < 0 ? 0 : n;
	if (u->family == AF_INET6)
		memcpy(u->subnets6, a6, (size_t)u->n_subnets * sizeof(a6[0]));
	else
		memcpy(u->subnets, a, (size_t)u->n_subnets * sizeof(a[0]));
}

int udp_open(struct udp_socket *u, const char *ifname, uint16_t port, int family)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int one = 1, rcvbuf = UDP_RCVBUF, err, v6 = family == AF_INET6;

	memset(u, 0, sizeof(*u));
	strncpy(u->ifname, ifname, sizeof(u->ifname) - 1);
	u->family = family;
	u->ifindex = if_nametoindex(ifname);
	u->fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0)
		return -errno;
	/* Several sockets share the port, one per interface; the IPv6 one leaves IPv4 to its twin. */
	if (setsockopt(u->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(u->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0 ||
	    (v6 ? setsockopt(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0 ||
			  setsockopt(u->fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)) < 0 ||
			  bind(u->fd, (struct sockaddr *)&sin6, sizeof(sin6)) < 0
	        : setsockopt(u->fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) < 0 ||
			  bind(u->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)) {
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
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
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
		p->local6 = in6addr_any;
		/* Oversized datagrams are cut to the buffer; MSG_TRUNC marks them. */
		if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
			p->len = sizeof(p->data);
		for (c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c)) {
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo pi;
				memcpy(&pi, CMSG_DATA(c), sizeof(pi));
				/* ipi_spec_dst is the local address a unicast request was sent to. */
				p->local = pi.ipi_spec_dst;
			} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
				struct in6_pktinfo pi6;
				memcpy(&pi6, CMSG_DATA(c), sizeof(pi6));
				p->local6 = pi6.ipi6_addr;
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
		char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))];
		struct cmsghdr align;
	} cmsg[UDP_BATCH];
	int count = 0, sent = 0, v6 = u->family == AF_INET6;

	for (int i = 0; i < n && i < UDP_BATCH; i++) {
		struct udp_packet *p = &pkts[i];
		struct cmsghdr *c;
		struct in_pktinfo pi = { .ipi_spec_dst = p->local };
		struct in6_pktinfo pi6 = { .ipi6_addr = p->local6, .ipi6_ifindex = u->ifindex };

		if (!p->reply_len)
			continue;
		iov[count] = (struct iovec){ .iov_base = p->reply, .iov_len = p->reply_len };
		msgs[count].msg_hdr = (struct msghdr){
			.msg_name = &p->peer,
			.msg_namelen = v6 ? sizeof(p->peer.v6) : sizeof(p->peer.v4),
			.msg_iov = &iov[count],
			.msg_iovlen = 1,
			.msg_control = cmsg[count].buf,
			.msg_controllen = v6 ? CMSG_SPACE(sizeof(pi6)) : CMSG_SPACE(sizeof(pi)),
		};
		c = CMSG_FIRSTHDR(&msgs[count].msg_hdr);
		c->cmsg_level = v6 ? IPPROTO_IPV6 : IPPROTO_IP;
		c->cmsg_type = v6 ? IPV6_PKTINFO : IP_PKTINFO;
		c->cmsg_len = v6 ? CMSG_LEN(sizeof(pi6)) : CMSG_LEN(sizeof(pi));
		if (v6)
			memcpy(CMSG_DATA(c), &pi6, sizeof(pi6));
		else
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

/* To all nodes on the link, [ff02::1]:5350, out of the interface; the kernel picks the link-local source. */
static int udp_announce6(struct udp_socket *u, const uint8_t *buf, size_t len)
{
	struct sockaddr_in6 to = { .sin6_family = AF_INET6, .sin6_port = htons(NATPMP_CLIENT_PORT),
				   .sin6_scope_id = u->ifindex };
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_name = &to, .msg_namelen = sizeof(to), .msg_iov = &iov, .msg_iovlen = 1 };

	to.sin6_addr.s6_addr[0] = 0xff;
	to.sin6_addr.s6_addr[1] = 0x02;
	to.sin6_addr.s6_addr[15] = 0x01;
	return sendmsg(u->fd, &msg, MSG_DONTWAIT) < 0 ? -errno : 0;
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
	if (u->family == AF_INET6)
		return udp_announce6(u, buf, len);
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
 * Looks addr (4 or 16 bytes, network order, of the socket's family) up among
 * the interface's addresses (local) or inside their prefixes (a peer).  An
 * address added since the last look is found by asking again, at most once
 * a second.
 */
static bool udp_match(struct udp_socket *u, int family, const void *addr, bool local, int64_t now)
{
	uint32_t a4 = 0;

	if (u->family != family)
		return false;
	if (family == AF_INET)
		memcpy(&a4, addr, 4);
	for (int pass = 0; pass < 2; pass++) {
		bool inside = false;
		for (int i = 0; i < u->n_subnets; i++) {
			const struct netif_addr *s4 = &u->subnets[i];
			const struct netif_addr6 *s6 = &u->subnets6[i];
			bool own = family == AF_INET ? a4 == s4->addr : memcmp(addr, s6->addr, 16) == 0;
			/* A peer is never one of the router's own addresses, whichever subnet it lies in. */
			if (own)
				return local;
			if (family == AF_INET ? ((a4 ^ s4->addr) & s4->mask) == 0 : netif_addr6_inside(s6, addr))
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

	if (!udp_match(u, AF_INET, &host.s_addr, false, now))
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
	return udp_match(u, AF_INET, &src.s_addr, false, now);
}

bool udp_local_allowed(struct udp_socket *u, struct in_addr local, int64_t now)
{
	return udp_match(u, AF_INET, &local.s_addr, true, now);
}

bool udp_source6_allowed(struct udp_socket *u, const struct in6_addr *src, int64_t now)
{
	return udp_match(u, AF_INET6, src->s6_addr, false, now);
}

bool udp_local6_allowed(struct udp_socket *u, const struct in6_addr *local, int64_t now)
{
	return udp_match(u, AF_INET6, local->s6_addr, true, now);
}
