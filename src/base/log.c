/*
 * log.c - levelled logging to stderr.
 *
 * Under systemd (JOURNAL_STREAM set) each line starts with the syslog
 * priority in angle brackets, which journald turns into the entry's
 * priority and stamps with the time; elsewhere a line carries its own local
 * time (ISO 8601, milliseconds) and a readable prefix.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

#include "base/log.h"

static enum log_level log_threshold = LOG_LEVEL_INFO;
static int log_journal;
/* log_hold(): lines kept for one write at log_release(). */
static char log_held[16384];
static size_t log_held_len;
static int log_holding;

static const char *const log_names[] = { "debug", "info", "warning", "error" };
static const int log_priorities[] = { 7, 6, 4, 3 };

void log_init(enum log_level level)
{
	log_threshold = level;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < sizeof(log_names) / sizeof(log_names[0]); i++)
		if (strcasecmp(name, log_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *log_level_name(enum log_level level)
{
	return log_names[level];
}

/* Writes what log_hold() kept, in one write. */
static void log_release_held(void)
{
	if (log_held_len)
		(void)fwrite(log_held, 1, log_held_len, stderr);
	log_held_len = 0;
}

static void __attribute__((format(printf, 3, 0))) log_vwrite(enum log_level level, const char *errstr, const char *fmt,
							       va_list ap)
{
	char msg[1024], line[1200];
	int n;

	if (level < log_threshold)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>%s%s%s\n", log_priorities[level], msg, errstr ? ": " : "",
			     errstr ? errstr : "");
	else {
		char stamp[48] = "";
		struct timeval tv;
		struct tm tm;
		size_t at;

		gettimeofday(&tv, NULL);
		if (localtime_r(&tv.tv_sec, &tm) && (at = strftime(stamp, 32, "%Y-%m-%dT%H:%M:%S", &tm)) > 0) {
			at += (size_t)snprintf(stamp + at, sizeof(stamp) - at, ".%03u", (unsigned)(tv.tv_usec / 1000) % 1000);
			if (at < sizeof(stamp) - 8 && strftime(stamp + at, sizeof(stamp) - at, "%z ", &tm) == 0)
				stamp[at] = '\0';
		}
		n = snprintf(line, sizeof(line), "%snatpmp-server: %s: %s%s%s\n", stamp, log_names[level], msg,
			     errstr ? ": " : "", errstr ? errstr : "");
	}
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (log_holding && log_held_len + (size_t)n > sizeof(log_held))
		log_release_held();
	if (log_holding) {
		memcpy(log_held + log_held_len, line, (size_t)n);
		log_held_len += (size_t)n;
	} else {
		(void)fwrite(line, 1, (size_t)n, stderr);
	}
}

void log_hold(void)
{
	log_holding = 1;
}

void log_release(void)
{
	log_release_held();
	log_holding = 0;
}

#define LOG_FUNC(name, level, with_errno)                                                  \
	void name(const char *fmt, ...)                                                    \
	{                                                                                  \
		int saved = errno;                                                         \
		va_list ap;                                                                \
		va_start(ap, fmt);                                                         \
		log_vwrite(level, with_errno ? strerror(saved) : NULL, fmt, ap);           \
		va_end(ap);                                                                \
		errno = saved;                                                             \
	}

LOG_FUNC(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FUNC(log_info, LOG_LEVEL_INFO, 0)
LOG_FUNC(log_warn, LOG_LEVEL_WARNING, 1)
LOG_FUNC(log_warnx, LOG_LEVEL_WARNING, 0)
LOG_FUNC(log_error, LOG_LEVEL_ERROR, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, strerror(saved), fmt, ap);
	va_end(ap);
	log_release();
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(LOG_LEVEL_ERROR, NULL, fmt, ap);
	va_end(ap);
	log_release();
	exit(1);
}
