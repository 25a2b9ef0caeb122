/*
 * journal.c - the state file's journal: a turn's changes appended as JSON
 * lines and synced before any answer, cut back when the turn is refused,
 * and replayed over the snapshot at start.
 *
 * A replay is as strict as the snapshot's load: a damaged line stops it,
 * and the error names the line; what came before stays applied.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state_impl.h"

/* One journal line: a change, as a mapping object with its op in front. */
static int format_change(struct outbuf *b, const struct state_change *c)
{
	return state_out_mapping(b, c->op == STATE_DEL ? "{\"op\": \"del\", " : "{\"op\": \"put\", ", &c->m, "}\n");
}

int state_journal_start(const char *path, uint64_t generation, int *fd, off_t *end)
{
	char header[64];
	int n, rc;

	*fd = -1;
	*end = -1;
	n = snprintf(header, sizeof(header), "{\"journal\": 1, \"generation\": %" PRIu64 "}\n", generation);
	if ((rc = state_save_text(path, header, (size_t)n, NULL)) < 0)
		return rc;
	if ((*fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC)) < 0)
		return -errno;
	*end = n;
	return 0;
}

int state_journal_cut(int fd, off_t end)
{
	if (end < 0)
		return -EINVAL;
	if (ftruncate(fd, end) < 0 || fdatasync(fd) < 0)
		return -errno;
	return 0;
}

int state_journal_append(int fd, off_t *end, const struct state_change *changes, size_t n)
{
	struct outbuf b = { 0 };
	int rc = 0;

	if (*end < 0)
		return -EINVAL;
	b.cap = 64 + n * STATE_MAPPING_BYTES;
	if (!(b.p = malloc(b.cap)))
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct state_mapping *m = &changes[i].m;
		if ((m->protocol != IPPROTO_TCP && m->protocol != IPPROTO_UDP) || !m->internal_port ||
		    !m->external_port || m->expires < 0)
			rc = -EINVAL;
		else
			rc = format_change(&b, &changes[i]);
	}
	if (rc < 0) {
		free(b.p);
		return rc; /* nothing was written */
	}
	rc = state_write_all(fd, b.p, b.len);
	/* The answers wait for this: what they acknowledge is on disk first. */
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	free(b.p);
	if (rc == 0) {
		*end += (off_t)b.len;
		return 0;
	}
	/*
	 * A disk that filled up mid-line, or a sync that failed: what was
	 * written must not stay, or the next append would continue a broken
	 * line (or a whole one nobody was told about).  Cut back to where the
	 * turn began; if even that fails, nothing more goes into this journal.
	 */
	if (state_journal_cut(fd, *end) < 0)
		*end = -1;
	return rc;
}

/* Where each (client, protocol, internal port) stands in st->mappings, for replaying. */
struct key_index {
	size_t *slots; /* index + 1; 0 empty */
	size_t cap;    /* power of two */
};

static size_t key_slot(const struct key_index *ix, const struct state_mapping *m)
{
	uint64_t a = m->client, x;

	/* An IPv6 client folded into the word an IPv4 one is. */
	if (m->ipv6)
		for (size_t i = 0; i < sizeof(m->client6); i++)
			a = a * 131 + m->client6[i];
	x = (a << 24 ^ (uint64_t)m->protocol << 16 ^ m->internal_port) * 0x9e3779b97f4a7c15ULL;

	return (size_t)(x >> 20) & (ix->cap - 1);
}

static int same_key(const struct state_mapping *a, const struct state_mapping *b)
{
	return a->client == b->client && a->ipv6 == b->ipv6 && memcmp(a->client6, b->client6, sizeof(a->client6)) == 0 &&
	       a->protocol == b->protocol && a->internal_port == b->internal_port;
}

/* The slot holding m's key, or the empty slot where it would go. */
static size_t *key_find(struct key_index *ix, const struct state *st, const struct state_mapping *m)
{
	size_t i = key_slot(ix, m);

	while (ix->slots[i] && !same_key(&st->mappings[ix->slots[i] - 1], m))
		i = (i + 1) & (ix->cap - 1);
	return &ix->slots[i];
}

/* Applies one change; deleted entries keep their place, marked by protocol 0, until the end. */
static int apply_change(struct key_index *ix, struct state *st, size_t *cap, const struct state_change *c)
{
	size_t *slot = key_find(ix, st, &c->m);

	if (*slot) {
		struct state_mapping *m = &st->mappings[*slot - 1];
		if (c->op == STATE_PUT) {
			*m = c->m;
		} else {
			m->protocol = 0;
			/* Keeps the probe chain intact: the key stays, pointing at a dead entry. */
		}
		return 0;
	}
	if (c->op == STATE_DEL)
		return 0;
	if (st->n_mappings == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct state_mapping *n = realloc(st->mappings, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		st->mappings = n;
		*cap = ncap;
	}
	st->mappings[st->n_mappings++] = c->m;
	*slot = st->n_mappings;
	return 0;
}

/*
 * One journal line of len bytes: exactly one JSON object and nothing before
 * or after it, so that a line two writes ran together ("{...}{...}") or one
 * cut short is damage, never half read.  *root on success.
 */
static int parse_line(struct reader *r, const char *line, size_t len, const char *where, struct json_object **root)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	size_t end;

	*root = NULL;
	if (memchr(line, '\0', len))
		return state_bad(r, "%s: NUL byte", where);
	if (!(tok = json_tokener_new()))
		return -ENOMEM;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					    JSON_TOKENER_VALIDATE_UTF8);
	*root = json_tokener_parse_ex(tok, line, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!*root || jerr != json_tokener_success) {
		json_object_put(*root);
		*root = NULL;
		return state_bad(r, "%s: not JSON", where);
	}
	if (end != len || !json_object_is_type(*root, json_type_object)) {
		json_object_put(*root);
		*root = NULL;
		return state_bad(r, "%s: not exactly one JSON object", where);
	}
	return 0;
}

/*
 * Parses one complete journal line (NUL-terminated in place) into c: the
 * daemon's own shape directly (fast), anything else, and every error, by
 * json-c.
 */
static int read_change(struct reader *r, const char *line, size_t len, size_t lineno, struct state_change *c,
		       bool fast)
{
	struct json_object *root, *op;
	char where[40];
	const char *o;
	int rc;

	if (fast && state_fast_change(line, len, c))
		return 0;
	snprintf(where, sizeof(where), "journal line %zu", lineno);
	if ((rc = parse_line(r, line, len, where, &root)) < 0)
		return rc;
	if (!(op = state_member(r, root, where, "op", json_type_string))) {
		json_object_put(root);
		return -EBADMSG;
	}
	o = json_object_get_string(op);
	if (strcmp(o, "put") == 0) {
		c->op = STATE_PUT;
	} else if (strcmp(o, "del") == 0) {
		c->op = STATE_DEL;
	} else {
		rc = state_bad(r, "%s.op: \"%.16s\" is not put or del", where, o);
		json_object_put(root);
		return rc;
	}
	rc = state_read_mapping(r, root, where, &c->m);
	json_object_put(root);
	return rc;
}

int state_journal_line_json(const char *line, size_t len, struct state_change *c)
{
	struct reader r = { 0 };

	return read_change(&r, line, len, 1, c, false);
}

int state_journal_replay(const char *path, struct state *st, size_t *applied, char *err, size_t errlen)
{
	struct reader r = { .err = err, .errlen = err ? errlen : 0 };
	struct key_index ix = { 0 };
	size_t len = 0, cap = st->n_mappings, lineno = 1, pos, kept = 0;
	char *buf = NULL, *nl;
	int64_t generation;
	int rc;

	*applied = 0;
	if (r.errlen)
		err[0] = '\0';
	if ((rc = state_read_file(&r, path, &buf, &len)) < 0)
		return rc == -ENOENT ? 0 : rc;
	/* The header; a journal cut short before its header ended holds nothing. */
	if (!(nl = memchr(buf, '\n', len))) {
		free(buf);
		return 0;
	}
	*nl = '\0';
	{
		struct json_object *h;
		rc = parse_line(&r, buf, (size_t)(nl - buf), "journal line 1", &h);
		if (rc == 0)
			rc = state_member_int(&r, h, "journal line 1", "generation", 0, INT64_MAX, "is negative", &generation);
		json_object_put(h);
	}
	if (rc < 0 || (uint64_t)generation != st->generation) {
		free(buf);
		return rc;
	}
	for (ix.cap = 64; ix.cap < 2 * (st->n_mappings + len / 64 + 1); ix.cap *= 2)
		;
	if (!(ix.slots = calloc(ix.cap, sizeof(*ix.slots)))) {
		free(buf);
		return -ENOMEM;
	}
	for (size_t i = 0; i < st->n_mappings; i++)
		*key_find(&ix, st, &st->mappings[i]) = i + 1;
	/* Complete lines only: a last one without its newline was never acknowledged. */
	for (pos = (size_t)(nl - buf) + 1; (nl = memchr(buf + pos, '\n', len - pos)) != NULL; pos = (size_t)(nl - buf) + 1) {
		struct state_change c;
		*nl = '\0';
		lineno++;
		if ((rc = read_change(&r, buf + pos, (size_t)(nl - buf) - pos, lineno, &c, true)) < 0 ||
		    (rc = apply_change(&ix, st, &cap, &c)) < 0)
			break;
		(*applied)++;
	}
	/* Drop what was deleted. */
	for (size_t i = 0; i < st->n_mappings; i++)
		if (st->mappings[i].protocol)
			st->mappings[kept++] = st->mappings[i];
	st->n_mappings = kept;
	free(ix.slots);
	free(buf);
	return rc;
}