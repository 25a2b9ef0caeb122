/*
 * fuzz_journal.c - libFuzzer target for the journal reader.
 *
 * Each input is the contents of a state.journal, replayed with
 * state_journal_replay() onto a small snapshot of generation 1 (two
 * mappings), through a memfd so that no disk is touched.  Checked on every
 * input:
 *   - the result is 0 or -EBADMSG (with a reason in err) or -ENOMEM;
 *   - what is left has only TCP/UDP mappings with ports 1-65535, no
 *     negative time, and no two mappings with the same client (IPv4 or
 *     IPv6), protocol and internal port;
 *   - no more lines were applied than the input has newlines;
 *   - each line the reader of the daemon's own shape (state_fast.c) takes,
 *     json-c's reader takes too, with the very same values.
 * A violated invariant calls abort(), which libFuzzer reports as a crash.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "store/state.h"
#include "../../src/store/state_impl.h"
#include "state_invariants.h"

static void check_valid(const struct state *s)
{
	require_valid_mappings(s);
	for (size_t i = 0; i < s->n_mappings; i++)
		for (size_t j = 0; j < i; j++)
			REQUIRE(!(s->mappings[j].client == s->mappings[i].client &&
				  s->mappings[j].ipv6 == s->mappings[i].ipv6 &&
				  memcmp(s->mappings[j].client6, s->mappings[i].client6, 16) == 0 &&
				  s->mappings[j].protocol == s->mappings[i].protocol &&
				  s->mappings[j].internal_port == s->mappings[i].internal_port));
}

/* Each of the input's first 64 lines, read by both readers. */
static void check_fast_lines(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;

	for (int n = 0; n < 64 && p < end; n++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *line = malloc(len + 1);
		struct state_change a, b;

		REQUIRE(line);
		memcpy(line, p, len);
		line[len] = '\0';
		if (state_fast_change(line, len, &a) == 1) {
			REQUIRE(state_journal_line_json(line, len, &b) == 0);
			REQUIRE(a.op == b.op);
			require_same_mapping(&a.m, &b.m);
		}
		free(line);
		p = nl ? nl + 1 : end;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct state_mapping snap[2] = {
		{ .client = htonl(0xc0a8010a), .protocol = IPPROTO_TCP, .internal_port = 51413, .external_port = 51413,
		  .lifetime = 3600, .expires = 5000 },
		{ .client = htonl(0x0a000001), .protocol = IPPROTO_UDP, .internal_port = 53, .external_port = 40001,
		  .lifetime = 60, .expires = 100 },
	};
	struct state st = { .epoch_start = 1, .generation = 1, .n_mappings = 2 };
	char path[64], err[256];
	size_t applied = 0, lines = 0;
	int fd, rc;

	/* The reader frees and grows the array as a loaded snapshot's. */
	st.mappings = malloc(sizeof(snap));
	REQUIRE(st.mappings);
	memcpy(st.mappings, snap, sizeof(snap));
	if ((fd = memfd_create("journal", MFD_CLOEXEC)) < 0) {
		perror("fuzz_journal: memfd_create");
		state_free(&st);
		return 0;
	}
	if (size && write(fd, data, size) != (ssize_t)size) {
		close(fd);
		state_free(&st);
		return 0;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	check_fast_lines(data, size);
	memset(err, 'x', sizeof(err));
	rc = state_journal_replay(path, &st, &applied, err, sizeof(err));
	close(fd);
	REQUIRE(rc == 0 || rc == -EBADMSG || rc == -ENOMEM);
	if (rc == -EBADMSG)
		REQUIRE(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
	for (size_t i = 0; i < size; i++)
		lines += data[i] == '\n';
	REQUIRE(applied <= lines);
	check_valid(&st);
	state_free(&st);
	return 0;
}
