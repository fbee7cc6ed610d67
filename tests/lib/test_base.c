/* SPDX-License-Identifier: BSD-3-Clause */
/* Plumbing: error text, last-error detail, the options table and sizes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "moirai/base.h"
#include "testutil.h"

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(moirai_strerror(0), "success");
	assert_string_equal(moirai_strerror(-EINVAL), moirai_strerror(EINVAL));
	assert_non_null(strstr(moirai_strerror(-ENOMEM), "memory"));
	assert_non_null(moirai_strerror(-99999));
}

static void test_last_error(void **state)
{
	(void)state;
	moirai_clear_error();
	assert_string_equal(moirai_last_error(), "");
	assert_int_equal(moirai__err(-ERANGE, "ring: count %d too big", 7), -ERANGE);
	assert_string_equal(moirai_last_error(), "ring: count 7 too big");
	moirai_clear_error();
	assert_string_equal(moirai_last_error(), "");
}

static void test_parse_size(void **state)
{
	long v;

	(void)state;
	assert_int_equal(moirai__parse_size("4096", &v), 0);
	assert_int_equal(v, 4096);
	assert_int_equal(moirai__parse_size("64K", &v), 0);
	assert_int_equal(v, 64 << 10);
	assert_int_equal(moirai__parse_size("2MiB", &v), 0);
	assert_int_equal(v, 2 << 20);
	assert_int_equal(moirai__parse_size("1G", &v), 0);
	assert_int_equal(v, 1L << 30);
	assert_int_equal(moirai__parse_size("", &v), -EINVAL);
	assert_int_equal(moirai__parse_size("-1", &v), -EINVAL);
	assert_int_equal(moirai__parse_size("12Q", &v), -EINVAL);
	assert_int_equal(moirai__parse_size("99999999999999T", &v), -EINVAL);
	assert_int_equal(moirai__parse_size(NULL, &v), -EINVAL);
}

static void test_options(void **state)
{
	(void)state;
	assert_string_equal(moirai_option_name(MOIRAI_OPT_WORKERS), "workers");
	assert_null(moirai_option_name(MOIRAI_OPT__COUNT));
	assert_int_equal(moirai_option_set(MOIRAI_OPT_WORKERS, 3), 0);
	assert_int_equal(moirai_option_get(MOIRAI_OPT_WORKERS), 3);
	assert_int_equal(moirai_option_set(MOIRAI_OPT_WORKERS, -1), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "workers"));
	assert_int_equal(moirai_option_get(MOIRAI_OPT_WORKERS), 3);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_ARENA_CHUNK, "4M"), 0);
	assert_int_equal(moirai_option_get(MOIRAI_OPT_ARENA_CHUNK), 4 << 20);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_ARENA_CHUNK, "lots"), -EINVAL);
	assert_int_equal(moirai_option_set(MOIRAI_OPT_TOPOLOGY, 1), -EINVAL);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, "pu:2"), 0);
	assert_string_equal(moirai_option_get_str(MOIRAI_OPT_TOPOLOGY), "pu:2");
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_TOPOLOGY, ""), 0);
	assert_int_equal(moirai_option_set((enum moirai_option)999, 1), -EINVAL);
	assert_string_equal(moirai_option_get_str((enum moirai_option)999), "");
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_WORKERS, NULL), -EINVAL);
	/* String options with a fixed set of values reject anything else. */
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "thp"), 0);
	assert_string_equal(moirai_option_get_str(MOIRAI_OPT_HUGEPAGES), "thp");
	moirai_clear_error();
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "sometimes"), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "auto|hugetlb|thp|none"));
	assert_string_equal(moirai_option_get_str(MOIRAI_OPT_HUGEPAGES), "thp");
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "thpx"), -EINVAL);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "th"), -EINVAL);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, ""), -EINVAL);
	assert_int_equal(moirai_option_set_str(MOIRAI_OPT_HUGEPAGES, "auto"), 0);
}

/* Runs in a fresh exec of this binary: the env is read once per process. */
static int env_child(void)
{
	if (moirai_option_get(MOIRAI_OPT_WORKERS) != 5)
		return 1;
	if (moirai_option_get(MOIRAI_OPT_LOG_LEVEL) != 1) /* bad value ignored */
		return 2;
	if (moirai_option_get(MOIRAI_OPT_ARENA_CHUNK) != 8 << 20)
		return 3;
	if (strcmp(moirai_option_get_str(MOIRAI_OPT_HUGEPAGES), "auto") != 0)
		return 4; /* MOIRAI_HUGEPAGES=sometimes ignored */
	return 0;
}

static void test_env_override(void **state)
{
	(void)state;
	int st = system("MOIRAI_WORKERS=5 MOIRAI_LOG_LEVEL=banana "
			"MOIRAI_ARENA_CHUNK=8M MOIRAI_HUGEPAGES=sometimes "
			"/proc/$PPID/exe --env-child 2>/dev/null");

	/* system() runs sh, whose parent is this process. */
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--env-child") == 0)
		return env_child();

	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_strerror),     cmocka_unit_test(test_last_error),
		cmocka_unit_test(test_parse_size),   cmocka_unit_test(test_options),
		cmocka_unit_test(test_env_override),
	};

	return cmocka_run_group_tests_name("base", tests, NULL, NULL);
}
