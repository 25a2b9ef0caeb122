/*
 * table.c - the mapping table.
 *
 * Indexes, each O(1) per operation so that the cost of a request does not
 * grow with the number of mappings:
 *   - a hash of (client, protocol, internal port) -> mapping;
 *   - per protocol, an array indexed by external port -> mapping;
 *   - a hash of clients, each with its count and list of mappings (limits,
 *     delete-all);
 *   - a binary min-heap on expiry time.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "table_impl.h"

static uint64_t mix64(uint64_t x)
{
	/* A 64-bit finaliser: spreads neighbouring ports and addresses apart. */
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* An IPv4 address as itself, an IPv6 one folded into 64 bits. */
static uint64_t addr_bits(const struct table_addr *a)
{
	uint64_t hi, lo;

	if (table_addr_is_v4(a))
		return a->v4;
	memcpy(&hi, a->v6, 8);
	memcpy(&lo, a->v6 + 8, 8);
	return mix64(hi) ^ lo;
}

static size_t addr_hash(const struct table_addr *a)
{
	return (size_t)mix64(addr_bits(a));
}

static size_t key_hash(const struct table_addr *client, uint8_t protocol, uint16_t port)
{
	uint64_t rest = (uint64_t)protocol << 16 | port;

	/* An IPv4 key fits one word as it is; an IPv6 one keeps all of its folded bits. */
	if (table_addr_is_v4(client))
		return (size_t)mix64((uint64_t)client->v4 << 32 | rest);
	return (size_t)mix64(addr_bits(client) ^ mix64(rest));
}

const char *table_addr_str(const struct table_addr *a, char buf[TABLE_ADDR_STRLEN])
{
	if (table_addr_is_v4(a))
		return inet_ntop(AF_INET, &a->v4, buf, TABLE_ADDR_STRLEN);
	return inet_ntop(AF_INET6, a->v6, buf, TABLE_ADDR_STRLEN);
}


/* --- clients --- */

static struct client *client_find(const struct table *t, const struct table_addr *addr)
{
	struct client *c = t->clients[addr_hash(addr) & (t->n_client_buckets - 1)];

	while (c && !table_addr_equal(&c->addr, addr))
		c = c->next;
	return c;
}

static int client_grow(struct table *t)
{
	size_t n = t->n_client_buckets * 2;
	struct client **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_client_buckets; i++) {
		struct client *c = t->clients[i], *next;
		for (; c; c = next) {
			next = c->next;
			size_t slot = addr_hash(&c->addr) & (n - 1);
			c->next = b[slot];
			b[slot] = c;
		}
	}
	free(t->clients);
	t->clients = b;
	t->n_client_buckets = n;
	return 0;
}

static struct client *client_get(struct table *t, const struct table_addr *addr)
{
	struct client *c = client_find(t, addr);

	if (c)
		return c;
	if (t->n_clients >= t->n_client_buckets && client_grow(t) < 0)
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->addr = *addr;
	size_t slot = addr_hash(addr) & (t->n_client_buckets - 1);
	c->next = t->clients[slot];
	t->clients[slot] = c;
	t->n_clients++;
	return c;
}

static void client_drop_if_empty(struct table *t, struct client *c)
{
	struct client **pp;

	if (c->count)
		return;
	for (pp = &t->clients[addr_hash(&c->addr) & (t->n_client_buckets - 1)]; *pp != c; pp = &(*pp)->next)
		;
	*pp = c->next;
	t->n_clients--;
	free(c);
}

/* --- mapping entries --- */

struct entry *table_entry_find(const struct table *t, const struct table_addr *client, uint8_t protocol,
				uint16_t port)
{
	struct entry *e = t->buckets[key_hash(client, protocol, port) & (t->n_buckets - 1)];

	for (; e; e = e->hash_next)
		if (e->m.protocol == protocol && e->m.internal_port == port && table_addr_equal(&e->m.client, client))
			return e;
	return NULL;
}

static int buckets_grow(struct table *t)
{
	size_t n = t->n_buckets * 2;
	struct entry **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct entry *e = t->buckets[i], *next;
		for (; e; e = next) {
			next = e->hash_next;
			size_t slot = key_hash(&e->m.client, e->m.protocol, e->m.internal_port) & (n - 1);
			e->hash_next = b[slot];
			b[slot] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	return 0;
}


static struct link_count **link_slot(struct table *t, uint64_t link)
{
	struct link_count **pp = &t->links[mix64(link) & (TABLE_LINK_BUCKETS - 1)];

	while (*pp && (*pp)->link != link)
		pp = &(*pp)->next;
	return pp;
}

static uint32_t link_held(struct table *t, uint64_t link)
{
	struct link_count *l = *link_slot(t, link);

	return l ? l->count : 0;
}

/* Counts one more mapping for link: 0 or -ENOMEM. */
static int link_add(struct table *t, uint64_t link)
{
	struct link_count **pp = link_slot(t, link);

	if (link == TABLE_LINK_NONE)
		return 0;
	if (!*pp) {
		if (!(*pp = calloc(1, sizeof(**pp))))
			return -ENOMEM;
		(*pp)->link = link;
	}
	(*pp)->count++;
	return 0;
}

static void link_drop(struct table *t, uint64_t link)
{
	struct link_count **pp = link_slot(t, link), *l = *pp;

	if (link == TABLE_LINK_NONE || !l)
		return;
	if (--l->count == 0) {
		*pp = l->next;
		free(l);
	}
}

/* Inserts m; the caller has checked every conflict and limit. */
int table_entry_insert(struct table *t, const struct table_mapping *m)
{
	struct client *c;
	struct entry *e;

	if (t->count >= t->n_buckets && buckets_grow(t) < 0)
		return -ENOMEM;
	/* Reserve the log slot first so that nothing fails after the insert. */
	if (table_log_change(t, TABLE_ADD, m, 0, 0) < 0)
		return -ENOMEM;
	e = calloc(1, sizeof(*e));
	c = e ? client_get(t, &m->client) : NULL;
	if (!e || !c || link_add(t, m->link) < 0) {
		if (c)
			client_drop_if_empty(t, c);
		free(e);
		if (!t->replaying)
			t->log_len--;
		return -ENOMEM;
	}
	/* The heap orders by expiry: the entry must hold it before it is pushed. */
	e->m = *m;
	if (table_heap_push(t, e) < 0) {
		link_drop(t, m->link);
		client_drop_if_empty(t, c);
		free(e);
		if (!t->replaying)
			t->log_len--;
		return -ENOMEM;
	}
	size_t slot = key_hash(&m->client, m->protocol, m->internal_port) & (t->n_buckets - 1);
	e->hash_next = t->buckets[slot];
	t->buckets[slot] = e;
	e->client_next = c->mappings;
	if (c->mappings)
		c->mappings->client_prev = &e->client_next;
	e->client_prev = &c->mappings;
	c->mappings = e;
	c->count++;
	/* A pinhole opens the client's own port on its own address: it holds none of the router's. */
	if (table_addr_is_v4(&m->client))
		t->by_external[proto_slot(m->protocol)][m->external_port] = e;
	t->count++;
	return 0;
}

void table_entry_remove(struct table *t, struct entry *e)
{
	struct entry **pp;
	struct client *c = client_find(t, &e->m.client);

	/* A deletion that cannot be logged still happens: the log then lacks it,
	 * and the caller's kernel copy keeps the element until its timeout. */
	(void)table_log_change(t, TABLE_DEL, &e->m, 0, 0);
	for (pp = &t->buckets[key_hash(&e->m.client, e->m.protocol, e->m.internal_port) & (t->n_buckets - 1)];
	     *pp != e; pp = &(*pp)->hash_next)
		;
	*pp = e->hash_next;
	*e->client_prev = e->client_next;
	if (e->client_next)
		e->client_next->client_prev = e->client_prev;
	c->count--;
	client_drop_if_empty(t, c);
	link_drop(t, e->m.link);
	if (table_addr_is_v4(&e->m.client))
		t->by_external[proto_slot(e->m.protocol)][e->m.external_port] = NULL;
	table_heap_remove(t, e);
	t->count--;
	free(e);
}

/* --- public interface --- */

struct table *table_new(const struct table_config *cfg)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->cfg = *cfg;
	if (!t->cfg.random)
		t->cfg.random = table_default_random;
	/* The caller's arrays are not kept: table_configure() copies them. */
	t->cfg.allowed = t->cfg.reserved = NULL;
	t->cfg.rules = NULL;
	t->n_buckets = 64;
	t->buckets = calloc(t->n_buckets, sizeof(*t->buckets));
	t->n_client_buckets = 16;
	t->clients = calloc(t->n_client_buckets, sizeof(*t->clients));
	if (!t->buckets || !t->clients || table_configure(t, cfg) < 0) {
		table_free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

/* A copy of n elements of size bytes (at least one element, so that NULL means out of memory). */
static void *table_copy(const void *from, size_t n, size_t size)
{
	void *to = calloc(n ? n : 1, size);

	if (to && n)
		memcpy(to, from, n * size);
	return to;
}

int table_configure(struct table *t, const struct table_config *cfg)
{
	struct port_range *allowed = table_copy(cfg->allowed, cfg->n_allowed, sizeof(*allowed));
	struct port_range *reserved = table_copy(cfg->reserved, cfg->n_reserved, sizeof(*reserved));
	struct table_rule *rules = table_copy(cfg->rules, cfg->n_rules, sizeof(*rules));
	uint32_t total = 0;

	if (!allowed || !reserved || !rules) {
		free(allowed);
		free(reserved);
		free(rules);
		return -ENOMEM;
	}
	for (size_t i = 0; i < cfg->n_allowed; i++)
		total += (uint32_t)cfg->allowed[i].to - cfg->allowed[i].from + 1;
	free(t->allowed);
	free(t->reserved);
	free(t->rules);
	t->allowed = allowed;
	t->reserved = reserved;
	t->rules = rules;
	t->allowed_total = total;
	t->cfg.allowed = allowed;
	t->cfg.n_allowed = cfg->n_allowed;
	t->cfg.reserved = reserved;
	t->cfg.n_reserved = cfg->n_reserved;
	t->cfg.rules = rules;
	t->cfg.n_rules = cfg->n_rules;
	t->cfg.max_per_client = cfg->max_per_client;
	t->cfg.max_lifetime = cfg->max_lifetime;
	return 0;
}

void table_free(struct table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->heap_size; i++)
		free(t->heap[i]);
	for (size_t i = 0; t->clients && i < t->n_client_buckets; i++) {
		struct client *c = t->clients[i], *next;
		for (; c; c = next) {
			next = c->next;
			free(c);
		}
	}
	for (size_t i = 0; i < TABLE_LINK_BUCKETS; i++) {
		struct link_count *l = t->links[i], *next;
		for (; l; l = next) {
			next = l->next;
			free(l);
		}
	}
	free(t->clients);
	free(t->buckets);
	free(t->heap);
	free(t->log);
	free(t->allowed);
	free(t->reserved);
	free(t->rules);
	free(t);
}

/*
 * A NAT-PMP client's "delete all" (RFC 6886 3.4) removes what it asked for
 * itself: mappings the HTTP API made on its host's behalf stay, as an
 * application that starts up and clears its ports must not undo the
 * administrator's forwards.
 */
/*
 * The one ownership rule, for every front end: a mapping the administrator
 * made (the HTTP API) is the administrator's.  A client's own request
 * (NAT-PMP, PCP) may renew it, never shorten or delete it (RFC 6886 3.4:
 * "Not Authorized").  table_owned_elsewhere() says when a client may not
 * touch it at all.
 */
static bool table_may_change(const struct entry *e, enum table_origin origin)
{
	return origin == TABLE_ORIGIN_HTTP || e->m.origin != TABLE_ORIGIN_HTTP;
}

/*
 * A PCP mapping is its nonce's (RFC 6887 11.3): neither another nonce nor
 * NAT-PMP, which has none, may renew or delete it.  The administrator may.
 */
static bool table_owned_elsewhere(const struct entry *e, const struct table_asker *who)
{
	if (e->m.origin != TABLE_ORIGIN_PCP || who->origin == TABLE_ORIGIN_HTTP)
		return false;
	return who->origin != TABLE_ORIGIN_PCP || memcmp(e->m.nonce, who->nonce, TABLE_NONCE_LEN) != 0;
}

/*
 * RFC 6886 3.4: a delete-all deletes what it may, and answers non-zero if
 * it could not delete everything.
 */
static uint16_t delete_all(struct table *t, const struct table_addr *client, const struct table_asker *who,
			   uint8_t protocol)
{
	struct client *c = client_find(t, client);
	struct entry *e, *next;
	uint16_t result = TABLE_RESULT_SUCCESS;

	if (!c)
		return result;
	/* Removing the client's last mapping frees c: stop before touching it again. */
	for (e = c->mappings; e; e = next) {
		next = e->client_next;
		int last = next == NULL;
		if (e->m.protocol == protocol && table_may_change(e, who->origin) && !table_owned_elsewhere(e, who))
			table_entry_remove(t, e);
		else if (e->m.protocol == protocol)
			result = TABLE_RESULT_NOT_AUTHORIZED;
		if (last)
			break;
	}
	return result;
}

uint16_t table_request(struct table *t, struct table_addr client, enum table_origin origin, uint8_t protocol,
		       uint16_t internal_port, uint16_t suggested_port, uint32_t lifetime, int64_t now,
		       struct table_grant *grant, uint64_t link)
{
	struct table_asker who = { .origin = origin };

	return table_request_by(t, client, &who, protocol, internal_port, suggested_port, lifetime, now, grant, link);
}

static uint16_t table_decide(struct table *t, struct table_addr client, const struct table_asker *who, uint8_t protocol,
			     uint16_t internal_port, uint16_t suggested_port, uint32_t lifetime, int64_t now,
			     struct table_grant *grant, uint64_t link)
{
	enum table_origin origin = who->origin;
	uint8_t nonce[TABLE_NONCE_LEN];
	struct entry *e;
	struct client *c;
	uint16_t upstream_port = 0;

	grant->external_port = 0;
	grant->lifetime = 0;
	memcpy(nonce, who->nonce, sizeof(nonce));

	if (lifetime == 0) {
		/* RFC 6886 3.4: the suggested port of a delete means nothing. */
		if (internal_port == 0) {
			return delete_all(t, &client, who, protocol);
		} else if ((e = table_entry_find(t, &client, protocol, internal_port)) != NULL) {
			if (!table_may_change(e, origin) || table_owned_elsewhere(e, who))
				return TABLE_RESULT_NOT_AUTHORIZED;
			table_entry_remove(t, e);
		}
		return TABLE_RESULT_SUCCESS;
	}
	if (internal_port == 0)
		return TABLE_RESULT_NOT_AUTHORIZED;

	uint32_t granted = lifetime < t->cfg.max_lifetime ? lifetime : t->cfg.max_lifetime;
	int64_t keep_expires = 0;
	uint32_t keep_lifetime = 0;
	uint16_t moved_port = 0; /* an administrator's mapping moved: the port already chosen for it */

	e = table_entry_find(t, &client, protocol, internal_port);
	if (e && table_owned_elsewhere(e, who))
		return TABLE_RESULT_NOT_AUTHORIZED;
	/* An IPv6 client's mapping is a pinhole: its external port is its internal one (no NAT66). */
	if (!table_addr_is_v4(&client)) {
		if (who->exact && suggested_port && suggested_port != internal_port)
			return TABLE_RESULT_CANNOT_PROVIDE;
		suggested_port = internal_port;
	}
	/* PREFER_FAILURE on a renewal: the port it has is the one it asks for, or it fails (RFC 6887 13.2). */
	if (e && who->exact && suggested_port && e->m.external_port != suggested_port)
		return TABLE_RESULT_CANNOT_PROVIDE;
	/*
	 * A port a reload took out of the allowed ranges (or reserved), or one
	 * the router itself has started to use since, is given up at the next
	 * renewal, which gets a new port: RFC 6886 3.3 lets a renewal answer
	 * another port, and clients use the one answered.
	 */
	if (e && table_addr_is_v4(&client) &&
	    (!table_port_allowed(t, protocol, e->m.external_port) || table_port_busy(t, protocol, e->m.external_port) ||
	     !table_rules_allow(t, &client, e->m.external_port, internal_port))) {
		bool authorized;

		/*
		 * The administrator's mapping, renewed by its client: it moves, but
		 * keeps what is left of its lifetime, and where no port is free it
		 * stays where it is rather than go.
		 */
		if (!table_may_change(e, origin)) {
			if (!(moved_port = table_port_choose(t, &client, protocol, internal_port, suggested_port, &authorized)))
				goto renew;
			keep_expires = e->m.expires;
			keep_lifetime = e->m.lifetime;
		}
		origin = (enum table_origin)e->m.origin;
		memcpy(nonce, e->m.nonce, sizeof(nonce)); /* and still its owner's, whoever renewed it */
		link = e->m.link; /* the same mapping, moved: counted for whom it was */
		/* The client was told the gateway's port: ask the gateway to keep it for the new one. */
		upstream_port = e->m.upstream_port;
		table_entry_remove(t, e);
		e = NULL;
	}
renew:
	if (e) {
		/*
		 * Renewal: the port stays, whatever the client suggests now
		 * (Transmission re-suggests its local port, libtorrent the
		 * granted one).  A client's renewal of the administrator's
		 * mapping never shortens it: it stands as it is, and the client
		 * is told what is left of it.
		 */
		if (!table_may_change(e, origin) && e->m.expires >= now + granted) {
			grant->external_port = e->m.external_port;
			grant->lifetime = (uint32_t)(e->m.expires - now);
			return TABLE_RESULT_SUCCESS;
		}
		if (table_log_change(t, TABLE_RENEW, &e->m, e->m.expires, e->m.lifetime) < 0)
			return TABLE_RESULT_OUT_OF_RESOURCES;
		/* A PCP client's request takes over what it asked for by NAT-PMP before. */
		if (origin == TABLE_ORIGIN_PCP && e->m.origin == TABLE_ORIGIN_NATPMP) {
			e->m.origin = TABLE_ORIGIN_PCP;
			memcpy(e->m.nonce, who->nonce, TABLE_NONCE_LEN);
		}
		e->m.lifetime = granted;
		e->m.expires = now + granted;
		t->log[t->log_len - 1].mapping = e->m;
		table_heap_update(t, e);
		grant->external_port = e->m.external_port;
		grant->lifetime = granted;
		return TABLE_RESULT_SUCCESS;
	}

	/* Per-client rules: no allow rule for this client and internal port is result 2 (RFC 6886 3.5). */
	if (!table_rules_permit(t, &client, internal_port))
		return TABLE_RESULT_NOT_AUTHORIZED;
	c = client_find(t, &client);
	if (c && c->count >= t->cfg.max_per_client)
		return TABLE_RESULT_OUT_OF_RESOURCES;
	/* One host inventing source addresses is still one host at the link layer. */
	if (link != TABLE_LINK_NONE && link_held(t, link) >= t->cfg.max_per_client)
		return TABLE_RESULT_OUT_OF_RESOURCES;

	bool authorized = true;
	uint16_t port = !table_addr_is_v4(&client) ? internal_port
			: moved_port			? moved_port
							: table_port_choose(t, &client, protocol, internal_port, suggested_port, &authorized);
	if (port == 0)
		return authorized ? TABLE_RESULT_OUT_OF_RESOURCES : TABLE_RESULT_NOT_AUTHORIZED;
	if (who->exact && suggested_port && port != suggested_port && !moved_port)
		return TABLE_RESULT_CANNOT_PROVIDE;

	struct table_mapping m = {
		.client = client,
		.protocol = protocol,
		.origin = (uint8_t)origin,
		.internal_port = internal_port,
		.external_port = port,
		.lifetime = granted,
		.expires = now + granted,
		.upstream_port = upstream_port,
		.link = link,
	};
	if (origin == TABLE_ORIGIN_PCP)
		memcpy(m.nonce, nonce, TABLE_NONCE_LEN);
	/* An administrator's mapping a client's renewal moved keeps a longer end it had. */
	if (keep_expires > m.expires) {
		m.expires = keep_expires;
		m.lifetime = keep_lifetime;
	}
	if (table_entry_insert(t, &m) < 0)
		return TABLE_RESULT_OUT_OF_RESOURCES;
	grant->external_port = port;
	grant->lifetime = (uint32_t)(m.expires - now);
	return TABLE_RESULT_SUCCESS;
}

/*
 * RFC 6887 7.3: an error answer causes no state change.  A request that
 * fails after a first step (a renewal whose port had to move, then found
 * no port, no room or no rule) is undone back to where it began; only a
 * delete-all keeps what it could delete (RFC 6886 3.4).
 */
uint16_t table_request_by(struct table *t, struct table_addr client, const struct table_asker *who, uint8_t protocol,
			  uint16_t internal_port, uint16_t suggested_port, uint32_t lifetime, int64_t now,
			  struct table_grant *grant, uint64_t link)
{
	size_t mark = t->log_len;
	uint16_t r = table_decide(t, client, who, protocol, internal_port, suggested_port, lifetime, now, grant, link);

	if (r != TABLE_RESULT_SUCCESS && lifetime != 0) {
		table_undo(t, mark);
		grant->external_port = 0;
		grant->lifetime = 0;
	}
	return r;
}

int table_restore(struct table *t, const struct table_mapping *m)
{
	struct client *c;

	if ((m->protocol != IPPROTO_UDP && m->protocol != IPPROTO_TCP) || m->internal_port == 0)
		return -EINVAL;
	if (!table_addr_is_v4(&m->client)) {
		/* A pinhole: the router's ports and ranges do not come into it. */
		if (m->external_port != m->internal_port)
			return -EINVAL;
		if (!table_rules_permit(t, &m->client, m->internal_port))
			return -EACCES;
		if (table_entry_find(t, &m->client, m->protocol, m->internal_port))
			return -EEXIST;
		c = client_find(t, &m->client);
		if (c && c->count >= t->cfg.max_per_client)
			return -ENOSPC;
		return table_entry_insert(t, m);
	}
	if (!table_port_allowed(t, m->protocol, m->external_port))
		return -ERANGE;
	if (!table_rules_allow(t, &m->client, m->external_port, m->internal_port))
		return -EACCES;
	if (table_port_busy(t, m->protocol, m->external_port))
		return -EADDRINUSE;
	if (table_entry_find(t, &m->client, m->protocol, m->internal_port) ||
	    !table_port_free(t, &m->client, m->protocol, m->external_port, m->internal_port))
		return -EEXIST;
	c = client_find(t, &m->client);
	if (c && c->count >= t->cfg.max_per_client)
		return -ENOSPC;
	return table_entry_insert(t, m);
}

size_t table_expire(struct table *t, int64_t now)
{
	size_t n = 0;

	while (t->heap_size && t->heap[0]->m.expires <= now) {
		table_entry_remove(t, t->heap[0]);
		n++;
	}
	return n;
}

int64_t table_next_expiry(const struct table *t)
{
	return t->heap_size ? t->heap[0]->m.expires : INT64_MAX;
}

size_t table_count(const struct table *t)
{
	return t->count;
}

size_t table_client_count(const struct table *t, struct table_addr client)
{
	const struct client *c = client_find(t, &client);

	return c ? c->count : 0;
}

size_t table_link_count(struct table *t, uint64_t link)
{
	return link == TABLE_LINK_NONE ? 0 : link_held(t, link);
}

const struct table_mapping *table_find(const struct table *t, struct table_addr client, uint8_t protocol,
				       uint16_t internal_port)
{
	const struct entry *e = table_entry_find(t, &client, protocol, internal_port);

	return e ? &e->m : NULL;
}

const struct table_mapping *table_find_external(const struct table *t, uint8_t protocol, uint16_t external_port)
{
	const struct entry *e = t->by_external[proto_slot(protocol)][external_port];

	return e ? &e->m : NULL;
}

const struct table_mapping *table_set_upstream(struct table *t, uint8_t protocol, uint16_t external_port,
					       uint16_t upstream_port)
{
	struct entry *e = t->by_external[proto_slot(protocol)][external_port];

	if (!e)
		return NULL;
	e->m.upstream_port = upstream_port;
	return &e->m;
}

int table_foreach(const struct table *t, int (*fn)(const struct table_mapping *m, void *arg), void *arg)
{
	for (size_t i = 0; i < t->heap_size; i++) {
		int r = fn(&t->heap[i]->m, arg);
		if (r)
			return r;
	}
	return 0;
}
