/*
 * install.h - the kernel's copy of the table (kernel/nft.h): a turn's
 * changes as one nftables transaction, the whole table reinstalled in one
 * when that fails or at start, and the repair when someone else changes the
 * daemon's table.  0 or -errno; now is the table's clock (monotonic s).
 */
#ifndef NATPMP_DAEMON_INSTALL_H
#define NATPMP_DAEMON_INSTALL_H

#include "server_impl.h"

/* The table's pending changes as one transaction. */
int install_changes(struct server *s, int64_t now);
/* A fresh table holding exactly the mappings in memory, in one transaction; sets s->table_broken. */
int install_all(struct server *s, int64_t now);
/* Sends the transaction built since nft_begin(), counted for /metrics. */
int install_commit(struct server *s);
/* A repair in delay_ms, unless one is already due. */
void install_schedule_repair(struct server *s, int delay_ms);
/* Events (arg: the server): nftables notifications, and the repair timer. */
void install_on_nftables(evutil_socket_t fd, short what, void *arg);
void install_on_repair(evutil_socket_t fd, short what, void *arg);

#endif
