/*
 * ratelimit.c - token buckets in a chained hash of client addresses.
 *
 * Tokens are counted in thousandths so that whole milliseconds refill
 * exactly: a bucket gains `rate` thousandths per millisecond.
 */
#include <stdlib.h>

#include "engine/ratelimit.h"

#define RATELIMIT_SWEEP_MS 10000

struct bucket {
	uint32_t client;
	int64_t tokens; /* thousandths of a request */
	int64_t last;	/* ms of the last refill */
	struct bucket *next;
};

struct ratelimit {
	uint32_t rate;
	int64_t capacity; /* thousandths */
	struct bucket **slots;
	size_t n_slots; /* power of two */
	size_t count;
	int64_t last_sweep;
};

static size_t slot_of(const struct ratelimit *r, uint32_t client)
{
	uint64_t x = client * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x >> 32) & (r->n_slots - 1);
}

struct ratelimit *ratelimit_new(uint32_t rate)
{
	struct ratelimit *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->rate = rate;
	r->capacity = (int64_t)rate * 2 * 1000;
	r->n_slots = 64;
	if (!(r->slots = calloc(r->n_slots, sizeof(*r->slots)))) {
		free(r);
		return NULL;
	}
	return r;
}

void ratelimit_free(struct ratelimit *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_slots; i++) {
		struct bucket *b = r->slots[i], *next;
		for (; b; b = next) {
			next = b->next;
			free(b);
		}
	}
	free(r->slots);
	free(r);
}

static void refill(const struct ratelimit *r, struct bucket *b, int64_t now)
{
	if (now > b->last) {
		int64_t gained = (now - b->last) * r->rate;
		b->tokens = gained >= r->capacity - b->tokens ? r->capacity : b->tokens + gained;
		b->last = now;
	}
}

/* Forgets buckets that are full again: they behave exactly like new ones. */
static void sweep(struct ratelimit *r, int64_t now)
{
	for (size_t i = 0; i < r->n_slots; i++) {
		struct bucket **pp = &r->slots[i];
		while (*pp) {
			struct bucket *b = *pp;
			refill(r, b, now);
			if (b->tokens == r->capacity) {
				*pp = b->next;
				free(b);
				r->count--;
			} else {
				pp = &b->next;
			}
		}
	}
	r->last_sweep = now;
}

static void grow(struct ratelimit *r)
{
	size_t n = r->n_slots * 2, old = r->n_slots;
	struct bucket **slots = calloc(n, sizeof(*slots)), **prev = r->slots;

	if (!slots)
		return; /* longer chains, still correct */
	r->slots = slots;
	r->n_slots = n;
	for (size_t i = 0; i < old; i++) {
		struct bucket *b = prev[i], *next;
		for (; b; b = next) {
			next = b->next;
			size_t s = slot_of(r, b->client);
			b->next = slots[s];
			slots[s] = b;
		}
	}
	free(prev);
}

bool ratelimit_allow(struct ratelimit *r, uint32_t client, int64_t now_ms)
{
	struct bucket *b;

	if (r->rate == 0)
		return true;
	if (now_ms - r->last_sweep >= RATELIMIT_SWEEP_MS)
		sweep(r, now_ms);
	for (b = r->slots[slot_of(r, client)]; b && b->client != client; b = b->next)
		;
	if (!b) {
		/* Out of memory: serve rather than refuse a client we cannot track. */
		if (!(b = calloc(1, sizeof(*b))))
			return true;
		b->client = client;
		b->tokens = r->capacity;
		b->last = now_ms;
		if (r->count >= r->n_slots)
			grow(r);
		size_t s = slot_of(r, client);
		b->next = r->slots[s];
		r->slots[s] = b;
		r->count++;
	}
	refill(r, b, now_ms);
	if (b->tokens < 1000)
		return false;
	b->tokens -= 1000;
	return true;
}

size_t ratelimit_clients(const struct ratelimit *r)
{
	return r->count;
}
