/*
 * ratelimit.h - a token bucket per client address: `rate` requests a
 * second, bursts of twice that.  A LAN host that floods the daemon gets its
 * excess dropped without delaying anyone else's answers.
 *
 * Only sources the daemon serves (its LAN subnets) reach it, and buckets
 * that have been idle long enough to be full again are forgotten, so memory
 * follows the number of recently active clients.
 */
#ifndef NATPMP_RATELIMIT_H
#define NATPMP_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct ratelimit;

/* rate 0: no limit.  NULL when out of memory. */
struct ratelimit *ratelimit_new(uint32_t rate);
void ratelimit_free(struct ratelimit *r);
/* Takes a token for one request from client at now_ms (monotonic); false: drop it. */
bool ratelimit_allow(struct ratelimit *r, uint32_t client, int64_t now_ms);
/* Clients with a bucket now (for tests and metrics). */
size_t ratelimit_clients(const struct ratelimit *r);

#endif
