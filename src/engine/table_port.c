/*
 * table_port.c - which external port a new mapping gets: the client's
 * suggestion when it is free, else the port its other protocol has, else
 * the internal port, else a random one (RFC 6886 3.3); and what "free"
 * means: allowed, not reserved, not another client's, not the router's own.
 */
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>

#include "table_impl.h"

/* Pieces of the allowed ranges that the allow rules open: at most one per (rule, allowed range). */
#define CONFIG_RULE_SPANS 4096

/*
 * A uniform random number below bound from the system's CSPRNG, drawn 256
 * words at a time: glibc 2.36's arc4random_uniform() is a getrandom()
 * system call per number (1.2 us here), and a nearly full port range takes
 * dozens of draws per new mapping.
 */
uint32_t table_default_random(uint32_t bound, void *arg)
{
	static uint32_t pool[256];
	static size_t left;
	uint32_t limit = -bound % bound; /* values below this would bias the modulo */

	(void)arg;
	for (;;) {
		if (left == 0) {
			arc4random_buf(pool, sizeof(pool));
			left = sizeof(pool) / sizeof(pool[0]);
		}
		uint32_t r = pool[--left];
		if (r >= limit)
			return r % bound;
	}
}

int table_port_allowed(const struct table *t, uint8_t protocol, uint16_t port)
{
	/* The daemon's own port and the announcement port are never forwarded. */
	if (protocol == IPPROTO_UDP && (port == TABLE_SERVER_PORT || port == TABLE_CLIENT_PORT))
		return 0;
	for (size_t i = 0; i < t->cfg.n_reserved; i++)
		if (port >= t->reserved[i].from && port <= t->reserved[i].to)
			return 0;
	for (size_t i = 0; i < t->cfg.n_allowed; i++)
		if (port >= t->allowed[i].from && port <= t->allowed[i].to)
			return 1;
	return 0;
}

int table_port_busy(const struct table *t, uint8_t protocol, uint16_t port)
{
	return t->cfg.port_busy && t->cfg.port_busy(protocol, port, t->cfg.port_busy_arg);
}

/* Whether rule r is about client's internal port (whatever its external ports). */
static bool rule_names(const struct table_rule *r, const struct table_addr *client, uint16_t internal)
{
	return table_addr_is_v4(client) && ((client->v4 ^ r->net) & r->mask) == 0 && internal >= r->internal.from &&
	       internal <= r->internal.to;
}

/*
 * The rules' verdict for client's internal port: on external (the first
 * rule naming all three decides), or, with any_external, whether some allow
 * rule names the client and internal port at all.  Once there are rules,
 * what none allows is refused; an IPv6 client matches no IPv4 rule.
 */
static bool table_rules(const struct table *t, const struct table_addr *client, uint16_t external, uint16_t internal,
			bool any_external)
{
	if (t->cfg.n_rules == 0)
		return true;
	if (!table_addr_is_v4(client))
		return false;
	for (size_t i = 0; i < t->cfg.n_rules; i++) {
		const struct table_rule *r = &t->cfg.rules[i];
		if (!rule_names(r, client, internal))
			continue;
		if (any_external) {
			if (r->allow)
				return true;
		} else if (external >= r->external.from && external <= r->external.to) {
			return r->allow;
		}
	}
	return false;
}

bool table_rules_allow(const struct table *t, const struct table_addr *client, uint16_t external, uint16_t internal)
{
	return table_rules(t, client, external, internal, false);
}

bool table_rules_permit(const struct table *t, const struct table_addr *client, uint16_t internal)
{
	return table_rules(t, client, 0, internal, true);
}

int table_port_free(const struct table *t, const struct table_addr *client, uint8_t protocol, uint16_t port,
		    uint16_t internal)
{
	uint32_t other = t->by_external[!proto_slot(protocol)][port];

	if (port == 0 || !table_port_allowed(t, protocol, port) || t->by_external[proto_slot(protocol)][port] ||
	    !table_rules_allow(t, client, port, internal))
		return 0;
	/* Another client's mapping of the other protocol keeps the port for that client. */
	if (other && !table_addr_equal(table_entry_addr(t, other), client))
		return 0;
	/* Last, as it asks the kernel: the router's own services keep their ports. */
	return !table_port_busy(t, protocol, port);
}

static uint16_t port_nth_allowed(const struct table *t, uint32_t n)
{
	for (size_t i = 0; i < t->cfg.n_allowed; i++) {
		uint32_t size = (uint32_t)t->allowed[i].to - t->allowed[i].from + 1;
		if (n < size)
			return (uint16_t)(t->allowed[i].from + n);
		n -= size;
	}
	return 0;
}

/*
 * With rules: only the ports the allow rules naming the client and internal
 * port open, inside the allowed ranges, are candidates, walked from a random
 * start (a walk of the whole range would cost milliseconds per request when
 * the rules leave a few ports).  *authorized: some candidate is one the
 * rules allow (earlier deny rules may close all of them).
 */
static uint16_t port_choose_ruled(const struct table *t, const struct table_addr *client, uint8_t protocol,
				  uint16_t internal, bool *authorized)
{
	struct port_range spans[CONFIG_RULE_SPANS];
	size_t n = 0;
	uint32_t total = 0, start;

	for (size_t i = 0; i < t->cfg.n_rules; i++) {
		const struct table_rule *r = &t->cfg.rules[i];
		if (!r->allow || !rule_names(r, client, internal))
			continue;
		for (size_t j = 0; j < t->cfg.n_allowed && n < CONFIG_RULE_SPANS; j++) {
			uint16_t from = r->external.from > t->allowed[j].from ? r->external.from : t->allowed[j].from;
			uint16_t to = r->external.to < t->allowed[j].to ? r->external.to : t->allowed[j].to;
			if (from <= to) {
				spans[n++] = (struct port_range){ from, to };
				total += (uint32_t)to - from + 1;
			}
		}
	}
	if (total == 0)
		return 0;
	start = t->cfg.random(total, t->cfg.random_arg);
	for (uint32_t k = 0; k < total; k++) {
		uint32_t at = (start + k) % total;
		uint16_t p = 0;
		for (size_t i = 0; i < n; i++) {
			uint32_t size = (uint32_t)spans[i].to - spans[i].from + 1;
			if (at < size) {
				p = (uint16_t)(spans[i].from + at);
				break;
			}
			at -= size;
		}
		if (!table_rules_allow(t, client, p, internal))
			continue;
		*authorized = true;
		if (table_port_free(t, client, protocol, p, internal))
			return p;
	}
	return 0;
}

uint16_t table_port_choose(const struct table *t, const struct table_addr *client, uint8_t protocol, uint16_t internal_port,
			    uint16_t suggested, bool *authorized)
{
	uint32_t sibling = table_entry_find(t, client, protocol == IPPROTO_TCP ? IPPROTO_UDP : IPPROTO_TCP, internal_port);
	uint16_t sibling_port = sibling ? table_entry(t, sibling)->external_port : 0;
	uint16_t wishes[3];
	size_t n = 0;

	/*
	 * Clients that compare the granted port with what they asked for get
	 * their suggestion whenever it is free; after that, the port the same
	 * internal port already has for the other protocol, then the internal
	 * port itself.
	 */
	if (sibling_port && (suggested == 0 || suggested == sibling_port))
		wishes[n++] = sibling_port;
	if (suggested)
		wishes[n++] = suggested;
	if (sibling_port && suggested && suggested != sibling_port)
		wishes[n++] = sibling_port;
	*authorized = t->cfg.n_rules == 0;
	for (size_t i = 0; i < n; i++)
		if (table_port_free(t, client, protocol, wishes[i], internal_port)) {
			*authorized = true;
			return wishes[i];
		}
	if (table_port_free(t, client, protocol, internal_port, internal_port)) {
		*authorized = true;
		return internal_port;
	}
	if (t->cfg.n_rules)
		return port_choose_ruled(t, client, protocol, internal_port, authorized);

	/*
	 * A random port, so that mappings are not predictable from outside.
	 * Random probes find a free port at once unless the range is nearly
	 * full; then a walk from a random start finds one if any is left.
	 */
	if (t->allowed_total == 0)
		return 0;
	for (int tries = 0; tries < 64; tries++) {
		uint16_t p = port_nth_allowed(t, t->cfg.random(t->allowed_total, t->cfg.random_arg));
		if (table_port_free(t, client, protocol, p, internal_port))
			return p;
	}
	uint32_t start = t->cfg.random(t->allowed_total, t->cfg.random_arg);
	for (uint32_t i = 0; i < t->allowed_total; i++) {
		uint16_t p = port_nth_allowed(t, (start + i) % t->allowed_total);
		if (table_port_free(t, client, protocol, p, internal_port))
			return p;
	}
	return 0;
}

