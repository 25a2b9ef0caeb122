/*
 * state.h - the state file: what the daemon has acknowledged, kept on disk.
 *
 * JSON, one object:
 *   { "version": 1, "epoch_start": <unix seconds>,
 *     "mappings": [ { "client": "192.168.1.10", "protocol": "tcp",
 *                     "internal_port": 51413, "external_port": 51413,
 *                     "lifetime": 3600, "expires": <unix seconds> }, ... ] }
 *
 * Times are wall-clock (CLOCK_REALTIME) seconds, so that they mean something
 * after a reboot; the daemon converts to and from its monotonic clock.
 * state_save() is atomic: temporary file in the same directory, fsync,
 * rename, fsync of the directory.  Functions return 0 or -errno; a file that
 * exists but cannot be understood is -EBADMSG with the reason in err.
 */
#ifndef NATPMP_STATE_H
#define NATPMP_STATE_H

#include <stddef.h>
#include <stdint.h>

#define STATE_FILE_NAME "state.json"
#define STATE_VERSION 1

struct state_mapping {
	uint32_t client; /* network byte order */
	uint8_t protocol; /* IPPROTO_UDP or IPPROTO_TCP */
	uint16_t internal_port;
	uint16_t external_port;
	uint32_t lifetime;
	int64_t expires; /* unix seconds */
};

struct state {
	int64_t epoch_start; /* unix seconds */
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
int state_save(const char *path, const struct state *s);
/*
 * The text state_save() would write, in a malloc()ed buffer (NUL-terminated;
 * *lenp excludes the NUL) that the caller frees.  -EINVAL for a state that
 * state_load() would reject.
 */
int state_format(const struct state *s, char **bufp, size_t *lenp);
/* Renames a bad file aside to <path>.corrupt.<unix time>; writes the new name to moved. */
int state_quarantine(const char *path, char *moved, size_t movedlen);
void state_free(struct state *s);

#endif
