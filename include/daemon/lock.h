/*
 * lock.h - one daemon per state directory and per nftables table.
 *
 * Two daemons on one state directory replace each other's journal, and two
 * on one nftables table replace each other's table in a loop: acknowledged
 * mappings are lost either way.  A daemon holds two locks for as long as
 * it runs, taken before it touches either:
 *   - the state directory's: an open-file-description lock (fcntl
 *     F_OFD_SETLK) on <state-dir>/lock, a file that holds the holder's pid;
 *   - the table's: a listening unix socket in the abstract namespace,
 *     "natpmp-server/table/<name>".  Abstract names are per network
 *     namespace, as nftables tables are, and the holder's pid is the peer
 *     credential of a connection to it (the holder accepts and closes
 *     those, lock_drain(), so that they never fill its queue).
 * The kernel releases both when the holder exits or is killed (even with
 * SIGKILL), so a stale lock never blocks a start.
 *
 * lock_take_* return 0, or -1 after logging who holds the lock and what to
 * do; the lock they replace (a reload's new table) is released only then.
 */
#ifndef NATPMP_DAEMON_LOCK_H
#define NATPMP_DAEMON_LOCK_H

struct lock {
	int dir_fd;   /* -1: not held */
	int table_fd; /* -1: not held */
};

#define LOCK_INIT { -1, -1 }

/* Takes the lock on state_dir (which must exist). */
int lock_take_dir(struct lock *l, const char *state_dir);
/* Takes the lock on nftables table ip <table>, then releases the table lock held before, if any. */
int lock_take_table(struct lock *l, const char *table);
/* The same in two steps, for a reload that may still be refused: the lock's fd (or -1 after logging) ... */
int lock_open_table(const char *table);
/* ... then, once the reload is certain, that fd in place of the table lock held before. */
void lock_set_table(struct lock *l, int fd);
void lock_release(struct lock *l);
/* Accepts and closes what asked the table lock who holds it (its socket's readable event). */
void lock_drain(struct lock *l);
/* The pid of the daemon that holds state_dir's lock; 0 when none does, -1 when that cannot be told. */
long lock_dir_holder(const char *state_dir);

#endif
