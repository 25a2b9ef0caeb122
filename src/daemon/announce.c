/*
 * announce.c - ten announcements, 250 ms apart and doubling.
 */
#include <stdlib.h>

#include "daemon/announce.h"

struct announce {
	struct event *ev;
	unsigned int sent;	/* in the current series */
	unsigned int interval;	/* ms until the next one */
	void (*send)(void *arg);
	void *arg;
};

static void announce_arm(struct announce *a, unsigned int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	evtimer_add(a->ev, &tv);
}

static void announce_fire(evutil_socket_t fd, short what, void *arg)
{
	struct announce *a = arg;

	(void)fd;
	(void)what;
	a->send(a->arg);
	if (++a->sent < ANNOUNCE_COUNT) {
		announce_arm(a, a->interval);
		a->interval *= 2;
	}
}

struct announce *announce_new(struct event_base *base, void (*send)(void *arg), void *arg)
{
	struct announce *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->send = send;
	a->arg = arg;
	if (!(a->ev = evtimer_new(base, announce_fire, a))) {
		free(a);
		return NULL;
	}
	return a;
}

void announce_restart(struct announce *a)
{
	a->sent = 0;
	a->interval = ANNOUNCE_FIRST_INTERVAL_MS;
	/* The first one leaves from the event loop at once, not from inside the caller. */
	announce_arm(a, 0);
}

void announce_stop(struct announce *a)
{
	evtimer_del(a->ev);
	a->sent = ANNOUNCE_COUNT;
}

void announce_free(struct announce *a)
{
	if (!a)
		return;
	event_free(a->ev);
	free(a);
}
