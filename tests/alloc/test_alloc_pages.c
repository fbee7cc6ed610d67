/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/alloc.h page modes.  The MOIRAI_HUGEPAGES option is read when the
 * allocator starts, so each mode runs in a forked child of a parent that
 * never allocates.  Forced 4 KiB and THP modes commit in their mode;
 * forced hugetlb either commits hugetlb pages (when the node's pool has
 * free ones) or fails cleanly with ENOMEM (never SIGBUS); auto picks
 * hugetlb, then THP, then 4 KiB, and says so in the stats.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "testutil.h"

static int first_node(void)
{
	for (int n = 0; n < moirai_numa_node_count(); n++)
		if (moirai_numa_node_is_allowed(n))
			return n;
	return -1;
}

/* Read sysfs directly: the VM guest has no full shell userland. */
static long free_hugepages(int node)
{
	char path[128];
	long v = 0;
	FILE *f;

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/free_hugepages", node);
	f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%ld", &v) != 1)
		v = 0;
	fclose(f);
	return v;
}

/* Child: allocate in @mode on the first node; exit code says what failed. */
static void run_mode(void *arg)
{
	const char *mode = arg;
	int node = first_node();
	struct moirai_alloc_stats st;
	char *p;

	long free_before = free_hugepages(node);

	moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, mode);
	p = moirai_malloc_node(3 << 20, node);
	if (!strcmp(mode, "hugetlb") && free_before < 2) {
		/* Too few (or no) free pages: a clean ENOMEM, no crash. */
		if (p || errno != ENOMEM || !strstr(moirai_last_error(), "hugetlb"))
			_exit(10);
		_exit(0);
	}
	if (!p)
		_exit(11);
	memset(p, 1, 3 << 20);
	if (moirai_alloc_stats_get(node, &st) != 0)
		_exit(12);
	if (st.committed != st.committed_hugetlb + st.committed_thp + st.committed_small)
		_exit(13);
	if (!strcmp(mode, "none") &&
	    (st.committed_small < (3u << 20) || strcmp(st.page_mode, "none")))
		_exit(14);
	if (!strcmp(mode, "thp") && (st.committed_thp < (3u << 20) || strcmp(st.page_mode, "thp")))
		_exit(15);
	if (!strcmp(mode, "hugetlb") && st.committed_hugetlb < (3u << 20))
		_exit(16);
	if (!strcmp(mode, "auto") && st.committed < (3u << 20))
		_exit(17);
	moirai_free(p);
	_exit(0);
}

static void expect_ok(const char *mode)
{
	int st = test_run_in_child(run_mode, (void *)mode);

	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("mode %s: child status %#x (exit %d)", mode, st,
			 WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

static void test_mode_none(void **state)
{
	(void)state;
	expect_ok("none");
}

static void test_mode_thp(void **state)
{
	(void)state;
	expect_ok("thp");
}

static void test_mode_hugetlb(void **state)
{
	(void)state;
	expect_ok("hugetlb");
}

static void test_mode_auto(void **state)
{
	(void)state;
	expect_ok("auto");
}

/* An unknown mode is a warning and behaves like auto. */
static void test_mode_unknown(void **state)
{
	(void)state;
	expect_ok("bogus");
}

int main(void)
{
	const struct CMUnitTest pages[] = {
		cmocka_unit_test(test_mode_none),
		cmocka_unit_test(test_mode_thp),
		cmocka_unit_test(test_mode_hugetlb),
		cmocka_unit_test(test_mode_auto),
	};
	const struct CMUnitTest negative[] = {
		cmocka_unit_test(test_mode_unknown),
	};
	int fails = 0;

	alarm(60);
	fails += cmocka_run_group_tests_name("alloc pages", pages, NULL, NULL);
	fails += cmocka_run_group_tests_name("alloc negative", negative, NULL, NULL);
	return fails ? 1 : 0;
}
