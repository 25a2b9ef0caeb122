/*
 * outer.h - the NAT outside the router, as the daemon sees it.
 *
 * Behind a second NAT (a VPN provider's gateway, an ISP's carrier-grade
 * NAT), a local mapping is only reachable once the outer NAT forwards one
 * of its own ports to the router's local port too.  Whatever the kind of
 * outer NAT, the daemon asks the same things of it: keep (protocol, local
 * port) mapped until a time, or stop; tell me the outer port and address
 * when you have them, or that you failed; tell me when a port moves, when
 * the address changes, and when everything was lost and asked for again.
 *
 * Implementations: upstream.c asks a NAT-PMP gateway (--upstream-gateway);
 * stunkeep.c opens and keeps bindings through a full-cone carrier-grade
 * NAT itself, learning their public ports by STUN (--stun-server).
 *
 * Ports in host order, addresses in network byte order, until_s in
 * CLOCK_MONOTONIC seconds.  Functions return 0 or -errno.  A result in an
 * event is an RFC 6886 result code as the outer NAT gave it (0 success; 3
 * also when it did not answer); the daemon passes 2 and 4 on to its
 * clients and turns every other failure into 3.
 */
#ifndef NATPMP_OUTER_OUTER_H
#define NATPMP_OUTER_OUTER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What the outer NAT reports, called from the event loop (never from within an outer_* call). */
struct outer_events {
	void *arg;
	/* Its external address changed; 0: it says it has none. */
	void (*address)(void *arg, uint32_t address);
	/*
	 * What it answered for (protocol, local_port): result 0 with the outer
	 * port (a new grant, a renewal, or a move to another port), or a
	 * failure.  The callee may call outer_keep() and outer_drop().
	 */
	void (*mapped)(void *arg, uint8_t protocol, uint16_t local_port, uint16_t result, uint16_t port);
	/*
	 * After the outer NAT lost its mappings or changed its address (a
	 * reset): every mapping was asked for again, and all have answered.
	 */
	void (*remapped)(void *arg, size_t n);
};

/* How the outer NAT stands, for the log, /health and /metrics. */
struct outer_status {
	const char *kind;      /* "natpmp" (a gateway asked) or "stun" */
	const char *mapping;   /* STUN mode: RFC 4787's word for its mapping ("endpoint-independent", ...) */
	const char *filtering; /* ... and its filtering; "unknown" until told */
	bool forwarding;       /* new mappings are made through it */
	const char *why_not;   /* when not forwarding: why, in a sentence */
};

/* STUN mode's settings (config.h's --stun-* options). */
struct outer_stun_config {
	const char *ifname;		/* the external interface */
	const char *const *servers;	/* "HOST[:PORT]", tried in turn */
	size_t n_servers;
	const char *keepalive_server;	/* "HOST[:PORT]" of an HTTP server for TCP bindings; NULL: none */
	uint32_t keepalive_s;		/* seconds between keep-alives */
	bool allow_filtered;		/* map through a NAT that seems to filter, too */
};

struct outer_stats {
	uint64_t requests; /* requests sent, retransmissions not counted */
	uint64_t timeouts; /* requests never answered */
	uint64_t resets;   /* times it showed it lost its mappings */
};

/* One kind of outer NAT; impl is the implementation's own handle. */
struct outer_ops {
	int (*keep)(void *impl, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s);
	void (*drop)(void *impl, uint8_t protocol, uint16_t local_port);
	uint16_t (*granted)(const void *impl, uint8_t protocol, uint16_t local_port);
	uint32_t (*address)(const void *impl);
	size_t (*remapping)(const void *impl);
	const struct outer_stats *(*stats)(const void *impl);
	void (*recheck)(void *impl);
	bool (*owns)(const void *impl, uint8_t protocol, uint16_t port);
	void (*status)(const void *impl, struct outer_status *st);
	void (*close)(void *impl);
};

struct outer;

/* A NAT-PMP gateway (port 5351) asked through ifname (upstream.c); NULL after logging why. */
struct outer *outer_open_natpmp(struct event_base *base, uint32_t gateway, const char *ifname,
				const struct outer_events *ev);
/* STUN mode (stunkeep.c) through cfg->ifname; NULL after logging why. */
struct outer *outer_open_stun(struct event_base *base, const struct outer_stun_config *cfg,
			      const struct outer_events *ev);
/* Leaves the outer NAT's mappings as they are: they expire there, or a restart asks again. */
void outer_close(struct outer *o);

/*
 * Keeps (protocol, local_port) mapped until until_s: asks now when it is
 * not mapped yet (suggesting suggested, 0 for no wish), else renews when
 * due.  Called again at each renewal by the client, with the new end.
 */
int outer_keep(struct outer *o, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s);
/* Forgets the mapping and removes it outside, in the background. */
void outer_drop(struct outer *o, uint8_t protocol, uint16_t local_port);
/* The outer port for the mapping while its grant lasts; 0 when there is none now. */
uint16_t outer_granted(const struct outer *o, uint8_t protocol, uint16_t local_port);
/* The outer NAT's external address, 0 until it is known. */
uint32_t outer_address(const struct outer *o);
/* Mappings asked for again after a reset that have yet to be answered. */
size_t outer_remapping(const struct outer *o);
const struct outer_stats *outer_stats(const struct outer *o);
/* The external interface's address changed: look at the outer NAT again (its address, its kind). */
void outer_recheck(struct outer *o);
/* Whether a socket of the outer NAT's own holds the router's protocol port (not a service to keep clear of). */
bool outer_owns(const struct outer *o, uint8_t protocol, uint16_t port);
void outer_status(const struct outer *o, struct outer_status *st);

#endif
