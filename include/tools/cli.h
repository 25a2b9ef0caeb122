/*
 * cli.h - what the project's command-line tools (natpmp-client,
 * natpmp-bench) share: messages that name the bad argument and say what to
 * do, strict whole numbers, and standard output that reports its own write
 * errors (a test reading a closed pipe, a full disk).
 *
 * The parsers return 0, or -EINVAL after printing why to stderr;
 * cli_system_error() prints and returns the -errno it is given.
 */
#ifndef NATPMP_CLI_H
#define NATPMP_CLI_H

#include <netinet/in.h>
#include <stdint.h>

/* The program's name, at the start of every message. */
void cli_set_name(const char *name);

int cli_usage_error(const char *what, const char *value, const char *why);
/* "<msg> '<arg>'; see --help", or without the quoted part when arg is NULL. */
int cli_usage_message(const char *msg, const char *arg);
__attribute__((format(printf, 2, 3))) int cli_system_error(int err, const char *fmt, ...);

/* Whole decimal numbers only: no sign, no spaces, no "0x", no trailing text. */
int cli_parse_number(const char *what, const char *s, unsigned long long min, unsigned long long max,
		     unsigned long long *out);
int cli_parse_uint(const char *what, const char *s, unsigned int min, unsigned int max, unsigned int *out);
int cli_parse_port(const char *what, const char *s, unsigned int min, uint16_t *port);
int cli_parse_ipv4(const char *what, const char *s, struct in_addr *addr);

/* Ends a line of output, remembering a failed write. */
void cli_end_line(void);
/* Remembers a failed write of output printed otherwise (a usage text). */
void cli_note_write_error(void);
/* Flushes standard output: 0, or -errno after saying that output was lost. */
int cli_finish_output(void);

int64_t cli_now_us(void);

#endif
