/*
 * table_client.c - who holds how many mappings: the table's clients (by
 * address: each with its count and list of entries, for the per-client
 * limit and delete-all) and links (by link-layer address, for the limit a
 * claimed source address cannot escape).  Each is kept while it holds a
 * mapping, in a hash of 32-bit indices into its pool.
 */
#include <errno.h>
#include <stdlib.h>

#include "table_impl.h"

uint32_t table_client_find(const struct table *t, const struct table_addr *addr)
{
	uint32_t c = t->clients[table_addr_hash(addr) & (t->n_client_buckets - 1)];

	while (c && !table_addr_equal(&table_client(t, c)->addr, addr))
		c = table_client(t, c)->next;
	return c;
}

static size_t client_hash(const struct table *t, uint32_t c)
{
	return table_addr_hash(&table_client(t, c)->addr);
}

static uint32_t *client_next(const struct table *t, uint32_t c)
{
	return &table_client(t, c)->next;
}

/* The client of addr, made if new; 0 when out of memory. */
uint32_t table_client_get(struct table *t, const struct table_addr *addr)
{
	uint32_t c = table_client_find(t, addr);

	if (c)
		return c;
	if (t->n_clients >= t->n_client_buckets &&
	    table_chains_grow(t, &t->clients, &t->n_client_buckets, client_hash, client_next) < 0)
		return 0;
	if (!(c = table_pool_take(&t->client_pool)))
		return 0;
	struct client *cl = table_client(t, c);
	size_t slot = table_addr_hash(addr) & (t->n_client_buckets - 1);
	cl->addr = *addr;
	cl->next = t->clients[slot];
	t->clients[slot] = c;
	t->n_clients++;
	return c;
}

void table_client_drop_if_empty(struct table *t, uint32_t c)
{
	uint32_t *pp;

	if (table_client(t, c)->count)
		return;
	for (pp = &t->clients[table_addr_hash(&table_client(t, c)->addr) & (t->n_client_buckets - 1)]; *pp != c;
	     pp = &table_client(t, *pp)->next)
		;
	*pp = table_client(t, c)->next;
	t->n_clients--;
	table_pool_give(&t->client_pool, c);
}

static uint32_t *table_link_slot(struct table *t, uint64_t link)
{
	uint32_t *pp = &t->links[table_mix64(link) & (TABLE_LINK_BUCKETS - 1)];
	struct link_count *l;

	while (*pp && (l = table_link(t, *pp))->link != link)
		pp = &l->next;
	return pp;
}

uint32_t table_link_held(struct table *t, uint64_t link)
{
	uint32_t l = *table_link_slot(t, link);

	return l ? table_link(t, l)->count : 0;
}

/* Counts one more mapping for link: its index in the link pool (0 for TABLE_LINK_NONE), or -ENOMEM. */
int64_t table_link_add(struct table *t, uint64_t link)
{
	uint32_t l;

	if (link == TABLE_LINK_NONE)
		return 0;
	if (!(l = *table_link_slot(t, link))) {
		if (!(l = table_pool_take(&t->link_pool)))
			return -ENOMEM;
		struct link_count *lc = table_link(t, l);
		uint32_t *head = &t->links[table_mix64(link) & (TABLE_LINK_BUCKETS - 1)];
		lc->link = link;
		lc->next = *head;
		*head = l;
	}
	table_link(t, l)->count++;
	return l;
}

void table_link_drop(struct table *t, uint32_t l)
{
	struct link_count *lc;
	uint32_t *pp;

	if (!l)
		return;
	lc = table_link(t, l);
	if (--lc->count)
		return;
	pp = table_link_slot(t, lc->link);
	*pp = lc->next;
	table_pool_give(&t->link_pool, l);
}
