/*
 * state_invariants.h - what every state the loaders hand out holds, checked
 * by the state file and journal fuzzers alike (REQUIRE() from fuzz.h).
 */
#ifndef NATPMP_STATE_INVARIANTS_H
#define NATPMP_STATE_INVARIANTS_H

#include <netinet/in.h>

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

#endif
