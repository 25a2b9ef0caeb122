/*
 * waiting.h - answers that wait for the outer NAT (upstream mode): a map
 * request granted locally is answered once the outer NAT has mapped its
 * local port, with the outer port; what the outer NAT reports (grants,
 * moves, refusals, a new address, a reset) is carried into the table, the
 * state file, the hook and the waiting clients.  Ports in host order.
 */
#ifndef NATPMP_DAEMON_WAITING_H
#define NATPMP_DAEMON_WAITING_H

#include "server_impl.h"

/* Remembers what a client suggested for the mapping granted on local_port this turn, for the outer NAT. */
void waiting_wish_add(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t suggested);
/* A settled change of the table, told to the outer NAT (moved: a renewal that moved ports). */
void waiting_follow(struct server *s, const struct table_change *ch, int moved, const char *why);
/* Whether another request may wait on client's behalf (SERVER_MAX_PENDING*). */
int waiting_may_wait(const struct server *s, uint32_t client);
/* q (allocated by the caller, owned from now on) waits for its mapping's answer. */
void waiting_add(struct server *s, struct server_pending *q);
/* A NAT-PMP request r, granted locally, waits; its retransmissions are one waiter. */
void waiting_defer(struct server *s, struct server_listener *l, const struct udp_packet *p,
		   const struct server_request *r);
/* Forgets the waiters: the UDP ones unanswered (they ask again), the HTTP ones answered 503. */
void waiting_flush(struct server *s, int udp, int http);
/* Asks the outer NAT for a restored mapping (table_foreach's callback; arg: the server). */
int waiting_keep_one(const struct table_mapping *m, void *arg);
/* The outer NAT's events (outer/outer.h's struct outer_events; arg: the server). */
void waiting_on_address(void *arg, uint32_t address);
void waiting_on_mapped(void *arg, uint8_t protocol, uint16_t local_port, uint16_t result, uint16_t port);
void waiting_on_remapped(void *arg, size_t n);

#endif
