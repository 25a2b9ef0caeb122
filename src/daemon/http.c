/*
 * http.c - the HTTP API: routing, authentication and input checks.
 *
 * evhttp does the protocol, with limits set so that no client holds more
 * than a small buffer and a connection for HTTP_TIMEOUT_S: headers over
 * HTTP_MAX_HEADERS and bodies over 16 times HTTP_MAX_BODY are cut off by
 * evhttp itself; a body over HTTP_MAX_BODY gets a JSON 400 from here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/http.h"
#include "daemon/log.h"
#include "kernel/netif.h"
#include "wire/proto.h"

struct http {
	struct event_base *base;
	struct evhttp *evhttp;
	struct evconnlistener *listener;
	struct evhttp_bound_socket *bound;
	struct event *resume; /* re-enables the listener after running out of descriptors */
	struct event *reap;   /* a retired handle's end (http_retire) */
	const struct config *cfg;
	struct http_backend backend;
	uint64_t accept_errors;
	int unix_fd;	/* -1: a TCP listener */
	char path[108]; /* the unix socket's, removed at close */
	int retiring;	/* http_retire(): new requests are turned away */
	int reap_tries;
	/* /forward requests waiting for the server (upstream mode): answered or detached before the evhttp goes. */
	LIST_HEAD(, http_pending) pending;
	/* The connections whose request is still being read (see http_gate). */
	LIST_HEAD(, http_gate) gates;
	struct http *next;
};

/*
 * The open handles (one, two during a reload): a listener's error callback
 * gets evhttp's argument, not ours, and finds its handle here.
 */
static struct http *http_open_list;

int http_token_equal(const char *given, size_t given_len, const char *expected)
{
	size_t len = strlen(expected);
	unsigned char diff = given_len != len;

	/* Every byte of the expected token is looked at, whatever was given. */
	for (size_t i = 0; i < len; i++)
		diff |= (unsigned char)(expected[i] ^ (given_len ? given[i % given_len] : 0));
	return len > 0 && diff == 0;
}

static void reply_json(struct evhttp_request *req, int code, const char *reason, struct json_object *o)
{
	struct evbuffer *buf = evbuffer_new();
	size_t len;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);

	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
	if (buf) {
		evbuffer_add(buf, text, len);
		evbuffer_add(buf, "\n", 1);
	}
	evhttp_send_reply(req, code, reason, buf);
	if (buf)
		evbuffer_free(buf);
	json_object_put(o);
}

/* {"error": message, "field": field}, field omitted when NULL. */
static void reply_error(struct evhttp_request *req, int code, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void reply_error(struct evhttp_request *req, int code, const char *field, const char *fmt, ...)
{
	static const struct {
		int code;
		const char *reason;
	} reasons[] = { { 400, "Bad Request" }, { 401, "Unauthorized" },	   { 403, "Forbidden" },
			{ 404, "Not Found" },	{ 405, "Method Not Allowed" }, { 409, "Conflict" },
			{ 500, "Internal Server Error" }, { 503, "Service Unavailable" } };
	struct json_object *o = json_object_new_object();
	const char *reason = "Error";
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			reason = reasons[i].reason;
	json_object_object_add(o, "error", json_object_new_string(msg));
	if (field)
		json_object_object_add(o, "field", json_object_new_string(field));
	if (code == 401)
		evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate", "Bearer");
	reply_json(req, code, reason, o);
}

/* 1 when the request carries the configured token. */
/* What a request without the token is told, in every 401. */
#define HTTP_AUTH_HINT "send Authorization: Bearer <token>"

/* Whether an Authorization header's value (NULL: none) carries the configured token. */
static int bearer_ok(const struct http *h, const char *auth)
{
	if (!h->cfg->http_token[0] || !auth || strncasecmp(auth, "Bearer ", 7) != 0)
		return 0;
	auth += 7;
	while (*auth == ' ')
		auth++;
	return http_token_equal(auth, strlen(auth), h->cfg->http_token);
}

static int authorized(struct http *h, struct evhttp_request *req)
{
	return bearer_ok(h, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"));
}

/* --- GET --- */

static void on_health(struct http *h, struct evhttp_request *req)
{
	struct json_object *o = json_object_new_object();
	int serving = h->backend.status(h->backend.arg, o);

	reply_json(req, serving ? 200 : 503, serving ? "OK" : "Service Unavailable", o);
}

struct list_ctx {
	struct json_object *list;
	uint32_t client; /* 0: all */
	uint32_t public;
	int upstream; /* external_port is the gateway's */
};

static void list_one(const struct table_mapping *m, uint32_t remaining, void *arg)
{
	struct list_ctx *ctx = arg;
	struct json_object *o;
	char a[INET_ADDRSTRLEN];

	if (ctx->client && m->client != ctx->client)
		return;
	o = json_object_new_object();
	json_object_object_add(o, "client", json_object_new_string(netif_addr_str(m->client, a)));
	json_object_object_add(o, "protocol", json_object_new_string(proto_protocol_name(m->protocol)));
	json_object_object_add(o, "internal_port", json_object_new_int(m->internal_port));
	if (ctx->upstream) {
		/* What the world reaches: the gateway's port, null until it granted one; and the router's own. */
		json_object_object_add(o, "external_port", m->upstream_port ? json_object_new_int(m->upstream_port) : NULL);
		json_object_object_add(o, "local_port", json_object_new_int(m->external_port));
	} else {
		json_object_object_add(o, "external_port", json_object_new_int(m->external_port));
	}
	json_object_object_add(o, "external_address",
			       ctx->public ? json_object_new_string(netif_addr_str(ctx->public, a)) : NULL);
	json_object_object_add(o, "lifetime", json_object_new_int64(remaining));
	json_object_object_add(o, "origin", json_object_new_string(m->origin == TABLE_ORIGIN_HTTP ? "http" : "natpmp"));
	json_object_array_add(ctx->list, o);
}

static void on_mappings(struct http *h, struct evhttp_request *req, const char *query)
{
	struct list_ctx ctx = { .public = h->backend.public_address(h->backend.arg), .upstream = h->backend.upstream };
	struct evkeyvalq params;
	struct in_addr a;

	TAILQ_INIT(&params);
	if (query && evhttp_parse_query_str(query, &params) < 0) {
		reply_error(req, 400, NULL, "cannot parse the query string");
		return;
	}
	for (struct evkeyval *kv = params.tqh_first; kv; kv = kv->next.tqe_next) {
		if (strcmp(kv->key, "client") != 0) {
			reply_error(req, 400, kv->key, "unknown parameter: only ?client=A.B.C.D filters");
			evhttp_clear_headers(&params);
			return;
		}
		if (inet_pton(AF_INET, kv->value, &a) != 1) {
			reply_error(req, 400, "client", "not an IPv4 address: use ?client=A.B.C.D");
			evhttp_clear_headers(&params);
			return;
		}
		ctx.client = a.s_addr;
	}
	evhttp_clear_headers(&params);
	ctx.list = json_object_new_array();
	h->backend.foreach(h->backend.arg, list_one, &ctx);
	reply_json(req, 200, "OK", ctx.list);
}

static void on_metrics(struct http *h, struct evhttp_request *req)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	struct evbuffer *buf;
	int failed;

	if (!f) {
		reply_error(req, 500, NULL, "out of memory");
		return;
	}
	failed = h->backend.metrics(h->backend.arg, f) < 0;
	/* Closed exactly once, whatever happened: only then is text final (or freeable). */
	failed |= fclose(f) != 0;
	if (failed) {
		free(text);
		reply_error(req, 500, NULL, "out of memory");
		return;
	}
	buf = evbuffer_new();
	if (buf)
		evbuffer_add(buf, text, len);
	free(text);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "text/plain; version=0.0.4");
	evhttp_send_reply(req, 200, "OK", buf);
	if (buf)
		evbuffer_free(buf);
}

/* --- /forward --- */

struct forward_req {
	uint32_t client;
	uint8_t protocol;
	uint16_t internal_port;
	uint16_t external_port;
	uint32_t duration;
};

/* An integer member within [min, max]; 0, or -1 after replying 400. */
static int int_field(struct evhttp_request *req, struct json_object *v, const char *name, int64_t min, int64_t max,
		     int64_t *out)
{
	int64_t i;

	if (!json_object_is_type(v, json_type_int)) {
		reply_error(req, 400, name, "must be a whole number");
		return -1;
	}
	/* json-c clamps what does not fit into INT64_MIN or INT64_MAX: out of range either way. */
	i = json_object_get_int64(v);
	if (i < min || i > max) {
		reply_error(req, 400, name, "must be %lld to %lld", (long long)min, (long long)max);
		return -1;
	}
	*out = i;
	return 0;
}

/*
 * Reads and checks the body of a POST (create) or DELETE (delete); 0, or -1
 * after replying 400 with the field at fault.
 */
static int parse_forward(struct http *h, struct evhttp_request *req, int create, struct forward_req *f)
{
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t len = evbuffer_get_length(in);
	struct json_tokener *tok;
	struct json_object *body;
	unsigned seen = 0;
	int64_t i;
	char *text;
	int r = -1;

	if (len > HTTP_MAX_BODY) {
		reply_error(req, 400, "body", "larger than %d bytes", HTTP_MAX_BODY);
		return -1;
	}
	if (len == 0) {
		reply_error(req, 400, "body", "missing: send a JSON object");
		return -1;
	}
	text = (char *)evbuffer_pullup(in, -1);
	if (!(tok = json_tokener_new_ex(4))) {
		reply_error(req, 500, NULL, "out of memory");
		return -1;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	body = json_tokener_parse_ex(tok, text, (int)len);
	if (!body || json_tokener_get_error(tok) != json_tokener_success) {
		reply_error(req, 400, "body", "not valid JSON: %s",
			    json_tokener_error_desc(json_tokener_get_error(tok) == json_tokener_continue
							    ? json_tokener_error_parse_eof
							    : json_tokener_get_error(tok)));
		goto out;
	}
	/* Whitespace may follow the object, nothing else. */
	for (size_t p = json_tokener_get_parse_end(tok); p < len; p++)
		if (text[p] != ' ' && text[p] != '\n' && text[p] != '\r' && text[p] != '\t') {
			reply_error(req, 400, "body", "text after the JSON object");
			goto out;
		}
	if (!json_object_is_type(body, json_type_object)) {
		reply_error(req, 400, "body", "must be a JSON object");
		goto out;
	}
	*f = (struct forward_req){ .duration = h->cfg->default_lifetime };
	json_object_object_foreach(body, key, val)
	{
		if (strcmp(key, "internal_ip") == 0) {
			struct in_addr a;
			if (!json_object_is_type(val, json_type_string)) {
				reply_error(req, 400, key, "must be a string such as \"192.168.1.10\"");
				goto out;
			}
			if ((size_t)json_object_get_string_len(val) != strlen(json_object_get_string(val)) ||
			    inet_pton(AF_INET, json_object_get_string(val), &a) != 1) {
				reply_error(req, 400, key, "not an IPv4 address");
				goto out;
			}
			f->client = a.s_addr;
			seen |= 1;
		} else if (strcmp(key, "internal_port") == 0) {
			if (int_field(req, val, key, create ? 1 : 0, 65535, &i) < 0)
				goto out;
			f->internal_port = (uint16_t)i;
			seen |= 2;
		} else if (strcmp(key, "protocol") == 0) {
			const char *p = json_object_is_type(val, json_type_string) ? json_object_get_string(val) : "";
			if (strcmp(p, "tcp") == 0)
				f->protocol = IPPROTO_TCP;
			else if (strcmp(p, "udp") == 0)
				f->protocol = IPPROTO_UDP;
			else {
				reply_error(req, 400, key, "must be \"tcp\" or \"udp\"");
				goto out;
			}
			seen |= 4;
		} else if (create && strcmp(key, "duration") == 0) {
			if (int_field(req, val, key, 1, UINT32_MAX, &i) < 0)
				goto out;
			f->duration = (uint32_t)i;
		} else if (create && strcmp(key, "external_port") == 0) {
			if (int_field(req, val, key, 0, 65535, &i) < 0)
				goto out;
			f->external_port = (uint16_t)i;
		} else {
			reply_error(req, 400, key,
				    create ? "unknown field: use internal_ip, internal_port, protocol, duration and "
					     "external_port"
					   : "unknown field: use internal_ip, internal_port and protocol");
			goto out;
		}
	}
	if (seen != 7) {
		reply_error(req, 400, !(seen & 1) ? "internal_ip" : !(seen & 2) ? "internal_port" : "protocol",
			    "missing");
		goto out;
	}
	r = 0;
out:
	if (body)
		json_object_put(body);
	json_tokener_free(tok);
	return r;
}

struct http_pending {
	struct http *h;		    /* NULL once detached: the handle and its request are gone */
	struct evhttp_request *req;
	struct forward_req f;
	int create;
	LIST_ENTRY(http_pending) link;
};

/* The answer to a /forward request, now or once the server has it. */
static void forward_reply(const struct http_pending *p, int r, const struct table_grant *g)
{
	struct evhttp_request *req = p->req;
	const struct forward_req *f = &p->f;
	struct json_object *o;
	char a[INET_ADDRSTRLEN];
	uint32_t public;

	switch (r) {
	case NATPMP_RESULT_SUCCESS:
		break;
	case HTTP_FORWARD_NOT_LAN:
		reply_error(req, 403, "internal_ip", "%s is not a host on a listen interface's subnet",
			    netif_addr_str(f->client, a));
		return;
	case NATPMP_RESULT_NOT_AUTHORIZED:
		reply_error(req, 403, NULL, p->h->backend.upstream ? "refused by the port rules or by the upstream gateway"
								  : "refused by the port rules");
		return;
	case NATPMP_RESULT_OUT_OF_RESOURCES:
		reply_error(req, 409, NULL, p->h->backend.upstream
						    ? "no external port is free for this host here or at the upstream "
						      "gateway, or it holds --max-mappings-per-ip"
						    : "no external port is free for this host, or it holds --max-mappings-per-ip");
		return;
	case NATPMP_RESULT_NETWORK_FAILURE:
		reply_error(req, 503, NULL, "the upstream gateway did not grant the port (no answer, or no address); try again");
		return;
	default:
		reply_error(req, 503, NULL, "the mapping could not be installed; try again");
		return;
	}
	o = json_object_new_object();
	public = p->h->backend.public_address(p->h->backend.arg);
	json_object_object_add(o, "internal_ip", json_object_new_string(netif_addr_str(f->client, a)));
	json_object_object_add(o, "internal_port", json_object_new_int(f->internal_port));
	json_object_object_add(o, "protocol", json_object_new_string(proto_protocol_name(f->protocol)));
	if (p->create) {
		json_object_object_add(o, "external_ip", public ? json_object_new_string(netif_addr_str(public, a)) : NULL);
		json_object_object_add(o, "external_port", json_object_new_int(g->external_port));
		json_object_object_add(o, "lifetime", json_object_new_int64(g->lifetime));
	} else {
		json_object_object_add(o, "deleted", json_object_new_boolean(1));
	}
	reply_json(req, 200, "OK", o);
}

static void on_forward(struct http *h, struct evhttp_request *req, int create)
{
	struct http_pending *p = calloc(1, sizeof(*p));
	struct table_grant g = { 0 };
	int r;

	if (!p) {
		reply_error(req, 500, NULL, "out of memory");
		return;
	}
	*p = (struct http_pending){ .h = h, .req = req, .create = create };
	if (parse_forward(h, req, create, &p->f) < 0) {
		free(p);
		return;
	}
	r = h->backend.forward(h->backend.arg, p->f.client, p->f.protocol, p->f.internal_port, p->f.external_port,
			       create ? p->f.duration : 0, &g, p);
	if (r == HTTP_FORWARD_PENDING) {
		LIST_INSERT_HEAD(&h->pending, p, link);
		return;
	}
	forward_reply(p, r, &g);
	free(p);
}

/*
 * libevent keeps a request whose connection closed meanwhile until it is
 * answered, and then frees it without sending: answering is safe while the
 * handle lives.  A pending request whose handle was closed first was
 * answered then (http_close()): only its memory is left to free.
 */
void http_forward_done(struct http_pending *p, int result, const struct table_grant *grant)
{
	struct table_grant none = { 0 };

	if (p->h) {
		LIST_REMOVE(p, link);
		forward_reply(p, result, grant ? grant : &none);
	}
	free(p);
}

/*
 * --- a request's headers, seen before its body is read ---
 *
 * libevent 2.1 has no hook between a request's headers and its body.  So
 * each connection carries one request (every answer says Connection:
 * close), and its bufferevent's callbacks are wrapped (gate_setup) until
 * that request has been read: the data waits in the input buffer until the
 * header block is whole, and a request that needs the token, has not got it
 * and announces a body is answered 401 at once, its body never read.  The
 * request also has HTTP_TIMEOUT_S in all to arrive, headers and body, however
 * slowly it trickles in (evhttp's own timeout only limits a silence).
 */
struct http_gate {
	struct http *h;
	struct bufferevent *bev;
	struct evhttp_connection *evcon; /* once gate_setup() ran */
	struct event *setup, *deadline;
	bufferevent_data_cb evhttp_read, evhttp_write;
	bufferevent_event_cb evhttp_event;
	int admitted; /* the headers were seen and let through: evhttp reads on */
	LIST_ENTRY(http_gate) link;
};

/* How much of a header block is looked at; a longer one is let through for evhttp to refuse. */
#define HTTP_GATE_HEAD (HTTP_MAX_HEADERS + 4)

static void gate_free(struct http_gate *g)
{
	LIST_REMOVE(g, link);
	event_free(g->setup);
	event_free(g->deadline);
	free(g);
}

/* evhttp frees the connection: nothing of the gate is left. */
static void gate_closed(struct evhttp_connection *evcon, void *arg)
{
	(void)evcon;
	gate_free(arg);
}

static void on_gate_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct http_gate *g = arg;

	(void)fd;
	(void)what;
	log_debug("HTTP API: a request did not arrive whole within %d s: closing its connection", HTTP_TIMEOUT_S);
	/* gate_closed() frees g. */
	evhttp_connection_free(g->evcon);
}

/* The value of header name (case-insensitive) in the block head[0..len), copied to out; 0 if absent. */
static int gate_header(const char *head, size_t len, const char *name, char *out, size_t outlen)
{
	size_t n = strlen(name);

	for (const char *line = memchr(head, '\n', len); line && (size_t)(line - head) + 1 < len;
	     line = memchr(line + 1, '\n', len - (size_t)(line + 1 - head))) {
		const char *p = line + 1, *end = head + len, *v;
		size_t vlen;

		if ((size_t)(end - p) <= n || strncasecmp(p, name, n) != 0 || p[n] != ':')
			continue;
		for (v = p + n + 1; v < end && (*v == ' ' || *v == '\t'); v++)
			;
		for (vlen = 0; v + vlen < end && v[vlen] != '\r' && v[vlen] != '\n'; vlen++)
			;
		snprintf(out, outlen, "%.*s", (int)vlen, v);
		return 1;
	}
	return 0;
}

/* Whether the request whose header block is head may send its body: no token needed, or the right one. */
static int gate_admits(const struct http *h, const char *head, size_t len)
{
	char path[16] = "", auth[CONFIG_TOKEN_MAX + 16], cl[32] = "", te[32] = "";
	const char *sp = memchr(head, ' ', len);
	size_t plen = 0;
	int needs;

	if (!sp)
		return 1; /* evhttp refuses what is not a request line */
	while (sp + 1 + plen < head + len && plen < sizeof(path) - 1 && sp[1 + plen] != ' ' && sp[1 + plen] != '?' &&
	       sp[1 + plen] != '\r' && sp[1 + plen] != '\n')
		plen++;
	memcpy(path, sp + 1, plen);
	path[plen] = '\0';
	needs = strcmp(path, "/forward") == 0 ||
		(h->cfg->http_token[0] && (strcmp(path, "/mappings") == 0 || strcmp(path, "/metrics") == 0));
	gate_header(head, len, "Content-Length", cl, sizeof(cl));
	gate_header(head, len, "Transfer-Encoding", te, sizeof(te));
	if (!needs || ((cl[0] == '\0' || strcmp(cl, "0") == 0) && te[0] == '\0'))
		return 1; /* no body to spare: the handler answers it, 401 included */
	return bearer_ok(h, gate_header(head, len, "Authorization", auth, sizeof(auth)) ? auth : NULL);
}

/* Where the header block in buf ends (just past its empty line), 0 while it is not whole. */
static size_t gate_head_end(struct evbuffer *buf)
{
	size_t len = evbuffer_get_length(buf), look = len < HTTP_GATE_HEAD ? len : HTTP_GATE_HEAD;
	const char *p = (const char *)evbuffer_pullup(buf, (ev_ssize_t)look);

	for (size_t i = 0; p && i + 1 < look; i++) {
		if (p[i] != '\n')
			continue;
		if (p[i + 1] == '\n')
			return i + 2;
		if (i + 2 < look && p[i + 1] == '\r' && p[i + 2] == '\n')
			return i + 3;
	}
	return 0;
}

/* The 401 for a refused request, written straight to its socket: evhttp never saw the request. */
static void gate_refuse(struct http_gate *g)
{
	static const char body[] = "{\"error\":\"" HTTP_AUTH_HINT "\",\"field\":\"Authorization\"}\n";
	char reply[512];
	evutil_socket_t fd = bufferevent_getfd(g->bev);
	int n = snprintf(reply, sizeof(reply),
			 "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nWWW-Authenticate: Bearer\r\n"
			 "Connection: close\r\nContent-Length: %zu\r\n\r\n%s",
			 sizeof(body) - 1, body);

	if (fd >= 0) {
		(void)send(fd, reply, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL);
		shutdown(fd, SHUT_WR);
	}
	/* gate_closed() frees g. */
	evhttp_connection_free(g->evcon);
}

static void gate_read(struct bufferevent *bev, void *arg)
{
	struct http_gate *g = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	size_t end;

	if (!g->admitted) {
		if (!(end = gate_head_end(in))) {
			if (evbuffer_get_length(in) < HTTP_GATE_HEAD)
				return; /* the rest of the headers is still to come */
		} else if (!gate_admits(g->h, (const char *)evbuffer_pullup(in, (ev_ssize_t)end), end)) {
			gate_refuse(g);
			return;
		}
		g->admitted = 1;
	}
	g->evhttp_read(bev, g->evcon);
}

static void gate_write(struct bufferevent *bev, void *arg)
{
	struct http_gate *g = arg;

	g->evhttp_write(bev, g->evcon);
}

static void gate_event(struct bufferevent *bev, short what, void *arg)
{
	struct http_gate *g = arg;

	g->evhttp_event(bev, what, g->evcon);
}

/*
 * Runs once evhttp has made the connection (the bufferevent's callbacks are
 * then evhttp's), before the loop reads from it: wraps the callbacks.
 * evhttp puts its own back when it answers, by which time the request has
 * been read whole.
 */
static void gate_setup(evutil_socket_t fd, short what, void *arg)
{
	struct http_gate *g = arg;
	struct timeval tv = { .tv_sec = HTTP_TIMEOUT_S };
	void *cbarg = NULL;

	(void)fd;
	(void)what;
	bufferevent_getcb(g->bev, &g->evhttp_read, &g->evhttp_write, &g->evhttp_event, &cbarg);
	if (!g->evhttp_read || !cbarg) {
		/* evhttp gave up on the connection before it started. */
		bufferevent_decref(g->bev);
		gate_free(g);
		return;
	}
	g->evcon = cbarg;
	evhttp_connection_set_closecb(g->evcon, gate_closed, g);
	bufferevent_setcb(g->bev, gate_read, gate_write, gate_event, g);
	evtimer_add(g->deadline, &tv);
	bufferevent_decref(g->bev);
	/* Data that came with the connection is in the buffer already. */
	if (evbuffer_get_length(bufferevent_get_input(g->bev)))
		gate_read(g->bev, g);
}

/* evhttp's bevcb: each new connection's bufferevent, with its gate set up just after. */
static struct bufferevent *http_gate_bev(struct event_base *base, void *arg)
{
	struct http *h = arg;
	struct http_gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->h = h;
	if (!(g->setup = event_new(base, -1, 0, gate_setup, g)) ||
	    !(g->deadline = evtimer_new(base, on_gate_deadline, g)) || !(g->bev = bufferevent_socket_new(base, -1, 0))) {
		if (g->setup)
			event_free(g->setup);
		if (g->deadline)
			event_free(g->deadline);
		free(g);
		return NULL;
	}
	/* Kept alive until gate_setup() has looked at it, even if evhttp drops it first. */
	bufferevent_incref(g->bev);
	LIST_INSERT_HEAD(&h->gates, g, link);
	event_active(g->setup, EV_TIMEOUT, 1);
	return g->bev;
}

/* The request on req's connection has been read whole: its deadline is over. */
static void gate_done(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct http_gate *g;

	LIST_FOREACH(g, &h->gates, link)
		if (g->evcon && g->evcon == evcon) {
			evtimer_del(g->deadline);
			return;
		}
}

/* --- routing --- */

static void on_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int is_get = cmd == EVHTTP_REQ_GET;

	gate_done(h, req);
	/* One request a connection: the next one goes through a gate of its own. */
	evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
	if (!path) {
		reply_error(req, 400, NULL, "no path");
		return;
	}
	/*
	 * A reload moved the API or turned it off, but a connection opened
	 * before it still talks to this handle: nothing new starts on a handle that is
	 * about to go.
	 */
	if (h->retiring) {
		reply_error(req, 503, NULL, "the HTTP API moved or was turned off by a reload; connect again");
		return;
	}
	if (strcmp(path, "/health") == 0 || strcmp(path, "/mappings") == 0 || strcmp(path, "/metrics") == 0) {
		if (!is_get) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
			reply_error(req, 405, NULL, "%s answers GET only", path);
			return;
		}
		if (strcmp(path, "/health") == 0) {
			on_health(h, req);
			return;
		}
		/* Without a token the API is reachable only locally (config_check): reads are open there. */
		if (h->cfg->http_token[0] && !authorized(h, req)) {
			reply_error(req, 401, "Authorization", HTTP_AUTH_HINT);
			return;
		}
		if (query && strcmp(path, "/metrics") == 0) {
			reply_error(req, 400, NULL, "/metrics takes no parameters");
			return;
		}
		if (strcmp(path, "/mappings") == 0)
			on_mappings(h, req, query);
		else
			on_metrics(h, req);
		return;
	}
	if (strcmp(path, "/forward") == 0) {
		if (cmd != EVHTTP_REQ_POST && cmd != EVHTTP_REQ_DELETE) {
			evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "POST, DELETE");
			reply_error(req, 405, NULL, "/forward answers POST (create or renew) and DELETE");
			return;
		}
		if (!h->cfg->http_token[0]) {
			reply_error(req, 401, "Authorization",
				    "no token is configured: set --http-token-file or NATPMP_TOKEN to use /forward");
			return;
		}
		if (!authorized(h, req)) {
			reply_error(req, 401, "Authorization", HTTP_AUTH_HINT);
			return;
		}
		on_forward(h, req, cmd == EVHTTP_REQ_POST);
		return;
	}
	reply_error(req, 404, NULL, "no such path: use /health, /mappings, /metrics or /forward");
}

/*
 * accept() failed, in practice for want of file descriptors (a flood of
 * connections): libevent would retry at once, in a loop, logging each
 * time.  Accepting pauses for a second instead, while the connections
 * already open time out; NAT-PMP is served meanwhile.
 */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct http *h = http_open_list;
	struct timeval tv = { .tv_sec = 1 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	while (h && h->listener != lev)
		h = h->next;
	if (!h)
		return;
	evconnlistener_disable(lev);
	evtimer_add(h->resume, &tv);
	h->accept_errors++;
	if ((h->accept_errors & (h->accept_errors - 1)) == 0)
		log_warnx("HTTP API: cannot accept a connection: %s; pausing for 1 s (%llu time(s) so far)",
			  evutil_socket_error_to_string(err), (unsigned long long)h->accept_errors);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(h->listener);
}

/* A stream socket at path, replacing a stale socket left by an earlier run (never another kind of file). */
static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t mask;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
		/* A socket someone still answers on is another instance's: never take it over. */
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN) {
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
			return -errno;
	}
	/*
	 * Owner and group only, from the moment it exists (a chmod afterwards
	 * would follow a symlink put there meanwhile): the socket's mode is the
	 * API's access control when no token is set.
	 */
	mask = umask(0117);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(mask);
	if (err == 0 && listen(fd, 64) < 0)
		err = -errno;
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

struct http *http_open(struct event_base *base, const char *listen, const struct config *cfg,
		       const struct http_backend *backend)
{
	struct http *h = calloc(1, sizeof(*h));
	char addr[INET_ADDRSTRLEN];
	struct evhttp_bound_socket *bound;
	const char *colon;
	int fd;

	if (!h || !(h->evhttp = evhttp_new(base)) || !(h->resume = evtimer_new(base, on_resume, h))) {
		if (h && h->evhttp)
			evhttp_free(h->evhttp);
		log_error("out of memory for the HTTP API");
		free(h);
		return NULL;
	}
	h->base = base;
	h->cfg = cfg;
	h->backend = *backend;
	h->unix_fd = -1;
	LIST_INIT(&h->pending);
	LIST_INIT(&h->gates);
	evhttp_set_timeout(h->evhttp, HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(h->evhttp, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evhttp, HTTP_MAX_BODY * 16);
	evhttp_set_allowed_methods(h->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
						      EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h->evhttp, on_request, h);
	evhttp_set_bevcb(h->evhttp, http_gate_bev, h);
	if (listen[0] == '/') {
		if ((fd = listen_unix(listen)) < 0) {
			log_error("cannot listen for HTTP on %s: %s", listen,
				  fd == -EEXIST ? "a file that is not a socket is in the way" : strerror(-fd));
			goto fail;
		}
		if (!(bound = evhttp_accept_socket_with_handle(h->evhttp, fd))) {
			close(fd);
			log_error("cannot serve HTTP on %s", listen);
			goto fail;
		}
		h->unix_fd = fd;
		snprintf(h->path, sizeof(h->path), "%s", listen);
	} else {
		colon = strrchr(listen, ':');
		snprintf(addr, sizeof(addr), "%.*s", (int)(colon - listen), listen);
		if (!(bound = evhttp_bind_socket_with_handle(h->evhttp, addr, (uint16_t)atoi(colon + 1)))) {
			log_error("cannot listen for HTTP on %s: %s", listen, strerror(errno));
			goto fail;
		}
	}
	h->bound = bound;
	h->listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(h->listener, on_accept_error);
	h->next = http_open_list;
	http_open_list = h;
	log_info("HTTP API on %s%s", listen, cfg->http_token[0] ? " (token set)" : " (no token: read-only)");
	return h;
fail:
	http_close(h);
	return NULL;
}

void http_close(struct http *h)
{
	struct http_pending *q;

	if (!h)
		return;
	for (struct http **p = &http_open_list; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	/*
	 * Requests still waiting for the server are answered now, while their
	 * connections exist, and detached: evhttp_free() frees the requests,
	 * and the server's later http_forward_done() only frees its memory.
	 */
	while ((q = LIST_FIRST(&h->pending)) != NULL) {
		struct table_grant none = { 0 };
		LIST_REMOVE(q, link);
		forward_reply(q, HTTP_FORWARD_FAILED, &none);
		q->h = NULL;
		q->req = NULL;
	}
	/* A connection accepted in this very turn of the loop has a gate not set up yet: it goes first. */
	for (struct http_gate *g = LIST_FIRST(&h->gates), *next; g; g = next) {
		next = LIST_NEXT(g, link);
		if (!g->evcon) {
			bufferevent_decref(g->bev);
			gate_free(g);
		}
	}
	/* evhttp closes the listening sockets it was given, the unix one included (and frees the other gates). */
	if (h->evhttp)
		evhttp_free(h->evhttp);
	if (h->resume)
		event_free(h->resume);
	if (h->reap)
		event_free(h->reap);
	if (h->path[0])
		unlink(h->path);
	free(h);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct timeval tv = { .tv_sec = HTTP_RETIRE_MS / 1000, .tv_usec = (HTTP_RETIRE_MS % 1000) * 1000 };

	(void)fd;
	(void)what;
	/* A request still waiting for the server (the gateway's answer) gets it, for a few more seconds. */
	if (!LIST_EMPTY(&h->pending) && ++h->reap_tries < HTTP_RETIRE_WAITS) {
		evtimer_add(h->reap, &tv);
		return;
	}
	http_close(h);
}

/*
 * Freeing the evhttp at once would cut the connections it is still writing
 * answers to: the listening socket goes now, so that a new handle can take
 * its address, and the rest after HTTP_RETIRE_MS.
 */
void http_retire(struct http *h)
{
	struct timeval tv = { .tv_sec = HTTP_RETIRE_MS / 1000, .tv_usec = (HTTP_RETIRE_MS % 1000) * 1000 };

	if (!h)
		return;
	if (!(h->reap = evtimer_new(h->base, on_reap, h))) {
		http_close(h);
		return;
	}
	h->retiring = 1;
	evtimer_del(h->resume);
	if (h->bound)
		evhttp_del_accept_socket(h->evhttp, h->bound);
	h->bound = NULL;
	h->listener = NULL;
	if (h->path[0])
		unlink(h->path);
	h->path[0] = '\0';
	evtimer_add(h->reap, &tv);
}

void http_close_retired(void)
{
	struct http *h = http_open_list, *next;

	for (; h; h = next) {
		next = h->next;
		if (h->reap)
			http_close(h);
	}
}
