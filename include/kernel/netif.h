/*
 * netif.h - interface facts the daemon needs: the IPv4 and IPv6 addresses and
 * prefixes of an interface, its neighbours, and news of their changes.  Functions return a count or
 * 0 on success, -errno on failure (-ENODEV: no such interface).
 */
#ifndef NATPMP_NETIF_H
#define NATPMP_NETIF_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

struct netif_addr {
	uint32_t addr; /* network byte order */
	uint32_t mask; /* network byte order */
	unsigned int ifindex;
};

/* Every IPv4 address of the interface, at most max; returns the count or -errno. */
int netif_ipv4_all(const char *ifname, struct netif_addr *out, int max);

struct netif_addr6 {
	uint8_t addr[16];
	uint8_t prefixlen; /* the on-link prefix: 64 for fe80::/64 and SLAAC */
	unsigned int ifindex;
};

/* Every IPv6 address of the interface (link-local included), at most max; the count or -errno. */
int netif_ipv6_all(const char *ifname, struct netif_addr6 *out, int max);
/* Whether addr lies inside a's prefix. */
int netif_addr6_inside(const struct netif_addr6 *a, const uint8_t addr[16]);
/* addr (network byte order) in dotted form, written to buf; returns buf. */
const char *netif_addr_str(uint32_t addr, char buf[INET_ADDRSTRLEN]);
/* A name the kernel could accept: 1-15 bytes, no '/', ':' or white space. */
int netif_name_valid(const char *ifname);

/*
 * Watching links and IPv4 addresses over rtnetlink.  The watcher only says
 * that something may have changed; the caller asks again with netif_ipv4_all(),
 * which also covers an interface deleted and recreated under the same name
 * (a PPPoE redial) whatever its new index.
 */
struct netif_watch;

/* NULL with errno set. */
struct netif_watch *netif_watch_open(void);
void netif_watch_close(struct netif_watch *w);
int netif_watch_fd(const struct netif_watch *w);
/* Drains the socket; 1 when a link or address event (or a lost one) came, 0 when none, -errno. */
int netif_watch_read(struct netif_watch *w);

/*
 * Who sent a datagram at the link layer: the kernel's neighbour (ARP) entry
 * for a LAN address.  A claimed source address says nothing about who sent
 * it; its resolved link-layer address says which host the router talks to
 * at that address.
 */
struct netif_neigh;

/* NULL with errno set. */
struct netif_neigh *netif_neigh_open(void);
void netif_neigh_close(struct netif_neigh *n);
/*
 * The link-layer address the kernel has resolved for addr (network byte
 * order) on interface ifindex, its six bytes in the low 48 bits of *lladdr:
 * 0, or -ENOENT when it has none that is resolved (never asked, INCOMPLETE,
 * FAILED), or -errno.  One netlink round trip, unless the same address was
 * resolved less than a second before: that answer is given again.
 */
int netif_neighbour(struct netif_neigh *n, unsigned int ifindex, uint32_t addr, uint64_t *lladdr);
/* The same for an IPv6 neighbour (the kernel's NDP table); addr is 16 bytes. */
int netif_neighbour6(struct netif_neigh *n, unsigned int ifindex, const uint8_t addr[16], uint64_t *lladdr);

/*
 * What every notification socket's reader does (this one's and nftmon's):
 * reads all that waits on a non-blocking netlink socket into buf, calling
 * fn for each message; 1 when fn returned non-zero for one or notifications
 * were lost (ENOBUFS: whatever they said, look again), 0 when neither,
 * -errno when reading failed.
 */
struct mnl_socket;
struct nlmsghdr;
int netif_drain(struct mnl_socket *nl, char *buf, size_t len, int (*fn)(const struct nlmsghdr *nlh, void *arg),
		void *arg);

#endif
