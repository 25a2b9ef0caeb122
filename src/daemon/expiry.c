/*
 * expiry.c - the end of mappings: the expiry timer, and the conntrack
 * entries of ended mappings.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "expiry.h"
#include "install.h"
#include "persist.h"
#include "turn.h"

/* Remembers what the kernel no longer forwards, for expiry_end_flows(). */
void expiry_note_ended(struct server *s, const struct table_mapping *m)
{
	if (s->n_ended == s->ended_cap) {
		size_t cap = s->ended_cap ? s->ended_cap * 2 : 64;
		struct table_mapping *e = realloc(s->ended, cap * sizeof(*e));
		/* Out of memory: the flows end at their own conntrack timeout instead. */
		if (!e)
			return;
		s->ended = e;
		s->ended_cap = cap;
	}
	s->ended[s->n_ended++] = *m;
}

/*
 * RFC 6886 3.4: established flows through a deleted or expired mapping
 * stop too.  It costs a dump of the whole conntrack table, whatever the
 * number of mappings, so the mappings that ended within SERVER_FLOWS_DELAY_MS
 * share one: a client deleting its ports one by one, or a busy router,
 * does not pay a dump per request.
 */
void expiry_on_flows(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int r;

	(void)fd;
	(void)what;
	if (s->n_ended == 0)
		return;
	if ((r = ct_flush_mappings(s->ct, s->ended, s->n_ended)) < 0)
		log_warnx("cannot remove the conntrack entries of %zu ended mapping(s): %s", s->n_ended,
			  strerror(-r));
	else if (r > 0)
		log_debug("removed %d conntrack entr%s of %zu ended mapping(s)", r, r == 1 ? "y" : "ies",
			  s->n_ended);
	s->n_ended = 0;
}

void expiry_end_flows(struct server *s)
{
	struct timeval tv = { .tv_usec = SERVER_FLOWS_DELAY_MS * 1000 };

	if (s->n_ended && !evtimer_pending(s->flows_ev, NULL))
		evtimer_add(s->flows_ev, &tv);
}

void expiry_arm(struct server *s, int64_t now)
{
	int64_t next = table_next_expiry(s->table);
	struct timeval tv = { .tv_sec = 3600 };

	if (next != INT64_MAX)
		tv.tv_sec = next <= now ? 0 : next - now < 3600 ? next - now : 3600;
	evtimer_add(s->expiry_ev, &tv);
}

void expiry_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int64_t now = server_mono_s();

	(void)fd;
	(void)what;
	if (table_expire(s->table, now) > 0 && turn_apply(s, now, "expired") < 0) {
		/*
		 * An expired mapping stays expired: the kernel drops its element
		 * at its own timeout, so forget it rather than resurrect it.
		 */
		table_expire(s->table, now);
		turn_settle(s, "expired");
		(void)persist_compact(s, now);
		/* The kernel still holds their elements: rebuild it rather than let them linger. */
		install_schedule_repair(s, 1000);
	}
	expiry_end_flows(s);
	expiry_arm(s, now);
}
