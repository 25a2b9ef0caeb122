/*
 * table_impl.h - what table.c (the indexes and requests), table_port.c
 * (port choice), table_heap.c (expiry order), table_log.c (the change log),
 * table_client.c (who holds how many) and table_pool.c (storage) share: the table's own structures.  Private to
 * src/engine/; engine/table.h is the interface.
 *
 * Memory is the point of the layout (docs/performance.md: 128,000 mappings
 * in 12 MB): entries, clients, links and nonces each live in one array (a
 * pool), linked by 32-bit indices, not pointers, and an entry holds only
 * what differs between mappings: its client's address, its link-layer
 * address and its PCP nonce are indices into their own pools.  Index 0 of
 * every pool is never used, so that 0 means "none" and calloc'd indexes
 * start empty.  A pool's array moves when it grows: hold indices, not
 * pointers, across anything that may add to it.
 */
#ifndef NATPMP_ENGINE_TABLE_IMPL_H
#define NATPMP_ENGINE_TABLE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "engine/table.h"

/* One array of fixed-size items, a free list threaded through the freed ones. */
struct table_pool {
	unsigned char *items;
	uint32_t item_size; /* bytes; at least 4 */
	uint32_t cap;	    /* items allocated */
	uint32_t used;	    /* items ever handed out, index 0 included */
	uint32_t free;	    /* first freed item, 0 when none */
};

/* An empty pool of item_size-byte items (nothing allocated until the first take). */
void table_pool_init(struct table_pool *p, uint32_t item_size);
/* A zeroed item's index (>= 1), or 0 when out of memory. */
uint32_t table_pool_take(struct table_pool *p);
/* Gives item i (>= 1) back. */
void table_pool_give(struct table_pool *p, uint32_t i);
void table_pool_free(struct table_pool *p);

struct table;
/*
 * Doubles a hash of index chains (*buckets, *n of them, a power of two):
 * every item is linked again at hash_of(t, i) through *next_of(t, i).
 * 0 or -ENOMEM, leaving the hash as it was.
 */
int table_chains_grow(struct table *t, uint32_t **buckets, size_t *n, size_t (*hash_of)(const struct table *t, uint32_t i),
		      uint32_t *(*next_of)(const struct table *t, uint32_t i));

static inline void *table_pool_at(const struct table_pool *p, uint32_t i)
{
	return p->items + (size_t)i * p->item_size;
}

/* A mapping as the table keeps it: 48 bytes (struct table_mapping is its caller's view). */
struct entry {
	int64_t expires;	/* table clock */
	uint32_t lifetime;	/* seconds granted by the last request */
	uint32_t heap_slot;	/* where it sits in the expiry heap */
	uint32_t client;	/* its client in t->client_pool */
	uint32_t link;		/* its link in t->link_pool; 0: TABLE_LINK_NONE */
	uint32_t nonce;		/* its PCP nonce in t->nonce_pool; 0: none (all zeros) */
	uint32_t hash_next;	/* the next entry in its key hash chain */
	uint32_t client_next;	/* the next of its client's entries */
	uint32_t client_prev;	/* the previous one; 0: it is the client's first */
	uint16_t internal_port;
	uint16_t external_port;
	uint16_t upstream_port;
	uint8_t protocol;
	uint8_t origin;
};
_Static_assert(sizeof(struct entry) == 48, "a table entry is 48 bytes: see docs/performance.md");

struct client {
	struct table_addr addr;
	uint32_t count;
	uint32_t first; /* its first entry */
	uint32_t next;	/* the next client in its hash chain */
};

/* How many mappings one link (table_mapping.link) holds; only links that hold any are kept. */
#define TABLE_LINK_BUCKETS 256
struct link_count {
	uint64_t link;
	uint32_t count;
	uint32_t next;
};

struct table {
	struct table_config cfg;
	struct port_range *allowed;
	struct port_range *reserved;
	struct table_rule *rules;
	uint32_t allowed_total; /* ports in all allowed ranges */

	struct table_pool entry_pool;  /* struct entry */
	struct table_pool client_pool; /* struct client */
	struct table_pool link_pool;   /* struct link_count */
	struct table_pool nonce_pool;  /* uint8_t[TABLE_NONCE_LEN] */

	uint32_t *buckets; /* key hash -> first entry */
	size_t n_buckets;  /* power of two */
	size_t count;

	uint32_t *clients; /* address hash -> first client */
	size_t n_client_buckets; /* power of two */
	size_t n_clients;

	uint32_t by_external[2][65536]; /* [0] UDP, [1] TCP: external port -> entry */
	uint32_t links[TABLE_LINK_BUCKETS];

	uint32_t *heap; /* entries, a binary min-heap on expires */
	size_t heap_size;
	size_t heap_cap;

	struct table_change *log;
	size_t log_len;
	size_t log_cap;
	int replaying; /* set while rolling back: no logging */
};

static inline struct entry *table_entry(const struct table *t, uint32_t i)
{
	return table_pool_at(&t->entry_pool, i);
}

static inline struct client *table_client(const struct table *t, uint32_t i)
{
	return table_pool_at(&t->client_pool, i);
}

static inline struct link_count *table_link(const struct table *t, uint32_t i)
{
	return table_pool_at(&t->link_pool, i);
}

/* The address of entry i's client. */
static inline const struct table_addr *table_entry_addr(const struct table *t, uint32_t i)
{
	return &table_client(t, table_entry(t, i)->client)->addr;
}

/* A 64-bit finaliser: spreads neighbouring ports and addresses apart. */
static inline uint64_t table_mix64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

/* An IPv4 address as itself, an IPv6 one folded into 64 bits. */
static inline uint64_t table_addr_bits(const struct table_addr *a)
{
	uint64_t hi, lo;

	if (table_addr_is_v4(a))
		return a->v4;
	memcpy(&hi, a->v6, 8);
	memcpy(&lo, a->v6 + 8, 8);
	return table_mix64(hi) ^ lo;
}

static inline size_t table_addr_hash(const struct table_addr *a)
{
	return (size_t)table_mix64(table_addr_bits(a));
}

static inline unsigned int proto_slot(uint8_t protocol)
{
	return protocol == IPPROTO_TCP;
}

/*
 * Clients and links (table_client.c).  find: the client of addr, or 0;
 * get: the same, made if new, 0 when out of memory; drop_if_empty gives
 * back a client that holds nothing.  link_held: how many mappings link
 * holds; link_add counts one more, returning the link's index (0 for
 * TABLE_LINK_NONE, which is never counted) or -ENOMEM; link_drop undoes it.
 */
uint32_t table_client_find(const struct table *t, const struct table_addr *addr);
uint32_t table_client_get(struct table *t, const struct table_addr *addr);
void table_client_drop_if_empty(struct table *t, uint32_t c);
uint32_t table_link_held(struct table *t, uint64_t link);
int64_t table_link_add(struct table *t, uint64_t link);
void table_link_drop(struct table *t, uint32_t l);

/* The expiry heap (table_heap.c): entry i in, out, or moved after its expiry changed; push is 0 or -ENOMEM. */
int table_heap_push(struct table *t, uint32_t i);
void table_heap_remove(struct table *t, uint32_t i);
void table_heap_update(struct table *t, uint32_t i);

/* Inserts m (the caller checked every conflict and limit), logging it; 0 or -ENOMEM. */
int table_entry_insert(struct table *t, const struct table_mapping *m);
/* Removes entry i, logging its deletion. */
void table_entry_remove(struct table *t, uint32_t i);
/* Entry i as its caller's view. */
void table_entry_view(const struct table *t, uint32_t i, struct table_mapping *m);
/* Sets entry i's nonce (NULL or all zeros: none); 0 or -ENOMEM, leaving it as it was. */
int table_entry_set_nonce(struct table *t, uint32_t i, const uint8_t *nonce);
/* The change log (table_log.c): appends one change, 0 or -ENOMEM (nothing is logged while undoing). */
int table_log_change(struct table *t, enum table_op op, const struct table_mapping *m, int64_t prev_expires,
		     uint32_t prev_lifetime);
/* Undoes the change log back to its first `to` changes (table_rollback() is table_undo(t, 0)). */
void table_undo(struct table *t, size_t to);

/* The entry of (client, protocol, internal port), or 0. */
uint32_t table_entry_find(const struct table *t, const struct table_addr *client, uint8_t protocol, uint16_t port);

/* Whether port may be handed out for protocol at all: allowed, not reserved, not 5350/5351 for UDP. */
int table_port_allowed(const struct table *t, uint8_t protocol, uint16_t port);
/* Whether the router itself uses the port (table_config.port_busy). */
int table_port_busy(const struct table *t, uint8_t protocol, uint16_t port);
/* Whether client may get port for protocol now: allowed, unmapped, not the router's, not another client's. */
int table_port_free(const struct table *t, const struct table_addr *client, uint8_t protocol, uint16_t port,
		    uint16_t internal);
/* Whether the rules let client map external to internal (ports in host order): the first matching rule decides. */
bool table_rules_allow(const struct table *t, const struct table_addr *client, uint16_t external, uint16_t internal);
/* Whether some allow rule matches client and internal at all: if none does, the request is not authorized. */
bool table_rules_permit(const struct table *t, const struct table_addr *client, uint16_t internal);
/* The port for a new mapping (host order), or 0 when none is free. */
/* *authorized: false when the rules allow the client no port at all for this internal port (result 2, not 4). */
uint16_t table_port_choose(const struct table *t, const struct table_addr *client, uint8_t protocol,
			   uint16_t internal_port, uint16_t suggested, bool *authorized);
/* table_config.random's default: uniform below bound, from the system's CSPRNG. */
uint32_t table_default_random(uint32_t bound, void *arg);

#endif
