/*
 * upstream.h - upstream mode: the daemon as a NAT-PMP client of a gateway,
 * one kind of outer NAT (outer/outer.h, through which the daemon uses it).
 *
 * Behind a second NAT that speaks NAT-PMP (a VPN provider's gateway, an ISP
 * router), a port the router forwards is only reachable once the gateway
 * forwards one of its own external ports to the router too.  This layer
 * keeps, for each local mapping (protocol, local port), a mapping at the
 * gateway for as long as the server says, renewing it at half of each grant
 * whatever lifetime the gateway caps grants at, and asks again for
 * everything when the gateway's epoch shows it lost its mappings or its
 * external address changes.  It listens for the gateway's announcements
 * (RFC 6886 3.2.1) on 224.0.0.1:5350 of the interface, so that it hears of
 * either at once.
 *
 * Requests go out one at a time (RFC 6886 3.1 asks clients not to flood a
 * small gateway), those a client waits for ahead of renewals and deletes.
 * Each is sent again after 250 ms, doubling, UPSTREAM_TRIES times in all;
 * when the gateway stays silent through that, it is taken to be down and
 * every queued request fails with it, so that no answer waits longer than
 * that schedule.  What a request came to is reported through struct
 * outer_events; a mapping whose renewal failed is tried again every
 * UPSTREAM_RETRY_MS until the server drops it.
 *
 * Ports in host order, addresses in network byte order, times in the
 * monotonic clock.  Functions return 0 or -errno.
 */
#ifndef NATPMP_UPSTREAM_H
#define NATPMP_UPSTREAM_H

#include <event2/event.h>
#include <stddef.h>
#include <stdint.h>

#include "outer/outer.h"

/* 250 + 500 + 1000 + 2000 ms: a gateway that answers nothing within 3.75 s is down. */
#define UPSTREAM_TRIES 4
#define UPSTREAM_FIRST_WAIT_MS 250
/* A failed renewal, or a failed address request, is tried again after this. */
#define UPSTREAM_RETRY_MS 5000
/* The gateway's external address is asked for again this often, to notice a change. */
#define UPSTREAM_ADDRESS_REFRESH_MS 60000

struct upstream;

/* Asks gateway (port 5351) through ifname; NULL after logging why. */
struct upstream *upstream_open(struct event_base *base, uint32_t gateway, const char *ifname,
			       const struct outer_events *ev);
/* Leaves the gateway's mappings as they are: they expire there, or a restart asks for them again. */
void upstream_close(struct upstream *u);

/*
 * What outer/outer.h's outer_keep(), outer_drop(), outer_granted(),
 * outer_address(), outer_remapping() and outer_stats() do, at a NAT-PMP
 * gateway: a mapping not granted yet is asked for ahead of the background
 * work (renewals, deletes), and a delete is sent in the background.
 */
int upstream_keep(struct upstream *u, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s);
void upstream_drop(struct upstream *u, uint8_t protocol, uint16_t local_port);
uint16_t upstream_granted(const struct upstream *u, uint8_t protocol, uint16_t local_port);
uint32_t upstream_address(const struct upstream *u);
size_t upstream_remapping(const struct upstream *u);
const struct outer_stats *upstream_stats(const struct upstream *u);

#endif
