/*
 * cli.c - the command-line tools' shared parsing and output.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/cli.h"

static const char *cli_name = "natpmp";
static int cli_write_errno;

void cli_set_name(const char *name)
{
	cli_name = name;
}

int cli_usage_error(const char *what, const char *value, const char *why)
{
	fprintf(stderr, "%s: %s '%s': %s\n", cli_name, what, value, why);
	return -EINVAL;
}

int cli_usage_message(const char *msg, const char *arg)
{
	if (arg)
		fprintf(stderr, "%s: %s '%s'; see --help\n", cli_name, msg, arg);
	else
		fprintf(stderr, "%s: %s; see --help\n", cli_name, msg);
	return -EINVAL;
}

int cli_system_error(int err, const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s: %s\n", cli_name, what, strerror(-err));
	return err;
}

int cli_parse_number(const char *what, const char *s, unsigned long long min, unsigned long long max,
		     unsigned long long *out)
{
	char range[64], why[96];
	char *end;

	snprintf(range, sizeof(range), "out of range: use %llu to %llu", min, max);
	snprintf(why, sizeof(why), "not a whole number: use %llu to %llu", min, max);
	if (!isdigit((unsigned char)s[0]))
		return cli_usage_error(what, s, why);
	errno = 0;
	*out = strtoull(s, &end, 10);
	if (*end != '\0')
		return cli_usage_error(what, s, why);
	if (errno == ERANGE || *out < min || *out > max)
		return cli_usage_error(what, s, range);
	return 0;
}

int cli_parse_uint(const char *what, const char *s, unsigned int min, unsigned int max, unsigned int *out)
{
	unsigned long long v;

	if (cli_parse_number(what, s, min, max, &v) < 0)
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

int cli_parse_port(const char *what, const char *s, unsigned int min, uint16_t *port)
{
	unsigned int v;

	if (cli_parse_uint(what, s, min, 65535, &v) < 0)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int cli_parse_ipv4(const char *what, const char *s, struct in_addr *addr)
{
	if (inet_pton(AF_INET, s, addr) != 1)
		return cli_usage_error(what, s, "not an IPv4 address: use a.b.c.d");
	return 0;
}

void cli_note_write_error(void)
{
	if (ferror(stdout) && !cli_write_errno)
		cli_write_errno = errno ? errno : EIO;
}

void cli_end_line(void)
{
	putchar('\n');
	cli_note_write_error();
}

int cli_finish_output(void)
{
	if (fflush(stdout) != 0 && !cli_write_errno)
		cli_write_errno = errno;
	if (cli_write_errno || ferror(stdout)) {
		int err = cli_write_errno ? cli_write_errno : EIO;
		fprintf(stderr, "%s: writing the output: %s\n", cli_name, strerror(err));
		return -err;
	}
	return 0;
}

int64_t cli_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}
