/*
 * faults.c - an LD_PRELOAD shim for the tests: makes the daemon's disk,
 * netlink and wall clock misbehave on request, so that a test can fail each
 * step of a turn on purpose.  Never part of the daemon.
 *
 * NATPMP_FAULTS names a control file, read again whenever it changes (a
 * test rewrites it between requests).  One rule a line:
 *
 *   CALL MATCH ERRNO [partial]
 *       CALL (write, fsync, fdatasync, ftruncate or rename) on a file whose
 *       path contains MATCH fails with ERRNO (ENOSPC, EIO, ...); MATCH "DIR"
 *       is any directory.  With "partial", the first write writes all but
 *       its last byte and succeeds, the next ones fail: a disk that fills up
 *       just before a line's newline.
 *   nft - ERRNO
 *       sending to the nftables netlink socket fails with ERRNO.
 *   wall SECONDS
 *       time(), gettimeofday() and clock_gettime(CLOCK_REALTIME) run SECONDS
 *       ahead (or behind): NTP stepping the clock.  CLOCK_MONOTONIC and
 *       CLOCK_BOOTTIME are left alone, as NTP leaves them.
 *
 * An empty or missing file: no faults.
 */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/netlink.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define FAULTS_MAX 16

struct fault_rule {
	char call[16];
	char match[128];
	int err;
	int partial;	  /* write: all but the last byte once, then fail */
	int partial_done;
};

static struct fault_rule rules[FAULTS_MAX];
static int n_rules;
static long wall_offset;
static struct stat seen;

static int errno_named(const char *name)
{
	static const struct { const char *name; int err; } names[] = {
		{ "ENOSPC", ENOSPC }, { "EIO", EIO }, { "EDQUOT", EDQUOT }, { "EFBIG", EFBIG },
		{ "EROFS", EROFS },   { "ENOBUFS", ENOBUFS }, { "EPERM", EPERM }, { "ENOMEM", ENOMEM },
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i].name, name) == 0)
			return names[i].err;
	return EIO;
}

/* Reads the control file again if it changed since the last call. */
static void faults_load(void)
{
	const char *path = getenv("NATPMP_FAULTS");
	struct stat sb;
	char line[256];
	FILE *f;

	if (!path || stat(path, &sb) < 0) {
		n_rules = 0;
		wall_offset = 0;
		return;
	}
	if (sb.st_ino == seen.st_ino && sb.st_size == seen.st_size && sb.st_mtim.tv_sec == seen.st_mtim.tv_sec &&
	    sb.st_mtim.tv_nsec == seen.st_mtim.tv_nsec)
		return;
	seen = sb;
	n_rules = 0;
	wall_offset = 0;
	if (!(f = fopen(path, "re")))
		return;
	while (fgets(line, sizeof(line), f) && n_rules < FAULTS_MAX) {
		struct fault_rule *r = &rules[n_rules];
		char err[32] = "", extra[32] = "";
		long secs;

		if (sscanf(line, "wall %ld", &secs) == 1) {
			wall_offset = secs;
			continue;
		}
		memset(r, 0, sizeof(*r));
		if (sscanf(line, "%15s %127s %31s %31s", r->call, r->match, err, extra) < 3)
			continue;
		r->err = errno_named(err);
		r->partial = strcmp(extra, "partial") == 0;
		n_rules++;
	}
	fclose(f);
}

static int fd_path(int fd, char *buf, size_t len)
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	if ((n = readlink(link, buf, len - 1)) < 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

static int path_matches(const struct fault_rule *r, const char *path, int is_dir)
{
	if (strcmp(r->match, "DIR") == 0)
		return is_dir;
	return strstr(path, r->match) != NULL;
}

/* The rule for call on fd, or NULL. */
static struct fault_rule *rule_for_fd(const char *call, int fd)
{
	char path[PATH_MAX];
	struct stat sb;

	faults_load();
	for (int i = 0; i < n_rules; i++) {
		if (strcmp(rules[i].call, call) != 0)
			continue;
		if (fd_path(fd, path, sizeof(path)) < 0 || fstat(fd, &sb) < 0)
			return NULL;
		if (path_matches(&rules[i], path, S_ISDIR(sb.st_mode)))
			return &rules[i];
	}
	return NULL;
}

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef int (*fd_fn)(int);
typedef int (*ftruncate_fn)(int, off_t);
typedef int (*rename_fn)(const char *, const char *);
typedef ssize_t (*sendto_fn)(int, const void *, size_t, int, const struct sockaddr *, socklen_t);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);
typedef int (*clock_fn)(clockid_t, struct timespec *);

/* The next definition of name (libc's, or a sanitizer's in front of it), found once. */
#define REAL(name, type)                                       \
	static type real_##name;                               \
	if (!real_##name)                                      \
	real_##name = (type)dlsym(RTLD_NEXT, #name)

/* What a call the rule r applies to returns: -1, with the rule's errno. */
static int refuse(const struct fault_rule *r)
{
	errno = r->err;
	return -1;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	REAL(write, write_fn);
	struct fault_rule *r = rule_for_fd("write", fd);

	if (r && r->partial && !r->partial_done && len > 1) {
		r->partial_done = 1;
		return real_write(fd, buf, len - 1);
	}
	return r ? refuse(r) : real_write(fd, buf, len);
}

int fsync(int fd)
{
	REAL(fsync, fd_fn);
	struct fault_rule *r = rule_for_fd("fsync", fd);

	return r ? refuse(r) : real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync, fd_fn);
	struct fault_rule *r = rule_for_fd("fdatasync", fd);

	return r ? refuse(r) : real_fdatasync(fd);
}

int ftruncate(int fd, off_t len)
{
	REAL(ftruncate, ftruncate_fn);
	struct fault_rule *r = rule_for_fd("ftruncate", fd);

	return r ? refuse(r) : real_ftruncate(fd, len);
}

int rename(const char *from, const char *to)
{
	REAL(rename, rename_fn);

	faults_load();
	for (int i = 0; i < n_rules; i++)
		if (strcmp(rules[i].call, "rename") == 0 && (strstr(from, rules[i].match) || strstr(to, rules[i].match)))
			return refuse(&rules[i]);
	return real_rename(from, to);
}

static int is_nftables(int fd)
{
	int domain = 0, protocol = 0;
	socklen_t len = sizeof(domain);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 || domain != AF_NETLINK)
		return 0;
	len = sizeof(protocol);
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == NETLINK_NETFILTER;
}

static struct fault_rule *nft_rule(int fd)
{
	faults_load();
	for (int i = 0; i < n_rules; i++)
		if (strcmp(rules[i].call, "nft") == 0 && is_nftables(fd))
			return &rules[i];
	return NULL;
}

ssize_t sendto(int fd, const void *buf, size_t len, int flags, const struct sockaddr *to, socklen_t tolen)
{
	REAL(sendto, sendto_fn);
	struct fault_rule *r = nft_rule(fd);

	return r ? refuse(r) : real_sendto(fd, buf, len, flags, to, tolen);
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	REAL(sendmsg, sendmsg_fn);
	struct fault_rule *r = nft_rule(fd);

	return r ? refuse(r) : real_sendmsg(fd, msg, flags);
}

time_t time(time_t *t)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (t)
		*t = ts.tv_sec;
	return ts.tv_sec;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	REAL(clock_gettime, clock_fn);
	int r = real_clock_gettime(clock, ts);

	if (r == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE)) {
		faults_load();
		ts->tv_sec += wall_offset;
	}
	return r;
}
