/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helpers shared by the cmocka tests: the stress scale, a child-process
 * runner for death tests, the real-machine topologies directory, and
 * hwloc-calc as an independent oracle.
 */
#ifndef MOIRAI_TESTUTIL_H
#define MOIRAI_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sys/wait.h>

/*
 * Sanitizer builds are slower (TSan ~10x, ASan ~4x): threaded tests divide
 * their loop counts by TEST_SAN_DIVISOR to stay bounded.  Kept here so test
 * files carry no #ifdef.
 */
#if defined(MOIRAI_SAN_thread)
#define TEST_SAN_DIVISOR 10
#define TEST_UNDER_TSAN	 1
#elif defined(MOIRAI_SAN_address)
#define TEST_SAN_DIVISOR 4
#define TEST_UNDER_TSAN	 0
#else
#define TEST_SAN_DIVISOR 1
#define TEST_UNDER_TSAN	 0
#endif

/*
 * Multiplier for loop counts: 1 under `make check`, larger under
 * `make stress` (MOIRAI_TEST_SCALE).  Tests size their work as
 * base * test_scale() so the same code serves both.
 */
long test_scale(void);

/*
 * Run only the tests whose name matches MOIRAI_TEST_FILTER (cmocka's
 * pattern: * and ?), when set: cmocka 1.1 reads no variable of its own.
 * Call before running the groups.
 */
void test_filter_from_env(void);

/*
 * Whether the test runs under valgrind (MOIRAI_TEST_VALGRIND set by
 * tests/tools/test_valgrind.sh): threaded tests cut their repetitions,
 * because memcheck serialises the threads and runs each ~50x slower.
 */
bool test_under_valgrind(void);

/*
 * Run @fn(arg) in a forked child and return its wait status, so a test can
 * assert that a debug check aborts (WIFSIGNALED) or that a call exits.
 * The child's stderr goes to /dev/null unless MOIRAI_TEST_VERBOSE is set.
 */
int test_run_in_child(void (*fn)(void *), void *arg);

/*
 * Directory of the real-machine topologies in the repository
 * (tests/data/topologies), or NULL when it cannot be found from the
 * current directory: a test that needs it fails then, since every clone
 * has it.  MOIRAI_TOPOLOGIES_DIR overrides it.
 */
const char *test_topologies_dir(void);

/* How many real-machine exports that directory holds at least. */
#define TEST_TOPOLOGIES_MIN 12

/*
 * Run a shell command and return its stdout parsed as a long, or -1.
 * Used with hwloc-calc as an oracle.
 */
long test_command_long(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
