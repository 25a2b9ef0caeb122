/*
 * http_impl.h - what the HTTP API's three files share (http.c: the
 * handles; http_routes.c: the requests; http_gate.c: the connections):
 * the handle, a /forward waiting for the server, a connection's gate.
 * Nothing outside them includes it; daemon/http.h is the API.
 */
#ifndef NATPMP_DAEMON_HTTP_IMPL_H
#define NATPMP_DAEMON_HTTP_IMPL_H

#include <event2/bufferevent.h>
#include <event2/http.h>
#include <sys/queue.h>

#include "daemon/http.h"

/* What a request without the token is told, in every 401. */
#define HTTP_AUTH_HINT "send Authorization: Bearer <token>"

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

struct forward_req {
	uint32_t client;
	uint8_t protocol;
	uint16_t internal_port;
	uint16_t external_port;
	uint32_t duration;
};

struct http_pending {
	struct http *h;		    /* NULL once detached: the handle and its request are gone */
	struct evhttp_request *req;
	struct forward_req f;
	int create;
	LIST_ENTRY(http_pending) link;
};

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

/* --- http_routes.c --- */

/* evhttp's callback for every request that got through the gate (arg: the handle). */
void http_on_request(struct evhttp_request *req, void *arg);
/* Whether an Authorization header's value (NULL: none) carries the configured token. */
int http_bearer_ok(const struct http *h, const char *auth);
/* The answer to a /forward request (r: a result code or HTTP_FORWARD_*), now or once the server has it. */
void http_forward_reply(const struct http_pending *p, int r, const struct table_grant *g);

/* --- http_gate.c --- */

/* evhttp's bufferevent factory: each new connection gets a gate (arg: the handle). */
struct bufferevent *http_gate_bev(struct event_base *base, void *arg);
/* The request on req's connection has been read whole: its deadline ends. */
void http_gate_done(struct http *h, struct evhttp_request *req);
/* Frees a gate and unlinks it from its handle. */
void http_gate_free(struct http_gate *g);

#endif
