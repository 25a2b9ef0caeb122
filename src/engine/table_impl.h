/*
 * table_impl.h - what table.c (the indexes and requests) and table_port.c
 * (port choice) share: the table's own structures.  Private to
 * src/engine/; engine/table.h is the interface.
 */
#ifndef NATPMP_ENGINE_TABLE_IMPL_H
#define NATPMP_ENGINE_TABLE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "engine/table.h"

struct entry {
	struct table_mapping m;
	struct entry *hash_next;     /* key hash chain */
	struct entry *client_next;   /* the client's list */
	struct entry **client_prev;
};
/*
 * The memory budget of docs/performance.md: an entry a malloc chunk of 96
 * bytes on 64-bit systems (80 before PCP's nonce).
 */
_Static_assert(sizeof(void *) != 8 || sizeof(struct entry) <= 88, "a table entry outgrew 88 bytes");

struct client {
	struct table_addr addr;
	uint32_t count;
	struct entry *mappings;
	struct client *next;
};

/* How many mappings one link (table_mapping.link) holds; only links that hold any are kept. */
#define TABLE_LINK_BUCKETS 256
struct link_count {
	uint64_t link;
	uint32_t count;
	struct link_count *next;
};

struct table {
	struct table_config cfg;
	struct port_range *allowed;
	struct port_range *reserved;
	struct table_rule *rules;
	uint32_t allowed_total; /* ports in all allowed ranges */

	struct entry **buckets;
	size_t n_buckets; /* power of two */
	size_t count;

	struct client **clients;
	size_t n_client_buckets; /* power of two */
	size_t n_clients;

	struct entry *by_external[2][65536]; /* [0] UDP, [1] TCP */
	struct link_count *links[TABLE_LINK_BUCKETS];

	struct entry **heap;
	size_t heap_size;
	size_t heap_cap;

	struct table_change *log;
	size_t log_len;
	size_t log_cap;
	int replaying; /* set while rolling back: no logging */
};

static inline unsigned int proto_slot(uint8_t protocol)
{
	return protocol == IPPROTO_TCP;
}

/* The expiry heap (table_heap.c): an entry in, out, or moved after its expiry changed; push is 0 or -ENOMEM. */
int table_heap_push(struct table *t, struct entry *e);
void table_heap_remove(struct table *t, struct entry *e);
void table_heap_update(struct table *t, struct entry *e);

/* Inserts m (the caller checked every conflict and limit), logging it; 0 or -ENOMEM. */
int table_entry_insert(struct table *t, const struct table_mapping *m);
/* Removes e, logging its deletion. */
void table_entry_remove(struct table *t, struct entry *e);
/* The change log (table_log.c): appends one change, 0 or -ENOMEM (nothing is logged while undoing). */
int table_log_change(struct table *t, enum table_op op, const struct table_mapping *m, int64_t prev_expires,
		     uint32_t prev_lifetime);
/* Undoes the change log back to its first `to` changes (table_rollback() is table_undo(t, 0)). */
void table_undo(struct table *t, size_t to);

/* The mapping of (client, protocol, internal port), or NULL. */
struct entry *table_entry_find(const struct table *t, const struct table_addr *client, uint8_t protocol,
			       uint16_t port);

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
