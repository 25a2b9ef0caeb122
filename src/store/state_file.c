/*
 * state_file.c - writing the state files so that a crash leaves the old
 * version or the new one, never a mix: a temporary file in the same
 * directory, fsync, rename, fsync of the directory; and moving a damaged
 * file aside (quarantine) without ever overwriting an earlier one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "state_impl.h"

/* Quarantined copies of one file kept at most (state.json.corrupt.<time>[.N]). */
#define STATE_MAX_QUARANTINE 100

int state_write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Makes the rename durable: it lives in the directory, not in the file. */
static int sync_dir(const char *path)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	int fd, rc = 0;

	if (!slash)
		strcpy(dir, ".");
	else if (slash == path)
		strcpy(dir, "/");
	else if ((size_t)(slash - path) < sizeof(dir))
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	else
		return -ENAMETOOLONG;
	if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -errno;
	/* Some file systems cannot sync a directory (EINVAL); there is nothing more to do on those. */
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * Puts the temporary file tmp (open as fd, written so far with result rc) in
 * place of path: fsync, rename, fsync of the directory.  On a failure before
 * the rename the temporary file goes and path stays as it was; *replaced
 * (if not NULL) says whether the rename happened, since a failed directory
 * sync after it leaves the new file in place but maybe not durable.
 */
int state_commit_tmp(const char *path, char *tmp, int fd, int rc, bool *replaced)
{
	if (replaced)
		*replaced = false;
	/* Every LAN host's mappings: for the daemon's user alone. */
	if (rc == 0 && fchmod(fd, STATE_FILE_MODE) < 0)
		rc = -errno;
	if (rc == 0 && fsync(fd) < 0)
		rc = -errno;
	/* close() can report a failed write-back (NFS and the like): it counts. */
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && rename(tmp, path) < 0)
		rc = -errno;
	if (rc < 0) {
		unlink(tmp);
		return rc;
	}
	if (replaced)
		*replaced = true;
	return sync_dir(path);
}

/* Replaces path with text atomically. */
int state_save_text(const char *path, const char *text, size_t len, bool *replaced)
{
	char tmp[PATH_MAX];
	int fd;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0)
		return -errno;
	return state_commit_tmp(path, tmp, fd, state_write_all(fd, text, len), replaced);
}



int state_quarantine(const char *path, char *moved, size_t movedlen)
{
	char name[PATH_MAX + 64];
	long long now = (long long)time(NULL);
	struct stat sb;
	int n;

	for (int i = 0; i <= STATE_MAX_QUARANTINE; i++) {
		if (i == 0)
			n = snprintf(name, sizeof(name), "%s.corrupt.%lld", path, now);
		else
			n = snprintf(name, sizeof(name), "%s.corrupt.%lld.%d", path, now, i);
		if (n < 0 || (size_t)n >= sizeof(name) || (size_t)n >= movedlen)
			return -ENAMETOOLONG;
		/* RENAME_NOREPLACE: an earlier quarantined file is never overwritten, even in a race. */
		if (renameat2(AT_FDCWD, path, AT_FDCWD, name, RENAME_NOREPLACE) == 0)
			goto done;
		if (errno == EINVAL || errno == ENOSYS) {
			/* The file system cannot do it atomically: check, then rename. */
			if (lstat(name, &sb) == 0)
				continue;
			if (errno != ENOENT)
				return -errno;
			if (rename(path, name) == 0)
				goto done;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
done:
	memcpy(moved, name, (size_t)n + 1);
	return 0;
}
