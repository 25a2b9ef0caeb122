/*
 * state.h - the state file: what the daemon has acknowledged, kept on disk.
 *
 * JSON, one object:
 *   { "version": 1, "epoch_start": <unix seconds>,
 *     "mappings": [ { "client": "192.168.1.10" (or an IPv6 pinhole's), "protocol": "tcp",
 *                     "internal_port": 51413, "external_port": 51413,
 *                     "lifetime": 3600, "expires": <unix seconds> }, ... ] }
 * A mapping made through the HTTP API also has "origin": "http"; one a PCP
 * client made has "origin": "pcp" and "nonce", its 12-byte mapping nonce in
 * 24 hex digits (RFC 6887 11.1: the nonce owns the mapping); in upstream
 * mode, one the gateway has granted has "upstream_port", the gateway's port.
 *
 * Times are wall-clock (CLOCK_REALTIME) seconds, so that they mean something
 * after a reboot; the daemon converts to and from its monotonic clock.
 * Beside them, "boot_id" (the kernel's, of the boot that wrote the file),
 * "epoch_start_boot" and each mapping's "expires_boot" give the same times
 * on CLOCK_BOOTTIME, which NTP never steps: a restart within the same boot
 * measures how long the daemon was stopped on it, and only across a reboot
 * falls back to the wall clock.  Files without them are read as before.
 *
 * Beside the snapshot, a journal (state.journal) records each change since,
 * one JSON object a line, so that making a turn's changes durable costs what
 * they are, not what the whole table is:
 *   {"journal": 1, "generation": 7}                          first line
 *   {"op": "put", "client": ..., (the fields of a mapping)}  added or renewed
 *   {"op": "del", "client": ..., (the fields of a mapping)}  deleted or expired
 * A journal counts only for the snapshot of its generation: compaction
 * writes a snapshot of generation G+1, then starts an empty journal of G+1,
 * so a crash in between leaves a stale journal that is ignored, never
 * replayed twice.  A last line without its newline is a write the crash
 * cut short: no client was answered for it, and it is dropped.
 *
 * A journal line is exactly one JSON object: anything else, such as two
 * objects run together on one line, is damage.  The writer never leaves a
 * partial or refused line behind: a failed append is cut back.
 *
 * state_save() is atomic: temporary file in the same directory, fsync,
 * rename, fsync of the directory.  The files are mode 0600: they list every
 * LAN host's mappings.  Functions return 0 or -errno; a file that exists but
 * cannot be understood is -EBADMSG with the reason in err.
 */
#ifndef NATPMP_STATE_H
#define NATPMP_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/types.h>

#define STATE_FILE_NAME "state.json"
#define STATE_JOURNAL_NAME "state.journal"
#define STATE_VERSION 1
#define STATE_FILE_MODE 0600

#define STATE_BOOT_ID_LEN 36

/* struct state_mapping.origin: engine/table.h's enum table_origin, by value. */
#define STATE_ORIGIN_NATPMP 0
#define STATE_ORIGIN_HTTP 1
#define STATE_ORIGIN_PCP 2

struct state_mapping {
	uint32_t client; /* network byte order */
	uint8_t protocol; /* IPPROTO_UDP or IPPROTO_TCP */
	uint16_t internal_port;
	uint16_t external_port;
	uint32_t lifetime;
	int64_t expires; /* unix seconds */
	uint8_t origin;	 /* enum table_origin; "origin": "http" or "pcp" in the file, absent for NAT-PMP */
	uint16_t upstream_port; /* upstream mode: the gateway's port; 0 (absent): none */
	int64_t expires_boot;	/* CLOCK_BOOTTIME seconds of the boot_id's boot; 0 (absent): unknown */
	uint8_t nonce[12];	/* origin PCP: the mapping nonce */
	/* An IPv6 client (a pinhole): client is then 0, and client6 its address. */
	bool ipv6;
	uint8_t client6[16];
};

/* A mapping's client as the file writes it, IPv4 or IPv6, into buf; returns buf. */
const char *state_client_str(const struct state_mapping *m, char buf[INET6_ADDRSTRLEN]);

struct state {
	int64_t epoch_start; /* unix seconds */
	char boot_id[STATE_BOOT_ID_LEN + 1]; /* "" (absent): unknown */
	int64_t epoch_start_boot;	      /* CLOCK_BOOTTIME seconds; 0 (absent): unknown */
	uint64_t generation; /* the journal that continues this snapshot */
	size_t n_mappings;
	struct state_mapping *mappings;
};

/* -ENOENT when there is no file; -EBADMSG (err says why) when it is not a valid state file. */
int state_load(const char *path, struct state *out, char *err, size_t errlen);
/*
 * What state_load() does with the file's contents: len bytes, which need not
 * end in a NUL.  0, or -EBADMSG (err says why) or -ENOMEM with out empty.
 */
int state_parse(const char *buf, size_t len, struct state *out, char *err, size_t errlen);
/*
 * Replaces path with s atomically: 0 or -errno.  *replaced (may be NULL) is
 * true once the rename happened, even if the directory sync after it failed:
 * then path holds s but maybe not durably, and a journal of the old
 * generation no longer continues it.
 */
int state_save(const char *path, const struct state *s, bool *replaced);
/*
 * The text state_save() would write, in a malloc()ed buffer (NUL-terminated;
 * *lenp excludes the NUL) that the caller frees.  -EINVAL for a state that
 * state_load() would reject.
 */
int state_format(const struct state *s, char **bufp, size_t *lenp);
enum state_op { STATE_PUT, STATE_DEL };

struct state_change {
	enum state_op op;
	struct state_mapping m;
};

/*
 * Applies the journal at path to st (a loaded snapshot) if it belongs to
 * st->generation; *applied counts the lines applied.  A missing journal or
 * one of another generation applies nothing.  -EBADMSG (err says where)
 * for a damaged one: st then holds what came before the damage.
 */
int state_journal_replay(const char *path, struct state *st, size_t *applied, char *err, size_t errlen);
/*
 * Replaces the journal with an empty one of generation, atomically; *fd
 * appends to it and *end is its length in bytes (-1 and *fd -1 on failure).
 */
int state_journal_start(const char *path, uint64_t generation, int *fd, off_t *end);
/*
 * Appends n changes at *end, the journal's length in bytes, and waits until
 * they are on disk (fdatasync); *end grows by what was written.  0 or
 * -errno.  On failure the journal is cut back to *end, so that no partial or
 * unacknowledged line stays; if the cut fails too, *end becomes -1: the
 * journal's tail is unknown and nothing more may be appended (start a new
 * generation).  -EINVAL, with nothing written, for a change the reader
 * would refuse or an *end of -1.
 */
int state_journal_append(int fd, off_t *end, const struct state_change *changes, size_t n);
/*
 * Cuts the journal back to end bytes (an earlier *end of
 * state_journal_append(): the changes since are taken back) and syncs: 0 or -errno.
 */
int state_journal_cut(int fd, off_t end);

/* Whether st was written in the boot whose id is boot_id ("" when unknown: never the same). */
bool state_same_boot(const struct state *st, const char *boot_id);
/*
 * Seconds left of a saved mapping, as a restart counts them: on the boot
 * clock (boot: CLOCK_BOOTTIME seconds) within the boot that wrote it
 * (same_boot) when it has its boot time, else on the wall clock (wall: unix
 * seconds); *on_boot says which.  <= 0 when it has expired.
 */
int64_t state_mapping_left(const struct state_mapping *m, bool same_boot, int64_t boot, int64_t wall, bool *on_boot);
/* The kernel's id of this boot into id, "" when it cannot be read (then only the wall clock can be trusted). */
void state_boot_id(char id[STATE_BOOT_ID_LEN + 1]);
/* Renames a bad file aside to <path>.corrupt.<unix time>; writes the new name to moved. */
int state_quarantine(const char *path, char *moved, size_t movedlen);
void state_free(struct state *s);

#endif
