/*
 * http.h - the HTTP API (libevent's evhttp), off unless --http-listen is
 * given:
 *
 *   GET /health           200 {"status": "serving", ...}, 503 while not serving
 *   GET /mappings         the mappings as a JSON list; ?client=A.B.C.D filters
 *   GET /metrics          Prometheus text format
 *   POST /forward         {"internal_ip", "internal_port", "protocol", "duration",
 *                          "external_port" (optional wish)}: create or renew
 *   DELETE /forward       {"internal_ip", "internal_port", "protocol"}: delete
 *
 * /forward needs "Authorization: Bearer <token>"; once a token is
 * configured, every path but /health does.  Errors are JSON objects
 * {"error": "...", "field": "..."} with a 4xx or 5xx status.  The layer
 * only speaks HTTP and checks input: what a request means is decided by the
 * server, through struct http_backend.
 */
#ifndef NATPMP_HTTP_H
#define NATPMP_HTTP_H

#include <event2/event.h>
#include <json-c/json.h>
#include <stdint.h>
#include <stdio.h>

#include "daemon/config.h"
#include "engine/table.h"

#define HTTP_MAX_BODY 4096
#define HTTP_MAX_HEADERS 8192
#define HTTP_TIMEOUT_S 10
#define HTTP_RETIRE_MS 1000
/* A retired handle with requests still waiting for the server lives at most this many HTTP_RETIRE_MS. */
#define HTTP_RETIRE_WAITS 8

/* forward(): the address is not a LAN host of a listen interface. */
#define HTTP_FORWARD_NOT_LAN (-1)
/* forward(): the change could not be made durable and real. */
#define HTTP_FORWARD_FAILED (-2)
/* forward(): the answer comes later, through http_forward_done() (upstream mode). */
#define HTTP_FORWARD_PENDING (-3)
/* forward(): the address is the router's own, on a listen interface. */
#define HTTP_FORWARD_ROUTER (-4)
/* forward(): a delete of a mapping that does not exist. */
#define HTTP_FORWARD_NOT_FOUND (-5)

/* A /forward request whose answer waits for the server. */
struct http_pending;

struct http_backend {
	void *arg;
	/* Upstream mode: the port a mapping is reached on is its upstream_port. */
	int upstream;
	/* Adds the status fields to out; returns 1 when serving, 0 when not. */
	int (*status)(void *arg, struct json_object *out);
	/* Calls fn for every mapping with its remaining lifetime in seconds. */
	void (*foreach)(void *arg, void (*fn)(const struct table_mapping *m, uint32_t remaining, void *fnarg),
			void *fnarg);
	/* The external address clients are told (network byte order), 0 when none. */
	uint32_t (*public_address)(void *arg);
	int (*metrics)(void *arg, FILE *out);
	/*
	 * A NAT-PMP map request made on client's behalf: a result code, or
	 * HTTP_FORWARD_*.  With HTTP_FORWARD_PENDING, the server keeps pending
	 * and must hand it to http_forward_done() once, before http_close().
	 */
	int (*forward)(void *arg, uint32_t client, uint8_t protocol, uint16_t internal_port, uint16_t suggested_port,
		       uint32_t lifetime, struct table_grant *grant, struct http_pending *pending);
};

struct http;

/*
 * Listens on listen (A.B.C.D:PORT or /path); NULL after logging why.  cfg
 * must outlive the handle: its token and default lifetime are read at each
 * request, so that a reload changes them without a new listener.
 */
struct http *http_open(struct event_base *base, const char *listen, const struct config *cfg,
		       const struct http_backend *backend);
void http_close(struct http *h);
/*
 * Stops listening at once (the address is free for a new handle) but lets
 * answers already given reach their clients: the handle is closed
 * HTTP_RETIRE_MS later (up to HTTP_RETIRE_WAITS times that while a request
 * waits for the server), or by http_close_retired() at exit.  A request
 * that arrives meanwhile on a connection opened before is answered 503.
 * Requests still waiting when the handle closes are answered 503 then.
 */
void http_retire(struct http *h);
void http_close_retired(void);
/* Answers a pending /forward with result (or HTTP_FORWARD_FAILED, grant NULL) and frees it. */
void http_forward_done(struct http_pending *p, int result, const struct table_grant *grant);

/* Compares in time that depends only on the lengths, not on where the strings differ. */
int http_token_equal(const char *given, size_t given_len, const char *expected);

#endif
