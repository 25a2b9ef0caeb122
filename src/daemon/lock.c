/*
 * lock.c - one daemon per state directory and per nftables table (see
 * lock.h for why the two kinds of lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "daemon/lock.h"

#define LOCK_FILE "lock"
#define LOCK_TABLE_PREFIX "natpmp-server/table/"

/* "pid N", or "pid unknown" for 0. */
static const char *lock_who(long pid, char buf[32])
{
	if (pid > 0)
		snprintf(buf, 32, "pid %ld", pid);
	else
		snprintf(buf, 32, "pid unknown");
	return buf;
}

/* The pid in the lock file, 0 when it cannot be read. */
static long lock_file_pid(int fd)
{
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtol(buf, NULL, 10);
}

/*
 * An open-file-description lock on the whole file (F_OFD_SETLK, or F_OFD_GETLK
 * to look without taking): released when the daemon's descriptor closes or
 * it dies, and, unlike flock(2), one another process can test without
 * holding it even for a moment, so --list-mappings never makes a start fail.
 */
static int lock_ofd(int fd, int cmd, short type)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	return fcntl(fd, cmd, &fl) < 0 ? -1 : cmd == F_OFD_GETLK ? fl.l_type != F_UNLCK : 0;
}

int lock_take_dir(struct lock *l, const char *state_dir)
{
	char path[4096], pid[32];
	int fd, n;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, LOCK_FILE) >= (int)sizeof(path)) {
		log_error("state directory %s: the name is too long", state_dir);
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		log_error("cannot open %s: %s; check the state directory's permissions or choose another --state-dir",
			  path, strerror(errno));
		return -1;
	}
	if (lock_ofd(fd, F_OFD_SETLK, F_WRLCK) < 0) {
		int err = errno;
		char who[32];

		lock_who(lock_file_pid(fd), who);
		close(fd);
		if (err == EAGAIN || err == EACCES)
			log_error("another natpmp-server (%s) already uses state directory %s: stop it first, or "
				  "give this one its own --state-dir and --nat-table",
				  who, state_dir);
		else
			log_error("cannot lock %s: %s", path, strerror(err));
		return -1;
	}
	n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	/* Only a message reads it: a failed write is no reason to refuse the start.  Synced, as all in the directory. */
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n || fdatasync(fd) < 0)
		log_warnx("cannot write the pid into %s: %s", path, strerror(errno));
	l->dir_fd = fd;
	return 0;
}

static socklen_t lock_table_addr(struct sockaddr_un *sun, const char *table)
{
	size_t len;

	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	/* sun_path[0] is 0: the abstract namespace; the name is not NUL-terminated. */
	len = (size_t)snprintf(sun->sun_path + 1, sizeof(sun->sun_path) - 1, "%s%s", LOCK_TABLE_PREFIX, table);
	if (len > sizeof(sun->sun_path) - 1)
		len = sizeof(sun->sun_path) - 1;
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + len);
}

/* The pid that holds the table's lock, 0 when it cannot be asked. */
static long lock_table_pid(const struct sockaddr_un *sun, socklen_t len)
{
	struct ucred cred = { 0 };
	socklen_t clen = sizeof(cred);
	/* Non-blocking: the holder never accepts, and a full backlog must not hang the start. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	long pid = 0;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sun, len) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == 0)
		pid = cred.pid;
	close(fd);
	return pid;
}

int lock_open_table(const char *table)
{
	struct sockaddr_un sun;
	socklen_t len = lock_table_addr(&sun, table);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		log_error("cannot lock nftables table ip %s: %s", table, strerror(errno));
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sun, len) < 0 || listen(fd, 8) < 0) {
		int err = errno;
		char who[32];

		close(fd);
		if (err == EADDRINUSE)
			log_error("another natpmp-server (%s) already owns nftables table ip %s: stop it first, or "
				  "give this one its own --nat-table and --state-dir",
				  lock_who(lock_table_pid(&sun, len), who), table);
		else
			log_error("cannot lock nftables table ip %s: %s", table, strerror(err));
		return -1;
	}
	return fd;
}

void lock_drain(struct lock *l)
{
	int c;

	while (l->table_fd >= 0 && (c = accept4(l->table_fd, NULL, NULL, SOCK_CLOEXEC)) >= 0)
		close(c);
}

void lock_set_table(struct lock *l, int fd)
{
	if (l->table_fd >= 0)
		close(l->table_fd);
	l->table_fd = fd;
}

int lock_take_table(struct lock *l, const char *table)
{
	int fd = lock_open_table(table);

	if (fd < 0)
		return -1;
	lock_set_table(l, fd);
	return 0;
}

long lock_dir_holder(const char *state_dir)
{
	char path[4096];
	long pid;
	int fd;

	if (snprintf(path, sizeof(path), "%s/%s", state_dir, LOCK_FILE) >= (int)sizeof(path))
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return errno == ENOENT ? 0 : -1;
	switch (lock_ofd(fd, F_OFD_GETLK, F_WRLCK)) {
	case 0:
		pid = 0;
		break;
	case 1:
		pid = lock_file_pid(fd);
		if (pid <= 0)
			pid = -1;
		break;
	default:
		pid = -1;
	}
	close(fd);
	return pid;
}

void lock_release(struct lock *l)
{
	if (l->table_fd >= 0)
		close(l->table_fd);
	if (l->dir_fd >= 0)
		close(l->dir_fd);
	l->table_fd = l->dir_fd = -1;
}
