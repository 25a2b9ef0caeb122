/*
 * turn.h - the request turn (RFC 6886 3.3): a batch of datagrams decoded,
 * decided in the table, made durable, installed in the kernel in one
 * transaction, then answered; and turn_apply(), the same persist-install
 * step for every other change of the table (HTTP API, expiry, moves).
 */
#ifndef NATPMP_DAEMON_TURN_H
#define NATPMP_DAEMON_TURN_H

#include "server_impl.h"

/*
 * Makes the table's pending changes durable (journal, fdatasync), then real
 * (one nftables transaction), then settles them (log, hook, outer NAT).  On
 * failure the table is rolled back and nothing of the turn stays on disk:
 * 0 or -errno.  why names a delete in the log ("deleted", "expired"...).
 * now is the table's clock (monotonic seconds).
 */
int turn_apply(struct server *s, int64_t now, const char *why);
/* The pending changes are real: logged, told to the hook and the outer NAT, committed in the table. */
void turn_settle(struct server *s, const char *why);
/* Tells --hook that event ("added", "renewed", "deleted", "expired") happened to m. */
void turn_hook(struct server *s, const struct table_mapping *m, const char *event);
/* Counts an answer for /metrics by opcode (0-2, 3 for any other) and result code. */
void turn_count_answer(struct server *s, int op, uint16_t result);

/*
 * Opens an IPv4 and an IPv6 socket per listen interface of cfg into ls
 * (SERVER_MAX_LISTENERS of them): how many listeners ls then holds, or -1
 * after logging, with none left open.
 */
int turn_open_listeners(struct server *s, const struct config *cfg, struct server_listener *ls);
void turn_close_listeners(struct server_listener *ls, size_t n);
/* Opens the sockets of listen interfaces that did not exist yet and do now (after a link event). */
void turn_retry_listeners(struct server *s);
/* A listen socket is readable (arg: its struct server_listener): up to SERVER_ROUNDS batches. */
void turn_on_readable(evutil_socket_t fd, short what, void *arg);

#endif
