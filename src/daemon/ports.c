/*
 * ports.c - the router's own ports: never handed out, and mappings moved off
 * them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "ports.h"
#include "expiry.h"
#include "turn.h"

/*
 * The table's port_busy: whether the router itself uses the port.  The
 * kernel is asked for all of the router's sockets in one sock_diag dump per
 * protocol, at most once a second, and each candidate is a bit lookup: a
 * restart restoring 60,000 mappings, or thousands of new ones a second,
 * cost a dump, not a query each.  A service started less than a second
 * before a request may thus lose its port to it.
 */
int ports_busy(uint8_t protocol, uint16_t port, void *arg)
{
	struct server *s = arg;
	int64_t now_ms = server_mono_ms();
	int r = 0;

	if (!s->busy_valid || now_ms - s->busy_at_ms >= 1000) {
		if ((r = sockdiag_ports_in_use(s->sockdiag, IPPROTO_UDP, s->external, s->n_external, s->busy[0])) == 0)
			r = sockdiag_ports_in_use(s->sockdiag, IPPROTO_TCP, s->external, s->n_external, s->busy[1]);
		s->busy_valid = r == 0;
		s->busy_at_ms = now_ms;
	}
	if (r < 0) {
		if (!s->sockdiag_failed++)
			log_warnx("cannot ask the kernel which ports the router uses: %s; ports are handed out "
				  "without asking until it answers",
				  strerror(-r));
		return 0;
	}
	if (!s->busy_valid)
		return 0;
	/* STUN mode's own socket on a mapping's local port keeps the outer binding: not a service. */
	return (s->busy[protocol == IPPROTO_TCP][port / 8] >> (port % 8)) & 1 &&
	       !(s->outer && outer_owns(s->outer, protocol, port));
}

struct shadowed {
	struct server *s;
	struct table_mapping *m;
	size_t n, cap;
};

static int shadowed_one(const struct table_mapping *m, void *arg)
{
	struct shadowed *sh = arg;

	/* A pinhole opens the client's own port, not the router's: nothing to move. */
	if (!table_addr_is_v4(&m->client) || !ports_busy(m->protocol, m->external_port, sh->s))
		return 0;
	if (sh->n == sh->cap) {
		size_t cap = sh->cap ? 2 * sh->cap : 16;
		struct table_mapping *more = realloc(sh->m, cap * sizeof(*more));
		if (!more)
			return -ENOMEM;
		sh->m = more;
		sh->cap = cap;
	}
	sh->m[sh->n++] = *m;
	return 0;
}

/*
 * A mapping made before a router service started listening on its port
 * would shadow that service for as long as its client renews: it moves to
 * a new port now, as a renewal would move it (the client hears the new port
 * at its next renewal, the hook at once, as "renewed").
 */
void ports_on_check(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct shadowed sh = { .s = s };
	int64_t now = server_mono_s();
	char client[TABLE_ADDR_STRLEN];

	(void)fd;
	(void)what;
	s->busy_valid = 0; /* a fresh dump, whatever the last request read */
	if (table_foreach(s->table, shadowed_one, &sh) < 0 || sh.n == 0) {
		free(sh.m);
		return;
	}
	for (size_t i = 0; i < sh.n; i++) {
		const struct table_mapping *m = &sh.m[i];
		int64_t left = m->expires - now;
		struct table_asker owner = table_owner_of(m);
		struct table_grant g;

		log_warnx("the router now uses %s %u itself: moving the mapping of %s:%u off it",
			  proto_protocol_name(m->protocol), m->external_port, table_addr_str(&m->client, client),
			  m->internal_port);
		(void)table_request_by(s->table, m->client, &owner, m->protocol, m->internal_port, 0,
				       left > 0 ? (uint32_t)left : 1, now, &g, TABLE_LINK_NONE);
	}
	free(sh.m);
	(void)turn_apply(s, now, "moved");
	expiry_end_flows(s);
	expiry_arm(s, now);
}
