/*
 * http_gate.c - what stands between a connection and evhttp: the token
 * checked on the header block, one request per connection, and
 * HTTP_TIMEOUT_S for the whole request however slowly it arrives.
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

/* How much of a header block is looked at; a longer one is let through for evhttp to refuse. */
#define HTTP_GATE_HEAD (HTTP_MAX_HEADERS + 4)

void http_gate_free(struct http_gate *g)
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
	http_gate_free(arg);
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
	return http_bearer_ok(h, gate_header(head, len, "Authorization", auth, sizeof(auth)) ? auth : NULL);
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
		http_gate_free(g);
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
struct bufferevent *http_gate_bev(struct event_base *base, void *arg)
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
void http_gate_done(struct http *h, struct evhttp_request *req)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct http_gate *g;

	LIST_FOREACH(g, &h->gates, link)
		if (g->evcon && g->evcon == evcon) {
			evtimer_del(g->deadline);
			return;
		}
}
