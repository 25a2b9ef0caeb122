/*
 * sockdiag.h - whether the router itself uses a port, asked of the kernel.
 *
 * An external port must never be one the router listens on (ssh, a web
 * interface, WireGuard): a DNAT for it would steal the router's own service.
 * The kernel answers over NETLINK_SOCK_DIAG with a filter on the port, so
 * only the sockets on that port are copied out: a query costs tens of
 * microseconds where reading /proc/net/tcp costs milliseconds.  Only
 * sockets of the caller's network namespace are seen, which is the
 * namespace the DNAT applies to.
 *
 * sockdiag_open() returns NULL with errno set on failure;
 * sockdiag_port_in_use() returns 1 (in use), 0 (free) or -errno, and waits
 * at most a couple of seconds for the kernel.
 */
#ifndef NATPMP_SOCKDIAG_H
#define NATPMP_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>

struct sockdiag;

/* Opens the netlink socket. */
struct sockdiag *sockdiag_open(void);
void sockdiag_close(struct sockdiag *d);

/*
 * 1 when a local socket of protocol (IPPROTO_TCP: a listening socket;
 * IPPROTO_UDP: any bound socket) has local port `port` (host order) and is
 * bound to the wildcard address (0.0.0.0, or :: which may accept IPv4
 * unless IPV6_V6ONLY: :: counts either way) or to one of addrs[0..n_addrs)
 * (IPv4, network byte order; an IPv6 socket bound to ::ffff:a.b.c.d counts
 * as a.b.c.d).  A socket bound to another address, IPv4 or IPv6, does not
 * count; one tied to an interface with SO_BINDTODEVICE counts whatever the
 * interface.  -EINVAL for port 0 or a NULL addrs with n_addrs > 0,
 * -EPROTONOSUPPORT for another protocol.
 */
int sockdiag_port_in_use(struct sockdiag *d, uint8_t protocol, uint16_t port, const uint32_t *addrs,
			 size_t n_addrs);

#define SOCKDIAG_BITMAP_BYTES (65536 / 8)

/*
 * The same answer for every port at once: one dump of the protocol's
 * sockets (listening TCP, bound UDP), each port in use marked in bitmap
 * (bit port % 8 of byte port / 8).  Its cost follows the number of such
 * sockets, not of ports asked about: what a daemon checking thousands of
 * candidates a second needs.  0 or -errno.
 */
int sockdiag_ports_in_use(struct sockdiag *d, uint8_t protocol, const uint32_t *addrs, size_t n_addrs,
			  uint8_t bitmap[SOCKDIAG_BITMAP_BYTES]);

#endif
