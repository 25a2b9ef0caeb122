/*
 * fuzz.h - what the libFuzzer targets share: the entry point libFuzzer
 * calls, and REQUIRE(), which aborts (a finding) when an invariant fails.
 */
#ifndef NATPMP_FUZZ_H
#define NATPMP_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                                                  \
	do {                                                                                           \
		if (!(cond)) {                                                                         \
			fprintf(stderr, "%s:%d: invariant violated: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                                       \
		}                                                                                      \
	} while (0)

#endif
