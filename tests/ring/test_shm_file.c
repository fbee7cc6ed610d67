/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The file behind a shared-memory segment (issue #8): what is under the
 * name is input too.
 *
 *  - reclaim race: many forked servers reclaiming the same stale name at
 *    once, over many rounds: exactly one create succeeds each round, and
 *    the name then names the winner's segment;
 *  - ownership: a segment squatted by another user (a child that
 *    setresuid()s to nobody) or opened to group/other is refused with
 *    -EACCES unless MOIRAI_SHM_F_SHARED accepts it; create makes 0600
 *    whatever the umask, or exactly the shared mode and group;
 *  - FIFOs and symlinks under the name: destroy does not block, attach and
 *    create refuse;
 *  - space: a segment larger than /dev/shm can hold is -ENOSPC at create,
 *    not SIGBUS at first touch.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "moirai/shm.h"
#include "shm_int.h"
#include "testutil.h"

#define SEC    1000000000LL
#define NOBODY 65534 /* no /etc/passwd needed (the VM has none) */

static char *seg_name(const char *tag)
{
	static char buf[64];

	snprintf(buf, sizeof(buf), "f%d-%s", (int)getpid(), tag);
	return buf;
}

static void seg_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "/dev/shm/moirai.%s", name);
}

static bool seg_file_exists(const char *name)
{
	char path[128];
	struct stat st;

	seg_path(name, path, sizeof(path));
	return lstat(path, &st) == 0;
}

/* ---- reclaim race --------------------------------------------------------- */

struct verdict {
	int rc;
	ino_t ino;
};

static void stale_child(void *arg)
{
	struct moirai_shm *srv;

	if (moirai_shm_create(arg, NULL, &srv) != 0)
		_exit(10);
	_exit(0); /* dies without destroy: a stale segment stays */
}

/* A server racing the others: create, report, hold the segment until told. */
static void racer(const char *name, int start_fd, int res_fd, int hold_fd)
{
	struct moirai_shm *srv = NULL;
	struct verdict v = { 0 };
	struct stat st;
	char c;

	alarm(60);
	if (read(start_fd, &c, 1) != 0) /* EOF: everybody goes at once */
		_exit(10);
	v.rc = moirai_shm_create(name, NULL, &srv);
	if (v.rc == 0 && fstat(srv->fd, &st) == 0)
		v.ino = st.st_ino;
	if (write(res_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		_exit(11);
	/* Alive until the parent has checked: a winner that left early would
	 * make its segment stale again and a later racer could rightly win. */
	while (read(hold_fd, &c, 1) > 0)
		;
	if (srv)
		moirai_shm_destroy(srv);
	_exit(0);
}

static void test_reclaim_race(void **state)
{
	enum { RACERS = 6 };
	long rounds = 200 * test_scale() / (TEST_UNDER_TSAN ? 4 : 1);
	const char *name = seg_name("race");
	char path[128];
	long bad = 0;

	(void)state;
	alarm(600);
	seg_path(name, path, sizeof(path));
	for (long r = 0; r < rounds; r++) {
		int start[2], res[2], hold[2], won = 0, status;
		pid_t pids[RACERS];
		ino_t winner = 0;
		struct stat st;

		status = test_run_in_child(stale_child, (void *)name);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_int_equal(pipe(start), 0);
		assert_int_equal(pipe(res), 0);
		assert_int_equal(pipe(hold), 0);
		fflush(NULL);
		for (int i = 0; i < RACERS; i++) {
			pids[i] = fork();
			assert_true(pids[i] >= 0);
			if (pids[i] == 0) {
				close(start[1]);
				close(res[0]);
				close(hold[1]);
				racer(name, start[0], res[1], hold[0]);
			}
		}
		close(start[0]);
		close(res[1]);
		close(hold[0]);
		close(start[1]); /* go */
		for (int i = 0; i < RACERS; i++) {
			struct verdict v;

			assert_int_equal(read(res[0], &v, sizeof(v)), sizeof(v));
			if (v.rc == 0) {
				won++;
				winner = v.ino;
			} else if (v.rc != -EEXIST) {
				fail_msg("round %ld: create returned %d", r, v.rc);
			}
		}
		/* Exactly one server, and it serves the file the name names. */
		if (won != 1 || lstat(path, &st) != 0 || st.st_ino != winner)
			bad++;
		close(hold[1]);
		close(res[0]);
		for (int i = 0; i < RACERS; i++) {
			assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
			assert_true(WIFEXITED(status));
			assert_int_equal(WEXITSTATUS(status), 0);
		}
		assert_false(seg_file_exists(name));
	}
	print_message("%ld rounds of %d servers reclaiming one stale name: %ld bad rounds\n",
		      rounds, RACERS, bad);
	assert_int_equal(bad, 0);
	alarm(0);
}

/* ---- ownership and mode --------------------------------------------------- */

/* The squatter: another user puts a world-writable segment under the name. */
static void squat_child(const char *name, int ready_fd, int hold_fd)
{
	struct moirai_shm_opts o = { .flags = MOIRAI_SHM_F_SHARED, .mode = 0666, .gid = NOBODY };
	struct moirai_shm *srv;
	char c;

	alarm(60);
	if (setgroups(0, NULL) != 0 || setresgid(NOBODY, NOBODY, NOBODY) != 0 ||
	    setresuid(NOBODY, NOBODY, NOBODY) != 0)
		_exit(10);
	if (moirai_shm_create(name, &o, &srv) != 0)
		_exit(11);
	if (write(ready_fd, "r", 1) != 1)
		_exit(12);
	while (read(hold_fd, &c, 1) > 0)
		;
	moirai_shm_destroy(srv);
	_exit(0);
}

static void test_squatted_name(void **state)
{
	struct moirai_shm_opts share = { .flags = MOIRAI_SHM_F_SHARED,
					 .mode = 0666,
					 .gid = NOBODY };
	struct moirai_shm *srv, *cli;
	const char *name = seg_name("squat");
	int ready[2], hold[2], status;
	char c;
	pid_t pid;

	(void)state;
	/* A skip, not a pass: tests/run-tests.sh reports it as SKIP. */
	if (geteuid() != 0) {
		print_message("needs root to become another user\n");
		skip();
	}
	alarm(60);
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(ready[0]);
		close(hold[1]);
		squat_child(name, ready[1], hold[0]);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);
	/* The victim's client refuses it... */
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
	assert_non_null(strstr(moirai_last_error(), "uid 65534"));
	/* ...and so does a server that would reclaim the name. */
	assert_int_equal(moirai_shm_create(name, NULL, &srv), -EEXIST);
	/* Sharing with that group, but not with everybody: still refused. */
	share.mode = 0660;
	assert_int_equal(moirai_shm_attach(name, &share, &cli), -EACCES);
	assert_non_null(strstr(moirai_last_error(), "mode 0666"));
	share.mode = 0666;
	share.gid = 12345;
	assert_int_equal(moirai_shm_attach(name, &share, &cli), -EACCES);
	/* Opting into exactly that owner group and mode: accepted. */
	share.gid = NOBODY;
	assert_int_equal(moirai_shm_attach(name, &share, &cli), 0);
	moirai_shm_detach(cli);
	close(hold[1]);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_false(seg_file_exists(name));
	close(ready[0]);
	alarm(0);
}

static void test_owner_and_mode(void **state)
{
	struct moirai_shm_opts share = { .flags = MOIRAI_SHM_F_SHARED, .mode = 0660, .gid = 0 };
	struct moirai_shm *srv, *cli;
	const char *name = seg_name("mode");
	char path[128];
	struct stat st;
	mode_t old;

	(void)state;
	seg_path(name, path, sizeof(path));
	share.gid = (uint32_t)getegid();
	/* 0600 whatever the umask. */
	old = umask(0);
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(st.st_uid, geteuid());
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	moirai_shm_detach(cli);
	assert_int_equal(moirai_shm_recover(srv), 0);
	/* Opened to others after the fact: refused. */
	assert_int_equal(chmod(path, 0666), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
	assert_non_null(strstr(moirai_last_error(), "mode 0666"));
	assert_int_equal(chmod(path, 0640), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
	assert_int_equal(moirai_shm_attach(name, &share, &cli), 0); /* within 0660 */
	moirai_shm_detach(cli);
	assert_int_equal(moirai_shm_recover(srv), 0);
	assert_int_equal(chmod(path, 0600), 0);
	if (geteuid() == 0) {
		/* Given away to another user: not ours any more. */
		assert_int_equal(chown(path, NOBODY, (gid_t)-1), 0);
		assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
		assert_non_null(strstr(moirai_last_error(), "belongs to uid 65534"));
		assert_int_equal(chown(path, 0, (gid_t)-1), 0);
	}
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), 0);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);

	/* A shared segment gets exactly the mode and group asked for. */
	assert_int_equal(moirai_shm_create(name, &share, &srv), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0660);
	assert_int_equal(st.st_gid, share.gid);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES); /* not opted in */
	assert_int_equal(moirai_shm_attach(name, &share, &cli), 0);
	moirai_shm_detach(cli);
	moirai_shm_destroy(srv);
	assert_false(seg_file_exists(name));
}

/* ---- FIFOs and symlinks ------------------------------------------------------ */

static void test_not_a_regular_file(void **state)
{
	struct moirai_shm *srv, *cli;
	const char *name = seg_name("fifo");
	char path[128], target[128];
	struct stat st;
	int fd;

	(void)state;
	alarm(30); /* an open without O_NONBLOCK used to block here forever */
	seg_path(name, path, sizeof(path));
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mkfifo(path, 0600), 0);
	moirai_shm_destroy(srv); /* returns, and leaves what is not ours */
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISFIFO(st.st_mode));
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
	assert_non_null(strstr(moirai_last_error(), "not a regular file"));
	assert_int_equal(moirai_shm_create(name, NULL, &srv), -EEXIST);
	assert_non_null(strstr(moirai_last_error(), "not a regular file"));
	assert_int_equal(unlink(path), 0);

	/* A symlink to a file of ours: not followed, by create or attach. */
	snprintf(target, sizeof(target), "/dev/shm/moirai-target-%d", (int)getpid());
	fd = open(target, O_CREAT | O_RDWR | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(moirai_shm_attach(name, NULL, &cli), -EACCES);
	assert_non_null(strstr(moirai_last_error(), "symbolic link"));
	assert_int_equal(moirai_shm_create(name, NULL, &srv), -EEXIST);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 0); /* untouched */
	assert_int_equal(unlink(path), 0);
	assert_int_equal(unlink(target), 0);
	alarm(0);
}

/* ---- space ----------------------------------------------------------------- */

static void test_no_space(void **state)
{
	/* 2 x 65536 buffers of 16 MiB: 2 TiB, more than any test box's tmpfs. */
	struct moirai_shm_opts o = { .buf_size = MOIRAI_SHM_BUF_MAX, .bufs = MOIRAI_SHM_BUFS_MAX };
	struct moirai_shm *srv;
	const char *name = seg_name("huge");

	(void)state;
	alarm(60);
	assert_int_equal(moirai_shm_create(name, &o, &srv), -ENOSPC);
	assert_non_null(strstr(moirai_last_error(), "/dev/shm"));
	assert_null(srv);
	assert_false(seg_file_exists(name));
	/* A sane size still works right after. */
	assert_int_equal(moirai_shm_create(name, NULL, &srv), 0);
	moirai_shm_destroy(srv);
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest file_tests[] = {
		cmocka_unit_test(test_reclaim_race),   cmocka_unit_test(test_squatted_name),
		cmocka_unit_test(test_owner_and_mode), cmocka_unit_test(test_not_a_regular_file),
		cmocka_unit_test(test_no_space),
	};

	return cmocka_run_group_tests_name("shm_file", file_tests, NULL, NULL);
}
