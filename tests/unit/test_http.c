/* test_http.c - the HTTP API's token comparison. */
#include <string.h>

#include "check.h"
#include "daemon/http.h"

static int eq(const char *given, const char *expected)
{
	return http_token_equal(given, strlen(given), expected);
}

int main(void)
{
	const char *token = "0123456789abcdef";

	CHECK(eq("0123456789abcdef", token));
	CHECK(!eq("0123456789abcdeF", token));	   /* last byte */
	CHECK(!eq("x123456789abcdef", token));	   /* first byte */
	CHECK(!eq("0123456789abcde", token));	   /* a prefix */
	CHECK(!eq("0123456789abcdef0", token));	   /* one byte more */
	CHECK(!eq("0123456789abcdef0123456789abcdef", token)); /* the token twice */
	CHECK(!eq("", token));
	CHECK(!eq("", ""));			   /* no token configured: nothing matches */
	CHECK(!eq("anything", ""));
	/* An embedded NUL does not end the comparison early. */
	CHECK(!http_token_equal("0123456789abcdef\0x", 18, token));
	return check_exit();
}
