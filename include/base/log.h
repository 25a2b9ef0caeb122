/*
 * log.h - the daemon's one logging interface.
 *
 * Messages go to stderr (journald adds the timestamp) with a level prefix that
 * systemd understands ("<3>" and so on) when NOTIFY_SOCKET or JOURNAL_STREAM is
 * set, and a plain "natpmp-server: level: " prefix otherwise.
 * log_warn() appends strerror(errno); log_warnx() does not.  fatal()/fatalx()
 * log and exit(1): only for broken invariants and start-up failures.
 */
#ifndef NATPMP_LOG_H
#define NATPMP_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARNING, LOG_LEVEL_ERROR };

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(enum log_level level);
void log_set_level(enum log_level level);
/* Parses "debug", "info", "warning" or "error"; returns -1 on anything else. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warnx(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
/*
 * Between log_hold() and log_release(), lines are kept and written
 * together, in one write(2) (or more, when over 16 kB): a request turn's
 * lines, one per mapping at the default level, cost one system call, not
 * one each.  fatal() writes what is held; a process killed by a signal
 * meanwhile loses them (the turn's answers were not sent either).  Holds
 * do not nest.
 */
void log_hold(void);
void log_release(void);
__attribute__((noreturn)) void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
__attribute__((noreturn)) void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

#endif
