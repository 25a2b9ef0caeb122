/*
 * table.c - the mapping table.
 *
 * Indexes, each O(1) per operation so that the cost of a request does not
 * grow with the number of mappings:
 *   - a hash of (client, protocol, internal port) -> mapping;
 *   - per protocol, an array indexed by external port -> mapping;
 *   - a hash of clients, each with its count and list of mappings (limits,
 *     delete-all: table_client.c);
 *   - a binary min-heap on expiry time (table_heap.c).
 * Entries live in a pool (table_pool.c) and link to each other by index;
 * callers get copies (struct table_mapping), never pointers into it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "table_impl.h"

static size_t key_hash(const struct table_addr *client, uint8_t protocol, uint16_t port)
{
	uint64_t rest = (uint64_t)protocol << 16 | port;

	/* An IPv4 key fits one word as it is; an IPv6 one keeps all of its folded bits. */
	if (table_addr_is_v4(client))
		return (size_t)table_mix64((uint64_t)client->v4 << 32 | rest);
	return (size_t)table_mix64(table_addr_bits(client) ^ table_mix64(rest));
}

const char *table_addr_str(const struct table_addr *a, char buf[TABLE_ADDR_STRLEN])
{
	if (table_addr_is_v4(a))
		return inet_ntop(AF_INET, &a->v4, buf, TABLE_ADDR_STRLEN);
	return inet_ntop(AF_INET6, a->v6, buf, TABLE_ADDR_STRLEN);
}


/* --- mapping entries --- */

uint32_t table_entry_find(const struct table *t, const struct table_addr *client, uint8_t protocol, uint16_t port)
{
	uint32_t i = t->buckets[key_hash(client, protocol, port) & (t->n_buckets - 1)];

	for (; i; i = table_entry(t, i)->hash_next) {
		const struct entry *e = table_entry(t, i);
		if (e->protocol == protocol && e->internal_port == port && table_addr_equal(table_entry_addr(t, i), client))
			return i;
	}
	return 0;
}

static size_t entry_hash(const struct table *t, uint32_t i)
{
	const struct entry *e = table_entry(t, i);

	return key_hash(table_entry_addr(t, i), e->protocol, e->internal_port);
}

static uint32_t *entry_next(const struct table *t, uint32_t i)
{
	return &table_entry(t, i)->hash_next;
}

static bool nonce_zero(const uint8_t *nonce)
{
	static const uint8_t zero[TABLE_NONCE_LEN];

	return !nonce || memcmp(nonce, zero, TABLE_NONCE_LEN) == 0;
}

int table_entry_set_nonce(struct table *t, uint32_t i, const uint8_t *nonce)
{
	uint32_t n = table_entry(t, i)->nonce;

	if (nonce_zero(nonce)) {
		if (n)
			table_pool_give(&t->nonce_pool, n);
		table_entry(t, i)->nonce = 0;
		return 0;
	}
	if (!n && !(n = table_pool_take(&t->nonce_pool)))
		return -ENOMEM;
	memcpy(table_pool_at(&t->nonce_pool, n), nonce, TABLE_NONCE_LEN);
	table_entry(t, i)->nonce = n;
	return 0;
}

void table_entry_view(const struct table *t, uint32_t i, struct table_mapping *m)
{
	const struct entry *e = table_entry(t, i);

	*m = (struct table_mapping){
		.client = *table_entry_addr(t, i),
		.protocol = e->protocol,
		.origin = e->origin,
		.internal_port = e->internal_port,
		.external_port = e->external_port,
		.upstream_port = e->upstream_port,
		.lifetime = e->lifetime,
		.expires = e->expires,
		.link = e->link ? table_link(t, e->link)->link : TABLE_LINK_NONE,
	};
	if (e->nonce)
		memcpy(m->nonce, table_pool_at(&t->nonce_pool, e->nonce), TABLE_NONCE_LEN);
}

/* Inserts m; the caller has checked every conflict and limit. */
int table_entry_insert(struct table *t, const struct table_mapping *m)
{
	uint32_t i, c = 0;
	int64_t l = -ENOMEM;

	if (t->count >= t->n_buckets && table_chains_grow(t, &t->buckets, &t->n_buckets, entry_hash, entry_next) < 0)
		return -ENOMEM;
	/* Reserve the log slot first so that nothing fails after the insert. */
	if (table_log_change(t, TABLE_ADD, m, 0, 0) < 0)
		return -ENOMEM;
	/* Every pool that may move grows before a pointer into it is taken. */
	i = table_pool_take(&t->entry_pool);
	if (!i || !(c = table_client_get(t, &m->client)) || (l = table_link_add(t, m->link)) < 0)
		goto fail;
	struct entry *e = table_entry(t, i);
	*e = (struct entry){
		.expires = m->expires, .lifetime = m->lifetime, .client = c, .link = (uint32_t)l,
		.internal_port = m->internal_port, .external_port = m->external_port,
		.upstream_port = m->upstream_port, .protocol = m->protocol, .origin = m->origin,
	};
	/* The heap orders by expiry: the entry must hold it before it is pushed. */
	if (table_entry_set_nonce(t, i, m->nonce) < 0 || table_heap_push(t, i) < 0)
		goto fail;
	size_t slot = key_hash(&m->client, m->protocol, m->internal_port) & (t->n_buckets - 1);
	struct client *cl = table_client(t, c);
	e->hash_next = t->buckets[slot];
	t->buckets[slot] = i;
	e->client_next = cl->first;
	if (cl->first)
		table_entry(t, cl->first)->client_prev = i;
	cl->first = i;
	cl->count++;
	/* A pinhole opens the client's own port on its own address: it holds none of the router's. */
	if (table_addr_is_v4(&m->client))
		t->by_external[proto_slot(m->protocol)][m->external_port] = i;
	t->count++;
	return 0;
fail:
	if (l > 0)
		table_link_drop(t, (uint32_t)l);
	if (c)
		table_client_drop_if_empty(t, c);
	if (i) {
		(void)table_entry_set_nonce(t, i, NULL);
		table_pool_give(&t->entry_pool, i);
	}
	if (!t->replaying)
		t->log_len--;
	return -ENOMEM;
}

void table_entry_remove(struct table *t, uint32_t i)
{
	struct table_mapping m;
	struct entry *e = table_entry(t, i);
	uint32_t *pp, c = e->client;
	struct client *cl = table_client(t, c);

	/* A deletion that cannot be logged still happens: the log then lacks it,
	 * and the caller's kernel copy keeps the element until its timeout. */
	table_entry_view(t, i, &m);
	(void)table_log_change(t, TABLE_DEL, &m, 0, 0);
	for (pp = &t->buckets[entry_hash(t, i) & (t->n_buckets - 1)]; *pp != i; pp = &table_entry(t, *pp)->hash_next)
		;
	*pp = e->hash_next;
	if (e->client_prev)
		table_entry(t, e->client_prev)->client_next = e->client_next;
	else
		cl->first = e->client_next;
	if (e->client_next)
		table_entry(t, e->client_next)->client_prev = e->client_prev;
	if (table_addr_is_v4(&cl->addr))
		t->by_external[proto_slot(e->protocol)][e->external_port] = 0;
	cl->count--;
	table_client_drop_if_empty(t, c);
	table_link_drop(t, e->link);
	table_heap_remove(t, i);
	(void)table_entry_set_nonce(t, i, NULL);
	table_pool_give(&t->entry_pool, i);
	t->count--;
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
	table_pool_init(&t->entry_pool, sizeof(struct entry));
	table_pool_init(&t->client_pool, sizeof(struct client));
	table_pool_init(&t->link_pool, sizeof(struct link_count));
	table_pool_init(&t->nonce_pool, TABLE_NONCE_LEN);
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
	table_pool_free(&t->entry_pool);
	table_pool_free(&t->client_pool);
	table_pool_free(&t->link_pool);
	table_pool_free(&t->nonce_pool);
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
	return origin == TABLE_ORIGIN_HTTP || e->origin != TABLE_ORIGIN_HTTP;
}

/*
 * A PCP mapping is its nonce's (RFC 6887 11.3): neither another nonce nor
 * NAT-PMP, which has none, may renew or delete it.  The administrator may.
 */
static bool table_owned_elsewhere(const struct table *t, const struct entry *e, const struct table_asker *who)
{
	if (e->origin != TABLE_ORIGIN_PCP || who->origin == TABLE_ORIGIN_HTTP)
		return false;
	/* A nonce of zeros is kept as none (entry.nonce 0): it is still its owner's. */
	if (who->origin != TABLE_ORIGIN_PCP)
		return true;
	return e->nonce ? memcmp(table_pool_at(&t->nonce_pool, e->nonce), who->nonce, TABLE_NONCE_LEN) != 0
			: !nonce_zero(who->nonce);
}

/*
 * RFC 6886 3.4: a delete-all deletes what it may, and answers non-zero if
 * it could not delete everything.
 */
static uint16_t delete_all(struct table *t, const struct table_addr *client, const struct table_asker *who,
			   uint8_t protocol)
{
	uint32_t c = table_client_find(t, client), i, next;
	uint16_t result = TABLE_RESULT_SUCCESS;

	if (!c)
		return result;
	/* Removing the client's last mapping gives c back: never touch it again. */
	for (i = table_client(t, c)->first; i; i = next) {
		const struct entry *e = table_entry(t, i);

		next = e->client_next;
		if (e->protocol == protocol && table_may_change(e, who->origin) && !table_owned_elsewhere(t, e, who))
			table_entry_remove(t, i);
		else if (e->protocol == protocol)
			result = TABLE_RESULT_NOT_AUTHORIZED;
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
	struct entry *e = NULL;
	uint32_t ei, c;
	uint16_t upstream_port = 0;

	grant->external_port = 0;
	grant->lifetime = 0;
	memcpy(nonce, who->nonce, sizeof(nonce));

	if (lifetime == 0) {
		/* RFC 6886 3.4: the suggested port of a delete means nothing. */
		if (internal_port == 0) {
			return delete_all(t, &client, who, protocol);
		} else if ((ei = table_entry_find(t, &client, protocol, internal_port)) != 0) {
			e = table_entry(t, ei);
			if (!table_may_change(e, origin) || table_owned_elsewhere(t, e, who))
				return TABLE_RESULT_NOT_AUTHORIZED;
			table_entry_remove(t, ei);
		}
		return TABLE_RESULT_SUCCESS;
	}
	if (internal_port == 0)
		return TABLE_RESULT_NOT_AUTHORIZED;

	uint32_t granted = lifetime < t->cfg.max_lifetime ? lifetime : t->cfg.max_lifetime;
	int64_t keep_expires = 0;
	uint32_t keep_lifetime = 0;
	uint16_t moved_port = 0; /* an administrator's mapping moved: the port already chosen for it */

	if ((ei = table_entry_find(t, &client, protocol, internal_port)) != 0)
		e = table_entry(t, ei);
	if (e && table_owned_elsewhere(t, e, who))
		return TABLE_RESULT_NOT_AUTHORIZED;
	/* An IPv6 client's mapping is a pinhole: its external port is its internal one (no NAT66). */
	if (!table_addr_is_v4(&client)) {
		if (who->exact && suggested_port && suggested_port != internal_port)
			return TABLE_RESULT_CANNOT_PROVIDE;
		suggested_port = internal_port;
	}
	/* PREFER_FAILURE on a renewal: the port it has is the one it asks for, or it fails (RFC 6887 13.2). */
	if (e && who->exact && suggested_port && e->external_port != suggested_port)
		return TABLE_RESULT_CANNOT_PROVIDE;
	/*
	 * A port a reload took out of the allowed ranges (or reserved), or one
	 * the router itself has started to use since, is given up at the next
	 * renewal, which gets a new port: RFC 6886 3.3 lets a renewal answer
	 * another port, and clients use the one answered.
	 */
	if (e && table_addr_is_v4(&client) &&
	    (!table_port_allowed(t, protocol, e->external_port) || table_port_busy(t, protocol, e->external_port) ||
	     !table_rules_allow(t, &client, e->external_port, internal_port))) {
		bool authorized;

		/*
		 * The administrator's mapping, renewed by its client: it moves, but
		 * keeps what is left of its lifetime, and where no port is free it
		 * stays where it is rather than go.
		 */
		if (!table_may_change(e, origin)) {
			if (!(moved_port = table_port_choose(t, &client, protocol, internal_port, suggested_port, &authorized)))
				goto renew;
			keep_expires = e->expires;
			keep_lifetime = e->lifetime;
		}
		struct table_mapping was;

		table_entry_view(t, ei, &was);
		origin = (enum table_origin)was.origin;
		memcpy(nonce, was.nonce, sizeof(nonce)); /* and still its owner's, whoever renewed it */
		link = was.link; /* the same mapping, moved: counted for whom it was */
		/* The client was told the gateway's port: ask the gateway to keep it for the new one. */
		upstream_port = was.upstream_port;
		table_entry_remove(t, ei);
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
		if (!table_may_change(e, origin) && e->expires >= now + granted) {
			grant->external_port = e->external_port;
			grant->lifetime = (uint32_t)(e->expires - now);
			return TABLE_RESULT_SUCCESS;
		}
		struct table_mapping before;

		table_entry_view(t, ei, &before);
		if (table_log_change(t, TABLE_RENEW, &before, e->expires, e->lifetime) < 0)
			return TABLE_RESULT_OUT_OF_RESOURCES;
		/* A PCP client's request takes over what it asked for by NAT-PMP before. */
		if (origin == TABLE_ORIGIN_PCP && e->origin == TABLE_ORIGIN_NATPMP) {
			if (table_entry_set_nonce(t, ei, who->nonce) < 0)
				return TABLE_RESULT_OUT_OF_RESOURCES;
			e->origin = TABLE_ORIGIN_PCP;
		}
		e->lifetime = granted;
		e->expires = now + granted;
		table_entry_view(t, ei, &t->log[t->log_len - 1].mapping);
		table_heap_update(t, ei);
		grant->external_port = e->external_port;
		grant->lifetime = granted;
		return TABLE_RESULT_SUCCESS;
	}

	/* Per-client rules: no allow rule for this client and internal port is result 2 (RFC 6886 3.5). */
	if (!table_rules_permit(t, &client, internal_port))
		return TABLE_RESULT_NOT_AUTHORIZED;
	c = table_client_find(t, &client);
	if (c && table_client(t, c)->count >= t->cfg.max_per_client)
		return TABLE_RESULT_OUT_OF_RESOURCES;
	/* One host inventing source addresses is still one host at the link layer. */
	if (link != TABLE_LINK_NONE && table_link_held(t, link) >= t->cfg.max_per_client)
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
	uint32_t c;

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
		c = table_client_find(t, &m->client);
		if (c && table_client(t, c)->count >= t->cfg.max_per_client)
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
	c = table_client_find(t, &m->client);
	if (c && table_client(t, c)->count >= t->cfg.max_per_client)
		return -ENOSPC;
	return table_entry_insert(t, m);
}

size_t table_expire(struct table *t, int64_t now)
{
	size_t n = 0;

	while (t->heap_size && table_entry(t, t->heap[0])->expires <= now) {
		table_entry_remove(t, t->heap[0]);
		n++;
	}
	return n;
}

int64_t table_next_expiry(const struct table *t)
{
	return t->heap_size ? table_entry(t, t->heap[0])->expires : INT64_MAX;
}

size_t table_count(const struct table *t)
{
	return t->count;
}

size_t table_client_count(const struct table *t, struct table_addr client)
{
	uint32_t c = table_client_find(t, &client);

	return c ? table_client(t, c)->count : 0;
}

size_t table_link_count(struct table *t, uint64_t link)
{
	return link == TABLE_LINK_NONE ? 0 : table_link_held(t, link);
}

/* Entry i, if any, as the caller's view into m (which may be NULL); whether there is one. */
static bool table_view(const struct table *t, uint32_t i, struct table_mapping *m)
{
	if (i && m)
		table_entry_view(t, i, m);
	return i != 0;
}

bool table_find(const struct table *t, struct table_addr client, uint8_t protocol, uint16_t internal_port,
		struct table_mapping *m)
{
	return table_view(t, table_entry_find(t, &client, protocol, internal_port), m);
}

bool table_find_external(const struct table *t, uint8_t protocol, uint16_t external_port, struct table_mapping *m)
{
	return table_view(t, t->by_external[proto_slot(protocol)][external_port], m);
}

bool table_set_upstream(struct table *t, uint8_t protocol, uint16_t external_port, uint16_t upstream_port,
			struct table_mapping *m)
{
	uint32_t i = t->by_external[proto_slot(protocol)][external_port];

	if (i)
		table_entry(t, i)->upstream_port = upstream_port;
	return table_view(t, i, m);
}

/* In expiry heap order, which is no order a caller may count on. */
int table_foreach(const struct table *t, int (*fn)(const struct table_mapping *m, void *arg), void *arg)
{
	struct table_mapping m;

	for (size_t i = 0; i < t->heap_size; i++) {
		table_entry_view(t, t->heap[i], &m);
		int r = fn(&m, arg);
		if (r)
			return r;
	}
	return 0;
}
