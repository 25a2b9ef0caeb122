/*
 * hook.h - --hook: a program run on every mapping change, like natmap's
 * notify script, with the arguments
 *
 *   EVENT PROTOCOL INTERNAL_ADDRESS INTERNAL_PORT EXTERNAL_ADDRESS EXTERNAL_PORT LIFETIME
 *
 * EVENT is added, renewed (only when the external port changed: a reload
 * took the old one out of the allowed ranges), deleted or expired; LIFETIME is the granted lifetime in seconds, 0 once gone.
 * The same, and what natmap's scripts take, are in the environment too:
 * NATPMP_EVENT, NATPMP_PROTOCOL (tcp, udp), NATPMP_INTERNAL_ADDRESS,
 * NATPMP_INTERNAL_PORT, NATPMP_PUBLIC_ADDRESS, NATPMP_PUBLIC_PORT,
 * NATPMP_LOCAL_PORT (the router's port) and NATPMP_IP4P (natmap's form of
 * the public address and port, 2001::PORT:A.B-hex:C.D-hex; empty for IPv6).
 * Runs are queued and start one at a time, in order, so a script sees a
 * port's "added" before its "deleted".  The program is executed directly
 * (no shell), in its own process group, with stdin from /dev/null and the
 * daemon's environment minus NATPMP_TOKEN; one still running after the
 * timeout is killed with its group.  A failing hook is logged and counted,
 * never fatal, and the event loop never waits for it.
 */
#ifndef NATPMP_HOOK_H
#define NATPMP_HOOK_H

#include <event2/event.h>
#include <stdint.h>

#include "daemon/config.h"
#include "daemon/metrics.h"

#define HOOK_QUEUE 1024

struct hook_event {
	const char *event; /* a string literal: "added", "renewed", "deleted", "expired" */
	uint8_t protocol;
	struct table_addr client;
	uint16_t internal_port;
	/* IPv4: the router's public address (0.0.0.0 when none is known); a pinhole: the client's own */
	struct table_addr external_address;
	uint16_t external_port;
	uint16_t local_port; /* the router's own port the forward matches (behind an outer NAT: not external_port) */
	uint32_t lifetime;
};

struct hook;

/*
 * NULL when out of memory.  Each run takes cfg->hook and cfg->hook_timeout
 * as they are when it starts; outcomes are counted in m->hooks.
 */
struct hook *hook_new(struct event_base *base, const struct config *cfg, struct metrics *m);
/* Queues a run; a full queue drops it, logged and counted. */
void hook_run(struct hook *h, const struct hook_event *ev);
/* Kills a run still going and forgets the queue. */
void hook_free(struct hook *h);

#endif
