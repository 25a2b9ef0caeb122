/*
 * table_pool.c - the table's storage: arrays of fixed-size items handed
 * out by index.  One array instead of one malloc per item saves the
 * allocator's 8-16 bytes a chunk and lets links be 32-bit indices; the
 * array grows by doubling (realloc, which for large arrays remaps pages
 * rather than copy them), and freed items are reused before it grows.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table_impl.h"

void table_pool_init(struct table_pool *p, uint32_t item_size)
{
	*p = (struct table_pool){ .item_size = item_size };
}

uint32_t table_pool_take(struct table_pool *p)
{
	uint32_t i = p->free;

	if (i) {
		memcpy(&p->free, table_pool_at(p, i), sizeof(p->free));
	} else {
		if (p->used == 0)
			p->used = 1; /* index 0 means none */
		if (p->used >= p->cap) {
			uint32_t cap = p->cap ? p->cap * 2 : 64;
			unsigned char *items;

			if (cap <= p->cap || !(items = realloc(p->items, (size_t)cap * p->item_size)))
				return 0;
			p->items = items;
			p->cap = cap;
		}
		i = p->used++;
	}
	memset(table_pool_at(p, i), 0, p->item_size);
	return i;
}

void table_pool_give(struct table_pool *p, uint32_t i)
{
	memcpy(table_pool_at(p, i), &p->free, sizeof(p->free));
	p->free = i;
}

int table_chains_grow(struct table *t, uint32_t **buckets, size_t *n, size_t (*hash_of)(const struct table *t, uint32_t i),
		      uint32_t *(*next_of)(const struct table *t, uint32_t i))
{
	size_t size = *n * 2;
	uint32_t *b = calloc(size, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t k = 0; k < *n; k++) {
		uint32_t i = (*buckets)[k], next;

		for (; i; i = next) {
			size_t slot = hash_of(t, i) & (size - 1);

			next = *next_of(t, i);
			*next_of(t, i) = b[slot];
			b[slot] = i;
		}
	}
	free(*buckets);
	*buckets = b;
	*n = size;
	return 0;
}

void table_pool_free(struct table_pool *p)
{
	free(p->items);
	table_pool_init(p, p->item_size);
}
