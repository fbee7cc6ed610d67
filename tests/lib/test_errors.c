/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai_last_error() across modules (issue #8): every public error path
 * records its detail, except the outcomes moirai/base.h lists as silent.
 * One table of error cases, each the call of a public function brought
 * into that error by the public API alone; each row asserts the code, a
 * non-empty one-line message, and that the message names the call.  The
 * rows are the paths that used to return their code with the previous
 * call's message still in place (or none).
 *
 * Each case copies the message right after the call under test, before it
 * cleans up: a later failing call would overwrite it.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moirai.h>

#include "testutil.h"

#define MSG_LEN 256

static void keep(char *msg)
{
	snprintf(msg, MSG_LEN, "%s", moirai_last_error());
}

static struct moirai_rt *one_worker(const char *stats_name)
{
	struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .workers = 1 },
					.stuck_ns = UINT64_MAX,
					.stats_name = stats_name };
	struct moirai_rt *rt = NULL;

	assert_int_equal(moirai_rt_create(&cfg, &rt), 0);
	return rt;
}

/* ---- rt/ tasks --------------------------------------------------------------- */

static atomic_int started, gate;

static int gated_task(void *arg)
{
	(void)arg;
	atomic_store(&started, 1);
	while (!atomic_load(&gate))
		sched_yield();
	return 0;
}

static int nop_task(void *arg)
{
	(void)arg;
	return 0;
}

static int cancel_running(char *msg)
{
	struct moirai_rt *rt = one_worker(NULL);
	struct moirai_task *t;
	int rc;

	atomic_store(&started, 0);
	atomic_store(&gate, 0);
	assert_int_equal(moirai_rt_spawn(rt, gated_task, NULL, NULL, &t), 0);
	while (!atomic_load(&started))
		sched_yield();
	rc = moirai_task_cancel(t);
	keep(msg);
	atomic_store(&gate, 1);
	assert_int_equal(moirai_task_join(t, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

static int cancel_finished(char *msg)
{
	struct moirai_rt *rt = one_worker(NULL);
	struct moirai_task *t;
	int rc;

	assert_int_equal(moirai_rt_spawn(rt, nop_task, NULL, NULL, &t), 0);
	while (!moirai_task_is_done(t))
		sched_yield();
	rc = moirai_task_cancel(t);
	keep(msg);
	assert_int_equal(moirai_task_join(t, MOIRAI_TIMEOUT_FOREVER, NULL), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

/* A task stops its own runtime, then spawns: both answers and messages are
 * the worker thread's, so the task hands them back. */
struct from_worker {
	struct moirai_rt *rt;
	int stop_rc, spawn_rc;
	char stop_msg[MSG_LEN], spawn_msg[MSG_LEN];
};

static int stop_then_spawn(void *arg)
{
	struct from_worker *fw = arg;

	moirai_clear_error();
	fw->stop_rc = moirai_rt_stop(fw->rt, MOIRAI_RT_STOP_NOW, 0);
	keep(fw->stop_msg);
	moirai_clear_error();
	fw->spawn_rc = moirai_rt_spawn(fw->rt, nop_task, NULL, NULL, NULL);
	keep(fw->spawn_msg);
	return 0;
}

static struct from_worker fw;

static void run_from_worker(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	fw.rt = one_worker(NULL);
	assert_int_equal(moirai_rt_spawn(fw.rt, stop_then_spawn, &fw, NULL, NULL), 0);
	/* -EINVAL until the task has called stop. */
	while (moirai_rt_wait(fw.rt, MOIRAI_TIMEOUT_FOREVER) == -EINVAL)
		sched_yield();
	assert_int_equal(moirai_rt_destroy(fw.rt), 0);
}

static int stop_from_worker(char *msg)
{
	run_from_worker();
	snprintf(msg, MSG_LEN, "%s", fw.stop_msg);
	return fw.stop_rc;
}

static int spawn_from_worker_stopping(char *msg)
{
	run_from_worker();
	snprintf(msg, MSG_LEN, "%s", fw.spawn_msg);
	return fw.spawn_rc;
}

static int spawn_after_stop(char *msg)
{
	struct moirai_rt *rt = one_worker(NULL);
	int rc;

	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	rc = moirai_rt_spawn(rt, nop_task, NULL, NULL, NULL);
	keep(msg);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

static int stop_twice(char *msg)
{
	struct moirai_rt *rt = one_worker(NULL);
	int rc;

	assert_int_equal(moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER), 0);
	rc = moirai_rt_stop(rt, MOIRAI_RT_STOP_DRAIN, MOIRAI_TIMEOUT_FOREVER);
	keep(msg);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

static void nop_timer(struct moirai_timer *t, void *arg)
{
	(void)t;
	(void)arg;
}

static int timer_not_pending(char *msg)
{
	struct moirai_timer t;
	int rc;

	assert_int_equal(moirai_timer_init(&t, nop_timer, NULL), 0);
	rc = moirai_timer_cancel(&t);
	keep(msg);
	return rc;
}

/* ---- rt/ published stats ------------------------------------------------------ */

static int stats_name_unpublished(char *msg)
{
	struct moirai_rt *rt = one_worker(NULL);
	char name[MOIRAI_RT_STATS_NAME_MAX + 1];
	int rc;

	rc = moirai_rt_stats_name(rt, name, sizeof(name));
	keep(msg);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

static void stats_name_of(char *name, size_t len, const char *what)
{
	snprintf(name, len, "errors-%s-%d", what, (int)getpid());
}

static int stats_name_too_small(char *msg)
{
	char name[64], small[4];
	struct moirai_rt *rt;
	int rc;

	stats_name_of(name, sizeof(name), "small");
	rt = one_worker(name);
	rc = moirai_rt_stats_name(rt, small, sizeof(small));
	keep(msg);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	return rc;
}

static int monitor_check_destroyed(char *msg)
{
	struct moirai_rt_monitor *mon;
	struct moirai_rt *rt;
	char name[64];
	int rc;

	stats_name_of(name, sizeof(name), "gone");
	rt = one_worker(name);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	rc = moirai_rt_monitor_check(mon);
	keep(msg);
	moirai_rt_monitor_close(mon);
	return rc;
}

/* The publisher is a child, SIGKILLed and reaped: its segment stays. */
static int monitor_check_dead(char *msg)
{
	struct moirai_rt_monitor *mon;
	char name[64], ok;
	int p[2], rc;
	pid_t pid;

	stats_name_of(name, sizeof(name), "dead");
	assert_int_equal(pipe(p), 0);
	fflush(NULL);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct moirai_rt_config cfg = { .plan = &(struct moirai_plan_opts){ .workers = 1 },
						.stats_name = name };
		struct moirai_rt *rt;

		close(p[0]);
		alarm(60); /* never outlives a parent that failed */
		if (moirai_rt_create(&cfg, &rt) || write(p[1], "k", 1) != 1)
			_exit(90);
		for (;;)
			pause();
	}
	close(p[1]);
	assert_int_equal(read(p[0], &ok, 1), 1);
	close(p[0]);
	assert_int_equal(moirai_rt_monitor_open(name, MOIRAI_RT_MONITOR_UID_SELF, &mon), 0);
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	rc = moirai_rt_monitor_check(mon);
	keep(msg);
	moirai_rt_monitor_close(mon);
	assert_int_equal(moirai_rt_monitor_clean(name), 0);
	return rc;
}

/* ---- ring/, numa/ --------------------------------------------------------------- */

static int chan_close_twice(char *msg)
{
	struct moirai_chan *ch;
	int rc;

	assert_int_equal(moirai_chan_create("errors_close", 8, 16, MOIRAI_NODE_ANY, 0, &ch), 0);
	assert_int_equal(moirai_chan_close(ch), 0);
	rc = moirai_chan_close(ch);
	keep(msg);
	moirai_chan_destroy(ch);
	return rc;
}

static int cpu_quota_null(char *msg)
{
	long rc = moirai_topo_cpu_quota_milli(NULL);

	keep(msg);
	return (int)rc;
}

static const struct error_case {
	const char *what;
	int (*call)(char *msg);
	int want;
	const char *names; /* the call, as its message names it */
} cases[] = {
	{ "moirai_task_cancel on a running task", cancel_running, -EBUSY, "cancel" },
	{ "moirai_task_cancel on a finished task", cancel_finished, -EALREADY, "cancel" },
	{ "moirai_rt_stop from a worker", stop_from_worker, -EINPROGRESS, "rt stop" },
	{ "moirai_rt_spawn from a worker of a stopping runtime", spawn_from_worker_stopping,
	  -ESHUTDOWN, "spawn" },
	{ "moirai_rt_spawn after moirai_rt_stop", spawn_after_stop, -ESHUTDOWN, "spawn" },
	{ "moirai_rt_stop twice", stop_twice, -EALREADY, "rt stop" },
	{ "moirai_timer_cancel of a timer never started", timer_not_pending, -EALREADY,
	  "timer cancel" },
	{ "moirai_rt_stats_name without publishing", stats_name_unpublished, -ENOENT,
	  "rt stats name" },
	{ "moirai_rt_stats_name into a short buffer", stats_name_too_small, -ENOSPC,
	  "rt stats name" },
	{ "moirai_rt_monitor_check after destroy", monitor_check_destroyed, -ENOENT,
	  "rt monitor check" },
	{ "moirai_rt_monitor_check of a killed publisher", monitor_check_dead, -ESRCH,
	  "rt monitor check" },
	{ "moirai_chan_close twice", chan_close_twice, -EALREADY, "chan close" },
	{ "moirai_topo_cpu_quota_milli(NULL)", cpu_quota_null, -ENODATA, "topology" },
};

static void test_error_paths_record(void **state)
{
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct error_case *c = &cases[i];
		char msg[MSG_LEN] = "";
		int rc;

		moirai_clear_error();
		rc = c->call(msg);
		print_message("  %-52s %4d  \"%s\"\n", c->what, rc, msg);
		if (rc != c->want || !msg[0] || strchr(msg, '\n') || !strstr(msg, c->names)) {
			print_message("FAIL: %s: got %d \"%s\", want %d and a message naming "
				      "\"%s\"\n",
				      c->what, rc, msg, c->want, c->names);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_paths_record),
	};

	return cmocka_run_group_tests_name("errors", tests, NULL, NULL);
}
