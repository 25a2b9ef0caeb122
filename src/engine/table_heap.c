/*
 * table_heap.c - the table's expiry order: a binary min-heap of entries on
 * their expiry time, each entry knowing its slot (entry.heap_slot), so that
 * a renewal or a removal costs O(log n) and the next expiry O(1).
 */
#include <errno.h>
#include <stdlib.h>

#include "table_impl.h"

static int64_t expires_at(const struct table *t, size_t slot)
{
	return table_entry(t, t->heap[slot])->expires;
}

static void table_heap_swap(struct table *t, size_t a, size_t b)
{
	uint32_t tmp = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = tmp;
	table_entry(t, t->heap[a])->heap_slot = (uint32_t)a;
	table_entry(t, t->heap[b])->heap_slot = (uint32_t)b;
}

static void table_heap_up(struct table *t, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (expires_at(t, parent) <= expires_at(t, i))
			break;
		table_heap_swap(t, i, parent);
		i = parent;
	}
}

static void table_heap_down(struct table *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < t->heap_size && expires_at(t, l) < expires_at(t, min))
			min = l;
		if (r < t->heap_size && expires_at(t, r) < expires_at(t, min))
			min = r;
		if (min == i)
			break;
		table_heap_swap(t, i, min);
		i = min;
	}
}

int table_heap_push(struct table *t, uint32_t i)
{
	if (t->heap_size == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 64;
		uint32_t *h = realloc(t->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->heap = h;
		t->heap_cap = cap;
	}
	table_entry(t, i)->heap_slot = (uint32_t)t->heap_size;
	t->heap[t->heap_size++] = i;
	table_heap_up(t, t->heap_size - 1);
	return 0;
}

void table_heap_remove(struct table *t, uint32_t i)
{
	size_t slot = table_entry(t, i)->heap_slot;

	t->heap_size--;
	if (slot != t->heap_size) {
		table_heap_swap(t, slot, t->heap_size);
		table_heap_up(t, slot);
		table_heap_down(t, slot);
	}
}

void table_heap_update(struct table *t, uint32_t i)
{
	table_heap_up(t, table_entry(t, i)->heap_slot);
	table_heap_down(t, table_entry(t, i)->heap_slot);
}
