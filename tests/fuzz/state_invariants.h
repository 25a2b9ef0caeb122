/*
 * state_invariants.h - what every state the loaders hand out holds, checked
 * by the state file and journal fuzzers alike (REQUIRE() from fuzz.h).
 */
#ifndef NATPMP_STATE_INVARIANTS_H
#define NATPMP_STATE_INVARIANTS_H

#include <netinet/in.h>
#include <string.h>

#include "fuzz.h"
#include "store/state.h"

/* Only TCP/UDP mappings with ports 1-65535 and no negative time. */
static inline void require_valid_mappings(const struct state *s)
{
	REQUIRE(s->n_mappings == 0 || s->mappings != NULL);
	for (size_t i = 0; i < s->n_mappings; i++) {
		const struct state_mapping *m = &s->mappings[i];

		REQUIRE(m->protocol == IPPROTO_TCP || m->protocol == IPPROTO_UDP);
		REQUIRE(m->internal_port >= 1);
		REQUIRE(m->external_port >= 1);
		REQUIRE(m->expires >= 0);
		REQUIRE(m->expires_boot >= 0);
	}
}

/* Every field of two mappings (not their padding) is the same. */
static inline void require_same_mapping(const struct state_mapping *x, const struct state_mapping *y)
{
	REQUIRE(x->client == y->client && x->protocol == y->protocol && x->internal_port == y->internal_port);
	REQUIRE(x->external_port == y->external_port && x->lifetime == y->lifetime && x->expires == y->expires);
	REQUIRE(x->origin == y->origin && x->upstream_port == y->upstream_port && x->expires_boot == y->expires_boot);
	REQUIRE(memcmp(x->nonce, y->nonce, sizeof(x->nonce)) == 0 && x->ipv6 == y->ipv6);
	REQUIRE(memcmp(x->client6, y->client6, sizeof(x->client6)) == 0);
}

#endif
