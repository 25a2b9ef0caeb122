/*
 * persist.h - when and what the daemon writes to its state directory:
 * each turn's changes appended to the journal and synced before any answer,
 * the whole table compacted into a snapshot of a new generation when the
 * journal has outgrown it (and at start and exit), and the restore at
 * start.  The formats are store/state.h's.  Functions return 0 or -errno
 * after logging; now is the table's clock (monotonic seconds).
 */
#ifndef NATPMP_DAEMON_PERSIST_H
#define NATPMP_DAEMON_PERSIST_H

#include "server_impl.h"

/* Appends n changes to the journal and syncs it; with no journal open, saves a snapshot instead. */
int persist_changes(struct server *s, const struct table_change *ch, size_t n, int64_t now);
/* The whole table as the next generation's snapshot, then an empty journal of that generation. */
int persist_compact(struct server *s, int64_t now);
/* Whether a new file can be made in the state directory (a snapshot is one): 0 or -errno. */
int persist_writable(const struct server *s);
/* Where the journal ends now (bytes), for persist_take_back(); -1 with no journal open. */
off_t persist_mark(const struct server *s);
/*
 * A turn's changes were refused after persist_changes() (persisted 1) or
 * by it (0): the state directory is brought back to what it held at
 * before (persist_mark()), after the table was rolled back.
 */
void persist_take_back(struct server *s, off_t before, int persisted, int64_t now);
/* No more appends: the next turn saves a snapshot of a new generation instead. */
void persist_close_journal(struct server *s);
/* The compaction event, made active by a turn whose journal outgrew the snapshot (arg: the server). */
void persist_on_compact(evutil_socket_t fd, short what, void *arg);
/*
 * Loads the snapshot and replays the journal into the table, and sets the
 * epoch's start.  -1 when a file exists but cannot be read (left as it is);
 * one that makes no sense is moved aside and the table starts empty (0).
 */
int persist_restore(struct server *s, int64_t now);

#endif
