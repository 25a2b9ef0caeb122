/*
 * http_routes.c - the HTTP API's requests: routing, the token, input
 * checks, and the JSON and Prometheus answers; what a request means is the
 * server's (struct http_backend).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
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

#include "base/log.h"
#include "http_impl.h"
#include "kernel/netif.h"
#include "wire/proto.h"

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

/* Whether an Authorization header's value (NULL: none) carries the configured token. */
int http_bearer_ok(const struct http *h, const char *auth)
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
	return http_bearer_ok(h, evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization"));
}

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
	char a[TABLE_ADDR_STRLEN];
	bool v4 = table_addr_is_v4(&m->client);

	if (ctx->client && (!v4 || m->client.v4 != ctx->client))
		return;
	o = json_object_new_object();
	json_object_object_add(o, "client", json_object_new_string(table_addr_str(&m->client, a)));
	json_object_object_add(o, "protocol", json_object_new_string(proto_protocol_name(m->protocol)));
	json_object_object_add(o, "internal_port", json_object_new_int(m->internal_port));
	if (ctx->upstream) {
		/* What the world reaches: the gateway's port, null until it granted one; and the router's own. */
		json_object_object_add(o, "external_port", m->upstream_port ? json_object_new_int(m->upstream_port) : NULL);
		json_object_object_add(o, "local_port", json_object_new_int(m->external_port));
	} else {
		json_object_object_add(o, "external_port", json_object_new_int(m->external_port));
	}
	if (!v4)
		json_object_object_add(o, "external_address", json_object_new_string(table_addr_str(&m->client, a)));
	else
		json_object_object_add(o, "external_address",
				       ctx->public ? json_object_new_string(netif_addr_str(ctx->public, a)) : NULL);
	json_object_object_add(o, "lifetime", json_object_new_int64(remaining));
	json_object_object_add(o, "origin", json_object_new_string(table_origin_name(m->origin)));
	/* An IPv6 client's mapping is a pinhole: its own address and port, opened in the firewall. */
	json_object_object_add(o, "family", json_object_new_string(v4 ? "ipv4" : "ipv6"));
	json_object_object_add(o, "pinhole", json_object_new_boolean(!v4));
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
 * Whether a JSON object (text already parsed into body: valid) names a
 * member twice; the name in dup.  json-c keeps the last and says nothing,
 * and a request whose two "internal_port"s disagree should not be guessed
 * at.  Names are compared as written; two spellings of one name (an escape)
 * are caught by counting: json-c then holds fewer members than the text.
 */
static bool json_duplicate_key(const char *text, size_t len, struct json_object *body, char *dup, size_t duplen)
{
	const char *keys[32];
	size_t key_len[32], n = 0, names = 0;
	int depth = 0;

	for (size_t i = 0; i < len; i++) {
		if (text[i] == '{' || text[i] == '[') {
			depth++;
		} else if (text[i] == '}' || text[i] == ']') {
			depth--;
		} else if (text[i] == '"') {
			size_t start = ++i, j;

			while (i < len && text[i] != '"')
				i += text[i] == '\\' ? 2 : 1;
			for (j = i + 1; j < len && strchr(" \t\r\n", text[j]); j++)
				;
			/* A member's name: a string at the top level followed by ':'. */
			if (depth != 1 || j >= len || text[j] != ':')
				continue;
			names++;
			for (size_t k = 0; k < n; k++)
				if (key_len[k] == i - start && memcmp(keys[k], text + start, i - start) == 0) {
					snprintf(dup, duplen, "%.*s", (int)(i - start), text + start);
					return true;
				}
			if (n < sizeof(keys) / sizeof(keys[0])) {
				keys[n] = text + start;
				key_len[n++] = i - start;
			}
		}
	}
	if (json_object_is_type(body, json_type_object) && names != (size_t)json_object_object_length(body)) {
		snprintf(dup, duplen, "body");
		return true;
	}
	return false;
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
	char *text, dup[64];
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
	if (json_duplicate_key(text, len, body, dup, sizeof(dup))) {
		reply_error(req, 400, dup,
			    strcmp(dup, "body") == 0 ? "a field is given twice, once spelt with an escape: give each field once"
						     : "given twice: give each field once");
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

/* The answer to a /forward request, now or once the server has it. */
void http_forward_reply(const struct http_pending *p, int r, const struct table_grant *g)
{
	struct evhttp_request *req = p->req;
	const struct forward_req *f = &p->f;
	struct json_object *o;
	char a[INET_ADDRSTRLEN];
	uint32_t public;

	switch (r) {
	case TABLE_RESULT_SUCCESS:
		break;
	case HTTP_FORWARD_NOT_LAN:
		reply_error(req, 403, "internal_ip", "%s is not a host on a listen interface's subnet",
			    netif_addr_str(f->client, a));
		return;
	case HTTP_FORWARD_ROUTER:
		reply_error(req, 403, "internal_ip",
			    "%s is the router itself (an address of a listen interface), not a LAN host: the daemon "
			    "never forwards to the router's own services",
			    netif_addr_str(f->client, a));
		return;
	case HTTP_FORWARD_NOT_FOUND:
		reply_error(req, 404, NULL, "no %s mapping of %s:%u to delete", proto_protocol_name(f->protocol),
			    netif_addr_str(f->client, a), f->internal_port);
		return;
	case TABLE_RESULT_NOT_AUTHORIZED:
		reply_error(req, 403, NULL, p->h->backend.upstream ? "refused by the port rules or by the upstream gateway"
								  : "refused by the port rules");
		return;
	case TABLE_RESULT_OUT_OF_RESOURCES:
		reply_error(req, 409, NULL, p->h->backend.upstream
						    ? "no external port is free for this host here or at the upstream "
						      "gateway, or it holds --max-mappings-per-ip"
						    : "no external port is free for this host, or it holds --max-mappings-per-ip");
		return;
	case TABLE_RESULT_NETWORK_FAILURE:
		reply_error(req, 503, NULL, "the outer NAT did not grant the port (the upstream gateway or the STUN server "
					    "did not answer, there is no address, or the outer NAT filters: see /health); "
					    "try again");
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
	http_forward_reply(p, r, &g);
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
		http_forward_reply(p, result, grant ? grant : &none);
	}
	free(p);
}

void http_on_request(struct evhttp_request *req, void *arg)
{
	struct http *h = arg;
	const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
	const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
	const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
	enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
	int is_get = cmd == EVHTTP_REQ_GET;

	http_gate_done(h, req);
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
