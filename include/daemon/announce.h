/*
 * announce.h - the schedule of RFC 6886 3.2.1's announcements: ten
 * gratuitous address replies, the first at once, then 250 ms apart,
 * doubling each time (about 64 s in all).  The caller's send function
 * builds and sends one round with the values of the moment, so every
 * datagram carries the current address and epoch.
 *
 * announce_restart() begins a new series; called during one, it starts
 * over, as a new change must be announced ten times too.
 */
#ifndef NATPMP_ANNOUNCE_H
#define NATPMP_ANNOUNCE_H

#include <event2/event.h>

#define ANNOUNCE_COUNT 10
#define ANNOUNCE_FIRST_INTERVAL_MS 250

struct announce;

/* NULL when out of memory. */
struct announce *announce_new(struct event_base *base, void (*send)(void *arg), void *arg);
void announce_restart(struct announce *a);
/* Stops the current series, if any. */
void announce_stop(struct announce *a);
void announce_free(struct announce *a);

#endif
