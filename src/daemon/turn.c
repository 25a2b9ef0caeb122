/*
 * turn.c - the request turn: decode, decide, persist, install, answer, for a
 * batch of datagrams.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "turn.h"
#include "config_rule.h"
#include "expiry.h"
#include "external.h"
#include "install.h"
#include "persist.h"
#include "waiting.h"

static void log_change(const struct table_change *ch, const char *why)
{
	char client[TABLE_ADDR_STRLEN];
	const struct table_mapping *m = &ch->mapping;

	table_addr_str(&m->client, client);
	switch (ch->op) {
	case TABLE_ADD:
		log_info("mapped %s %u -> %s:%u for %u s", proto_protocol_name(m->protocol), m->external_port,
			 client, m->internal_port, m->lifetime);
		break;
	case TABLE_RENEW:
		log_debug("renewed %s %u -> %s:%u for %u s", proto_protocol_name(m->protocol), m->external_port,
			  client, m->internal_port, m->lifetime);
		break;
	case TABLE_DEL:
		log_info("%s %s %u -> %s:%u", why, proto_protocol_name(m->protocol), m->external_port, client,
			 m->internal_port);
		break;
	}
}

/* A mapping moved to another port (engine/table.h: a renewal whose port is no longer allowed, or the router's). */
static void log_move(const struct table_mapping *from, const struct table_mapping *to)
{
	char client[TABLE_ADDR_STRLEN];

	log_info("moved %s %s:%u from port %u to %u: its port is no longer allowed, reserved, or used by the router",
		 proto_protocol_name(to->protocol), table_addr_str(&to->client, client), to->internal_port,
		 from->external_port, to->external_port);
}

/* Tells --hook that event ("added", "renewed", "deleted", "expired") happened to m. */
void turn_hook(struct server *s, const struct table_mapping *m, const char *event)
{
	int gone = strcmp(event, "deleted") == 0 || strcmp(event, "expired") == 0;
	struct hook_event ev = {
		.event = event,
		.protocol = m->protocol,
		.client = m->client,
		.internal_port = m->internal_port,
		/* A pinhole (no NAT66) is reached at the client's own address. */
		.external_address = table_addr_is_v4(&m->client) ? table_addr_v4(external_address(s)) : m->client,
		/* Upstream mode: the port the world reaches is the gateway's. */
		.external_port = s->outer ? m->upstream_port : m->external_port,
		.local_port = m->external_port,
		.lifetime = gone ? 0 : m->lifetime,
	};

	if (s->cfg.hook[0])
		hook_run(s->hook, &ev);
}

/* A renewal moved to another port (table.h) is a delete then an add of the same mapping. */
static int turn_moved(const struct table_change *ch, size_t i, size_t n)
{
	return ch[i].op == TABLE_DEL && i + 1 < n && ch[i + 1].op == TABLE_ADD &&
	       table_addr_equal(&ch[i + 1].mapping.client, &ch[i].mapping.client) &&
	       ch[i + 1].mapping.protocol == ch[i].mapping.protocol &&
	       ch[i + 1].mapping.internal_port == ch[i].mapping.internal_port;
}

/* The table's pending changes are real: log them, tell the hook and the gateway, and commit them in the table. */
void turn_settle(struct server *s, const char *why)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);

	for (size_t i = 0; i < n; i++) {
		/* A move is one line, as it is one "renewed" for the hook. */
		if (turn_moved(ch, i, n))
			log_move(&ch[i].mapping, &ch[i + 1].mapping);
		else if (!(i > 0 && turn_moved(ch, i - 1, n)))
			log_change(&ch[i], why);
		if (ch[i].op == TABLE_DEL)
			expiry_note_ended(s, &ch[i].mapping);
		/* A pinhole (an IPv6 client's) owes nothing to the outer NAT, which knows the router's IPv4 ports only. */
		if (s->outer && table_addr_is_v4(&ch[i].mapping.client)) {
			waiting_follow(s, &ch[i], turn_moved(ch, i, n), why);
			continue;
		}
		if (turn_moved(ch, i, n)) {
			turn_hook(s, &ch[++i].mapping, "renewed");
			continue;
		}
		if (ch[i].op == TABLE_ADD)
			turn_hook(s, &ch[i].mapping, "added");
		else if (ch[i].op == TABLE_DEL)
			turn_hook(s, &ch[i].mapping, strcmp(why, "expired") == 0 ? "expired" : "deleted");
	}
	table_commit(s->table);
	s->n_wishes = 0;
}

/*
 * Makes the table's pending changes durable, then real.  The state file is
 * written first: a crash between the two leaves a mapping on disk that the
 * client was never told about, which is harmless, never the reverse.
 */
int turn_apply(struct server *s, int64_t now, const char *why)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);
	off_t before = persist_mark(s);
	int persisted = 0, r;

	if (n == 0)
		return 0;
	if ((r = persist_changes(s, ch, n, now)) < 0)
		goto fail;
	persisted = 1;
	if ((r = install_changes(s, now)) < 0) {
		/*
		 * The kernel's copy has drifted (an element removed behind our
		 * back makes its delete fail): rebuild it from the table.
		 */
		log_warnx("nftables refused %zu change(s) (%s); reinstalling table ip %s", n, strerror(-r),
			  s->cfg.nat_table);
		if ((r = install_all(s, now)) < 0) {
			log_warnx("nftables refused the reinstall too: %s", strerror(-r));
			goto fail;
		}
	}
	turn_settle(s, why);
	return 0;
fail:
	table_rollback(s->table);
	s->n_wishes = 0;
	persist_take_back(s, before, persisted, now);
	return r;
}

/*
 * Who sent a request for a new mapping, at the link layer: the neighbour
 * entry the kernel has for its source on the listen interface.  A host that
 * invents source addresses has no entry for them, or entries that all name
 * its own link-layer address: either way its mappings share one limit
 * (table_mapping.link).  A renewal or a delete needs no lookup.
 */
static uint64_t turn_link(struct server *s, const struct udp_socket *sock, struct table_addr client,
			  const struct codec_request *req)
{
	uint64_t mac;
	int r;

	/* (The source was found inside one of the socket's subnets before this is asked.) */
	if (!req->lifetime || !req->internal_port || table_find(s->table, client, req->protocol, req->internal_port, NULL))
		return TABLE_LINK_UNKNOWN;
	/* An IPv6 host has many addresses of its own (RFC 8981), and can invent more: the same rule holds. */
	r = table_addr_is_v4(&client) ? netif_neighbour(s->neigh, sock->subnets[0].ifindex, client.v4, &mac)
				      : netif_neighbour6(s->neigh, sock->ifindex, client.v6, &mac);
	if (r == 0)
		return TABLE_LINK_HOST(mac);
	if (r != -ENOENT && !s->neigh_failed++)
		log_warnx("cannot ask the kernel for LAN neighbours: %s; mappings are counted by address only", strerror(-r));
	return r == -ENOENT ? TABLE_LINK_UNKNOWN : TABLE_LINK_NONE;
}

/*
 * A refusal a user would want to know of (a limit, no free port, a source
 * outside the LAN), at the default level but at most one line a second, so
 * that a flood cannot fill the log; the next line says how many went
 * unlogged meanwhile.
 */
static void turn_log_refusal(struct server *s, int64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void turn_log_refusal(struct server *s, int64_t now, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (s->refusal_logged_at == now && now != 0) {
		s->refusals_unlogged++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (s->refusals_unlogged)
		log_warnx("%s (and %llu more refusal(s) since the last line like this, not logged)", msg,
			  (unsigned long long)s->refusals_unlogged);
	else
		log_warnx("%s", msg);
	s->refusal_logged_at = now;
	s->refusals_unlogged = 0;
}

/* An IPv6 link-local address (fe80::/10): no pinhole for one is reachable from outside. */
static bool turn_link_local(const struct table_addr *a)
{
	return !table_addr_is_v4(a) && a->v6[0] == 0xfe && (a->v6[1] & 0xc0) == 0x80;
}

/* Why the table refused client a mapping, in words; r->over_quota says whether it was the client's own limit. */
static void turn_refused(struct server *s, struct table_addr client, struct server_request *r, int64_t now)
{
	const struct codec_request *req = &r->req;
	struct table_mapping found;
	const struct table_mapping *m = table_find(s->table, client, req->protocol, req->internal_port, &found)
						? &found : NULL;
	char who[TABLE_ADDR_STRLEN];
	const char *why;

	table_addr_str(&client, who);
	if (r->result == TABLE_RESULT_NOT_AUTHORIZED && turn_link_local(&client))
		why = "a link-local address is never reachable from outside: ask from a global one";
	else if (r->result == TABLE_RESULT_NOT_AUTHORIZED && m && m->origin == TABLE_ORIGIN_PCP)
		why = req->pcp ? "the mapping belongs to another PCP nonce" : "the mapping is a PCP client's";
	else if (r->result == TABLE_RESULT_NOT_AUTHORIZED)
		why = !req->lifetime	     ? "the mapping is the administrator's (made through the HTTP API)"
		      : !req->internal_port ? "internal port 0 cannot be mapped"
					     : "no --rule allows it";
	else if (r->result == TABLE_RESULT_CANNOT_PROVIDE)
		why = "PREFER_FAILURE, and the suggested external port or address cannot be had";
	else if (r->result == TABLE_RESULT_NETWORK_FAILURE)
		why = "there is no external address yet";
	else if ((r->over_quota = table_client_count(s->table, client) >= s->cfg.max_mappings_per_ip))
		why = "it holds --max-mappings-per-ip";
	/* The same host under another of its addresses: its quota all the same (PCP's USER_EX_QUOTA). */
	else if ((r->over_quota = r->link != TABLE_LINK_NONE && r->link != TABLE_LINK_UNKNOWN &&
				  table_link_count(s->table, r->link) >= s->cfg.max_mappings_per_ip))
		why = "its host holds --max-mappings-per-ip under other addresses";
	else
		why = "no free port in --allowed-ports (or the hosts without a neighbour entry hold --max-mappings-per-ip together)";
	/* The result is NAT-PMP's code; PCP words it its own way (wire/pcp.c). */
	if (req->pcp)
		turn_log_refusal(s, now, "refused to %s %s %u for %s by PCP: %s", req->lifetime ? "map" : "delete",
				 proto_protocol_name(req->protocol), req->internal_port, who, why);
	else
		turn_log_refusal(s, now, "refused to %s %s %u for %s: %s (result %u)", req->lifetime ? "map" : "delete",
				 proto_protocol_name(req->protocol), req->internal_port, who, why, r->result);
}

/*
 * A PCP MAP's own conditions before the table (RFC 6887 11.3, 13.2): an
 * answer carries the external address, so without one there is none to
 * give; a suggested address is a hint, except under PREFER_FAILURE.  An
 * IPv6 client's external address is its own (a pinhole), which must be one
 * the Internet can reach.  TABLE_RESULT_SUCCESS when the table may decide.
 */
static uint16_t turn_pcp_precheck(struct server *s, const struct codec_request *req, const struct table_addr *client)
{
	static const uint8_t any4[16] = { [10] = 0xff, [11] = 0xff }, any6[16] = { 0 };
	struct table_addr ext = table_addr_is_v4(client) ? table_addr_v4(external_address(s)) : *client;

	if (!req->lifetime)
		return TABLE_RESULT_SUCCESS;
	if (turn_link_local(client))
		return TABLE_RESULT_NOT_AUTHORIZED;
	if (table_addr_is_v4(client) && !ext.v4)
		return TABLE_RESULT_NETWORK_FAILURE;
	if (req->prefer_failure && memcmp(req->suggested_address, any4, 16) && memcmp(req->suggested_address, any6, 16) &&
	    memcmp(req->suggested_address, ext.v6, 16))
		return TABLE_RESULT_CANNOT_PROVIDE;
	return TABLE_RESULT_SUCCESS;
}

/*
 * PCP's THIRD_PARTY (RFC 6887 13.1): prohibited, UNSUPP_OPTION, unless a
 * --rule 'third-party SENDER HOST' lets this sender map for that host,
 * which must be a LAN host of the same interface (else NOT_AUTHORIZED);
 * the mapping is then the host's (r->client), counted against the sender's
 * link.  IPv4 only.  TABLE_RESULT_SUCCESS to go on, else r->result is set.
 */
static uint16_t turn_third_party(struct server *s, struct udp_socket *sock, struct table_addr sender,
				 struct server_request *r, int64_t now)
{
	struct table_addr host;
	char who[TABLE_ADDR_STRLEN], whom[TABLE_ADDR_STRLEN];
	struct in_addr h;

	memcpy(host.v6, r->req.third_party_address, sizeof(host.v6));
	table_addr_str(&sender, who);
	table_addr_str(&host, whom);
	if (!table_addr_is_v4(&sender) || !table_addr_is_v4(&host) ||
	    !config_third_party_allows(s->cfg.third_party, s->cfg.n_third_party, sender.v4, host.v4)) {
		r->result = CODEC_RESULT_OPTION_REFUSED;
		turn_log_refusal(s, now, "refused PCP THIRD_PARTY from %s for %s: no --rule 'third-party' allows it", who,
				 whom);
		return r->result;
	}
	h.s_addr = host.v4;
	if (!udp_host_allowed(sock, h, now)) {
		r->result = TABLE_RESULT_NOT_AUTHORIZED;
		turn_log_refusal(s, now, "refused PCP THIRD_PARTY from %s for %s: not a host of %s's subnets", who, whom,
				 sock->ifname);
		return r->result;
	}
	r->client = host;
	return TABLE_RESULT_SUCCESS;
}

/* Step 2 for a map request: the table decides, for the asker the codec names. */
static void turn_map(struct server *s, struct udp_socket *sock, struct table_addr client, struct server_request *r,
		     int64_t now)
{
	struct table_asker who = { .origin = r->req.pcp ? TABLE_ORIGIN_PCP : TABLE_ORIGIN_NATPMP,
				   .exact = r->req.prefer_failure };

	struct table_addr sender = client;

	memcpy(who.nonce, r->req.nonce, sizeof(who.nonce));
	r->over_quota = false;
	r->grant = (struct table_grant){ 0 };
	r->client = client;
	if (r->req.third_party && turn_third_party(s, sock, sender, r, now) != TABLE_RESULT_SUCCESS)
		return;
	client = r->client;
	/*
	 * PCP's internal port 0 names an all-ports mapping (RFC 6887 11.1),
	 * which is never made: deleting it deletes nothing, not NAT-PMP's
	 * "every mapping of the client".
	 */
	if (r->req.pcp && !r->req.lifetime && !r->req.internal_port) {
		r->result = TABLE_RESULT_SUCCESS;
		return;
	}
	r->link = TABLE_LINK_NONE;
	if (!r->req.pcp || (r->result = turn_pcp_precheck(s, &r->req, &client)) == TABLE_RESULT_SUCCESS)
		r->result = table_request_by(s->table, client, &who, r->req.protocol, r->req.internal_port,
					     r->req.suggested_port, r->req.lifetime, now, &r->grant,
					     r->link = turn_link(s, sock, sender, &r->req));
	if (r->result == TABLE_RESULT_SUCCESS)
		waiting_wish_add(s, r->req.protocol, r->grant.external_port, r->req.suggested_port);
	else
		turn_refused(s, client, r, now);
}

/* A request's source as the table keys it. */
static struct table_addr turn_client(const struct udp_packet *p)
{
	struct table_addr a;

	if (p->peer.sa.sa_family != AF_INET6)
		return table_addr_v4(p->peer.v4.sin_addr.s_addr);
	memcpy(a.v6, &p->peer.v6.sin6_addr, sizeof(a.v6));
	return a;
}

/*
 * The rate limit's key for a client: its IPv4 address, or its IPv6 one
 * hashed into 32 bits with a seed of this run (FNV-1a), so that a host
 * cannot pick addresses whose bucket is another client's.
 */
static uint32_t turn_rate_key(const struct table_addr *a)
{
	static uint32_t seed;
	uint32_t h;

	if (table_addr_is_v4(a))
		return a->v4;
	if (!seed)
		seed = arc4random() | 1;
	h = 2166136261u ^ seed;
	for (size_t i = 0; i < sizeof(a->v6); i++)
		h = (h ^ a->v6[i]) * 16777619u;
	return h;
}

/* Whether the daemon serves a datagram from p's source to p's destination at all; counts and logs what it drops. */
static bool turn_admits(struct server *s, struct udp_socket *sock, const struct udp_packet *p,
			const struct table_addr *client, int64_t now, int64_t now_ms)
{
	char peer[TABLE_ADDR_STRLEN], dest[INET6_ADDRSTRLEN];
	bool v6 = sock->family == AF_INET6;

	table_addr_str(client, peer);
	if (v6 ? !udp_source6_allowed(sock, &p->peer.v6.sin6_addr, now) : !udp_source_allowed(sock, p->peer.v4.sin_addr, now)) {
		s->metrics.drops[METRICS_DROP_NOT_LAN]++;
		turn_log_refusal(s, now, "ignored a request on %s from %s: not inside its subnets (not a LAN host)",
				 sock->ifname, peer);
		return false;
	}
	if (v6 ? !udp_local6_allowed(sock, &p->local6, now) : !udp_local_allowed(sock, p->local, now)) {
		s->metrics.drops[METRICS_DROP_NOT_LOCAL]++;
		if (v6)
			inet_ntop(AF_INET6, &p->local6, dest, sizeof(dest));
		else
			netif_addr_str(p->local.s_addr, dest);
		log_debug("ignored request on %s from %s: sent to %s, not to an address of %s", sock->ifname, peer, dest,
			  sock->ifname);
		return false;
	}
	if (!ratelimit_allow(s->ratelimit, turn_rate_key(client), now_ms)) {
		/* Counted, and logged at most once per power of two, so a flood cannot flood the log too. */
		uint64_t n = ++s->metrics.drops[METRICS_DROP_RATE_LIMITED];
		if ((n & (n - 1)) == 0)
			log_warnx("dropped a request from %s over --rate-limit %u/s (%llu dropped in all)", peer,
				  s->cfg.rate_limit, (unsigned long long)n);
		return false;
	}
	return true;
}

/*
 * Steps 1 and 2 of a turn for one datagram: decoded by its codec, then
 * decided.  An address request is answered now; a map request changes the
 * table, whose changes the turn makes durable and real for all at once.
 */
static void turn_decide(struct server *s, struct udp_socket *sock, struct udp_packet *p, struct server_request *r,
			int64_t now, int64_t now_ms)
{
	char peer[TABLE_ADDR_STRLEN];
	uint32_t epoch = server_epoch(s, now);
	struct table_addr client = turn_client(p);

	r->codec = NULL;
	r->req.verdict = CODEC_DROP;
	if (!turn_admits(s, sock, p, &client, now, now_ms))
		return;
	r->codec = codec_for(p->data, p->len);
	/* NAT-PMP is IPv4's (RFC 6886): over IPv6 only PCP is served. */
	if (sock->family == AF_INET6 && r->codec == &codec_natpmp) {
		s->metrics.drops[METRICS_DROP_MALFORMED]++;
		log_debug("dropped a NAT-PMP datagram over IPv6 from %s", table_addr_str(&client, peer));
		r->codec = NULL;
		return;
	}
	switch (r->codec->decode(p->data, p->len, (const struct sockaddr *)&p->peer, epoch, &r->req, p->reply,
				 &p->reply_len)) {
	case CODEC_DROP:
		s->metrics.drops[METRICS_DROP_MALFORMED]++;
		log_debug("dropped %zu-byte datagram from %s", p->len, table_addr_str(&client, peer));
		break;
	case CODEC_ANSWERED:
		break;
	case CODEC_ADDRESS: {
		struct codec_answer a = { .epoch = epoch, .external_address = external_address(s) };
		/* RFC 6886 3.2: no external address yet is result 3; PCP's ANNOUNCE only asks whether the server is there. */
		a.result = r->result = a.external_address || r->req.pcp ? TABLE_RESULT_SUCCESS : TABLE_RESULT_NETWORK_FAILURE;
		p->reply_len = r->codec->encode(&r->req, &a, p->reply);
		break;
	}
	case CODEC_MAP:
		turn_map(s, sock, client, r, now);
		break;
	}
}

/* Counts an answer by opcode (0-2, 3 for any other) and its result, now or sent later (upstream mode). */
void turn_count_answer(struct server *s, int op, uint16_t result)
{
	if (result < METRICS_RESULTS)
		s->metrics.requests[op][result]++;
}

/*
 * Step 4 for a map request: the outcome, or in upstream mode the outer
 * NAT's port once it has granted one; false when the answer must wait for
 * it (the request then waits in waiting.c, and nothing is sent now).
 */
static bool turn_outcome(struct server *s, struct server_listener *l, struct udp_packet *p, struct server_request *r,
			 int failed)
{
	uint16_t port;
	struct table_mapping m;

	if (failed) {
		r->result = TABLE_RESULT_NETWORK_FAILURE;
		r->grant = (struct table_grant){ 0 };
	}
	/* A pinhole (an IPv6 client's) owes nothing to the outer NAT. */
	if (!s->outer || r->result != TABLE_RESULT_SUCCESS || !r->req.lifetime || p->peer.sa.sa_family != AF_INET)
		return true;
	port = outer_granted(s->outer, r->req.protocol, r->grant.external_port);
	/* Deleted again later in the same batch: nothing will answer for it. */
	if (!table_find(s->table, r->client, r->req.protocol, r->req.internal_port, &m) ||
	    m.external_port != r->grant.external_port) {
		r->result = TABLE_RESULT_NETWORK_FAILURE;
		r->grant = (struct table_grant){ 0 };
		return true;
	}
	if (!port) {
		waiting_defer(s, l, p, r);
		return false;
	}
	r->grant.external_port = port;
	return true;
}

/*
 * The request turn, for a batch of n datagrams from one listen socket:
 *   1. decode each with the codec its version byte names;
 *   2. decide each in the table (address requests are answered here);
 *   3. make the table's changes durable, then real (turn_apply);
 *   4. word each map request's outcome with its codec;
 *   5. send every answer in one sendmmsg, then schedule what follows
 *      (conntrack cleanup, the next expiry).
 * No answer leaves before the changes it acknowledges are on disk.
 */
static void turn_handle(struct server *s, struct server_listener *l, int n)
{
	int64_t now_ms = server_mono_ms(), now = now_ms / 1000;
	int failed;

	/* The turn's log lines leave together, before its answers. */
	log_hold();
	for (int i = 0; i < n; i++)
		turn_decide(s, &l->sock, &s->pkts[i], &s->reqs[i], now, now_ms);

	failed = turn_apply(s, now, "deleted") < 0;

	for (int i = 0; i < n; i++) {
		struct server_request *r = &s->reqs[i];
		struct udp_packet *p = &s->pkts[i];
		struct codec_answer a;

		if (r->req.verdict == CODEC_DROP)
			continue;
		if (r->req.verdict == CODEC_MAP) {
			if (!turn_outcome(s, l, p, r, failed)) {
				p->reply_len = 0;
				continue;
			}
			a = (struct codec_answer){ .result = r->result, .epoch = server_epoch(s, now),
						   .external_address = external_address(s),
						   .external_port = r->grant.external_port, .lifetime = r->grant.lifetime,
						   .over_quota = r->over_quota };
			if (p->peer.sa.sa_family == AF_INET6)
				a.own_address = p->peer.v6.sin6_addr.s6_addr;
			/* RFC 6887 11.3: another owner's mapping refuses for as long as it lasts. */
			if (r->req.pcp && r->result == TABLE_RESULT_NOT_AUTHORIZED) {
				struct table_mapping m;

				if (table_find(s->table, r->client, r->req.protocol, r->req.internal_port, &m) &&
				    m.expires > now)
					a.error_lifetime = (uint32_t)(m.expires - now);
			}
			p->reply_len = r->codec->encode(&r->req, &a, p->reply);
			turn_count_answer(s, r->req.metric_op, r->codec->wire_result(&a));
		} else if (r->req.verdict == CODEC_ADDRESS) {
			turn_count_answer(s, r->req.metric_op, r->result);
		} else {
			turn_count_answer(s, r->req.metric_op, r->req.result);
		}
	}
	log_release();
	for (int i = 0; i < n; i += UDP_BATCH)
		udp_send(&l->sock, s->pkts + i, n - i < UDP_BATCH ? n - i : UDP_BATCH);
	expiry_end_flows(s);
	expiry_arm(s, now);
}

void turn_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct server_listener *l = arg;
	struct server *s = l->server;

	(void)fd;
	(void)what;
	for (int round = 0; round < SERVER_ROUNDS;) {
		int n = 0, got;

		/* A turn takes what is waiting, up to SERVER_TURN_MAX: one sync and one transaction for all of it. */
		do {
			if ((got = udp_recv(&l->sock, s->pkts + n, UDP_BATCH)) < 0)
				log_warnx("receive on %s: %s", l->sock.ifname, strerror(-got));
			else
				n += got;
			round++;
		} while (got == UDP_BATCH && n + UDP_BATCH <= SERVER_TURN_MAX && round < SERVER_ROUNDS);
		if (n)
			turn_handle(s, l, n);
		if (got < UDP_BATCH)
			return;
	}
}

void turn_close_listeners(struct server_listener *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ls[i].ev)
			event_free(ls[i].ev);
		ls[i].ev = NULL;
		udp_close(&ls[i].sock);
	}
}

/*
 * Opens l's socket of family on ifname: 0, 1 when the interface does not
 * exist (yet: l then waits for it, with no socket) or IPv6 is off in this
 * kernel (l->unavailable), or -1 after logging.
 */
static int turn_open_listener(struct server *s, struct server_listener *l, const char *ifname, uint16_t port,
			      int family)
{
	int r;

	l->server = s;
	l->ev = NULL;
	l->family = family;
	if ((r = udp_open(&l->sock, ifname, port, family)) == -ENODEV || r == -EAFNOSUPPORT) {
		/* A bridge or a VPN interface that comes up after the daemon: served once it is there. */
		memset(&l->sock, 0, sizeof(l->sock));
		l->sock.fd = -1;
		l->sock.family = family;
		snprintf(l->sock.ifname, sizeof(l->sock.ifname), "%s", ifname);
		if (r == -EAFNOSUPPORT && !l->unavailable)
			log_warnx("IPv6 is off in this kernel: PCP is served over IPv4 only on %s", ifname);
		l->unavailable = r == -EAFNOSUPPORT;
		return 1;
	}
	if (r < 0) {
		log_error("cannot listen on %s port %u (%s): %s", ifname, port, family == AF_INET6 ? "IPv6" : "IPv4",
			  strerror(-r));
		return -1;
	}
	l->ev = event_new(s->base, l->sock.fd, EV_READ | EV_PERSIST, turn_on_readable, l);
	if (!l->ev || event_add(l->ev, NULL) < 0) {
		log_error("cannot watch the socket on %s", ifname);
		if (l->ev)
			event_free(l->ev);
		l->ev = NULL;
		udp_close(&l->sock);
		return -1;
	}
	return 0;
}

int turn_open_listeners(struct server *s, const struct config *cfg, struct server_listener *ls)
{
	static const int families[2] = { AF_INET, AF_INET6 };
	int r;

	for (size_t i = 0; i < 2 * cfg->n_listen; i++) {
		const char *name = cfg->listen_interfaces[i / 2];
		ls[i].unavailable = false;
		if ((r = turn_open_listener(s, &ls[i], name, cfg->listen_port, families[i % 2])) < 0) {
			turn_close_listeners(ls, i);
			return -1;
		}
		if (r > 0 && i % 2 == 0)
			log_warnx("listen interface %s does not exist (yet): waiting for it; NAT-PMP and PCP are served there once "
				  "it appears (check the name if it never does)",
				  name);
	}
	return (int)(2 * cfg->n_listen);
}

void turn_retry_listeners(struct server *s)
{
	for (size_t i = 0; i < s->n_listeners; i++) {
		struct server_listener *l = &s->listeners[i];
		char name[sizeof(l->sock.ifname)];

		memcpy(name, l->sock.ifname, sizeof(name));
		/*
		 * An interface deleted (and perhaps made anew: a network restart
		 * re-creates br-lan) leaves the socket bound to one that is gone:
		 * it is closed, and the listener waits for the name again.
		 */
		if (l->unavailable)
			continue;
		if (l->sock.fd >= 0 && if_nametoindex(name) != l->sock.ifindex) {
			if (l->family == AF_INET)
				log_warnx("listen interface %s went away: waiting for it to come back", name);
			if (l->ev)
				event_free(l->ev);
			l->ev = NULL;
			udp_close(&l->sock);
		}
		if (l->sock.fd >= 0)
			continue;
		if (turn_open_listener(s, l, name, s->cfg.listen_port, l->family) == 0 && l->family == AF_INET)
			log_info("listen interface %s appeared: serving NAT-PMP and PCP on it", name);
	}
}
