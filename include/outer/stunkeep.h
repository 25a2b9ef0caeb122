/*
 * stunkeep.h - STUN mode: one kind of outer NAT (outer/outer.h), a
 * carrier-grade NAT that maps and filters independently of the endpoint
 * ("full cone"), kept open from the router the way natmap does it.
 *
 * For each local mapping (protocol, local port) the router opens the outer
 * NAT's binding itself, from the local port, and learns the public port
 * the outer NAT gave it by asking a STUN server (RFC 8489 Binding) from
 * that same port.  Through an endpoint-independent NAT every peer on the
 * Internet then reaches the public port, and with it the local forward to
 * the client.  The binding is kept alive every keepalive_s seconds:
 *
 * - UDP: a Binding request from the local port, which also shows a public
 *   port that changed (the outer NAT restarted or dropped the binding);
 * - TCP: the port is learnt over a short connection from the local port
 *   to the STUN server (servers close those within seconds: coturn after
 *   3 s).  With keepalive_server, a second connection from the port to
 *   that HTTP server stays open, sent a HEAD request each time (natmap's
 *   way), and the port is learnt again when it breaks.  Without one, a new
 *   STUN connection each time is all that keeps the binding: enough only
 *   for an outer NAT that keeps a TCP mapping between connections.
 *
 * The public address and the NAT's behaviour come from stunprobe.c (RFC
 * 5780).  Behind a NAT whose mapping or filtering depends on the
 * destination, peers cannot reach the port STUN reports: new mappings then
 * fail with result 3 unless allow_filtered is set.
 *
 * Ports in host order, addresses in network byte order.  Functions return
 * 0 or -errno.
 */
#ifndef NATPMP_OUTER_STUNKEEP_H
#define NATPMP_OUTER_STUNKEEP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outer/outer.h"

struct stunkeep;

/* NULL after logging why. */
struct stunkeep *stunkeep_open(struct event_base *base, const struct outer_stun_config *cfg,
			       const struct outer_events *ev);
/* Closes every binding: they lapse in the outer NAT. */
void stunkeep_close(struct stunkeep *k);

/* What outer/outer.h's functions of the same names do, for STUN mode. */
int stunkeep_keep(struct stunkeep *k, uint8_t protocol, uint16_t local_port, int64_t until_s);
void stunkeep_drop(struct stunkeep *k, uint8_t protocol, uint16_t local_port);
uint16_t stunkeep_granted(const struct stunkeep *k, uint8_t protocol, uint16_t local_port);
uint32_t stunkeep_address(const struct stunkeep *k);
const struct outer_stats *stunkeep_stats(const struct stunkeep *k);
void stunkeep_recheck(struct stunkeep *k);
bool stunkeep_owns(const struct stunkeep *k, uint8_t protocol, uint16_t port);
void stunkeep_status(const struct stunkeep *k, struct outer_status *st);

#endif
