/*
 * state.c - reading and writing the state file's snapshot (the journal
 * is journal.c's).
 *
 * Loading is strict: the file is the daemon's own output, so anything
 * unexpected means damage, and the caller quarantines it rather than guess.
 * Every rejection says what is wrong and where, because the message ends up
 * in the journal and is all an administrator has to go on.
 * Saving writes the JSON by hand into one buffer: the daemon may hold tens of
 * thousands of mappings and saves after every change.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state_impl.h"

#define STATE_MAX_SIZE (64 * 1024 * 1024)

int __attribute__((format(printf, 2, 3))) state_bad(struct reader *r, const char *fmt, ...)
{
	va_list ap;

	if (r->errlen) {
		va_start(ap, fmt);
		vsnprintf(r->err, r->errlen, fmt, ap);
		va_end(ap);
	}
	return -EBADMSG;
}

static const char *type_desc(enum json_type type)
{
	switch (type) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
		return "a floating-point number";
	case json_type_int:
		return "an integer";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "of an unknown type";
}

/* 2 * n hex digits (either case) from s into out's n bytes: false for anything else. */
bool state_unhex(const char *s, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++) {
		int c = s[i], d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return false;
		out[i / 2] = (uint8_t)(i % 2 ? out[i / 2] << 4 | d : d);
	}
	return true;
}

/* A string from the file, quoted and made safe to log; long ones are cut short. */
static const char *quote(const char *s, size_t len, char *buf, size_t buflen)
{
	size_t o = 0, i;

	buf[o++] = '"';
	for (i = 0; i < len && o + 8 < buflen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			buf[o++] = (char)c;
		else
			o += (size_t)snprintf(buf + o, buflen - o, "\\x%02x", c);
	}
	if (i < len)
		o += (size_t)snprintf(buf + o, buflen - o, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static void line_col(const char *buf, size_t off, size_t *line, size_t *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (buf[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* where is "" at the top level, "mappings[3]" inside a mapping. */
static void field_name(char *buf, size_t len, const char *where, const char *key)
{
	if (where[0])
		snprintf(buf, len, "%s.%s", where, key);
	else
		snprintf(buf, len, "\"%s\"", key);
}

struct json_object *state_member(struct reader *r, struct json_object *obj, const char *where, const char *key,
				  enum json_type type)
{
	struct json_object *v;
	char name[64];

	if (!json_object_object_get_ex(obj, key, &v)) {
		if (where[0])
			state_bad(r, "%s: missing \"%s\"", where, key);
		else
			state_bad(r, "missing \"%s\"", key);
		return NULL;
	}
	if (!json_object_is_type(v, type)) {
		field_name(name, sizeof(name), where, key);
		state_bad(r, "%s is %s, not %s", name, type_desc(json_object_get_type(v)), type_desc(type));
		return NULL;
	}
	return v;
}

/* An integer member within [min, max]; range says what the bounds mean. */
int state_member_int(struct reader *r, struct json_object *obj, const char *where, const char *key, int64_t min,
		      int64_t max, const char *range, int64_t *out)
{
	struct json_object *v = state_member(r, obj, where, key, json_type_int);
	char name[64];
	int64_t i;

	if (!v)
		return -EBADMSG;
	field_name(name, sizeof(name), where, key);
	/* json-c clamps what does not fit in an int64 instead of failing. */
	i = json_object_get_int64(v);
	if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
		return state_bad(r, "%s: number is too large", name);
	if (i < min || i > max)
		return state_bad(r, "%s: %" PRId64 " %s", name, i, range);
	*out = i;
	return 0;
}

int state_read_mapping(struct reader *r, struct json_object *o, const char *where, struct state_mapping *m)
{
	struct json_object *v;
	char shown[64];
	const char *s;
	size_t len;
	int64_t i;
	int rc;

	if (!json_object_is_type(o, json_type_object))
		return state_bad(r, "%s is %s, not an object", where, type_desc(json_object_get_type(o)));

	if (!(v = state_member(r, o, where, "client", json_type_string)))
		return -EBADMSG;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	/* inet_pton() would stop at an embedded NUL and accept what precedes it. */
	m->client = 0;
	m->ipv6 = false;
	memset(m->client6, 0, sizeof(m->client6));
	if (strlen(s) != len || (inet_pton(AF_INET, s, &m->client) != 1 && !(m->ipv6 = inet_pton(AF_INET6, s, m->client6) == 1)))
		return state_bad(r, "%s.client: %s is not an IPv4 or IPv6 address", where, quote(s, len, shown, sizeof(shown)));

	if (!(v = state_member(r, o, where, "protocol", json_type_string)))
		return -EBADMSG;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (len == 3 && memcmp(s, "tcp", 3) == 0)
		m->protocol = IPPROTO_TCP;
	else if (len == 3 && memcmp(s, "udp", 3) == 0)
		m->protocol = IPPROTO_UDP;
	else
		return state_bad(r, "%s.protocol: %s is not tcp or udp", where, quote(s, len, shown, sizeof(shown)));

	if ((rc = state_member_int(r, o, where, "internal_port", 1, 65535, "is not a port (1-65535)", &i)) < 0)
		return rc;
	m->internal_port = (uint16_t)i;
	if ((rc = state_member_int(r, o, where, "external_port", 1, 65535, "is not a port (1-65535)", &i)) < 0)
		return rc;
	m->external_port = (uint16_t)i;
	if ((rc = state_member_int(r, o, where, "lifetime", 0, UINT32_MAX, "is not a lifetime (0-4294967295 seconds)",
			     &i)) < 0)
		return rc;
	m->lifetime = (uint32_t)i;
	if ((rc = state_member_int(r, o, where, "expires", 0, INT64_MAX, "is negative (not a unix time)", &m->expires)) < 0)
		return rc;
	m->origin = 0;
	if (json_object_object_get_ex(o, "origin", &v)) {
		s = json_object_get_string(v);
		len = json_object_is_type(v, json_type_string) ? (size_t)json_object_get_string_len(v) : 0;
		if (len == 4 && memcmp(s, "http", 4) == 0)
			m->origin = STATE_ORIGIN_HTTP;
		else if (len == 3 && memcmp(s, "pcp", 3) == 0)
			m->origin = STATE_ORIGIN_PCP;
		else if (!(len == 6 && memcmp(s, "natpmp", 6) == 0))
			return state_bad(r, "%s.origin: %s is not natpmp, pcp or http", where,
				   json_object_is_type(v, json_type_string) ? quote(s, len, shown, sizeof(shown))
									    : type_desc(json_object_get_type(v)));
	}
	memset(m->nonce, 0, sizeof(m->nonce));
	if (m->origin == STATE_ORIGIN_PCP) {
		if (!(v = state_member(r, o, where, "nonce", json_type_string)))
			return -EBADMSG;
		s = json_object_get_string(v);
		len = (size_t)json_object_get_string_len(v);
		if (len != 2 * sizeof(m->nonce) || !state_unhex(s, m->nonce, sizeof(m->nonce)))
			return state_bad(r, "%s.nonce: %s is not 24 hex digits (a PCP mapping nonce)", where,
					 quote(s, len, shown, sizeof(shown)));
	}
	m->upstream_port = 0;
	if (json_object_object_get_ex(o, "upstream_port", NULL)) {
		if ((rc = state_member_int(r, o, where, "upstream_port", 1, 65535, "is not a port (1-65535)", &i)) < 0)
			return rc;
		m->upstream_port = (uint16_t)i;
	}
	m->expires_boot = 0;
	if (json_object_object_get_ex(o, "expires_boot", NULL) &&
	    (rc = state_member_int(r, o, where, "expires_boot", 1, INT64_MAX, "is not a positive CLOCK_BOOTTIME second",
			     &m->expires_boot)) < 0)
		return rc;
	return 0;
}

/* A boot id as the kernel writes it: 36 characters of hex digits and dashes. */
static int valid_boot_id(const char *id, size_t len)
{
	if (len != STATE_BOOT_ID_LEN)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!isxdigit((unsigned char)id[i]) && id[i] != '-')
			return 0;
	return 1;
}

static int decode(struct reader *r, struct json_object *root, struct state *st)
{
	struct json_object *list, *boot;
	int64_t version;
	size_t n;
	int rc;

	if (!json_object_is_type(root, json_type_object))
		return state_bad(r, "the top level is %s, not an object", type_desc(json_object_get_type(root)));
	/* The version first: a newer file is reported as such, not as a pile of odd fields. */
	if ((rc = state_member_int(r, root, "", "version", INT64_MIN, INT64_MAX, "", &version)) < 0)
		return rc;
	if (version != STATE_VERSION)
		return state_bad(r, "\"version\" is %" PRId64 ": this daemon reads version %d", version, STATE_VERSION);
	rc = state_member_int(r, root, "", "epoch_start", 0, INT64_MAX, "is negative (not a unix time)", &st->epoch_start);
	if (rc < 0)
		return rc;
	/* Absent in files written before the boot clock: the wall clock is all there is. */
	st->boot_id[0] = '\0';
	st->epoch_start_boot = 0;
	if (json_object_object_get_ex(root, "boot_id", &boot)) {
		const char *id = json_object_get_string(boot);
		size_t len = json_object_is_type(boot, json_type_string) ? (size_t)json_object_get_string_len(boot) : 0;
		if (!valid_boot_id(id, len))
			return state_bad(r, "\"boot_id\" is not a boot id (36 hex digits and dashes)");
		memcpy(st->boot_id, id, len + 1);
		if (json_object_object_get_ex(root, "epoch_start_boot", NULL) &&
		    (rc = state_member_int(r, root, "", "epoch_start_boot", 1, INT64_MAX,
				     "is not a positive CLOCK_BOOTTIME second", &st->epoch_start_boot)) < 0)
			return rc;
	}
	/* Absent in files written before the journal: generation 0, which no journal claims. */
	if (json_object_object_get_ex(root, "generation", NULL)) {
		int64_t g;
		if ((rc = state_member_int(r, root, "", "generation", 0, INT64_MAX, "is negative", &g)) < 0)
			return rc;
		st->generation = (uint64_t)g;
	}
	if (!(list = state_member(r, root, "", "mappings", json_type_array)))
		return -EBADMSG;
	n = json_object_array_length(list);
	if (n == 0)
		return 0;
	st->mappings = calloc(n, sizeof(*st->mappings));
	if (!st->mappings)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		char where[40];
		snprintf(where, sizeof(where), "mappings[%zu]", i);
		if ((rc = state_read_mapping(r, json_object_array_get_idx(list, i), where, &st->mappings[i])) < 0)
			return rc;
		st->n_mappings++;
	}
	return 0;
}

static int parse(struct reader *r, const char *buf, size_t len, struct state *st)
{
	struct json_tokener *tok;
	struct json_object *root;
	enum json_tokener_error jerr;
	const char *nul;
	size_t end, line, col;
	int rc;

	if (len == 0)
		return state_bad(r, "empty file");
	/* JSON has no raw NUL anywhere, and json-c would take one for the end of the input. */
	if ((nul = memchr(buf, '\0', len)) != NULL) {
		line_col(buf, (size_t)(nul - buf), &line, &col);
		return state_bad(r, "not JSON: NUL byte at line %zu, column %zu", line, col);
	}
	if (!(tok = json_tokener_new()))
		return -ENOMEM;
	/* Trailing characters are allowed here only to be reported precisely below. */
	json_tokener_set_flags(tok,
			       JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
	/* Including the final NUL tells json-c that the input ends there (a number may end the file). */
	root = json_tokener_parse_ex(tok, buf, (int)len + 1);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);

	if (!root) {
		if (jerr == json_tokener_success) /* a bare "null" */
			return state_bad(r, "the top level is null, not an object");
		if (jerr == json_tokener_continue || jerr == json_tokener_error_parse_eof) {
			for (end = 0; end < len && is_space(buf[end]); end++)
				;
			if (end == len)
				return state_bad(r, "empty file (only white space)");
			return state_bad(r, "not JSON: unexpected end of data (truncated?)");
		}
		if (end > len)
			end = len;
		line_col(buf, end, &line, &col);
		return state_bad(r, "not JSON: %s at line %zu, column %zu", json_tokener_error_desc(jerr), line, col);
	}
	while (end < len && is_space(buf[end]))
		end++;
	if (end < len) {
		json_object_put(root);
		line_col(buf, end, &line, &col);
		return state_bad(r, "trailing data after the JSON object at line %zu, column %zu", line, col);
	}
	rc = decode(r, root, st);
	json_object_put(root);
	return rc;
}

/* Reads the whole file, refusing one too large to be ours. */
int state_read_file(struct reader *r, const char *path, char **bufp, size_t *lenp)
{
	struct stat sb;
	size_t cap, len = 0;
	char *buf, *nbuf;
	ssize_t n;
	int fd, rc;

	/* O_NONBLOCK: a FIFO in the file's place must not hang the daemon in open(). */
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
		return -errno;
	if (fstat(fd, &sb) < 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (S_ISDIR(sb.st_mode)) {
		close(fd);
		return -EISDIR;
	}
	if (!S_ISREG(sb.st_mode)) {
		close(fd);
		return state_bad(r, "not a regular file");
	}
	if (sb.st_size > STATE_MAX_SIZE) {
		close(fd);
		return state_bad(r, "file is %lld bytes: a state file is at most 64 MiB", (long long)sb.st_size);
	}
	/* Room for the NUL and one byte more, so that EOF shows without growing the buffer. */
	cap = (size_t)sb.st_size + 2;
	if (!(buf = malloc(cap))) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		/* One byte is always kept for the terminating NUL. */
		if (len + 1 == cap) {
			if (len > STATE_MAX_SIZE) {
				free(buf);
				close(fd);
				return state_bad(r, "file is over 64 MiB: a state file is at most 64 MiB");
			}
			cap = cap * 2 < STATE_MAX_SIZE + 2 ? cap * 2 : STATE_MAX_SIZE + 2;
			if (!(nbuf = realloc(buf, cap))) {
				free(buf);
				close(fd);
				return -ENOMEM;
			}
			buf = nbuf;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			free(buf);
			close(fd);
			return rc;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;
}

/*
 * What state_load() and state_parse() share; buf[len] must be the NUL that
 * ends the input.  fast: the daemon's own shape is read without a tree
 * first; anything else, and every error, is json-c's.
 */
static int parse_into(struct reader *r, const char *buf, size_t len, struct state *out, bool fast)
{
	struct state st = { 0 };
	int rc;

	if (fast && (rc = state_fast_snapshot(buf, len, &st)) != 0) {
		if (rc > 0)
			*out = st;
		return rc < 0 ? rc : 0;
	}
	if ((rc = parse(r, buf, len, &st)) < 0) {
		state_free(&st);
		return rc;
	}
	*out = st;
	return 0;
}

static int parse_copy(const char *buf, size_t len, struct state *out, char *err, size_t errlen, bool fast)
{
	struct reader r = { .err = err, .errlen = err ? errlen : 0 };
	char *copy;
	int rc;

	memset(out, 0, sizeof(*out));
	if (r.errlen)
		err[0] = '\0';
	/* The limit state_load() applies, which also keeps the length within json-c's int. */
	if (len > STATE_MAX_SIZE)
		return state_bad(&r, "%zu bytes: a state file is at most 64 MiB", len);
	/* The parser needs the NUL after the last byte. */
	if (!(copy = malloc(len + 1)))
		return -ENOMEM;
	if (len)
		memcpy(copy, buf, len);
	copy[len] = '\0';
	rc = parse_into(&r, copy, len, out, fast);
	free(copy);
	return rc;
}

int state_parse(const char *buf, size_t len, struct state *out, char *err, size_t errlen)
{
	return parse_copy(buf, len, out, err, errlen, true);
}

int state_parse_json(const char *buf, size_t len, struct state *out, char *err, size_t errlen)
{
	return parse_copy(buf, len, out, err, errlen, false);
}

int state_load(const char *path, struct state *out, char *err, size_t errlen)
{
	struct reader r = { .err = err, .errlen = err ? errlen : 0 };
	char *buf = NULL;
	size_t len = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (r.errlen)
		err[0] = '\0';
	if ((rc = state_read_file(&r, path, &buf, &len)) < 0)
		return rc;
	/* state_read_file() ends the buffer with a NUL, so it is parsed in place rather than copied. */
	rc = parse_into(&r, buf, len, out, true);
	free(buf);
	return rc;
}

void state_free(struct state *s)
{
	free(s->mappings);
	memset(s, 0, sizeof(*s));
}

/* --- saving --- */

#define STATE_CHUNK (64 * 1024)

int __attribute__((format(printf, 2, 3))) state_out_printf(struct outbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return -EINVAL;
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return 0;
		}
		/* Only reached if the size estimate was wrong. */
		size_t cap = b->cap * 2 + (size_t)n;
		char *p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
}


const char *state_client_str(const struct state_mapping *m, char buf[INET6_ADDRSTRLEN])
{
	struct in_addr in = { .s_addr = m->client };

	if (m->ipv6)
		return inet_ntop(AF_INET6, m->client6, buf, INET6_ADDRSTRLEN);
	return inet_ntop(AF_INET, &in, buf, INET6_ADDRSTRLEN);
}

static int format_state(const struct state *s, struct outbuf *b)
{
	int rc;

	if (s->n_mappings > (SIZE_MAX - 256) / STATE_MAPPING_BYTES)
		return -ENOMEM;
	b->cap = b->fd > 0 ? STATE_CHUNK + 2 * STATE_MAPPING_BYTES : 256 + s->n_mappings * STATE_MAPPING_BYTES;
	b->len = 0;
	if (!(b->p = malloc(b->cap)))
		return -ENOMEM;
	if ((rc = state_out_printf(b, "{\"version\": %d, \"epoch_start\": %" PRId64, STATE_VERSION, s->epoch_start)) < 0)
		return rc;
	if (s->boot_id[0] &&
	    (rc = state_out_printf(b, ", \"boot_id\": \"%s\"", s->boot_id)) < 0)
		return rc;
	if (s->boot_id[0] && s->epoch_start_boot &&
	    (rc = state_out_printf(b, ", \"epoch_start_boot\": %" PRId64, s->epoch_start_boot)) < 0)
		return rc;
	if ((rc = state_out_printf(b, ", \"generation\": %" PRIu64 ", \"mappings\": [", s->generation)) < 0)
		return rc;
	for (size_t i = 0; i < s->n_mappings; i++) {
		if ((rc = state_out_mapping(b, i ? ",\n  {" : "\n  {", &s->mappings[i], "}")) < 0)
			return rc;
		/* Streaming to a file: a snapshot of 100,000 mappings never sits in memory whole. */
		if (b->fd > 0 && b->len > STATE_CHUNK) {
			if ((rc = state_write_all(b->fd, b->p, b->len)) < 0)
				return rc;
			b->len = 0;
		}
	}
	return state_out_printf(b, "%s]}\n", s->n_mappings ? "\n" : "");
}

/* Refuses to write what state_load() would reject. */
static int check_state(const struct state *s)
{
	if (s->epoch_start < 0 || s->generation > INT64_MAX || (s->n_mappings && !s->mappings) ||
	    s->epoch_start_boot < 0 || (s->boot_id[0] && !valid_boot_id(s->boot_id, strlen(s->boot_id))))
		return -EINVAL;
	for (size_t i = 0; i < s->n_mappings; i++) {
		const struct state_mapping *m = &s->mappings[i];
		if ((m->protocol != IPPROTO_TCP && m->protocol != IPPROTO_UDP) || m->internal_port == 0 ||
		    m->external_port == 0 || m->expires < 0 || m->expires_boot < 0)
			return -EINVAL;
	}
	return 0;
}

int state_format(const struct state *s, char **bufp, size_t *lenp)
{
	struct outbuf b = { 0 };
	int rc;

	*bufp = NULL;
	*lenp = 0;
	if ((rc = check_state(s)) < 0)
		return rc;
	if ((rc = format_state(s, &b)) < 0) {
		free(b.p);
		return rc;
	}
	*bufp = b.p;
	*lenp = b.len;
	return 0;
}

int state_save(const char *path, const struct state *s, bool *replaced)
{
	char tmp[PATH_MAX];
	struct outbuf b = { 0 };
	int rc;

	if (replaced)
		*replaced = false;
	if ((rc = check_state(s)) < 0)
		return rc;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((b.fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -errno;
	rc = format_state(s, &b);
	if (rc == 0)
		rc = state_write_all(b.fd, b.p, b.len);
	free(b.p);
	return state_commit_tmp(path, tmp, b.fd, rc, replaced);
}

void state_boot_id(char id[STATE_BOOT_ID_LEN + 1])
{
	char line[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	id[0] = '\0';
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && strlen(line) >= STATE_BOOT_ID_LEN) {
		memcpy(id, line, STATE_BOOT_ID_LEN);
		id[STATE_BOOT_ID_LEN] = '\0';
	}
	fclose(f);
}

bool state_same_boot(const struct state *st, const char *boot_id)
{
	return boot_id[0] && strcmp(st->boot_id, boot_id) == 0;
}

int64_t state_mapping_left(const struct state_mapping *m, bool same_boot, int64_t boot, int64_t wall, bool *on_boot)
{
	*on_boot = same_boot && m->expires_boot;
	return *on_boot ? m->expires_boot - boot : m->expires - wall;
}
