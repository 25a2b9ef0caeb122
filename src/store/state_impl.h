/*
 * state_impl.h - what state.c (the snapshot) and journal.c share: the
 * strict reader of a mapping object and its error messages, the writer's
 * buffer, and writing a small file in place atomically.  Private to
 * src/store/; store/state.h is the interface.  0 or -errno, as there.
 */
#ifndef NATPMP_STORE_STATE_IMPL_H
#define NATPMP_STORE_STATE_IMPL_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/state.h"

/* The longest mapping line, with room to spare. */
#define STATE_MAPPING_BYTES 304

/* Where a reader's error message goes: the first error wins. */
struct reader {
	char *err;
	size_t errlen;
};

/* A growing output buffer; fd > 0: written out whenever it holds more than STATE_CHUNK. */
struct outbuf {
	char *p;
	size_t len, cap;
	int fd;
};

/* Records the error message in r; returns -EBADMSG. */
int __attribute__((format(printf, 2, 3))) state_bad(struct reader *r, const char *fmt, ...);
/* obj's member key of JSON type type (where names obj in messages: "" at the top level); NULL after state_bad(). */
struct json_object *state_member(struct reader *r, struct json_object *obj, const char *where, const char *key,
				 enum json_type type);
/* obj's integer member key in [min, max] into *out (range says what the bounds mean): 0 or -EBADMSG. */
int state_member_int(struct reader *r, struct json_object *obj, const char *where, const char *key, int64_t min,
		     int64_t max, const char *range, int64_t *out);
/* 2 * n hex digits (either case) from s into out's n bytes: false for anything else. */
bool state_unhex(const char *s, uint8_t *out, size_t n);
/* One mapping object into *m: 0 or -EBADMSG. */
int state_read_mapping(struct reader *r, struct json_object *o, const char *where, struct state_mapping *m);
/*
 * The snapshot buf[0..len) read directly (state_fast.c) if it has exactly
 * the shape state.c writes: 1 with *st filled, 0 when it does not (*st
 * empty: the json-c reader then decides), -ENOMEM.
 */
int state_fast_snapshot(const char *buf, size_t len, struct state *st);
/*
 * One journal line (without its newline) read directly if it has exactly
 * the shape state_out_mapping() writes for a change: 1 with *c filled, 0
 * when it does not (json-c's reader then decides).
 */
int state_fast_change(const char *line, size_t len, struct state_change *c);
/* One journal line by json-c's reader alone (line NUL-terminated at len): 0 or -EBADMSG/-ENOMEM; for the fuzz target. */
int state_journal_line_json(const char *line, size_t len, struct state_change *c);
/* state_parse() by json-c's reader alone, never state_fast_snapshot(): for the fuzz target that compares them. */
int state_parse_json(const char *buf, size_t len, struct state *out, char *err, size_t errlen);
/* A whole file into a malloc'd NUL-terminated buffer (at most STATE_MAX_SIZE): 0 or -errno. */
int state_read_file(struct reader *r, const char *path, char **bufp, size_t *lenp);

int __attribute__((format(printf, 2, 3))) state_out_printf(struct outbuf *b, const char *fmt, ...);
/*
 * Appends before, m's members as the daemon writes them (state_fast.c:
 * "client" to "expires", then those of the optional ones that are not
 * their default), and after, each at most 32 bytes.  0 or -ENOMEM.
 */
int state_out_mapping(struct outbuf *b, const char *before, const struct state_mapping *m, const char *after);
/* write(2) until done: 0 or -errno. */
int state_write_all(int fd, const char *p, size_t len);
/* text as the file path, atomically (temporary file, fdatasync, rename, directory sync): 0 or -errno. */
int state_save_text(const char *path, const char *text, size_t len, bool *replaced);
/*
 * Puts the temporary file tmp (open as fd, written with result rc) in place
 * of path; the contract is state_file.c's.  0 or -errno.
 */
int state_commit_tmp(const char *path, char *tmp, int fd, int rc, bool *replaced);

#endif
