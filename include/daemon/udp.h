/*
 * udp.h - the NAT-PMP and PCP sockets: two per listen interface, IPv4 and
 * IPv6 (IPv6 only carries PCP).
 *
 * Each socket is bound to its interface (SO_BINDTODEVICE), so the kernel
 * never hands it a datagram that arrived on another interface, in
 * particular the external one.  IP_PKTINFO (IPV6_PKTINFO) tells which local
 * address a request was sent to; the reply leaves from exactly that
 * address, because libnatpmp and libtorrent drop replies from any other
 * source.
 * Functions return a count or 0 on success, -errno on failure.
 */
#ifndef NATPMP_UDP_H
#define NATPMP_UDP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel/netif.h"
#include "wire/codec.h"

#define UDP_BATCH 64
#define UDP_RCVBUF (4 * 1024 * 1024)
#define UDP_MAX_SUBNETS 16

/* A peer's address, either family (sa.sa_family says which). */
union udp_addr {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

struct udp_packet {
	union udp_addr peer;	/* the client: replies go back to its address and port */
	struct in_addr local;	/* IPv4: where the request was sent; replies come from there */
	struct in6_addr local6; /* IPv6: the same */
	size_t len;
	size_t reply_len;	 /* 0: no reply */
	uint8_t data[CODEC_MAX_REQUEST]; /* a larger datagram is cut to this, and seen as too large */
	uint8_t reply[CODEC_MAX_REPLY];
};

struct udp_socket {
	int fd;
	int family; /* AF_INET or AF_INET6 */
	char ifname[16];
	unsigned int ifindex; /* of the interface when the socket was bound to it */
	struct netif_addr subnets[UDP_MAX_SUBNETS];	/* AF_INET */
	struct netif_addr6 subnets6[UDP_MAX_SUBNETS]; /* AF_INET6: on-link prefixes, link-local too */
	int n_subnets;
	int64_t refreshed; /* monotonic seconds of the last subnet refresh */
};

/* A socket of family (AF_INET, AF_INET6) on ifname's port; 0 or -errno (-ENODEV: no such interface). */
int udp_open(struct udp_socket *u, const char *ifname, uint16_t port, int family);
void udp_close(struct udp_socket *u);
/* Receives up to max datagrams without blocking; returns how many (0 when none). */
int udp_recv(struct udp_socket *u, struct udp_packet *pkts, int max);
/* Sends every packet's reply (those with reply_len > 0); returns how many were sent. */
int udp_send(struct udp_socket *u, struct udp_packet *pkts, int n);
/*
 * Sends len bytes to 224.0.0.1:5350 (RFC 6886 3.2.1) out of the socket's
 * interface, from its first IPv4 address and the listen port, or on an IPv6
 * socket to [ff02::1]:5350 (RFC 6887 8.5); -EADDRNOTAVAIL when the
 * interface has no address of the socket's family.
 */
int udp_announce(struct udp_socket *u, const uint8_t *buf, size_t len, int64_t now);
/*
 * True when host could be a LAN host of the interface: inside one of its
 * subnets, not one of its addresses, not a network or broadcast address.
 * For mappings made on a host's behalf (the HTTP API).
 */
bool udp_host_allowed(struct udp_socket *u, struct in_addr host, int64_t now);
/* True when src lies inside one of the interface's IPv4 subnets (RFC 6886 3: LAN clients only). */
bool udp_source_allowed(struct udp_socket *u, struct in_addr src, int64_t now);
/* The same for IPv6: src on one of the interface's on-link prefixes, not one of its addresses. */
bool udp_source6_allowed(struct udp_socket *u, const struct in6_addr *src, int64_t now);
/* True when an IPv6 request was sent to one of the interface's own addresses. */
bool udp_local6_allowed(struct udp_socket *u, const struct in6_addr *local, int64_t now);
/*
 * True when a request was sent to one of the interface's own addresses:
 * RFC 6886 3.3 forbids accepting one sent to the external address, which a
 * LAN host can reach through the LAN interface too.
 */
bool udp_local_allowed(struct udp_socket *u, struct in_addr local, int64_t now);

#endif
