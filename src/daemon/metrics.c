/*
 * metrics.c - Prometheus text exposition format, version 0.0.4: for each
 * family a HELP and a TYPE line, then its samples; counters end in _total.
 */
#include <inttypes.h>

#include "daemon/metrics.h"

static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(FILE *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "counter", help);
	fprintf(out, "%s %" PRIu64 "\n", name, v);
}

static void gauge(FILE *out, const char *name, const char *help, uint64_t v)
{
	family(out, name, "gauge", help);
	fprintf(out, "%s %" PRIu64 "\n", name, v);
}

int metrics_format(const struct metrics *m, const struct metrics_gauges *g, FILE *out)
{
	static const char *const opcodes[METRICS_OPCODES] = { "0", "1", "2", "other", "other_version",
							      "announce", "map", "other" };
	static const char *const drops[METRICS_DROP_COUNT] = { "not_lan", "not_local", "rate_limited", "malformed" };
	static const char *const hooks[METRICS_HOOK_COUNT] = { "ok", "failed", "timeout", "dropped" };

	family(out, "natpmp_requests_total", "counter",
	       "NAT-PMP requests answered, by opcode (0 address, 1 UDP, 2 TCP, other: another opcode, other_version: "
	       "a datagram of a version neither NAT-PMP's 0 nor PCP's 2) and RFC 6886 result code.");
	for (int o = 0; o < METRICS_NATPMP_ROWS; o++)
		for (int r = 0; r <= 5; r++)
			fprintf(out, "natpmp_requests_total{opcode=\"%s\",result=\"%d\"} %" PRIu64 "\n", opcodes[o], r,
				m->requests[o][r]);
	family(out, "natpmp_pcp_requests_total", "counter",
	       "PCP requests answered, by opcode (announce, map, other: PEER or an opcode not defined) and RFC 6887 "
	       "result code.");
	for (int o = METRICS_NATPMP_ROWS; o < METRICS_OPCODES; o++)
		for (int r = 0; r < METRICS_RESULTS; r++)
			fprintf(out, "natpmp_pcp_requests_total{opcode=\"%s\",result=\"%d\"} %" PRIu64 "\n", opcodes[o],
				r, m->requests[o][r]);
	family(out, "natpmp_dropped_total", "counter", "Datagrams dropped without an answer, by reason.");
	for (int d = 0; d < METRICS_DROP_COUNT; d++)
		fprintf(out, "natpmp_dropped_total{reason=\"%s\"} %" PRIu64 "\n", drops[d], m->drops[d]);
	family(out, "natpmp_mappings", "gauge", "Mappings installed, by protocol.");
	fprintf(out, "natpmp_mappings{protocol=\"udp\"} %" PRIu64 "\n", g->mappings_udp);
	fprintf(out, "natpmp_mappings{protocol=\"tcp\"} %" PRIu64 "\n", g->mappings_tcp);
	gauge(out, "natpmp_http_mappings", "Installed mappings that were made through the HTTP API.", g->mappings_http);
	gauge(out, "natpmp_epoch_seconds", "The epoch NAT-PMP answers carry (seconds since the table began).", g->epoch);
	gauge(out, "natpmp_serving", "1 when the daemon answers with an external address and its table is installed.",
	      (uint64_t)g->serving);
	counter(out, "natpmp_nft_transactions_total", "nftables transactions committed.", m->nft_transactions);
	counter(out, "natpmp_nft_errors_total", "nftables transactions the kernel refused.", m->nft_errors);
	counter(out, "natpmp_repairs_total", "Times the daemon restored its nftables table after someone else changed it.",
		m->repairs);
	counter(out, "natpmp_state_journal_writes_total", "Synced appends to the state journal.", m->state_journal_writes);
	counter(out, "natpmp_state_snapshots_total", "State snapshots written (compactions).", m->state_snapshots);
	counter(out, "natpmp_state_errors_total", "State file or journal writes that failed.", m->state_errors);
	counter(out, "natpmp_announcements_total", "Rounds of external address announcements (RFC 6886 3.2.1).",
		m->announcements);
	counter(out, "natpmp_reloads_total", "SIGHUP reloads that took effect.", m->reloads);
	counter(out, "natpmp_reload_errors_total", "SIGHUP reloads refused for a bad configuration.", m->reload_errors);
	counter(out, "natpmp_http_forwards_total", "POST and DELETE /forward requests that changed or renewed a mapping.",
		m->http_forwards);
	family(out, "natpmp_hooks_total", "counter", "Hook runs, by outcome.");
	for (int h = 0; h < METRICS_HOOK_COUNT; h++)
		fprintf(out, "natpmp_hooks_total{outcome=\"%s\"} %" PRIu64 "\n", hooks[h], m->hooks[h]);
	if (g->stun) {
		counter(out, "natpmp_stun_requests_total", "STUN Binding requests sent (not counting retransmissions).",
			m->upstream_requests);
		counter(out, "natpmp_stun_timeouts_total", "STUN requests and connections that got no answer.",
			m->upstream_timeouts);
		counter(out, "natpmp_stun_port_changes_total",
			"Times the outer NAT moved a binding to another public port (it restarted or dropped it).",
			m->upstream_resets);
		family(out, "natpmp_stun_nat_info", "gauge",
		       "The outer NAT's mapping and filtering behaviour (RFC 4787, by RFC 5780 discovery).");
		fprintf(out, "natpmp_stun_nat_info{mapping=\"%s\",filtering=\"%s\"} 1\n", g->mapping, g->filtering);
		gauge(out, "natpmp_stun_forwarding", "1 when new mappings are made through the outer NAT; 0 when it filters.",
		      (uint64_t)g->forwarding);
	} else if (g->upstream) {
		counter(out, "natpmp_upstream_requests_total", "Requests sent to the upstream gateway (not counting retransmissions).",
			m->upstream_requests);
		counter(out, "natpmp_upstream_timeouts_total", "Requests the upstream gateway never answered.",
			m->upstream_timeouts);
		counter(out, "natpmp_upstream_resets_total", "Times the upstream gateway's epoch showed it lost its mappings.",
			m->upstream_resets);
	}
	return ferror(out) ? -1 : 0;
}
