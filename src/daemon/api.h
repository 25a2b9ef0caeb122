/*
 * api.h - the HTTP API's view of the daemon (daemon/http.h's struct
 * http_backend): /health's status, the mappings, the metrics, and /forward
 * through the same table, limits and turn as a NAT-PMP request.
 */
#ifndef NATPMP_DAEMON_API_H
#define NATPMP_DAEMON_API_H

#include "server_impl.h"

/* Listens on listen (A.B.C.D:PORT or /path): the handle, or NULL after logging why. */
struct http *api_listen(struct server *s, const char *listen);
/* Listens on --http-listen, if set, into s->http: 0, or -1 after logging. */
int api_open(struct server *s);

#endif
