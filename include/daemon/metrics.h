/*
 * metrics.h - the daemon's counters, and their Prometheus text form.
 *
 * The server bumps the counters where things happen; the HTTP API's
 * /metrics renders them with metrics_format(), together with the gauges the
 * server computes at that moment.  Counters only ever grow, from the start
 * of the process (Prometheus handles the reset at a restart).
 */
#ifndef NATPMP_METRICS_H
#define NATPMP_METRICS_H

#include <stdint.h>
#include <stdio.h>

enum metrics_drop {
	METRICS_DROP_NOT_LAN,	   /* source outside the interface's subnets */
	METRICS_DROP_NOT_LOCAL,	   /* sent to an address that is not the interface's (RFC 6886 3.3) */
	METRICS_DROP_RATE_LIMITED, /* over --rate-limit */
	METRICS_DROP_MALFORMED,	   /* too short, or a reply */
	METRICS_DROP_COUNT
};

enum metrics_hook { METRICS_HOOK_OK, METRICS_HOOK_FAILED, METRICS_HOOK_TIMEOUT, METRICS_HOOK_DROPPED, METRICS_HOOK_COUNT };

/*
 * The rows of requests[]: wire/codec.h's CODEC_METRIC_* (NAT-PMP's 0, 1, 2,
 * any other opcode, a version not served; PCP's ANNOUNCE, MAP, any other).
 */
#define METRICS_OPCODES 8
#define METRICS_NATPMP_ROWS 5
#define METRICS_RESULTS 14 /* RFC 6886's result codes 0-5, RFC 6887's 0-13 */

struct metrics {
	uint64_t requests[METRICS_OPCODES][METRICS_RESULTS];
	uint64_t drops[METRICS_DROP_COUNT];
	uint64_t nft_transactions;
	uint64_t nft_errors;
	uint64_t repairs;
	uint64_t state_journal_writes;
	uint64_t state_snapshots;
	uint64_t state_errors;
	uint64_t announcements;
	uint64_t reloads;
	uint64_t reload_errors;
	uint64_t http_forwards;
	uint64_t hooks[METRICS_HOOK_COUNT];
	/* Upstream and STUN mode: copied from outer_stats() at each scrape. */
	uint64_t upstream_requests;
	uint64_t upstream_timeouts;
	uint64_t upstream_resets;
};

/* What is true at the moment of the scrape. */
struct metrics_gauges {
	uint64_t mappings_udp, mappings_tcp;
	uint64_t mappings_http; /* of those, made through the HTTP API */
	uint32_t epoch;
	int serving; /* 1: answering with an external address, table installed */
	int upstream; /* upstream or STUN mode: the outer NAT's families are written */
	int stun;     /* STUN mode: ... as natpmp_stun_*, with what follows */
	const char *mapping, *filtering; /* STUN mode: the outer NAT's behaviour (RFC 4787's words) */
	int forwarding; /* STUN mode: new mappings are made through the outer NAT */
};

/* Appends the exposition text to out (an open memstream or file); 0 or -1 when the write failed. */
int metrics_format(const struct metrics *m, const struct metrics_gauges *g, FILE *out);

#endif
