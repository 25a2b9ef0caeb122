/*
 * netif.h - interface facts the daemon needs: the IPv4 address and prefix of
 * an interface.  Returns 0, -ENODEV when there is no such interface, or
 * -EADDRNOTAVAIL when it has no IPv4 address.
 */
#ifndef NATPMP_NETIF_H
#define NATPMP_NETIF_H

#include <stdint.h>

struct netif_addr {
	uint32_t addr; /* network byte order */
	uint32_t mask; /* network byte order */
	unsigned int ifindex;
};

int netif_ipv4(const char *ifname, struct netif_addr *out);
/* Every IPv4 address of the interface, at most max; returns the count or -errno. */
int netif_ipv4_all(const char *ifname, struct netif_addr *out, int max);
/* A name the kernel could accept: 1-15 bytes, no '/', ':' or white space. */
int netif_name_valid(const char *ifname);

#endif
