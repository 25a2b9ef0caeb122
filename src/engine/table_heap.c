/*
 * table_heap.c - the table's expiry order: a binary min-heap of entries on
 * their expiry time, each entry knowing its slot (table_mapping.heap_slot),
 * so that a renewal or a removal costs O(log n) and the next expiry O(1).
 */
#include <errno.h>
#include <stdlib.h>

#include "table_impl.h"

static void table_heap_swap(struct table *t, size_t a, size_t b)
{
	struct entry *tmp = t->heap[a];

	t->heap[a] = t->heap[b];
	t->heap[b] = tmp;
	t->heap[a]->m.heap_slot = (uint32_t)a;
	t->heap[b]->m.heap_slot = (uint32_t)b;
}

static void table_heap_up(struct table *t, size_t i)
{
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (t->heap[parent]->m.expires <= t->heap[i]->m.expires)
			break;
		table_heap_swap(t, i, parent);
		i = parent;
	}
}

static void table_heap_down(struct table *t, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, min = i;
		if (l < t->heap_size && t->heap[l]->m.expires < t->heap[min]->m.expires)
			min = l;
		if (r < t->heap_size && t->heap[r]->m.expires < t->heap[min]->m.expires)
			min = r;
		if (min == i)
			break;
		table_heap_swap(t, i, min);
		i = min;
	}
}

int table_heap_push(struct table *t, struct entry *e)
{
	if (t->heap_size == t->heap_cap) {
		size_t cap = t->heap_cap ? t->heap_cap * 2 : 64;
		struct entry **h = realloc(t->heap, cap * sizeof(*h));
		if (!h)
			return -ENOMEM;
		t->heap = h;
		t->heap_cap = cap;
	}
	e->m.heap_slot = (uint32_t)t->heap_size;
	t->heap[t->heap_size++] = e;
	table_heap_up(t, e->m.heap_slot);
	return 0;
}

void table_heap_remove(struct table *t, struct entry *e)
{
	size_t i = e->m.heap_slot;

	t->heap_size--;
	if (i != t->heap_size) {
		table_heap_swap(t, i, t->heap_size);
		table_heap_up(t, i);
		table_heap_down(t, i);
	}
}

void table_heap_update(struct table *t, struct entry *e)
{
	table_heap_up(t, e->m.heap_slot);
	table_heap_down(t, e->m.heap_slot);
}
