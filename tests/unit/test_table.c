/* test_table.c - the table's decisions, on a fake clock. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "wire/proto.h"
#include "engine/table.h"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

static uint32_t A, B;

/* A deterministic "random" source: a counter, so the tests can predict it. */
static uint32_t fake_random(uint32_t bound, void *arg)
{
	uint32_t *state = arg;

	*state = *state * 1103515245u + 12345u;
	return (*state >> 8) % bound;
}

static uint32_t rng_state = 42;

/*
 * The lookups as checks use them: the mapping or NULL.  Each call has a
 * buffer of its own among eight, so that a check may hold a few at once.
 */
static const struct table_mapping *find(const struct table *t, struct table_addr client, uint8_t proto,
					uint16_t iport)
{
	static struct table_mapping found[8];
	static unsigned int next;
	struct table_mapping *m = &found[next++ % 8];

	return table_find(t, client, proto, iport, m) ? m : NULL;
}

static const struct table_mapping *find_ext(const struct table *t, uint8_t proto, uint16_t eport)
{
	static struct table_mapping found[8];
	static unsigned int next;
	struct table_mapping *m = &found[next++ % 8];

	return table_find_external(t, proto, eport, m) ? m : NULL;
}

static struct table *make(uint16_t from, uint16_t to, uint32_t max_per_client, uint32_t max_lifetime)
{
	struct port_range r = { from, to };
	struct table_config cfg = {
		.allowed = &r,
		.n_allowed = 1,
		.max_per_client = max_per_client,
		.max_lifetime = max_lifetime,
		.random = fake_random,
		.random_arg = &rng_state,
	};
	struct table *t = table_new(&cfg);

	CHECK(t != NULL);
	if (!t)
		exit(1);
	return t;
}

static uint16_t map(struct table *t, uint32_t client, uint8_t proto, uint16_t iport, uint16_t sugg, uint32_t life,
		    int64_t now, struct table_grant *g)
{
	uint16_t r = table_request(t, table_addr_v4(client), TABLE_ORIGIN_NATPMP, proto, iport, sugg, life, now, g, TABLE_LINK_NONE);
	table_commit(t);
	return r;
}

static void test_port_choice(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;

	/* Suggested port when free. */
	CHECK_EQ(map(t, A, TCP, 51413, 40000, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 40000);
	CHECK_EQ(g.lifetime, 3600);
	/* Suggested port taken: the internal port. */
	CHECK_EQ(map(t, B, TCP, 50000, 40000, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 50000);
	/* Suggested 0: the internal port. */
	CHECK_EQ(map(t, B, UDP, 6000, 0, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 6000);
	/* The same internal port for the other protocol gets the same external port. */
	CHECK_EQ(map(t, A, UDP, 51413, 0, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 40000);
	/* B holds 50000/tcp: A may not have 50000/udp. */
	CHECK_EQ(map(t, A, UDP, 50000, 50000, 3600, 0, &g), 0);
	CHECK(g.external_port != 50000);
	/* ... but B may, for its own other protocol. */
	CHECK_EQ(map(t, B, UDP, 50000, 50000, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 50000);
	/* Below the allowed range: neither suggested nor internal port; random, not the lowest. */
	CHECK_EQ(map(t, A, TCP, 80, 80, 3600, 0, &g), 0);
	CHECK(g.external_port >= 1024 && g.external_port != 1024);
	table_free(t);
}

static void test_random_not_lowest(void)
{
	struct table *t = make(20000, 20100, 1000, 86400);
	struct table_grant g;
	int lowest = 0;

	for (int i = 0; i < 50; i++) {
		CHECK_EQ(map(t, A, TCP, (uint16_t)(100 + i), 0, 3600, 0, &g), 0);
		CHECK(g.external_port >= 20000 && g.external_port <= 20100);
		if (g.external_port == 20000 + i)
			lowest++;
	}
	CHECK(lowest < 10);
	/* Fill the range completely, then one more is out of resources. */
	for (int i = 50; i < 101; i++)
		CHECK_EQ(map(t, A, TCP, (uint16_t)(100 + i), 0, 3600, 0, &g), 0);
	CHECK_EQ(table_count(t), 101);
	CHECK_EQ(map(t, A, TCP, 9999, 0, 3600, 0, &g), NATPMP_RESULT_OUT_OF_RESOURCES);
	CHECK_EQ(g.external_port, 0);
	table_free(t);
}

/* The daemon's own random source (the system's CSPRNG, buffered): in range, and it fills a range. */
static void test_default_random(void)
{
	struct port_range r = { 30000, 30999 };
	struct table_config cfg = { .allowed = &r, .n_allowed = 1, .max_per_client = 2000, .max_lifetime = 3600 };
	struct table *t = table_new(&cfg);
	struct table_grant g;
	int outside = 0, below_half = 0;

	CHECK(t != NULL);
	if (!t)
		return;
	/* Internal ports outside the range: every grant is a random one. */
	for (int i = 0; i < 1000; i++) {
		CHECK_EQ(map(t, A, TCP, (uint16_t)(100 + i), 0, 3600, 0, &g), 0);
		outside += g.external_port < 30000 || g.external_port > 30999;
		below_half += i < 500 && g.external_port < 30500;
	}
	CHECK_EQ(outside, 0);
	CHECK_EQ(table_count(t), 1000);
	/* The first half of the grants is spread over the range, not packed at one end. */
	CHECK(below_half > 150 && below_half < 350);
	CHECK_EQ(map(t, A, TCP, 9999, 0, 3600, 0, &g), NATPMP_RESULT_OUT_OF_RESOURCES);
	table_free(t);
}

static void test_never_natpmp_ports(void)
{
	struct table *t = make(5000, 6000, 100, 86400);
	struct table_grant g;

	CHECK_EQ(map(t, A, UDP, 5351, 5351, 3600, 0, &g), 0);
	CHECK(g.external_port != 5351 && g.external_port != 5350);
	CHECK_EQ(map(t, A, UDP, 5350, 5350, 3600, 0, &g), 0);
	CHECK(g.external_port != 5351 && g.external_port != 5350);
	/* TCP 5351 is an ordinary port. */
	CHECK_EQ(map(t, A, TCP, 5351, 5351, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 5351);
	table_free(t);
}

/* The router "listens" on TCP 8080 and UDP 51820. */
static int fake_busy(uint8_t protocol, uint16_t port, void *arg)
{
	int *asked = arg;

	(*asked)++;
	return (protocol == TCP && port == 8080) || (protocol == UDP && port == 51820);
}

static void test_reserved_and_busy_ports(void)
{
	struct port_range allowed = { 1024, 65535 }, reserved[] = { { 9000, 9010 }, { 40000, 40000 } };
	int asked = 0;
	struct table_config cfg = {
		.allowed = &allowed,
		.n_allowed = 1,
		.reserved = reserved,
		.n_reserved = 2,
		.port_busy = fake_busy,
		.port_busy_arg = &asked,
		.max_per_client = 100,
		.max_lifetime = 86400,
		.random = fake_random,
		.random_arg = &rng_state,
	};
	struct table *t = table_new(&cfg);
	struct table_grant g;

	CHECK(t != NULL);
	/* Neither the suggested nor the internal port when the router listens there. */
	CHECK_EQ(map(t, A, TCP, 8080, 8080, 3600, 0, &g), 0);
	CHECK(g.external_port != 8080 && g.external_port >= 1024);
	CHECK(asked > 0);
	CHECK_EQ(map(t, A, UDP, 51820, 0, 3600, 0, &g), 0);
	CHECK(g.external_port != 51820);
	/* The same port of the other protocol is fine. */
	CHECK_EQ(map(t, A, UDP, 8080, 8080, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 8080);
	/* Reserved ranges are never handed out, whatever is asked. */
	CHECK_EQ(map(t, A, TCP, 9005, 9005, 3600, 0, &g), 0);
	CHECK(g.external_port < 9000 || g.external_port > 9010);
	CHECK_EQ(map(t, A, TCP, 1, 40000, 3600, 0, &g), 0);
	CHECK(g.external_port != 40000);
	/* Restoring onto such ports is refused with the reason. */
	struct table_mapping busy = { .client = table_addr_v4(B), .protocol = TCP, .internal_port = 80, .external_port = 8080,
				      .lifetime = 60, .expires = 60 };
	struct table_mapping reserved_m = busy;
	reserved_m.external_port = 9001;
	CHECK_EQ(table_restore(t, &busy), -EADDRINUSE);
	CHECK_EQ(table_restore(t, &reserved_m), -ERANGE);
	table_commit(t);
	table_free(t);
}

static void test_renewal_and_lifetimes(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;
	const struct table_change *ch;

	CHECK_EQ(map(t, A, TCP, 51413, 51413, 3600, 0, &g), 0);
	/* Renewal: same port, whatever is suggested now; lifetime extended. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 51413, 1234, 7200, 100, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.external_port, 51413);
	CHECK_EQ(g.lifetime, 7200);
	CHECK_EQ(table_changes(t, &ch), 1);
	CHECK_EQ(ch[0].op, TABLE_RENEW);
	CHECK_EQ(ch[0].mapping.expires, 7300);
	table_commit(t);
	CHECK_EQ(find(t, table_addr_v4(A), TCP, 51413)->expires, 7300);
	/* Capped at the maximum, never above what was asked. */
	CHECK_EQ(map(t, A, TCP, 1, 0, 3600000, 0, &g), 0);
	CHECK_EQ(g.lifetime, 86400);
	CHECK_EQ(map(t, A, TCP, 2, 0, 100, 0, &g), 0);
	CHECK_EQ(g.lifetime, 100);
	table_free(t);
}

static void test_deletes(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;
	const struct table_change *ch;

	/* Deleting what does not exist succeeds, with nothing to do. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 5000, 5000, 0, 0, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_changes(t, &ch), 0);
	CHECK_EQ(g.external_port, 0);
	CHECK_EQ(g.lifetime, 0);

	for (uint16_t p = 2000; p < 2005; p++) {
		CHECK_EQ(map(t, A, TCP, p, p, 3600, 0, &g), 0);
		CHECK_EQ(map(t, A, UDP, p, p, 3600, 0, &g), 0);
	}
	CHECK_EQ(map(t, B, UDP, 3000, 3000, 3600, 0, &g), 0);
	/* Delete one: the non-zero suggested port is ignored. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 2000, 9999, 0, 0, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_changes(t, &ch), 1);
	CHECK_EQ(ch[0].op, TABLE_DEL);
	CHECK_EQ(ch[0].mapping.external_port, 2000);
	table_commit(t);
	CHECK(find(t, table_addr_v4(A), TCP, 2000) == NULL);
	/* Delete all of A's UDP: A's TCP and B's UDP stay. */
	CHECK_EQ(map(t, A, UDP, 0, 0, 0, 0, &g), 0);
	CHECK_EQ(table_client_count(t, table_addr_v4(A)), 4);
	CHECK(find(t, table_addr_v4(B), UDP, 3000) != NULL);
	CHECK(find(t, table_addr_v4(A), TCP, 2001) != NULL);
	CHECK_EQ(map(t, A, TCP, 0, 0, 0, 0, &g), 0);
	CHECK_EQ(table_client_count(t, table_addr_v4(A)), 0);
	CHECK_EQ(table_count(t), 1);
	/* The freed ports can be had again. */
	CHECK_EQ(map(t, B, TCP, 2001, 2001, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 2001);
	table_free(t);
}

static void test_limits(void)
{
	struct table *t = make(1024, 65535, 3, 86400);
	struct table_grant g;

	for (uint16_t p = 4000; p < 4003; p++)
		CHECK_EQ(map(t, A, TCP, p, p, 3600, 0, &g), 0);
	CHECK_EQ(map(t, A, UDP, 4000, 4000, 3600, 0, &g), NATPMP_RESULT_OUT_OF_RESOURCES);
	/* Renewals still work at the limit, and other clients are not affected. */
	CHECK_EQ(map(t, A, TCP, 4000, 4000, 3600, 10, &g), 0);
	CHECK_EQ(map(t, B, UDP, 4000, 0, 3600, 0, &g), 0);
	/* Internal port 0 with a lifetime is not a mapping. */
	CHECK(map(t, B, UDP, 0, 0, 3600, 0, &g) != 0);
	table_free(t);
}

static void test_expiry(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;
	const struct table_change *ch;

	CHECK_EQ(table_next_expiry(t), INT64_MAX);
	CHECK_EQ(map(t, A, TCP, 5000, 5000, 10, 100, &g), 0);
	CHECK_EQ(map(t, A, TCP, 5001, 5001, 20, 100, &g), 0);
	CHECK_EQ(map(t, B, UDP, 5002, 5002, 5, 100, &g), 0);
	CHECK_EQ(table_next_expiry(t), 105);
	CHECK_EQ(table_expire(t, 104), 0);
	CHECK_EQ(table_expire(t, 105), 1);
	CHECK_EQ(table_changes(t, &ch), 1);
	CHECK_EQ(ch[0].op, TABLE_DEL);
	CHECK_EQ(ch[0].mapping.internal_port, 5002);
	table_commit(t);
	CHECK_EQ(table_next_expiry(t), 110);
	/* Renewing moves the expiry. */
	CHECK_EQ(map(t, A, TCP, 5000, 0, 100, 109, &g), 0);
	CHECK_EQ(table_next_expiry(t), 120);
	CHECK_EQ(table_expire(t, 1000), 2);
	table_commit(t);
	CHECK_EQ(table_count(t), 0);
	/* Many mappings with scattered expiries leave in order. */
	for (int i = 0; i < 2000; i++)
		CHECK_EQ(map(t, (uint32_t)i, TCP, 10000, 0, (uint32_t)(1 + (i * 7919) % 1000), 0, &g), 0);
	int64_t last = 0;
	for (int i = 0; i < 2000 && table_count(t); i++) {
		int64_t next = table_next_expiry(t);
		CHECK(next >= last);
		last = next;
		table_expire(t, next);
		table_commit(t);
	}
	CHECK_EQ(table_count(t), 0);
	table_free(t);
}

static void test_rollback(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;

	CHECK_EQ(map(t, A, TCP, 7000, 7000, 100, 0, &g), 0);
	CHECK_EQ(map(t, A, UDP, 7001, 7001, 100, 0, &g), 0);
	/* One turn: add, renew, delete; the kernel refuses; everything goes back. */
	CHECK_EQ(table_request(t, table_addr_v4(B), TABLE_ORIGIN_NATPMP, TCP, 7002, 7002, 100, 50, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 7000, 0, 500, 50, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, UDP, 7001, 0, 0, 50, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_request(t, table_addr_v4(B), TABLE_ORIGIN_NATPMP, UDP, 7001, 7001, 100, 50, &g, TABLE_LINK_NONE), 0);
	table_rollback(t);
	CHECK_EQ(table_count(t), 2);
	CHECK(find(t, table_addr_v4(B), TCP, 7002) == NULL);
	CHECK(find(t, table_addr_v4(B), UDP, 7001) == NULL);
	CHECK_EQ(find(t, table_addr_v4(A), TCP, 7000)->expires, 100);
	CHECK_EQ(find(t, table_addr_v4(A), UDP, 7001)->external_port, 7001);
	CHECK_EQ(find_ext(t, UDP, 7001)->client.v4, A);
	CHECK_EQ(table_next_expiry(t), 100);
	const struct table_change *ch;
	CHECK_EQ(table_changes(t, &ch), 0);
	table_free(t);
}

static void test_restore(void)
{
	struct table *t = make(1024, 2000, 2, 86400);
	struct table_mapping m = { .client = table_addr_v4(A), .protocol = TCP, .internal_port = 80, .external_port = 1500,
				   .lifetime = 100, .expires = 50 };

	CHECK_EQ(table_restore(t, &m), 0);
	CHECK_EQ(table_restore(t, &m), -EEXIST);
	m.client = table_addr_v4(B);
	CHECK_EQ(table_restore(t, &m), -EEXIST); /* port held by A */
	m.external_port = 3000;
	CHECK_EQ(table_restore(t, &m), -ERANGE); /* no longer allowed */
	m.external_port = 1501;
	CHECK_EQ(table_restore(t, &m), 0);
	m.internal_port = 81;
	m.external_port = 1502;
	CHECK_EQ(table_restore(t, &m), 0);
	m.internal_port = 82;
	m.external_port = 1503;
	CHECK_EQ(table_restore(t, &m), -ENOSPC);
	CHECK_EQ(table_count(t), 3);
	table_free(t);
}

/* Many clients and ports: the indexes stay consistent through growth. */
static void test_scale(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;

	for (uint32_t c = 0; c < 600; c++)
		for (uint16_t p = 0; p < 100; p++)
			CHECK_EQ(map(t, htonl(0x0a000000 + c), p % 2 ? TCP : UDP, (uint16_t)(1000 + p), 0, 3600, 0,
				     &g),
				 0);
	CHECK_EQ(table_count(t), 60000);
	CHECK_EQ(table_client_count(t, table_addr_v4(htonl(0x0a000000 + 7))), 100);
	for (uint32_t c = 0; c < 600; c += 2) {
		CHECK_EQ(map(t, htonl(0x0a000000 + c), TCP, 0, 0, 0, 0, &g), 0);
		CHECK_EQ(map(t, htonl(0x0a000000 + c), UDP, 0, 0, 0, 0, &g), 0);
	}
	CHECK_EQ(table_count(t), 30000);

	/*
	 * The freed room is used again (the table keeps its mappings in
	 * pools, linked by index): every mapping is still found by its key and
	 * by its external port, and each client's and link's counts hold.
	 */
	uint8_t nonce[TABLE_NONCE_LEN];
	for (uint32_t c = 0; c < 600; c += 2)
		for (uint16_t p = 0; p < 100; p++) {
			struct table_asker who = { .origin = p % 3 ? TABLE_ORIGIN_NATPMP : TABLE_ORIGIN_PCP };

			memcpy(who.nonce, &c, sizeof(c));
			memcpy(who.nonce + 4, &p, sizeof(p));
			CHECK_EQ(table_request_by(t, table_addr_v4(htonl(0x0a000000 + c)), &who, p % 2 ? TCP : UDP,
						  (uint16_t)(2000 + p), 0, 3600, 0, &g, TABLE_LINK_HOST(c)),
				 0);
		}
	table_commit(t);
	CHECK_EQ(table_count(t), 60000);
	size_t bad = 0;
	for (uint32_t c = 0; c < 600; c++)
		for (uint16_t p = 0; p < 100; p++) {
			uint16_t iport = (uint16_t)(c % 2 ? 1000 + p : 2000 + p);
			const struct table_mapping *m = find(t, table_addr_v4(htonl(0x0a000000 + c)), p % 2 ? TCP : UDP, iport);
			const struct table_mapping *x = m ? find_ext(t, m->protocol, m->external_port) : NULL;
			bool pcp_one = c % 2 == 0 && p % 3 == 0;

			memcpy(nonce, &c, sizeof(c));
			memcpy(nonce + 4, &p, sizeof(p));
			memset(nonce + 6, 0, sizeof(nonce) - 6);
			if (!m || !x || !table_addr_equal(&x->client, &m->client) || x->internal_port != iport ||
			    m->origin != (pcp_one ? TABLE_ORIGIN_PCP : TABLE_ORIGIN_NATPMP) ||
			    (pcp_one && memcmp(m->nonce, nonce, sizeof(nonce)) != 0) ||
			    m->link != (c % 2 ? TABLE_LINK_NONE : TABLE_LINK_HOST(c)))
				bad++;
		}
	CHECK_EQ(bad, 0);
	CHECK_EQ(table_client_count(t, table_addr_v4(htonl(0x0a000000 + 8))), 100);
	CHECK_EQ(table_link_count(t, TABLE_LINK_HOST(8)), 100);
	CHECK_EQ(table_expire(t, 3600), 60000);
	table_commit(t);
	CHECK_EQ(table_count(t), 0);
	CHECK_EQ(table_link_count(t, TABLE_LINK_HOST(8)), 0);
	CHECK(find_ext(t, UDP, 1000) == NULL && find(t, table_addr_v4(htonl(0x0a000000 + 8)), UDP, 2000) == NULL);
	table_free(t);
}

/* HTTP mappings survive a NAT-PMP delete-all; a reload's new ranges move a mapping at its renewal. */
static void test_origin_and_configure(void)
{
	struct table *t = make(1024, 65535, 100, 86400);
	struct table_grant g;
	const struct table_change *ch;
	struct port_range narrow = { 2000, 2009 };
	struct table_config tc = { .allowed = &narrow, .n_allowed = 1, .max_per_client = 100, .max_lifetime = 600 };

	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 80, 8080, 3600, 0, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	CHECK_EQ(map(t, A, TCP, 81, 8081, 3600, 0, &g), 0);
	/* NAT-PMP delete-all: its own go; the administrator's stays, and it says so (RFC 6886 3.4). */
	CHECK_EQ(map(t, A, TCP, 0, 0, 0, 0, &g), TABLE_RESULT_NOT_AUTHORIZED);
	CHECK(find(t, table_addr_v4(A), TCP, 80) != NULL);
	CHECK(find(t, table_addr_v4(A), TCP, 81) == NULL);
	CHECK_EQ(find(t, table_addr_v4(A), TCP, 80)->origin, TABLE_ORIGIN_HTTP);

	CHECK_EQ(table_configure(t, &tc), 0);
	CHECK_EQ(table_count(t), 1); /* kept until its renewal */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 8080, 3600, 10, &g, TABLE_LINK_NONE), 0);
	CHECK(g.external_port >= 2000 && g.external_port <= 2009);
	/* A client's renewal never shortens the administrator's mapping (issue 15): what was left stays. */
	CHECK_EQ(g.lifetime, 3590);
	CHECK_EQ(table_changes(t, &ch), 2);
	CHECK_EQ(ch[0].op, TABLE_DEL);
	CHECK_EQ(ch[0].mapping.external_port, 8080);
	CHECK_EQ(ch[1].op, TABLE_ADD);
	CHECK_EQ(ch[1].mapping.origin, TABLE_ORIGIN_HTTP); /* the mapping stays the host's HTTP one */
	table_commit(t);
	CHECK(find_ext(t, TCP, 8080) == NULL);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 0, 0, 0, 20, &g, TABLE_LINK_NONE), 0); /* HTTP delete-all */
	table_commit(t);
	CHECK_EQ(table_count(t), 0);
	table_free(t);
}

/* One host inventing source addresses is one link: its mappings share one limit. */
static void test_link_limit(void)
{
	struct table *t = make(1024, 65535, 3, 86400);
	uint64_t mac = TABLE_LINK_HOST(0x0200deadbeefULL), other = TABLE_LINK_HOST(0x0200deadbeeeULL);
	struct table_grant g;
	uint32_t src[8];
	int granted = 0;

	for (int i = 0; i < 8; i++)
		src[i] = htonl(0xc0a8010a + (uint32_t)i); /* 192.168.1.10 and up */
	/* Eight addresses, two mappings each asked for, all from one link: three granted in all. */
	for (int i = 0; i < 8; i++)
		for (uint16_t p = 1; p <= 2; p++) {
			granted += table_request(t, table_addr_v4(src[i]), TABLE_ORIGIN_NATPMP, TCP, p, 0, 60, 0, &g, mac) == 0;
			table_commit(t);
		}
	CHECK_EQ(granted, 3);
	/* Another host still gets its own three. */
	for (uint16_t p = 1; p <= 3; p++) {
		CHECK_EQ(table_request(t, table_addr_v4(src[7]), TABLE_ORIGIN_NATPMP, UDP, p, 0, 60, 0, &g, other), 0);
		table_commit(t);
	}
	/* Senders the kernel has no neighbour entry for share one limit too. */
	granted = 0;
	for (int i = 0; i < 8; i++) {
		granted += table_request(t, table_addr_v4(src[i]), TABLE_ORIGIN_NATPMP, TCP, 100, 0, 60, 0, &g, TABLE_LINK_UNKNOWN) == 0;
		table_commit(t);
	}
	CHECK_EQ(granted, 3);
	/* A delete frees the link's share; a rollback puts the count back as it was. */
	CHECK_EQ(table_request(t, table_addr_v4(src[0]), TABLE_ORIGIN_NATPMP, TCP, 1, 0, 0, 0, &g, mac), 0);
	table_commit(t);
	CHECK_EQ(table_request(t, table_addr_v4(src[5]), TABLE_ORIGIN_NATPMP, TCP, 9, 0, 60, 0, &g, mac), 0);
	table_rollback(t);
	CHECK_EQ(table_request(t, table_addr_v4(src[6]), TABLE_ORIGIN_NATPMP, TCP, 9, 0, 60, 0, &g, mac), 0);
	table_commit(t);
	CHECK_EQ(table_request(t, table_addr_v4(src[4]), TABLE_ORIGIN_NATPMP, TCP, 9, 0, 60, 0, &g, mac), NATPMP_RESULT_OUT_OF_RESOURCES);
	/* Mappings no sender is counted for (the HTTP API, a restore) are limited by address only. */
	for (uint16_t p = 200; p < 203; p++) {
		CHECK_EQ(table_request(t, table_addr_v4(src[3]), TABLE_ORIGIN_HTTP, TCP, p, 0, 60, 0, &g, TABLE_LINK_NONE), 0);
		table_commit(t);
	}
	table_free(t);
}

/*
 * The key is ready for IPv6 clients (PCP): an IPv6 client whose last four
 * bytes spell an IPv4 client's address is another client, with its own
 * mappings and its own limit, and both hash into the same indexes.
 */
static void test_ipv6_clients(void)
{
	struct table *t = make(20000, 20010, 2, 3600);
	struct table_addr v6, v6b, v6c, v4 = table_addr_v4(A);
	struct table_grant g;
	const struct table_mapping *m;

	inet_pton(AF_INET6, "2001:db8::c0a8:10a", v6.v6); /* ends in 192.168.1.10, which is A */
	v6b = v6;
	v6b.v6[0] ^= 0x80;
	v6c = v6;
	v6c.v6[15] ^= 1; /* differs from v6 only in the last byte, v6b only in the first */
	CHECK(table_addr_is_v4(&v4) && !table_addr_is_v4(&v6));
	CHECK(v6.v4 == A); /* the same last four bytes as A: only the prefix tells them apart */
	CHECK(!table_addr_equal(&v4, &v6));
	CHECK(!table_addr_equal(&v6, &v6b));
	CHECK(!table_addr_equal(&v6, &v6c));
	/* An IPv6 mapping is a pinhole: its own port, whatever was suggested, outside the router's ranges. */
	CHECK_EQ(table_request(t, v6, TABLE_ORIGIN_NATPMP, TCP, 8080, 20000, 600, 0, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.external_port, 8080);
	table_commit(t);
	/* The IPv4 client with the same low bytes has nothing, and the router's port 20000 is still free for it. */
	CHECK(find(t, v4, TCP, 8080) == NULL);
	CHECK_EQ(table_request(t, v4, TABLE_ORIGIN_NATPMP, TCP, 8080, 20000, 600, 0, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.external_port, 20000);
	table_commit(t);
	m = find(t, v6, TCP, 8080);
	CHECK(m != NULL && !table_addr_is_v4(&m->client) && m->external_port == 8080);
	m = find_ext(t, TCP, 20000);
	CHECK(m != NULL && table_addr_equal(&m->client, &v4) && m->internal_port == 8080);
	CHECK(find_ext(t, TCP, 8080) == NULL);
	/* Two IPv6 hosts' pinholes of one port do not meet; PREFER_FAILURE with another port cannot be met. */
	CHECK_EQ(table_request(t, v6b, TABLE_ORIGIN_NATPMP, TCP, 8080, 0, 600, 0, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.external_port, 8080);
	table_rollback(t);
	struct table_asker exact = { .origin = TABLE_ORIGIN_PCP, .exact = true };
	CHECK_EQ(table_request_by(t, v6b, &exact, TCP, 8080, 9090, 600, 0, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_CANNOT_PROVIDE);
	CHECK_EQ(table_changes(t, &(const struct table_change *){ NULL }), 0);
	CHECK_EQ(table_client_count(t, v6), 1);
	CHECK_EQ(table_client_count(t, v4), 1);
	CHECK_EQ(table_client_count(t, v6b), 0);
	CHECK_EQ(table_client_count(t, v6c), 0);
	CHECK(find(t, v6c, TCP, 8080) == NULL);
	/* Limits are per client: the IPv6 client reaches its own, not the IPv4 one's. */
	CHECK_EQ(table_request(t, v6, TABLE_ORIGIN_NATPMP, UDP, 53, 0, 600, 0, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	CHECK_EQ(table_request(t, v6, TABLE_ORIGIN_NATPMP, UDP, 54, 0, 600, 0, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_OUT_OF_RESOURCES);
	table_rollback(t);
	CHECK_EQ(table_request(t, v4, TABLE_ORIGIN_NATPMP, UDP, 54, 0, 600, 0, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	/* A delete-all of the IPv6 client leaves the IPv4 one's mappings. */
	CHECK_EQ(table_request(t, v6, TABLE_ORIGIN_NATPMP, TCP, 0, 0, 0, 0, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	CHECK(find(t, v6, TCP, 8080) == NULL);
	CHECK(find(t, v4, TCP, 8080) != NULL);
	CHECK_EQ(table_count(t), 3);
	/* A pinhole from the state file: back on its own port, outside the ranges; one on another port is damage. */
	struct table_mapping p = { .client = v6c, .protocol = UDP, .internal_port = 7000, .external_port = 7000,
				   .lifetime = 600, .expires = 600, .link = TABLE_LINK_NONE };
	CHECK_EQ(table_restore(t, &p), 0);
	p.internal_port = 7001;
	CHECK_EQ(table_restore(t, &p), -EINVAL);
	table_free(t);
}

/*
 * Expiry follows the lifetimes, whatever order the mappings came in: at
 * each moment exactly the mappings whose time has come are removed, and the
 * next expiry is the earliest left (new and restored mappings alike).
 */
static void test_expiry_order(void)
{
	static const uint32_t lifetimes[] = { 100, 50, 200, 10, 300, 5, 150, 75, 20, 250, 60, 30 };
	const size_t n = sizeof(lifetimes) / sizeof(lifetimes[0]);
	struct table *t = make(20000, 30000, 100, 3600);
	struct table_grant g;

	for (size_t i = 0; i < n; i++) {
		if (i % 2) {
			struct table_mapping m = { .client = table_addr_v4(B), .protocol = TCP,
						   .internal_port = (uint16_t)(1000 + i), .external_port = (uint16_t)(21000 + i),
						   .lifetime = lifetimes[i], .expires = lifetimes[i], .link = TABLE_LINK_NONE };
			CHECK_EQ(table_restore(t, &m), 0);
		} else {
			CHECK_EQ(map(t, A, TCP, (uint16_t)(1000 + i), 0, lifetimes[i], 0, &g), 0);
		}
		table_commit(t);
	}
	for (int64_t now = 0; now <= 300; now++) {
		size_t due = 0, min = SIZE_MAX;

		for (size_t i = 0; i < n; i++)
			due += lifetimes[i] == now;
		CHECK_EQ(table_expire(t, now), due);
		table_commit(t);
		for (size_t i = 0; i < n; i++)
			if (lifetimes[i] > now && lifetimes[i] < min)
				min = lifetimes[i];
		CHECK_EQ(table_next_expiry(t), (min == SIZE_MAX ? INT64_MAX : (int64_t)min));
	}
	CHECK_EQ(table_count(t), 0);
	table_free(t);
}

/*
 * RFC 6886 3.4 and one ownership rule: what the administrator made through
 * the HTTP API, a client's NAT-PMP request may renew but never shorten nor
 * delete; the administrator may change anything.
 */
static void test_ownership(void)
{
	struct table *t = make(20000, 20100, 100, 86400);
	struct table_grant g;
	const struct table_mapping *m;

	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 80, 20080, 3600, 0, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	/* A delete by the client: result 2, the mapping stays as it was. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 0, 10, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(g.external_port, 0);
	CHECK_EQ(g.lifetime, 0);
	table_rollback(t);
	m = find(t, table_addr_v4(A), TCP, 80);
	CHECK(m != NULL && m->expires == 3600 && m->origin == TABLE_ORIGIN_HTTP);
	/* A shorter renewal by the client: the mapping stands, and the client hears what is left. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 60, 100, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.external_port, 20080);
	CHECK_EQ(g.lifetime, 3500);
	table_commit(t);
	CHECK_EQ(find(t, table_addr_v4(A), TCP, 80)->expires, 3600);
	CHECK_EQ(table_next_expiry(t), 3600);
	/* A longer one lengthens it, and it stays the administrator's. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 7200, 100, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(g.lifetime, 7200);
	table_commit(t);
	m = find(t, table_addr_v4(A), TCP, 80);
	CHECK(m->expires == 7300 && m->origin == TABLE_ORIGIN_HTTP);
	/* Its port taken out of the ranges by a reload: a client's short renewal moves it, but does not shorten it. */
	struct port_range narrow = { 20090, 20100 };
	struct table_config tc = { .allowed = &narrow, .n_allowed = 1, .max_per_client = 100, .max_lifetime = 86400,
				   .random = fake_random, .random_arg = &rng_state };
	CHECK_EQ(table_configure(t, &tc), 0);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 60, 200, &g, TABLE_LINK_NONE), 0);
	CHECK(g.external_port >= 20090 && g.external_port <= 20100);
	CHECK_EQ(g.lifetime, 7100);
	table_commit(t);
	m = find(t, table_addr_v4(A), TCP, 80);
	CHECK(m->expires == 7300 && m->origin == TABLE_ORIGIN_HTTP && m->external_port == g.external_port);
	/* With no port left in the new range, it stays where it is rather than go. */
	{
		uint16_t at = g.external_port;
		struct port_range one = { 20000, 20000 };
		tc.allowed = &one;
		CHECK_EQ(table_configure(t, &tc), 0);
		tc.allowed = &narrow;
		CHECK_EQ(map(t, B, TCP, 443, 20000, 600, 200, &g), 0); /* the one allowed port, taken */
		CHECK_EQ(g.external_port, 20000);
		CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 60, 210, &g, TABLE_LINK_NONE), 0);
		CHECK_EQ(g.external_port, at);
		table_commit(t);
		CHECK(find(t, table_addr_v4(A), TCP, 80) != NULL);
		CHECK_EQ(map(t, B, TCP, 443, 0, 0, 210, &g), 0);
	}
	narrow = (struct port_range){ 20000, 20100 };
	CHECK_EQ(table_configure(t, &tc), 0);
	/* The client's own mapping is its to delete, and a delete-all of only its own answers 0. */
	CHECK_EQ(map(t, A, UDP, 53, 0, 600, 100, &g), 0);
	CHECK_EQ(map(t, A, UDP, 0, 0, 0, 100, &g), 0);
	CHECK(find(t, table_addr_v4(A), UDP, 53) == NULL);
	/* The administrator deletes anything: its own, and a client's. */
	CHECK_EQ(map(t, B, TCP, 443, 0, 600, 100, &g), 0);
	CHECK_EQ(table_request(t, table_addr_v4(B), TABLE_ORIGIN_HTTP, TCP, 443, 0, 0, 100, &g, TABLE_LINK_NONE), 0);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 80, 0, 0, 100, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	CHECK_EQ(table_count(t), 0);
	table_free(t);
}

/* Per-client rules (miniupnpd's allow/deny): first match wins, default deny once any is given. */
static void test_rules(void)
{
	struct port_range all = { 1024, 65535 };
	struct table_rule rules[] = {
		/* A (192.168.1.10) may map 40000-40099 to internal ports 1024 and up. */
		{ .allow = true, .external = { 40000, 40099 }, .net = inet_addr("192.168.1.10"),
		  .mask = inet_addr("255.255.255.255"), .internal = { 1024, 65535 } },
		/* The rest of 192.168.1.0/24 may map 6881 only, to 6881. */
		{ .allow = true, .external = { 6881, 6881 }, .net = inet_addr("192.168.1.0"), .mask = inet_addr("255.255.255.0"),
		  .internal = { 6881, 6881 } },
		{ .allow = false, .external = { 0, 65535 }, .net = 0, .mask = 0, .internal = { 0, 65535 } },
	};
	struct table_config cfg = { .allowed = &all, .n_allowed = 1, .rules = rules, .n_rules = 3, .max_per_client = 100,
				    .max_lifetime = 3600, .random = fake_random, .random_arg = &rng_state };
	struct table *t = table_new(&cfg);
	struct table_grant g;
	struct table_addr v6 = { .v6 = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 } };

	CHECK(t != NULL);
	if (!t)
		return;
	/* A's wish outside its range: a port inside it instead. */
	CHECK_EQ(map(t, A, TCP, 8080, 50000, 600, 0, &g), 0);
	CHECK(g.external_port >= 40000 && g.external_port <= 40099);
	/* A's internal port under 1024 matches no allow rule: 2. */
	CHECK_EQ(map(t, A, TCP, 80, 0, 600, 0, &g), TABLE_RESULT_NOT_AUTHORIZED);
	/* B may have 6881 -> 6881, and nothing else. */
	CHECK_EQ(map(t, B, UDP, 6881, 0, 600, 0, &g), 0);
	CHECK_EQ(g.external_port, 6881);
	CHECK_EQ(map(t, B, UDP, 6882, 0, 600, 0, &g), TABLE_RESULT_NOT_AUTHORIZED);
	/* ... and once 6881 is taken by it for UDP, its TCP twin still fits; another host's would not. */
	CHECK_EQ(map(t, B, TCP, 6881, 0, 600, 0, &g), 0);
	CHECK_EQ(map(t, inet_addr("10.0.0.5"), TCP, 6881, 0, 600, 0, &g), TABLE_RESULT_NOT_AUTHORIZED);
	/* An IPv6 client matches no IPv4 rule. */
	CHECK_EQ(table_request(t, v6, TABLE_ORIGIN_NATPMP, TCP, 8080, 0, 600, 0, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	table_rollback(t);
	/* A restored mapping the rules no longer allow is refused. */
	struct table_mapping m = { .client = table_addr_v4(A), .protocol = UDP, .internal_port = 5000,
				   .external_port = 30000, .lifetime = 600, .expires = 600, .link = TABLE_LINK_NONE };
	CHECK_EQ(table_restore(t, &m), -EACCES);
	/* New rules at a reload: A's mapping moves into the new range at its renewal. */
	rules[0].external = (struct port_range){ 41000, 41009 };
	CHECK_EQ(table_configure(t, &cfg), 0);
	CHECK_EQ(map(t, A, TCP, 8080, 0, 600, 10, &g), 0);
	CHECK(g.external_port >= 41000 && g.external_port <= 41009);
	/* A deny rule before an allow rule that names the client too: the deny decides, result 2 (not 4). */
	struct table_rule deny_first[] = {
		{ .allow = false, .external = { 0, 65535 }, .net = B, .mask = 0xffffffff, .internal = { 0, 65535 } },
		{ .allow = true, .external = { 1024, 65535 }, .net = inet_addr("192.168.1.0"), .mask = inet_addr("255.255.255.0"),
		  .internal = { 1024, 65535 } },
	};
	cfg.rules = deny_first;
	cfg.n_rules = 2;
	CHECK_EQ(table_configure(t, &cfg), 0);
	CHECK_EQ(map(t, B, TCP, 3000, 3000, 600, 10, &g), TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(map(t, A, TCP, 3000, 3000, 600, 10, &g), 0);
	CHECK_EQ(g.external_port, 3000);
	/* Without rules, everyone maps anything allowed. */
	cfg.n_rules = 0;
	CHECK_EQ(table_configure(t, &cfg), 0);
	CHECK_EQ(map(t, inet_addr("10.0.0.5"), TCP, 80, 0, 600, 10, &g), 0);
	table_free(t);
}

/* A PCP client's request with nonce n (one byte repeated), PREFER_FAILURE when exact. */
static uint16_t pcp(struct table *t, uint32_t client, uint8_t n, bool exact, uint16_t iport, uint16_t sugg,
		    uint32_t life, int64_t now, struct table_grant *g)
{
	struct table_asker who = { .origin = TABLE_ORIGIN_PCP, .exact = exact };

	memset(who.nonce, n, sizeof(who.nonce));
	return table_request_by(t, table_addr_v4(client), &who, TCP, iport, sugg, life, now, g, TABLE_LINK_NONE);
}

/*
 * RFC 6887 11.3: a PCP mapping is its nonce's.  Another nonce, or NAT-PMP,
 * neither renews nor deletes it; the same nonce does; PCP takes a NAT-PMP
 * mapping over; a refused take-over or renewal changes nothing, even when
 * rolled back; PREFER_FAILURE gets the suggested port or nothing.
 */
static void test_pcp_nonces(void)
{
	struct table *t = make(20000, 20100, 100, 86400);
	struct table_grant g;
	const struct table_mapping *m;

	CHECK_EQ(pcp(t, A, 1, false, 80, 20080, 3600, 0, &g), 0);
	CHECK_EQ(g.external_port, 20080);
	table_commit(t);
	m = find(t, table_addr_v4(A), TCP, 80);
	CHECK(m && m->origin == TABLE_ORIGIN_PCP && m->nonce[0] == 1 && m->nonce[11] == 1);
	/* Another nonce: renewal and delete refused, nothing changed. */
	CHECK_EQ(pcp(t, A, 2, false, 80, 0, 7200, 10, &g), TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(g.external_port, 0);
	CHECK_EQ(pcp(t, A, 2, false, 80, 0, 0, 10, &g), TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(table_changes(t, &(const struct table_change *){ NULL }), 0);
	/* NAT-PMP has no nonce: its delete, delete-all and renewal are refused too. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 0, 10, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 0, 0, 0, 10, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 80, 0, 60, 10, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(table_count(t), 1);
	/* The same nonce renews (the retransmission of a create gets the same answer) and deletes. */
	CHECK_EQ(pcp(t, A, 1, false, 80, 20080, 3600, 20, &g), 0);
	CHECK(g.external_port == 20080 && g.lifetime == 3600);
	table_commit(t);
	CHECK_EQ(pcp(t, A, 1, false, 80, 0, 0, 30, &g), 0);
	table_commit(t);
	CHECK(find(t, table_addr_v4(A), TCP, 80) == NULL);

	/*
	 * A nonce of zeros (the codec takes one) owns its mapping like any
	 * other: the table keeps it as no nonce at all, and still knows whose.
	 */
	CHECK_EQ(pcp(t, A, 0, false, 82, 20082, 3600, 30, &g), 0);
	table_commit(t);
	CHECK_EQ(pcp(t, A, 0, false, 82, 0, 7200, 31, &g), 0);
	CHECK_EQ(g.lifetime, 7200);
	table_commit(t);
	CHECK_EQ(pcp(t, A, 9, false, 82, 0, 0, 32, &g), TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 82, 0, 0, 32, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	CHECK_EQ(pcp(t, A, 0, false, 82, 0, 0, 33, &g), 0);
	table_commit(t);
	CHECK(find(t, table_addr_v4(A), TCP, 82) == NULL);

	/* A NAT-PMP mapping taken over by PCP; rolled back, it is NAT-PMP's again. */
	CHECK_EQ(map(t, A, TCP, 81, 20081, 3600, 0, &g), 0);
	CHECK_EQ(pcp(t, A, 3, false, 81, 0, 3600, 40, &g), 0);
	CHECK_EQ(g.external_port, 20081);
	table_rollback(t);
	m = find(t, table_addr_v4(A), TCP, 81);
	CHECK(m && m->origin == TABLE_ORIGIN_NATPMP && m->nonce[0] == 0 && m->expires == 3600);
	CHECK_EQ(pcp(t, A, 3, false, 81, 0, 3600, 40, &g), 0);
	table_commit(t);
	m = find(t, table_addr_v4(A), TCP, 81);
	CHECK(m && m->origin == TABLE_ORIGIN_PCP && m->nonce[0] == 3);
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_NATPMP, TCP, 81, 0, 0, 50, &g, TABLE_LINK_NONE),
		 TABLE_RESULT_NOT_AUTHORIZED);
	/* The administrator may delete it. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 81, 0, 0, 50, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	CHECK_EQ(table_count(t), 0);

	/* PREFER_FAILURE: a port held by another client cannot be provided, and nothing is made. */
	CHECK_EQ(map(t, B, TCP, 90, 20090, 3600, 0, &g), 0);
	CHECK_EQ(pcp(t, A, 4, true, 90, 20090, 3600, 60, &g), TABLE_RESULT_CANNOT_PROVIDE);
	CHECK_EQ(g.external_port, 0);
	CHECK(find(t, table_addr_v4(A), TCP, 90) == NULL);
	CHECK_EQ(pcp(t, A, 4, true, 90, 20091, 3600, 60, &g), 0);
	CHECK_EQ(g.external_port, 20091);
	table_commit(t);
	/* ... and a renewal suggesting another port than the one held fails, keeping the mapping. */
	CHECK_EQ(pcp(t, A, 4, true, 90, 20092, 3600, 70, &g), TABLE_RESULT_CANNOT_PROVIDE);
	CHECK_EQ(find(t, table_addr_v4(A), TCP, 90)->external_port, 20091);
	/* Without it, the same request gets another port. */
	CHECK_EQ(pcp(t, A, 5, false, 91, 20090, 3600, 80, &g), 0);
	CHECK(g.external_port != 20090 && g.external_port != 0);
	table_commit(t);

	/*
	 * RFC 6887 7.3: an error changes nothing.  A reload takes the port of
	 * A's mapping out of the ranges; its renewal with PREFER_FAILURE on that
	 * port cannot move it, and the mapping stays as it was, not deleted.
	 */
	CHECK_EQ(pcp(t, A, 6, false, 85, 20085, 3600, 90, &g), 0);
	table_commit(t);
	struct port_range narrow = { 20095, 20100 };
	struct table_config cfg = { .allowed = &narrow, .n_allowed = 1, .max_per_client = 100, .max_lifetime = 86400,
				    .random = fake_random, .random_arg = &rng_state };
	CHECK_EQ(table_configure(t, &cfg), 0);
	CHECK_EQ(pcp(t, A, 6, true, 85, 20085, 3600, 100, &g), TABLE_RESULT_CANNOT_PROVIDE);
	CHECK_EQ(g.external_port, 0);
	CHECK_EQ(table_changes(t, &(const struct table_change *){ NULL }), 0);
	m = find(t, table_addr_v4(A), TCP, 85);
	CHECK(m && m->external_port == 20085 && m->expires == 3690 && m->nonce[0] == 6);
	/* The administrator's renewal moves it; it stays its nonce's. */
	CHECK_EQ(table_request(t, table_addr_v4(A), TABLE_ORIGIN_HTTP, TCP, 85, 0, 3600, 110, &g, TABLE_LINK_NONE), 0);
	table_commit(t);
	m = find(t, table_addr_v4(A), TCP, 85);
	CHECK(m && m->external_port >= 20095 && m->origin == TABLE_ORIGIN_PCP && m->nonce[0] == 6);
	table_free(t);
}

int main(void)
{
	A = inet_addr("192.168.1.10");
	B = inet_addr("192.168.1.11");
	test_port_choice();
	test_random_not_lowest();
	test_default_random();
	test_never_natpmp_ports();
	test_reserved_and_busy_ports();
	test_renewal_and_lifetimes();
	test_deletes();
	test_limits();
	test_expiry();
	test_rollback();
	test_restore();
	test_scale();
	test_origin_and_configure();
	test_link_limit();
	test_ipv6_clients();
	test_expiry_order();
	test_ownership();
	test_rules();
	test_pcp_nonces();
	return check_exit();
}
