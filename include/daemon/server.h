/*
 * server.h - the daemon: ties the sockets, the table, nftables and the state
 * file together on one libevent loop.
 *
 * Each readable event drains the socket, decides every request in the
 * table, makes the changes durable (state file) and real (one nftables
 * transaction), and only then answers.  server_start() returns 0 or -1
 * after logging what went wrong; server_run() returns when a SIGTERM or
 * SIGINT arrives.  SIGHUP reloads the configuration.
 */
#ifndef NATPMP_SERVER_H
#define NATPMP_SERVER_H

#include "daemon/config.h"

struct server;

/* Copies cfg; a SIGHUP parses argc/argv (which must stay valid) again for the new one. */
struct server *server_new(const struct config *cfg, int argc, char **argv);
int server_start(struct server *s);
int server_run(struct server *s);
/* Removes the nftables table (the state file stays) and frees everything. */
void server_free(struct server *s);

#endif
