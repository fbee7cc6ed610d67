/* SPDX-License-Identifier: BSD-3-Clause */
/* Shared test helpers; see testutil.h. */
#include <fcntl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

long test_scale(void)
{
	const char *s = getenv("MOIRAI_TEST_SCALE");
	long v = s ? strtol(s, NULL, 10) : 1;

	return v > 0 ? v : 1;
}

void test_filter_from_env(void)
{
	const char *f = getenv("MOIRAI_TEST_FILTER");

	if (f && *f)
		cmocka_set_test_filter(f);
}

bool test_under_valgrind(void)
{
	const char *v = getenv("MOIRAI_TEST_VALGRIND");

	return v && *v && strcmp(v, "0") != 0;
}

int test_run_in_child(void (*fn)(void *), void *arg)
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (!getenv("MOIRAI_TEST_VERBOSE")) {
			int fd = open("/dev/null", O_WRONLY);

			if (fd >= 0)
				dup2(fd, 2);
		}
		fn(arg);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

const char *test_topologies_dir(void)
{
	/* In the repository (tests/data/topologies/README.md), found from the
	 * top of the tree where make check runs the tests, or from build/; never
	 * outside the clone, so that a fresh clone tests what this one does. */
	static const char *const candidates[] = {
		"tests/data/topologies",
		"../tests/data/topologies",
	};
	const char *env = getenv("MOIRAI_TOPOLOGIES_DIR");
	struct stat st;

	if (env && *env)
		return stat(env, &st) == 0 ? env : NULL;
	for (size_t i = 0; i < sizeof(candidates) / sizeof(candidates[0]); i++)
		if (stat(candidates[i], &st) == 0 && S_ISDIR(st.st_mode))
			return candidates[i];
	return NULL;
}

long test_command_long(const char *fmt, ...)
{
	char cmd[2048], out[128] = "";
	va_list ap;
	FILE *f;
	long v = -1;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (fgets(out, sizeof(out), f)) {
		char *end;

		v = strtol(out, &end, 10);
		if (end == out)
			v = -1;
	}
	if (pclose(f) != 0)
		return -1;
	return v;
}
