/*
 * waiting.c - answers that wait for the outer NAT: pending requests, and
 * what the outer NAT reports.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "waiting.h"
/* For the gateway's retry interval in a log message. */
#include "outer/upstream.h"
#include "expiry.h"
#include "external.h"
#include "persist.h"
#include "turn.h"

static void waiting_answer(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t result,
			   uint16_t port);

/* What the log calls the outer NAT: a NAT-PMP gateway is asked, a STUN-mode one is kept open from here. */
static const char *waiting_outer(const struct server *s)
{
	return s->cfg.n_stun ? "outer NAT" : "gateway";
}

/*
 * Remembers what a client suggested for the mapping a request was granted
 * on local_port, for turn_settle() to ask the gateway; the turn's apply
 * forgets them all.
 */
void waiting_wish_add(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t suggested)
{
	if (local_port && s->n_wishes < SERVER_TURN_MAX)
		s->wishes[s->n_wishes++] = (struct waiting_wish){ protocol, local_port, suggested };
}

/* What the client suggested for the mapping this turn granted on local_port; 0 when it is not known. */
static uint16_t waiting_wish(const struct server *s, uint8_t protocol, uint16_t local_port)
{
	for (size_t i = 0; i < s->n_wishes; i++)
		if (s->wishes[i].protocol == protocol && s->wishes[i].local_port == local_port)
			return s->wishes[i].suggested;
	return 0;
}

/*
 * Upstream mode: the gateway follows the table.  The hook hears of a
 * mapping once the gateway has granted it (waiting_on_mapped), and of
 * its end only if it was granted.
 */
void waiting_follow(struct server *s, const struct table_change *ch, int moved, const char *why)
{
	const struct table_mapping *m = &ch->mapping;
	uint16_t suggested;

	switch (ch->op) {
	case TABLE_ADD:
	case TABLE_RENEW:
		/* A mapping the gateway granted before keeps asking for its port; a new one for the client's wish. */
		suggested = m->upstream_port ? m->upstream_port : waiting_wish(s, m->protocol, m->external_port);
		if (outer_keep(s->outer, m->protocol, m->external_port, suggested, m->expires) < 0)
			log_warnx("upstream: out of memory: %s %u is not asked for at the gateway",
				  proto_protocol_name(m->protocol), m->external_port);
		break;
	case TABLE_DEL:
		outer_drop(s->outer, m->protocol, m->external_port);
		waiting_answer(s, m->protocol, m->external_port, TABLE_RESULT_NETWORK_FAILURE, 0);
		if (m->upstream_port && !moved)
			turn_hook(s, m, strcmp(why, "expired") == 0 ? "expired" : "deleted");
		break;
	}
}

/* Whether another request may wait for the gateway on client's behalf. */
int waiting_may_wait(const struct server *s, uint32_t client)
{
	const struct server_pending *q;
	size_t n = 0;

	if (s->n_pending >= SERVER_MAX_PENDING)
		return 0;
	TAILQ_FOREACH(q, &s->pending, link)
		n += (q->l ? q->peer.sin_addr.s_addr : q->client) == client;
	return n < SERVER_MAX_PENDING_PER_CLIENT;
}

/* q waits for the gateway's answer on its mapping (waiting_answer). */
void waiting_add(struct server *s, struct server_pending *q)
{
	TAILQ_INSERT_TAIL(&s->pending, q, link);
	s->n_pending++;
}

/* A map request answered once the gateway has; one per client and request, however often it is sent. */
void waiting_defer(struct server *s, struct server_listener *l, const struct udp_packet *p,
			 const struct server_request *r)
{
	struct server_pending *q;

	TAILQ_FOREACH(q, &s->pending, link)
		if (q->l == l && q->peer.sin_addr.s_addr == p->peer.v4.sin_addr.s_addr && q->peer.sin_port == p->peer.v4.sin_port &&
		    q->codec == r->codec && q->req.opcode == r->req.opcode && q->protocol == r->req.protocol &&
		    q->req.internal_port == r->req.internal_port &&
		    q->local_port == r->grant.external_port)
			return;
	if (!waiting_may_wait(s, p->peer.v4.sin_addr.s_addr) || !(q = calloc(1, sizeof(*q))))
		return;
	*q = (struct server_pending){
		.protocol = r->req.protocol,
		.local_port = r->grant.external_port,
		.l = l,
		.peer = p->peer.v4,
		.local = p->local,
		.codec = r->codec,
		.req = r->req,
	};
	waiting_add(s, q);
}

/*
 * The gateway has answered for (protocol, local_port): so can everyone
 * waiting on it, with its port and the lifetime the table granted, or with
 * result.
 */
static void waiting_answer(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t result,
				  uint16_t port)
{
	struct table_mapping m;
	struct server_pending *q, *next;
	uint32_t lifetime = table_find_external(s->table, protocol, local_port, &m) && result == TABLE_RESULT_SUCCESS
				    ? m.lifetime : 0;

	if (result != TABLE_RESULT_SUCCESS)
		port = 0;
	for (q = TAILQ_FIRST(&s->pending); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->protocol != protocol || q->local_port != local_port)
			continue;
		TAILQ_REMOVE(&s->pending, q, link);
		s->n_pending--;
		if (q->l) {
			struct udp_packet pkt = { .peer.v4 = q->peer, .local = q->local };
			struct codec_answer a = { .result = result, .epoch = server_epoch(s, server_mono_s()),
						  .external_address = external_address(s), .external_port = port,
						  .lifetime = lifetime };
			pkt.reply_len = q->codec->encode(&q->req, &a, pkt.reply);
			udp_send(&q->l->sock, &pkt, 1);
			turn_count_answer(s, q->req.metric_op, q->codec->wire_result(&a));
		} else {
			struct table_grant g = { port, lifetime };
			http_forward_done(q->http, result, &g);
		}
		free(q);
	}
}

/* Forgets the requests still waiting: those from clients unanswered (they ask again), the HTTP ones with 503. */
void waiting_flush(struct server *s, int udp, int http)
{
	struct server_pending *q, *next;

	for (q = TAILQ_FIRST(&s->pending); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->l ? !udp : !http)
			continue;
		TAILQ_REMOVE(&s->pending, q, link);
		s->n_pending--;
		if (!q->l)
			http_forward_done(q->http, HTTP_FORWARD_FAILED, NULL);
		free(q);
	}
}

/* What a client is told when the gateway refused: its reason when the client can act on it, else 3. */
static uint16_t waiting_result(uint16_t result)
{
	return result == NATPMP_RESULT_NOT_AUTHORIZED	    ? TABLE_RESULT_NOT_AUTHORIZED
	       : result == NATPMP_RESULT_OUT_OF_RESOURCES ? TABLE_RESULT_OUT_OF_RESOURCES
							   : TABLE_RESULT_NETWORK_FAILURE;
}

void waiting_on_mapped(void *arg, uint8_t protocol, uint16_t local_port, uint16_t result, uint16_t port)
{
	struct server *s = arg;
	struct table_mapping found;
	const struct table_mapping *m = table_find_external(s->table, protocol, local_port, &found) ? &found : NULL;
	char client[TABLE_ADDR_STRLEN];
	int64_t now = server_mono_s();
	struct table_grant g;

	if (!m) {
		outer_drop(s->outer, protocol, local_port);
		return;
	}
	table_addr_str(&m->client, client);
	if (result == TABLE_RESULT_SUCCESS) {
		if (port != m->upstream_port) {
			uint16_t was = m->upstream_port;
			struct table_change ch = { .op = TABLE_RENEW };
			(void)table_set_upstream(s->table, protocol, local_port, port, &ch.mapping);
			/*
			 * The gateway's port is acknowledged only once it is on disk.
			 * A mapping nobody was told of yet is taken back as if the
			 * gateway had refused; one granted before keeps its new port
			 * in memory (a restart asks the gateway again anyway), and
			 * whoever waits for it now is told 3.
			 */
			if (persist_changes(s, &ch, 1, now) < 0) {
				if (!was) {
					(void)table_set_upstream(s->table, protocol, local_port, 0, NULL);
					result = TABLE_RESULT_NETWORK_FAILURE;
					goto refused;
				}
				waiting_answer(s, protocol, local_port, TABLE_RESULT_NETWORK_FAILURE, 0);
				return;
			}
			if (was)
				log_info("%s moved %s %s:%u from port %u to %u (local port %u)", waiting_outer(s),
					 proto_protocol_name(protocol), client, m->internal_port, was, port, local_port);
			else
				log_info("%s maps %s %u -> local %u -> %s:%u", waiting_outer(s),
					 proto_protocol_name(protocol), port, local_port, client, m->internal_port);
			turn_hook(s, &ch.mapping, was ? "renewed" : "added");
		} else {
			log_debug("%s renewed %s %u -> local %u -> %s:%u", waiting_outer(s), proto_protocol_name(protocol),
				  port, local_port, client, m->internal_port);
		}
		waiting_answer(s, protocol, local_port, TABLE_RESULT_SUCCESS, port);
		return;
	}
refused:
	waiting_answer(s, protocol, local_port, waiting_result(result), 0);
	struct outer_status st;
	outer_status(s->outer, &st);
	if (m->upstream_port && !st.forwarding) {
		log_warnx("outer NAT: %s %u -> %s:%u is not kept there (%s); tried again once it forwards",
			  proto_protocol_name(protocol), m->upstream_port, client, m->internal_port, st.why_not);
		return;
	}
	if (m->upstream_port) {
		log_warnx("%s did not renew %s %u -> %s:%u (%s); trying again in %u s", waiting_outer(s),
			  proto_protocol_name(protocol), m->upstream_port, client, m->internal_port,
			  result == TABLE_RESULT_NETWORK_FAILURE ? "no answer" : "refused",
			  s->cfg.n_stun ? s->cfg.stun_keepalive : UPSTREAM_RETRY_MS / 1000);
		return;
	}
	/* Never acknowledged to anyone: the local forward goes too, nothing is left half made. */
	if (!st.forwarding)
		/* Why was said once, when the outer NAT was found to filter; each refusal is a detail. */
		log_debug("outer NAT: not mapping %s %u -> %s:%u (%s): removing the local forward",
			  proto_protocol_name(protocol), local_port, client, m->internal_port, st.why_not);
	else
		log_warnx("%s %s %s %u -> %s:%u: removing the local forward", waiting_outer(s),
			  result == TABLE_RESULT_NETWORK_FAILURE ? "did not answer for" : "refused",
			  proto_protocol_name(protocol), local_port, client, m->internal_port);
	struct table_asker owner = table_owner_of(m);
	(void)table_request_by(s->table, m->client, &owner, protocol, m->internal_port, 0, 0, now, &g, TABLE_LINK_NONE);
	(void)turn_apply(s, now, "rolled back");
	expiry_end_flows(s);
	expiry_arm(s, now);
}

void waiting_on_address(void *arg, uint32_t address)
{
	struct server *s = arg;
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	if (s->cfg.n_stun) {
		/* stunkeep.c logged it; a new public address is news to every client. */
		if (address)
			announce_restart(s->announce);
		return;
	}
	netif_addr_str(s->cfg.upstream_gateway, gw);
	if (!address) {
		log_warnx("gateway %s has no external address: opcode 0 answers result 3 until it has one", gw);
		announce_stop(s->announce);
		return;
	}
	log_info("gateway %s reports external address %s", gw, netif_addr_str(address, addr));
	/* A new address moved every mapping: announced once they are all back (waiting_on_remapped). */
	if (!outer_remapping(s->outer))
		announce_restart(s->announce);
}

/* RFC 6886 3.2.1: once the gateway has everything back, clients hear the address (and that it may be new). */
void waiting_on_remapped(void *arg, size_t n)
{
	struct server *s = arg;

	log_info("the gateway has answered for all %zu mapping(s) asked again", n);
	if (external_address(s))
		announce_restart(s->announce);
}

int waiting_keep_one(const struct table_mapping *m, void *arg)
{
	struct server *s = arg;

	return outer_keep(s->outer, m->protocol, m->external_port, m->upstream_port, m->expires);
}
