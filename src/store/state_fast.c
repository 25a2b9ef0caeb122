/*
 * state_fast.c - the daemon's own shape of a mapping object, written by
 * hand (snapshot lines and journal lines), and the snapshot read back
 * without building a tree when it has exactly that shape.
 *
 * Writing: a mapping is formatted for every change a turn makes durable
 * and for every line of a snapshot; a dozen printf conversions each were
 * about a tenth of a busy turn's CPU.
 *
 * json-c builds an object for every value of the file and frees them all
 * again: for 60,000 mappings that is about 200 ms of a restart whose target
 * is 500 ms in all (docs/performance.md).  The daemon's own snapshot is one
 * header line and one mapping object per line, members in a fixed order and
 * spacing, no escapes: this reader takes exactly that and nothing else.
 * Anything it does not recognise, valid JSON or not (a file edited by hand,
 * written by another version, or damaged), it hands back untouched, and
 * the strict json-c reader of state.c decides and words the error.  What it
 * accepts it reads to the same values as that reader (fuzz_state checks
 * both on every input).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state_impl.h"

/* --- writing --- */

static char *put(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

/* v in decimal, as printf's %llu would write it. */
static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	int n = 0;

	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n)
		*p++ = tmp[--n];
	return p;
}

/* v in decimal, as printf's %lld would write it. */
static char *put_i64(char *p, int64_t v)
{
	if (v < 0) {
		*p++ = '-';
		return put_u64(p, (uint64_t)0 - (uint64_t)v);
	}
	return put_u64(p, (uint64_t)v);
}

int state_out_mapping(struct outbuf *b, const char *before, const struct state_mapping *m, const char *after)
{
	static const char hex[] = "0123456789abcdef";
	char client[INET6_ADDRSTRLEN], *p;

	/* Room for the longest: IPv6 client, every optional member, before and after. */
	if (b->cap - b->len < STATE_MAPPING_BYTES + 64) {
		size_t cap = b->cap * 2 + STATE_MAPPING_BYTES + 64;
		char *np = realloc(b->p, cap);

		if (!np)
			return -ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	p = put(b->p + b->len, before);
	p = put(p, "\"client\": \"");
	p = put(p, state_client_str(m, client));
	p = put(p, m->protocol == IPPROTO_TCP ? "\", \"protocol\": \"tcp\"" : "\", \"protocol\": \"udp\"");
	p = put_u64(put(p, ", \"internal_port\": "), m->internal_port);
	p = put_u64(put(p, ", \"external_port\": "), m->external_port);
	p = put_u64(put(p, ", \"lifetime\": "), m->lifetime);
	p = put_i64(put(p, ", \"expires\": "), m->expires);
	if (m->origin == STATE_ORIGIN_HTTP)
		p = put(p, ", \"origin\": \"http\"");
	if (m->origin == STATE_ORIGIN_PCP) {
		p = put(p, ", \"origin\": \"pcp\", \"nonce\": \"");
		for (size_t i = 0; i < sizeof(m->nonce); i++) {
			*p++ = hex[m->nonce[i] >> 4];
			*p++ = hex[m->nonce[i] & 15];
		}
		*p++ = '"';
	}
	if (m->upstream_port)
		p = put_u64(put(p, ", \"upstream_port\": "), m->upstream_port);
	if (m->expires_boot)
		p = put_i64(put(p, ", \"expires_boot\": "), m->expires_boot);
	p = put(p, after);
	b->len = (size_t)(p - b->p);
	return 0;
}

/* --- reading --- */

/* Where the reader is: p moves forward, never past end; a failed step leaves ok false. */
struct cursor {
	const char *p, *end;
	bool ok;
};

/* The literal s, exactly. */
static void lit(struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	if (c->ok && (size_t)(c->end - c->p) >= n && memcmp(c->p, s, n) == 0)
		c->p += n;
	else
		c->ok = false;
}

/* Whether the literal s comes next (and then past it). */
static bool next_is(struct cursor *c, const char *s)
{
	size_t n = strlen(s);

	if (!c->ok || (size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0)
		return false;
	c->p += n;
	return true;
}

/* A JSON integer as state.c writes them, in [min, max]: no sign, no leading zero, at most 19 digits. */
static int64_t num(struct cursor *c, int64_t min, int64_t max)
{
	uint64_t v = 0;
	size_t n = 0;

	while (c->ok && c->p + n < c->end && c->p[n] >= '0' && c->p[n] <= '9' && n < 19)
		v = v * 10 + (uint64_t)(c->p[n++] - '0');
	/* A 20th digit, a leading zero or no digit at all: not the writer's. */
	if (!c->ok || n == 0 || (n > 1 && c->p[0] == '0') ||
	    (c->p + n < c->end && c->p[n] >= '0' && c->p[n] <= '9') || v > (uint64_t)INT64_MAX ||
	    (int64_t)v < min || (int64_t)v > max) {
		c->ok = false;
		return 0;
	}
	c->p += n;
	return (int64_t)v;
}

/* A string of at most max characters from set, without its quotes, into buf (NUL-terminated). */
static void str(struct cursor *c, const char *set, char *buf, size_t max)
{
	size_t n = 0;

	lit(c, "\"");
	while (c->ok && c->p + n < c->end && c->p[n] && strchr(set, c->p[n]) && n < max)
		n++;
	if (!c->ok || c->p + n >= c->end || c->p[n] != '"') {
		c->ok = false;
		return;
	}
	memcpy(buf, c->p, n);
	buf[n] = '\0';
	c->p += n + 1;
}

static const char hex_digits[] = "0123456789abcdefABCDEF";

/* A mapping object's members, as state_out_mapping() writes them (its braces are the caller's). */
static void members(struct cursor *c, struct state_mapping *m)
{
	char s[INET6_ADDRSTRLEN + 1];

	memset(m, 0, sizeof(*m));
	lit(c, "\"client\": ");
	str(c, "0123456789abcdefABCDEF.:", s, INET6_ADDRSTRLEN);
	if (c->ok && inet_pton(AF_INET, s, &m->client) != 1 && !(m->ipv6 = inet_pton(AF_INET6, s, m->client6) == 1))
		c->ok = false;
	lit(c, ", \"protocol\": ");
	if (next_is(c, "\"tcp\""))
		m->protocol = IPPROTO_TCP;
	else if (next_is(c, "\"udp\""))
		m->protocol = IPPROTO_UDP;
	else
		c->ok = false;
	lit(c, ", \"internal_port\": ");
	m->internal_port = (uint16_t)num(c, 1, 65535);
	lit(c, ", \"external_port\": ");
	m->external_port = (uint16_t)num(c, 1, 65535);
	lit(c, ", \"lifetime\": ");
	m->lifetime = (uint32_t)num(c, 0, UINT32_MAX);
	lit(c, ", \"expires\": ");
	m->expires = num(c, 0, INT64_MAX);
	if (next_is(c, ", \"origin\": \"http\"")) {
		m->origin = STATE_ORIGIN_HTTP;
	} else if (next_is(c, ", \"origin\": \"pcp\", \"nonce\": ")) {
		char nonce[2 * sizeof(m->nonce) + 1];

		m->origin = STATE_ORIGIN_PCP;
		str(c, hex_digits, nonce, 2 * sizeof(m->nonce));
		if (c->ok && (strlen(nonce) != 2 * sizeof(m->nonce) || !state_unhex(nonce, m->nonce, sizeof(m->nonce))))
			c->ok = false;
	}
	if (next_is(c, ", \"upstream_port\": "))
		m->upstream_port = (uint16_t)num(c, 1, 65535);
	if (next_is(c, ", \"expires_boot\": "))
		m->expires_boot = num(c, 1, INT64_MAX);
}

/* One mapping object, as a snapshot line holds it. */
static void mapping(struct cursor *c, struct state_mapping *m)
{
	lit(c, "{");
	members(c, m);
	lit(c, "}");
}

int state_fast_change(const char *line, size_t len, struct state_change *ch)
{
	struct cursor c = { .p = line, .end = line + len, .ok = true };

	if (next_is(&c, "{\"op\": \"put\", "))
		ch->op = STATE_PUT;
	else if (next_is(&c, "{\"op\": \"del\", "))
		ch->op = STATE_DEL;
	else
		return 0;
	members(&c, &ch->m);
	lit(&c, "}");
	return c.ok && c.p == c.end;
}

int state_fast_snapshot(const char *buf, size_t len, struct state *st)
{
	struct cursor c = { .p = buf, .end = buf + len, .ok = true };
	size_t lines = 0;

	memset(st, 0, sizeof(*st));
	lit(&c, "{\"version\": ");
	if (num(&c, 0, INT64_MAX) != STATE_VERSION)
		return 0;
	lit(&c, ", \"epoch_start\": ");
	st->epoch_start = num(&c, 0, INT64_MAX);
	if (next_is(&c, ", \"boot_id\": ")) {
		str(&c, "0123456789abcdefABCDEF-", st->boot_id, STATE_BOOT_ID_LEN);
		if (c.ok && strlen(st->boot_id) != STATE_BOOT_ID_LEN)
			c.ok = false;
		if (next_is(&c, ", \"epoch_start_boot\": "))
			st->epoch_start_boot = num(&c, 1, INT64_MAX);
	}
	lit(&c, ", \"generation\": ");
	st->generation = (uint64_t)num(&c, 0, INT64_MAX);
	lit(&c, ", \"mappings\": [");
	if (!c.ok)
		goto other;
	/*
	 * At most one mapping a line, and none shorter than 64 bytes: a bound
	 * on the array that a file of nothing but newlines cannot inflate.
	 */
	for (const char *p = c.p; (p = memchr(p, '\n', (size_t)(c.end - p))) != NULL && lines <= len / 64; p++)
		lines++;
	if (lines && !(st->mappings = calloc(lines, sizeof(*st->mappings)))) {
		memset(st, 0, sizeof(*st));
		return -ENOMEM;
	}
	while (c.ok && st->n_mappings < lines && next_is(&c, st->n_mappings ? ",\n  " : "\n  "))
		mapping(&c, &st->mappings[st->n_mappings++]);
	lit(&c, st->n_mappings ? "\n]}\n" : "]}\n");
	if (c.ok && c.p == c.end) {
		if (!st->n_mappings) {
			free(st->mappings);
			st->mappings = NULL;
		}
		return 1;
	}
other:
	free(st->mappings);
	memset(st, 0, sizeof(*st));
	return 0;
}
