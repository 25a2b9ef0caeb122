/*
 * expiry.h - the end of mappings: the timer that expires them (RFC 6886
 * 3.3, lifetimes in monotonic seconds), and the removal of the conntrack
 * entries of every mapping that ended (RFC 6886 3.4), batched over
 * SERVER_FLOWS_DELAY_MS.
 */
#ifndef NATPMP_DAEMON_EXPIRY_H
#define NATPMP_DAEMON_EXPIRY_H

#include "server_impl.h"

/* Re-arms the expiry timer for the table's next expiry (at most an hour ahead). */
void expiry_arm(struct server *s, int64_t now);
/* Remembers a mapping the kernel no longer forwards; its flows end at the next expiry_end_flows(). */
void expiry_note_ended(struct server *s, const struct table_mapping *m);
/* Schedules the conntrack cleanup of the mappings noted since the last. */
void expiry_end_flows(struct server *s);
/* Events (arg: the server): the expiry timer, and the conntrack cleanup. */
void expiry_on_timer(evutil_socket_t fd, short what, void *arg);
void expiry_on_flows(evutil_socket_t fd, short what, void *arg);

#endif
