/*
 * check.h - the unit tests' only harness: CHECK() reports the failing
 * expression with its line and counts it; check_exit() ends the test with
 * meson's exit codes (0 pass, 1 fail, 77 skip).
 */
#ifndef NATPMP_CHECK_H
#define NATPMP_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_failures;

#define CHECK(expr)                                                                    \
	do {                                                                           \
		if (!(expr)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
			check_failures++;                                              \
		}                                                                      \
	} while (0)

#define CHECK_EQ(a, b)                                                                          \
	do {                                                                                    \
		long long check_a_ = (long long)(a), check_b_ = (long long)(b);                 \
		if (check_a_ != check_b_) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s == %s (%lld != %lld)\n", __FILE__, \
				__LINE__, #a, #b, check_a_, check_b_);                          \
			check_failures++;                                                       \
		}                                                                               \
	} while (0)

static inline int check_exit(void)
{
	if (check_failures)
		fprintf(stderr, "%d check(s) failed\n", check_failures);
	return check_failures ? 1 : 0;
}

#endif
