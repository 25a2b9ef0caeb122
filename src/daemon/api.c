/*
 * api.c - the HTTP API's view of the daemon: status, listing, metrics,
 * /forward through the same turn.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "server_impl.h"
#include "api.h"
#include "expiry.h"
#include "external.h"
#include "turn.h"
#include "waiting.h"

/* What /health says; "serving" when the daemon answers with an address and its table is in place. */
static const char *server_status(const struct server *s)
{
	return !s->serving		      ? "starting"
	       : !external_address(s) ? "no external address"
	       : s->table_broken	      ? "nftables table not installed"
					      : "serving";
}

static int api_status(void *arg, struct json_object *out)
{
	struct server *s = arg;
	uint32_t public = external_address(s);
	char addr[INET_ADDRSTRLEN];
	const char *status = server_status(s);

	json_object_object_add(out, "status", json_object_new_string(status));
	json_object_object_add(out, "mappings", json_object_new_int64((int64_t)table_count(s->table)));
	json_object_object_add(out, "external_address", public ? json_object_new_string(netif_addr_str(public, addr)) : NULL);
	json_object_object_add(out, "epoch", json_object_new_int64(server_epoch(s, server_mono_s())));
	if (s->outer) {
		struct outer_status st;
		struct json_object *o = json_object_new_object();
		outer_status(s->outer, &st);
		json_object_object_add(o, "kind", json_object_new_string(st.kind));
		if (st.mapping) {
			json_object_object_add(o, "mapping", json_object_new_string(st.mapping));
			json_object_object_add(o, "filtering", json_object_new_string(st.filtering));
		}
		json_object_object_add(o, "forwarding", json_object_new_boolean(st.forwarding));
		json_object_object_add(o, "reason", st.why_not ? json_object_new_string(st.why_not) : NULL);
		json_object_object_add(out, "outer_nat", o);
	}
	return strcmp(status, "serving") == 0;
}

struct api_foreach {
	void (*fn)(const struct table_mapping *m, uint32_t remaining, void *arg);
	void *arg;
	int64_t now;
};

static int api_foreach_one(const struct table_mapping *m, void *arg)
{
	struct api_foreach *f = arg;
	int64_t left = m->expires - f->now;

	f->fn(m, left < 0 ? 0 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left, f->arg);
	return 0;
}

static void api_foreach(void *arg, void (*fn)(const struct table_mapping *m, uint32_t remaining, void *fnarg),
			void *fnarg)
{
	struct server *s = arg;
	struct api_foreach f = { fn, fnarg, server_mono_s() };

	table_foreach(s->table, api_foreach_one, &f);
}

static uint32_t api_public_address(void *arg)
{
	return external_address(arg);
}

static int count_one(const struct table_mapping *m, void *arg)
{
	struct metrics_gauges *g = arg;

	if (m->protocol == IPPROTO_TCP)
		g->mappings_tcp++;
	else
		g->mappings_udp++;
	g->mappings_http += m->origin == TABLE_ORIGIN_HTTP;
	return 0;
}

static int api_metrics(void *arg, FILE *out)
{
	struct server *s = arg;
	struct metrics_gauges g = { .epoch = server_epoch(s, server_mono_s()), .serving = !strcmp(server_status(s), "serving") };

	table_foreach(s->table, count_one, &g);
	if (s->outer) {
		const struct outer_stats *us = outer_stats(s->outer);
		struct outer_status st;
		outer_status(s->outer, &st);
		g.upstream = 1;
		g.stun = strcmp(st.kind, "stun") == 0;
		g.mapping = st.mapping;
		g.filtering = st.filtering;
		g.forwarding = st.forwarding;
		s->metrics.upstream_requests = us->requests;
		s->metrics.upstream_timeouts = us->timeouts;
		s->metrics.upstream_resets = us->resets;
	}
	return metrics_format(&s->metrics, &g, out);
}

/*
 * POST and DELETE /forward: the request a NAT-PMP client at that address
 * would send, through the same table, limits and transaction.  The host
 * must be on a listen interface's subnet, as a NAT-PMP client must.
 */
static int api_forward(void *arg, uint32_t client, uint8_t protocol, uint16_t internal_port, uint16_t suggested_port,
		       uint32_t lifetime, struct table_grant *grant, struct http_pending *pending)
{
	struct server *s = arg;
	struct in_addr a = { .s_addr = client };
	struct server_pending *q = NULL;
	int64_t now = server_mono_s();
	int lan = 0, r;
	uint16_t result;

	for (size_t i = 0; i < s->n_listeners && !lan; i++) {
		if (udp_local_allowed(&s->listeners[i].sock, a, now))
			return HTTP_FORWARD_ROUTER;
		lan = udp_host_allowed(&s->listeners[i].sock, a, now);
	}
	if (!lan)
		return HTTP_FORWARD_NOT_LAN;
	/* A delete says whether there was something to delete. */
	if (!lifetime && internal_port && !table_find(s->table, table_addr_v4(client), protocol, internal_port, NULL))
		return HTTP_FORWARD_NOT_FOUND;
	/* Upstream mode: room to wait for the gateway is made before anything changes. */
	if (s->outer && lifetime &&
	    (!waiting_may_wait(s, client) || !(q = calloc(1, sizeof(*q)))))
		return HTTP_FORWARD_FAILED;
	/* The token holder speaks for the host: no sender at the link layer to count. */
	result = table_request(s->table, table_addr_v4(client), TABLE_ORIGIN_HTTP, protocol, internal_port, suggested_port, lifetime,
			       now, grant, TABLE_LINK_NONE);
	if (result == TABLE_RESULT_SUCCESS)
		waiting_wish_add(s, protocol, grant->external_port, suggested_port);
	if ((r = turn_apply(s, now, "deleted")) < 0) {
		free(q);
		return HTTP_FORWARD_FAILED;
	}
	if (result == TABLE_RESULT_SUCCESS)
		s->metrics.http_forwards++;
	expiry_end_flows(s);
	expiry_arm(s, now);
	/* Upstream mode: as for a NAT-PMP client, the answer is the gateway's port, once it has granted one. */
	if (s->outer && result == TABLE_RESULT_SUCCESS && lifetime) {
		uint16_t port = outer_granted(s->outer, protocol, grant->external_port);
		if (port) {
			free(q);
			grant->external_port = port;
			return result;
		}
		*q = (struct server_pending){ .protocol = protocol, .local_port = grant->external_port, .client = client,
					      .http = pending };
		waiting_add(s, q);
		return HTTP_FORWARD_PENDING;
	}
	free(q);
	return result;
}

static const struct http_backend server_http_backend = {
	.status = api_status,
	.foreach = api_foreach,
	.public_address = api_public_address,
	.metrics = api_metrics,
	.forward = api_forward,
};

struct http *api_listen(struct server *s, const char *listen)
{
	struct http_backend b = server_http_backend;

	b.arg = s;
	/* Opened before the outer NAT itself: the configuration says whether there will be one. */
	b.upstream = s->cfg.upstream_gateway || s->cfg.n_stun;
	return http_open(s->base, listen, &s->cfg, &b);
}

int api_open(struct server *s)
{
	if (!s->cfg.http_listen[0])
		return 0;
	return (s->http = api_listen(s, s->cfg.http_listen)) ? 0 : -1;
}
