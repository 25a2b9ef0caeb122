/*
 * netif.c - IPv4 and IPv6 addresses of an interface, its neighbours, and news
 * of their changes.
 *
 * getifaddrs() asks the kernel over rtnetlink, which is what the daemon
 * needs here; no command is run.  An interface that is down has no usable
 * address: its addresses are not reported until it comes back up.  The
 * neighbour lookup asks the kernel for one entry of its ARP table
 * (RTM_GETNEIGH with NDA_DST, Linux 5.0 and later).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <libmnl/libmnl.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <time.h>

#include "kernel/netif.h"

const char *netif_addr_str(uint32_t addr, char buf[INET_ADDRSTRLEN])
{
	struct in_addr in = { .s_addr = addr };

	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

int netif_name_valid(const char *ifname)
{
	size_t len = strlen(ifname);

	if (len == 0 || len >= IFNAMSIZ || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (ifname[i] == '/' || ifname[i] == ':' || ifname[i] <= ' ' || ifname[i] == 0x7f)
			return 0;
	return 1;
}

/*
 * Calls fn for each address of family on ifname (its aliases, "eth0:1",
 * too) while the interface is up, until fn returns non-zero; the number of
 * calls that returned 0, or -errno (-ENODEV: no such interface).
 */
static int netif_each(const char *ifname, int family, int (*fn)(const struct ifaddrs *ifa, unsigned int ifindex, void *arg),
		      void *arg)
{
	struct ifaddrs *list, *ifa;
	unsigned int ifindex = if_nametoindex(ifname);
	size_t len = strlen(ifname);
	int n = 0;

	if (ifindex == 0)
		return -ENODEV;
	if (getifaddrs(&list) < 0)
		return -errno;
	for (ifa = list; ifa; ifa = ifa->ifa_next) {
		/* ifa_name is the address label ("eth0:1" for aliases); compare the device. */
		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != family || strncmp(ifa->ifa_name, ifname, len) != 0 ||
		    (ifa->ifa_name[len] != '\0' && ifa->ifa_name[len] != ':') || !(ifa->ifa_flags & IFF_UP))
			continue;
		if (fn(ifa, ifindex, arg) != 0)
			break;
		n++;
	}
	freeifaddrs(list);
	return n;
}

struct netif_fill {
	void *out;
	int n, max;
};

static int netif_fill4(const struct ifaddrs *ifa, unsigned int ifindex, void *arg)
{
	struct netif_fill *f = arg;
	struct netif_addr *a = (struct netif_addr *)f->out + f->n;

	if (f->n == f->max)
		return 1;
	a->addr = ((const struct sockaddr_in *)(const void *)ifa->ifa_addr)->sin_addr.s_addr;
	a->mask = ifa->ifa_netmask ? ((const struct sockaddr_in *)(const void *)ifa->ifa_netmask)->sin_addr.s_addr
				   : 0xffffffff;
	a->ifindex = ifindex;
	f->n++;
	return 0;
}

static int netif_fill6(const struct ifaddrs *ifa, unsigned int ifindex, void *arg)
{
	struct netif_fill *f = arg;
	struct netif_addr6 *a = (struct netif_addr6 *)f->out + f->n;
	const uint8_t *mask;

	if (f->n == f->max)
		return 1;
	memcpy(a->addr, &((const struct sockaddr_in6 *)(const void *)ifa->ifa_addr)->sin6_addr, 16);
	a->prefixlen = 128;
	if (ifa->ifa_netmask) {
		mask = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)ifa->ifa_netmask)->sin6_addr;
		a->prefixlen = 0;
		for (int i = 0; i < 16; i++)
			a->prefixlen += (uint8_t)__builtin_popcount(mask[i]);
	}
	a->ifindex = ifindex;
	f->n++;
	return 0;
}

int netif_ipv4_all(const char *ifname, struct netif_addr *out, int max)
{
	struct netif_fill f = { out, 0, max };

	return netif_each(ifname, AF_INET, netif_fill4, &f);
}

int netif_ipv6_all(const char *ifname, struct netif_addr6 *out, int max)
{
	struct netif_fill f = { out, 0, max };

	return netif_each(ifname, AF_INET6, netif_fill6, &f);
}

int netif_addr6_inside(const struct netif_addr6 *a, const uint8_t addr[16])
{
	int full = a->prefixlen / 8, rest = a->prefixlen % 8;

	if (memcmp(a->addr, addr, (size_t)full) != 0)
		return 0;
	return rest == 0 || ((a->addr[full] ^ addr[full]) & (0xff << (8 - rest))) == 0;
}

struct netif_watch {
	struct mnl_socket *nl;
};

/* A bound rtnetlink socket, in groups (0: none) for notifications; NULL with errno set. */
static struct mnl_socket *rtnl_open(int flags, unsigned int groups)
{
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, flags | SOCK_CLOEXEC);

	if (nl && mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
		int err = errno;
		mnl_socket_close(nl);
		errno = err;
		return NULL;
	}
	return nl;
}

struct netif_watch *netif_watch_open(void)
{
	struct netif_watch *w = calloc(1, sizeof(*w));

	if (w && !(w->nl = rtnl_open(SOCK_NONBLOCK, RTMGRP_LINK | RTMGRP_IPV4_IFADDR))) {
		int err = errno;
		free(w);
		errno = err;
		return NULL;
	}
	return w;
}

void netif_watch_close(struct netif_watch *w)
{
	if (!w)
		return;
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
}

int netif_watch_fd(const struct netif_watch *w)
{
	return mnl_socket_get_fd(w->nl);
}

int netif_drain(struct mnl_socket *nl, char *buf, size_t len, int (*fn)(const struct nlmsghdr *nlh, void *arg),
		void *arg)
{
	int any = 0;

	for (;;) {
		ssize_t n = mnl_socket_recvfrom(nl, buf, len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return any;
			if (errno == EINTR)
				continue;
			if (errno == ENOBUFS) {
				any = 1;
				continue;
			}
			return -errno;
		}
		int left = (int)n; /* what is left of this read, as libmnl counts it */
		for (const struct nlmsghdr *nlh = (const struct nlmsghdr *)buf; mnl_nlmsg_ok(nlh, left);
		     nlh = mnl_nlmsg_next(nlh, &left))
			any |= fn(nlh, arg) != 0;
	}
}

static int link_or_address(const struct nlmsghdr *nlh, void *arg)
{
	(void)arg;
	return nlh->nlmsg_type == RTM_NEWADDR || nlh->nlmsg_type == RTM_DELADDR || nlh->nlmsg_type == RTM_NEWLINK ||
	       nlh->nlmsg_type == RTM_DELLINK;
}

int netif_watch_read(struct netif_watch *w)
{
	char buf[8192];

	return netif_drain(w->nl, buf, sizeof(buf), link_or_address, NULL);
}

/* --- who sent it, at the link layer --- */

/*
 * Resolved answers, remembered for NEIGH_CACHE_MS: a client sending a burst
 * of requests costs one netlink round trip a second, not one each (a
 * tenth of the daemon's time under a pipelined load).  Only resolved
 * entries are kept: an address the kernel cannot resolve yet is asked
 * again each time, so a host is counted under its own link-layer address
 * as soon as the kernel knows it.
 */
#define NEIGH_CACHE 256
#define NEIGH_CACHE_MS 1000

struct neigh_cached {
	int64_t at_ms; /* 0: empty */
	unsigned int ifindex;
	uint8_t family;
	uint8_t addr[16];
	uint64_t lladdr;
};

struct netif_neigh {
	struct mnl_socket *nl;
	uint32_t seq;
	struct neigh_cached cache[NEIGH_CACHE];
};

static int64_t neigh_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 1;
}

static struct neigh_cached *neigh_slot(struct netif_neigh *n, unsigned int ifindex, const uint8_t *addr,
				       size_t addr_len)
{
	uint32_t h = ifindex * 2654435761u;

	for (size_t i = 0; i < addr_len; i++)
		h = (h ^ addr[i]) * 16777619u;
	return &n->cache[(h >> 8) % NEIGH_CACHE];
}

struct netif_neigh *netif_neigh_open(void)
{
	struct netif_neigh *n = calloc(1, sizeof(*n));

	if (n && !(n->nl = rtnl_open(0, 0))) {
		int err = errno;
		free(n);
		errno = err;
		return NULL;
	}
	if (n)
		n->seq = (uint32_t)time(NULL);
	return n;
}

void netif_neigh_close(struct netif_neigh *n)
{
	if (!n)
		return;
	if (n->nl)
		mnl_socket_close(n->nl);
	free(n);
}

struct neigh_answer {
	uint64_t lladdr;
	int found;
};

static int neigh_attr(const struct nlattr *a, void *arg)
{
	struct neigh_answer *ans = arg;
	const uint8_t *mac;

	if (mnl_attr_get_type(a) != NDA_LLADDR || mnl_attr_get_payload_len(a) != 6)
		return MNL_CB_OK;
	mac = mnl_attr_get_payload(a);
	ans->lladdr = 0;
	for (int i = 0; i < 6; i++)
		ans->lladdr = ans->lladdr << 8 | mac[i];
	ans->found = 1;
	return MNL_CB_OK;
}

static int neigh_entry(const struct nlmsghdr *nlh, void *arg)
{
	const struct ndmsg *nd = mnl_nlmsg_get_payload(nlh);

	/* Only an entry the kernel has resolved names a sender: not INCOMPLETE, FAILED or NONE. */
	if (nlh->nlmsg_type != RTM_NEWNEIGH ||
	    !(nd->ndm_state & (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT)))
		return MNL_CB_OK;
	return mnl_attr_parse(nlh, sizeof(*nd), neigh_attr, arg);
}

/* One neighbour entry of family (AF_INET, AF_INET6) for addr (len bytes). */
static int netif_neighbour_of(struct netif_neigh *n, unsigned int ifindex, uint8_t family, const void *addr,
			      size_t addr_len, uint64_t *lladdr)
{
	char buf[8192];
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct neigh_answer ans = { 0 };
	struct ndmsg *nd;
	uint32_t seq = ++n->seq;
	ssize_t len;
	int r;

	struct neigh_cached *c = neigh_slot(n, ifindex, addr, addr_len);
	int64_t now = neigh_now_ms();

	if (c->at_ms && now - c->at_ms < NEIGH_CACHE_MS && c->ifindex == ifindex && c->family == family &&
	    memcmp(c->addr, addr, addr_len) == 0) {
		*lladdr = c->lladdr;
		return 0;
	}
	nlh->nlmsg_type = RTM_GETNEIGH;
	nlh->nlmsg_flags = NLM_F_REQUEST;
	nlh->nlmsg_seq = seq;
	nd = mnl_nlmsg_put_extra_header(nlh, sizeof(*nd));
	nd->ndm_family = family;
	nd->ndm_ifindex = (int)ifindex;
	mnl_attr_put(nlh, NDA_DST, addr_len, addr);
	if (mnl_socket_sendto(n->nl, nlh, nlh->nlmsg_len) < 0)
		return -errno;
	/* One entry, or an error (ENOENT: the kernel has none). */
	if ((len = mnl_socket_recvfrom(n->nl, buf, sizeof(buf))) < 0)
		return -errno;
	r = mnl_cb_run(buf, (size_t)len, seq, mnl_socket_get_portid(n->nl), neigh_entry, &ans);
	if (r < 0)
		return errno == ENOENT ? -ENOENT : -errno;
	if (!ans.found)
		return -ENOENT;
	*lladdr = ans.lladdr;
	*c = (struct neigh_cached){ .at_ms = now, .ifindex = ifindex, .family = family, .lladdr = ans.lladdr };
	memcpy(c->addr, addr, addr_len);
	return 0;
}

int netif_neighbour(struct netif_neigh *n, unsigned int ifindex, uint32_t addr, uint64_t *lladdr)
{
	return netif_neighbour_of(n, ifindex, AF_INET, &addr, sizeof(addr), lladdr);
}

int netif_neighbour6(struct netif_neigh *n, unsigned int ifindex, const uint8_t addr[16], uint64_t *lladdr)
{
	return netif_neighbour_of(n, ifindex, AF_INET6, addr, 16, lladdr);
}
