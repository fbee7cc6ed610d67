/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file behind a shared-memory segment: its name under /dev/shm, who
 * may own it, the byte-range locks that say which sides are alive, the
 * exclusive create that reclaims a dead segment's name, the space
 * reservation, and the guarded unlink.
 *
 * Everything here treats the path as hostile: another local user may have
 * put a symbolic link, a FIFO or their own world-writable file under the
 * name, and two servers may try to reclaim the same stale name at once.
 *
 *  - Opens use O_NOFOLLOW (no symlinks) and O_NONBLOCK (a FIFO cannot
 *    block us), and fstat must then show a regular file.
 *  - Create is O_CREAT | O_EXCL with mode 0600; only an explicit
 *    MOIRAI_SHM_F_SHARED widens it to a chosen group and mode.
 *  - Liveness is a lock, not a word: each side holds an OFD lock on its
 *    byte of the file (SHM_LOCK_SIDE0/1) while attached.  The kernel drops
 *    it when the process dies; nothing written into the segment can fake
 *    it.  The pid and start time in the header are only for messages.
 *  - Unlinking the name happens only under the name lock (SHM_LOCK_NAME)
 *    of the file the name is about to lose, after checking under that lock
 *    that the path still names that file (dev + inode).  A reclaimer that
 *    lost the race finds another inode under the name and starts over, so
 *    at most one create wins and nobody unlinks a newer segment.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "shm_int.h"

#define SHM_DIR		  "/dev/shm"
#define NAME_LOCK_WAIT_NS 2000000000ull /* a name lock is held for microseconds */

int moirai__shm_check_name(const char *name)
{
	size_t n;

	if (!name)
		return moirai__err(-EINVAL, "shm: NULL segment name");
	n = strnlen(name, MOIRAI_SHM_NAME_MAX + 1);
	if (n == 0 || n > MOIRAI_SHM_NAME_MAX)
		return moirai__err(-EINVAL, "shm: name must be 1..%d characters",
				   MOIRAI_SHM_NAME_MAX);
	if (name[0] == '.')
		return moirai__err(-EINVAL, "shm: name '%s' starts with '.'", name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return moirai__err(-EINVAL,
					   "shm: name '%s' has a character outside [A-Za-z0-9._-]",
					   name);
	}
	return 0;
}

void moirai__shm_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, SHM_DIR "/moirai.%s", name);
}

/* ---- byte-range locks -------------------------------------------------- */

static struct flock lock_desc(short type, int byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = byte;
	fl.l_len = 1;
	return fl; /* l_pid 0, as F_OFD_* requires */
}

int moirai__shm_lock_try(int fd, int byte)
{
	struct flock fl = lock_desc(F_WRLCK, byte);

	if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
		return 0;
	return errno == EAGAIN || errno == EACCES ? -EAGAIN : -errno;
}

int moirai__shm_lock_wait(int fd, int byte, uint64_t ns)
{
	/* Never F_OFD_SETLKW: whoever holds the lock may hold it forever. */
	uint64_t end = moirai_now_ns() + ns;
	struct timespec ts = { 0, 200000 }; /* 200 us */
	int rc;

	while ((rc = moirai__shm_lock_try(fd, byte)) == -EAGAIN && moirai_now_ns() < end)
		nanosleep(&ts, NULL);
	return rc;
}

void moirai__shm_unlock(int fd, int byte)
{
	struct flock fl = lock_desc(F_UNLCK, byte);

	fcntl(fd, F_OFD_SETLK, &fl);
}

bool moirai__shm_lock_held(int fd, int byte)
{
	struct flock fl = lock_desc(F_WRLCK, byte);

	/* An error cannot say "dead": count it as held (never free what is
	 * not proven dead). */
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return true;
	return fl.l_type != F_UNLCK;
}

/* ---- owner and mode ---------------------------------------------------- */

int moirai__shm_check_owner(const char *name, const struct stat *st,
			    const struct moirai_shm_opts *opts)
{
	unsigned mode = st->st_mode & 07777;
	bool shared = opts && (opts->flags & MOIRAI_SHM_F_SHARED);

	if (!S_ISREG(st->st_mode))
		return moirai__err(-EACCES, "shm %s: " SHM_DIR "/moirai.%s is not a regular file",
				   name, name);
	if (!shared) {
		if (st->st_uid != geteuid())
			return moirai__err(
				-EACCES,
				"shm %s: the segment belongs to uid %u, not to us (uid %u); "
				"MOIRAI_SHM_F_SHARED accepts another owner's segment",
				name, (unsigned)st->st_uid, (unsigned)geteuid());
		if (mode & 077)
			return moirai__err(
				-EACCES,
				"shm %s: the segment has mode %04o: group or other users "
				"could write it (MOIRAI_SHM_F_SHARED accepts that)",
				name, mode);
		return 0;
	}
	/* Shared: trust the named group instead of only ourselves. */
	if (st->st_uid != geteuid() && st->st_gid != opts->gid)
		return moirai__err(-EACCES,
				   "shm %s: the segment belongs to uid %u group %u, neither us nor "
				   "the trusted group %u",
				   name, (unsigned)st->st_uid, (unsigned)st->st_gid, opts->gid);
	if (mode & ~(unsigned)opts->mode)
		return moirai__err(-EACCES,
				   "shm %s: the segment has mode %04o, beyond the %04o accepted",
				   name, mode, opts->mode);
	return 0;
}

/* ---- create and reclaim -------------------------------------------------- */

static bool same_file(const char *path, dev_t dev, ino_t ino)
{
	struct stat st;

	return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

void moirai__shm_unlink_if_same(const char *name, int fd, dev_t dev, ino_t ino)
{
	char path[MOIRAI__SHM_PATH_MAX];
	int rc;

	moirai__shm_path(name, path, sizeof(path));
	rc = moirai__shm_lock_wait(fd, SHM_LOCK_NAME, NAME_LOCK_WAIT_NS);
	if (rc) {
		moirai__log(MOIRAI_LOG_WARN, "shm %s: name lock busy for 2 s: %s left in place",
			    name, path);
		return;
	}
	/* Under the name lock the name cannot move from this file to another
	 * (every unlink of it takes this lock), so check-then-unlink is safe. */
	if (same_file(path, dev, ino))
		unlink(path);
	moirai__shm_unlock(fd, SHM_LOCK_NAME);
}

/*
 * Remove @path if it is a stale segment: ours, a regular file with our
 * magic, and neither side's lock held.  0: gone (try the exclusive create
 * again); -EEXIST / -EACCES with a message otherwise.
 */
static int reclaim(const char *name, const char *path, const struct moirai_shm_opts *opts)
{
	struct stat st;
	uint64_t magic = 0;
	int fd, rc;

	fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0; /* vanished meanwhile */
		if (errno == ELOOP)
			return moirai__err(-EEXIST, "shm %s: %s is a symbolic link", name, path);
		return moirai__err(errno == EACCES ? -EEXIST : -errno,
				   "shm %s: %s exists and cannot be opened: %s", name, path,
				   moirai_strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		rc = moirai__err(-errno, "shm %s: fstat: %s", name, moirai_strerror(errno));
		goto out_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = moirai__err(-EEXIST, "shm %s: %s exists and is not a regular file", name,
				 path);
		goto out_close;
	}
	if (moirai__shm_check_owner(name, &st, opts) != 0) {
		rc = moirai__err(-EEXIST,
				 "shm %s: %s exists and is not ours to reclaim (uid %u, "
				 "mode %04o)",
				 name, path, (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		goto out_close;
	}
	if (moirai__shm_lock_wait(fd, SHM_LOCK_NAME, NAME_LOCK_WAIT_NS) != 0) {
		rc = moirai__err(-EEXIST, "shm %s: another process keeps %s locked", name, path);
		goto out_close;
	}
	/* Lost a race: the name already names another file.  Start over. */
	if (!same_file(path, st.st_dev, st.st_ino)) {
		rc = 0;
		goto out_close;
	}
	if (moirai__shm_lock_held(fd, SHM_LOCK_SIDE0) ||
	    moirai__shm_lock_held(fd, SHM_LOCK_SIDE1)) {
		rc = moirai__err(-EEXIST, "shm %s: a live process uses %s", name, path);
		goto out_close;
	}
	/* No magic: not ours, or a creator between O_EXCL and its header, or
	 * one that died there.  They look alike: leave it. */
	if (pread(fd, &magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    magic != MOIRAI__SHM_MAGIC) {
		rc = moirai__err(-EEXIST,
				 "shm %s: %s exists and is not a moirai segment, or its creator "
				 "died while creating it (remove it if no process uses it)",
				 name, path);
		goto out_close;
	}
	moirai__log(MOIRAI_LOG_INFO, "shm %s: reclaiming a segment whose processes are gone", name);
	unlink(path);
	rc = 0;
out_close:
	close(fd); /* drops the name lock */
	return rc;
}

static int apply_access(const char *name, int fd, const struct moirai_shm_opts *opts)
{
	if (!opts || !(opts->flags & MOIRAI_SHM_F_SHARED))
		return 0;
	if (fchown(fd, (uid_t)-1, (gid_t)opts->gid) != 0)
		return moirai__err(-errno, "shm %s: cannot give the segment to group %u: %s", name,
				   opts->gid, moirai_strerror(errno));
	if (fchmod(fd, (mode_t)opts->mode) != 0)
		return moirai__err(-errno, "shm %s: cannot set mode %04o: %s", name, opts->mode,
				   moirai_strerror(errno));
	return 0;
}

int moirai__shm_create_file(const char *name, const struct moirai_shm_opts *opts, int *fd_out)
{
	char path[MOIRAI__SHM_PATH_MAX];
	struct stat st;
	int fd, rc;

	moirai__shm_path(name, path, sizeof(path));
	for (int attempt = 0; attempt < 8; attempt++) {
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			goto created;
		if (errno != EEXIST)
			return moirai__err(-errno, "shm %s: cannot create %s: %s", name, path,
					   moirai_strerror(errno));
		rc = reclaim(name, path, opts);
		if (rc)
			return rc;
	}
	return moirai__err(-EEXIST, "shm %s: %s keeps reappearing (another server?)", name, path);

created:
	/* Alive from the first moment: a reclaimer sees the lock (or, before
	 * it, no magic) and leaves the new file alone. */
	rc = moirai__shm_lock_try(fd, SHM_LOCK_SIDE0);
	if (rc) {
		rc = moirai__err(rc == -EAGAIN ? -EBUSY : rc,
				 "shm %s: another process locked the new segment", name);
		goto err_unlink;
	}
	rc = apply_access(name, fd, opts);
	if (rc)
		goto err_unlink;
	*fd_out = fd;
	return 0;

err_unlink:
	if (fstat(fd, &st) == 0)
		moirai__shm_unlink_if_same(name, fd, st.st_dev, st.st_ino);
	close(fd);
	return rc;
}

int moirai__shm_check_space(const char *name, int fd, uint64_t size)
{
	struct statvfs vfs;

	/* Fail fast and clearly, before mapping anything: posix_fallocate of
	 * more than the file system holds would first fill it page by page,
	 * then undo. */
	if (fstatvfs(fd, &vfs) == 0 && vfs.f_frsize && size / vfs.f_frsize > (uint64_t)vfs.f_bavail)
		return moirai__err(
			-ENOSPC, "shm %s: the segment needs %llu bytes, " SHM_DIR " has %llu free",
			name, (unsigned long long)size,
			(unsigned long long)vfs.f_bavail * vfs.f_frsize);
	return 0;
}

int moirai__shm_reserve(const char *name, int fd, uint64_t size)
{
	/* Reserve every page now: a tmpfs that fills up later would otherwise
	 * answer our first touch of a page with SIGBUS. */
	int rc = posix_fallocate(fd, 0, (off_t)size);

	if (rc)
		return moirai__err(-rc, "shm %s: cannot reserve %llu bytes in " SHM_DIR ": %s",
				   name, (unsigned long long)size, moirai_strerror(rc));
	return 0;
}

int moirai__shm_open_file(const char *name, const struct moirai_shm_opts *opts, int *fd_out,
			  struct stat *st)
{
	char path[MOIRAI__SHM_PATH_MAX];
	int fd, rc;

	moirai__shm_path(name, path, sizeof(path));
	fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return moirai__err(-EACCES, "shm %s: %s is a symbolic link", name, path);
		return moirai__err(-errno, "shm %s: cannot open %s: %s", name, path,
				   moirai_strerror(errno));
	}
	if (fstat(fd, st) != 0) {
		rc = moirai__err(-errno, "shm %s: fstat: %s", name, moirai_strerror(errno));
		goto err_close;
	}
	rc = moirai__shm_check_owner(name, st, opts);
	if (rc)
		goto err_close;
	*fd_out = fd;
	return 0;

err_close:
	close(fd);
	return rc;
}

/* ---- side identity (diagnostics) ------------------------------------------ */

/* Start time of this process (/proc/self/stat field 22), 0 if unknown. */
static uint64_t start_time(void)
{
	char buf[1024], *p;
	ssize_t n;
	int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* comm may contain spaces and ')': fields restart after the last ')'. */
	p = strrchr(buf, ')');
	for (int field = 2; p && field < 22; field++)
		p = strchr(p + 1, ' ');
	return p ? strtoull(p + 1, NULL, 10) : 0;
}

void moirai__shm_side_claim(struct shm_side *s)
{
	atomic_store_explicit(&s->pid, (int32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&s->start_time, start_time(), memory_order_relaxed);
}
