/*
 * fuzz_state.c - libFuzzer target for the state file loader.
 *
 * Each input is the contents of a state file, given to state_parse(), which
 * is what state_load() runs on the bytes it has read.  Checked on every input:
 *   - a rejection leaves out empty, says why in err, and says the same, cut
 *     short, into a tiny err buffer (allocated to its exact size, so that
 *     AddressSanitizer sees a write past it);
 *   - an accepted file has only TCP/UDP mappings with ports 1-65535 and no
 *     negative time;
 *   - what is accepted survives state_format() and state_parse() unchanged,
 *     and formatting that again gives the same text; now and then the round
 *     trip goes through state_save() and state_load() and a real file.
 * and the reader of the daemon's own shape (state_fast.c) agrees with json-c's:
 * what it accepts, json-c accepts with the very same values.
 * A violated invariant calls abort(), which libFuzzer reports as a crash.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "store/state.h"
#include "../../src/store/state_impl.h"
#include "state_invariants.h"


/* One file round trip per this many accepted inputs: state_save() fsyncs, which is slow. */
#define FILE_ROUND_TRIP_EVERY 1024

static unsigned long accepted;

static int is_empty(const struct state *s)
{
	return s->epoch_start == 0 && s->n_mappings == 0 && s->mappings == NULL;
}

static void check_valid(const struct state *s)
{
	REQUIRE(s->epoch_start >= 0);
	REQUIRE((s->n_mappings == 0) == (s->mappings == NULL));
	require_valid_mappings(s);
	REQUIRE(s->epoch_start_boot >= 0);
	REQUIRE(strlen(s->boot_id) == 0 || strlen(s->boot_id) == STATE_BOOT_ID_LEN);
}

static void require_same(const struct state *a, const struct state *b)
{
	REQUIRE(a->epoch_start == b->epoch_start);
	REQUIRE(strcmp(a->boot_id, b->boot_id) == 0);
	REQUIRE(a->epoch_start_boot == b->epoch_start_boot);
	REQUIRE(a->n_mappings == b->n_mappings);
	for (size_t i = 0; i < a->n_mappings; i++) {
		const struct state_mapping *x = &a->mappings[i], *y = &b->mappings[i];

		REQUIRE(x->client == y->client);
		REQUIRE(x->protocol == y->protocol);
		REQUIRE(x->internal_port == y->internal_port);
		REQUIRE(x->external_port == y->external_port);
		REQUIRE(x->lifetime == y->lifetime);
		REQUIRE(x->expires == y->expires);
		REQUIRE(x->expires_boot == y->expires_boot);
	}
}

static void check_rejected(const uint8_t *data, size_t size, int rc, const char *err)
{
	size_t small = 1 + size % 16;
	char *tiny = malloc(small);
	struct state again;

	REQUIRE(rc == -EBADMSG || rc == -ENOMEM);
	if (rc == -EBADMSG)
		REQUIRE(err[0] != '\0');
	REQUIRE(tiny);
	memset(&again, 0x5a, sizeof(again));
	REQUIRE(state_parse((const char *)data, size, &again, tiny, small) == rc);
	REQUIRE(is_empty(&again));
	REQUIRE(strlen(tiny) < small);
	REQUIRE(strncmp(tiny, err, strlen(tiny)) == 0);
	free(tiny);
}

/*
 * In a directory of its own, made and removed each time rather than once per
 * process: a run that ends in a finding exits without atexit() handlers.
 */
static void round_trip_file(const struct state *s)
{
	const char *tmp = getenv("TMPDIR");
	char dir[256], path[300], err[256];
	struct state loaded;

	snprintf(dir, sizeof(dir), "%s/fuzz-state.XXXXXX", tmp && tmp[0] && strlen(tmp) < 200 ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		/* Not a finding: the file round trip is skipped. */
		perror("fuzz_state: mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/" STATE_FILE_NAME, dir);
	REQUIRE(state_save(path, s, NULL) == 0);
	REQUIRE(state_load(path, &loaded, err, sizeof(err)) == 0);
	require_same(s, &loaded);
	state_free(&loaded);
	unlink(path);
	rmdir(dir);
}

/* Everything a mapping holds, the fields require_same() leaves out included. */
static void require_identical(const struct state *a, const struct state *b)
{
	require_same(a, b);
	REQUIRE(a->generation == b->generation);
	for (size_t i = 0; i < a->n_mappings; i++) {
		const struct state_mapping *x = &a->mappings[i], *y = &b->mappings[i];

		REQUIRE(x->origin == y->origin && x->upstream_port == y->upstream_port && x->ipv6 == y->ipv6);
		REQUIRE(memcmp(x->nonce, y->nonce, sizeof(x->nonce)) == 0);
		REQUIRE(memcmp(x->client6, y->client6, sizeof(x->client6)) == 0);
	}
}

/* What the fast reader accepts, json-c's reader accepts with the same values; what it declines, it leaves empty. */
static void check_fast(const uint8_t *data, size_t size)
{
	struct state fast, tree;
	char err[256];
	int rc;

	memset(&fast, 0x5a, sizeof(fast));
	rc = state_fast_snapshot((const char *)data, size, &fast);
	REQUIRE(rc == 0 || rc == 1 || rc == -ENOMEM);
	if (rc != 1) {
		REQUIRE(is_empty(&fast));
		return;
	}
	rc = state_parse_json((const char *)data, size, &tree, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "the fast reader accepts what json-c's rejects: %s\n", err);
	REQUIRE(rc == 0);
	require_identical(&fast, &tree);
	state_free(&tree);
	state_free(&fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state st, again;
	char err[256], *text, *text2;
	size_t len, len2;
	int rc;

	check_fast(data, size);
	memset(&st, 0x5a, sizeof(st));
	memset(err, 'x', sizeof(err));
	rc = state_parse((const char *)data, size, &st, err, sizeof(err));
	REQUIRE(memchr(err, '\0', sizeof(err)) != NULL);
	if (rc != 0) {
		REQUIRE(is_empty(&st));
		check_rejected(data, size, rc, err);
		return 0;
	}
	REQUIRE(err[0] == '\0');
	check_valid(&st);

	REQUIRE(state_format(&st, &text, &len) == 0);
	REQUIRE(strlen(text) == len);
	rc = state_parse(text, len, &again, err, sizeof(err));
	if (rc != 0)
		fprintf(stderr, "state_parse() rejects what state_format() wrote: %s\n%s", err, text);
	REQUIRE(rc == 0);
	require_same(&st, &again);
	REQUIRE(state_format(&again, &text2, &len2) == 0);
	REQUIRE(len2 == len && memcmp(text, text2, len) == 0);
	free(text);
	free(text2);
	state_free(&again);

	if (++accepted % FILE_ROUND_TRIP_EVERY == 1)
		round_trip_file(&st);
	state_free(&st);
	return 0;
}
