/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai_rt_stats_print(): the text and the JSON carry every counter of
 * the stats API with the API's values.  A runtime in manual mode (no
 * threads, a fake clock) makes the run deterministic: exact queue depths,
 * poller busy/idle times, timers, continuations, aging, a stuck report.
 * The JSON is parsed (a small strict parser below) and every key it has
 * is checked; the text's tables are parsed by their column names.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_int.h"
#include "testutil.h"

static uint64_t fake_now = 1000000;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static void step(struct moirai_rt *rt, int w, unsigned max)
{
	struct rt_step st;

	moirai__rt_bind_thread(rt, w);
	rt_step(rt->w[w], fake_now, max, &st);
}

static int nop_task(void *arg)
{
	(void)arg;
	return 0;
}

static int cont_left;

/* Runs twice: a continuation, then done. */
static int cont_task(void *arg)
{
	(void)arg;
	return cont_left-- > 0 ? MOIRAI_TASK_CONTINUE : 0;
}

static int poll_calls;

/* Busy for its first 3 calls, each 1000 ns of the fake clock, then idle
 * for 500 ns a call. */
static int poll_fn(void *arg)
{
	(void)arg;
	poll_calls++;
	fake_now += poll_calls <= 3 ? 1000 : 500;
	return poll_calls <= 3 ? MOIRAI_POLL_BUSY : MOIRAI_POLL_IDLE;
}

static void tick(struct moirai_timer *t, void *arg)
{
	(void)t;
	(void)arg;
}

static const int prios[RT_LEVELS] = { MOIRAI_PRIO_CRITICAL, MOIRAI_PRIO_HIGH, MOIRAI_PRIO_NORMAL,
				      MOIRAI_PRIO_BACKGROUND };
static const char *const level_name[RT_LEVELS] = { "critical", "high", "normal", "background" };
static const char *const class_name[MOIRAI_RT_STEAL_CLASSES] = { "smt", "l3", "node", "remote" };

/*
 * The deterministic run, on two workers of one node:
 *  - worker 1: a poller stepped 5 times (3 busy of 1000 ns, 2 idle of
 *    500 ns), a timer that fires once, a task that continues once, then
 *    a steal from worker 0;
 *  - worker 0: 5 critical, 3 high, 8 normal, 2 background tasks queued,
 *    4 run (aging every 2 more urgent dispatches), the rest left queued;
 *  - a stuck report recorded on worker 0 as housekeeping would.
 */
static struct moirai_rt *deterministic_run(struct moirai_timer *timer)
{
	struct moirai_rt_config cfg = { .aging_dispatches = 2, .aging_ns = UINT64_MAX / 2 };
	struct moirai_topo *topo;
	struct moirai_rt_worker_stats ws;
	struct moirai_poller *p;
	struct moirai_rt *rt;
	static const int per_level[RT_LEVELS] = { 5, 3, 8, 2 };

	assert_int_equal(moirai_topo_load_synthetic("pack:1 numa:1 core:2 pu:1", &topo), 0);
	cfg.topo = topo;
	cfg.virtual_placement = true;
	assert_int_equal(moirai__rt_create_manual(&cfg, fake_clock, &rt), 0);
	moirai_topo_destroy(topo);

	poll_calls = 0;
	moirai__rt_bind_thread(rt, 1);
	assert_int_equal(moirai_poller_register(rt, 1, "five", poll_fn, NULL, 0, 0, &p), 0);
	assert_int_equal(moirai_timer_init(timer, tick, NULL), 0);
	assert_int_equal(moirai_timer_start(timer, 100, 0), 0);
	cont_left = 1;
	assert_int_equal(moirai_rt_spawn(rt, cont_task, NULL,
					 &(struct moirai_spawn_opts){ .prio = MOIRAI_PRIO_HIGH },
					 NULL),
			 0);
	for (int i = 0; i < 5; i++)
		step(rt, 1, 1);
	assert_int_equal(moirai_poller_unregister(p), 0);
	/* Exactly what the poller and the timer did, on the fake clock. */
	assert_int_equal(moirai_rt_worker_stats_get(rt, 1, &ws), 0);
	assert_int_equal(ws.polls_busy, 3);
	assert_int_equal(ws.polls_idle, 2);
	assert_int_equal(ws.poll_busy_ns, 3000);
	assert_int_equal(ws.poll_idle_ns, 1000);
	assert_int_equal(ws.timers_fired, 1);
	assert_int_equal(ws.continuations[moirai_prio_index(MOIRAI_PRIO_HIGH)], 1);
	assert_int_equal(ws.tasks_run[moirai_prio_index(MOIRAI_PRIO_HIGH)], 2);

	moirai__rt_bind_thread(rt, 0);
	for (int l = 0; l < RT_LEVELS; l++)
		for (int i = 0; i < per_level[l]; i++)
			assert_int_equal(
				moirai_rt_spawn(rt, nop_task, NULL,
						&(struct moirai_spawn_opts){ .prio = prios[l] },
						NULL),
				0);
	/* Queued, nothing run: the depth is exact. */
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	for (int l = 0; l < RT_LEVELS; l++)
		assert_int_equal(ws.queue_depth[l], per_level[l]);
	step(rt, 0, 4);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	{
		uint64_t run = 0, aged = 0;

		for (int l = 0; l < RT_LEVELS; l++) {
			assert_int_equal(ws.queue_depth[l] + ws.tasks_run[l], per_level[l]);
			run += ws.tasks_run[l];
			aged += ws.aged_dispatches[l];
		}
		assert_int_equal(run, 4);
		assert_true(aged >= 1); /* every 2 more urgent dispatches */
	}
	/* Worker 1, dry, steals from worker 0 (same node) and runs one. */
	step(rt, 1, 1);
	assert_int_equal(moirai_rt_worker_stats_get(rt, 1, &ws), 0);
	assert_true(ws.steals[MOIRAI_RT_STEAL_NODE] >= 1);
	rt_stuck_record(rt->w[0], "spinner \"x\"\\", 12345678);
	moirai__rt_bind_thread(NULL, -1);
	return rt;
}

static void finish(struct moirai_rt *rt)
{
	for (int k = 0; k < 100; k++)
		for (int i = 0; i < rt->nworkers; i++)
			step(rt, i, 1000);
	moirai__rt_bind_thread(NULL, -1);
	assert_int_equal(moirai_rt_destroy(rt), 0);
}

static char *print_stats(struct moirai_rt *rt, bool json)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	assert_int_equal(moirai_rt_stats_print(rt, f, json), 0);
	assert_int_equal(fclose(f), 0);
	return buf;
}

/* ---- a strict little JSON parser: every leaf as path -> text ------------- */

#define KV_MAX 2048

struct kv {
	char path[96];
	char val[64];
	bool str, seen;
};

static struct kv kvs[KV_MAX];
static int nkv;
static const char *jp;

static void ws_skip(void)
{
	while (*jp == ' ' || *jp == '\n' || *jp == '\t' || *jp == '\r')
		jp++;
}

static void jstring(char *out, size_t n)
{
	size_t k = 0;

	assert_int_equal(*jp, '"');
	jp++;
	while (*jp != '"') {
		char c = *jp++;

		assert_true(c != '\0' && (unsigned char)c >= 0x20);
		if (c == '\\') {
			c = *jp++;
			switch (c) {
			case '"':
			case '\\':
			case '/': break;
			case 'n': c = '\n'; break;
			case 't': c = '\t'; break;
			case 'u': {
				char hex[5] = { 0 };

				memcpy(hex, jp, 4);
				jp += 4;
				c = (char)strtol(hex, NULL, 16);
				break;
			}
			default: fail_msg("bad escape \\%c", c);
			}
		}
		if (k + 1 < n)
			out[k++] = c;
	}
	jp++;
	out[k] = '\0';
}

static void add_kv(const char *path, const char *val, bool str)
{
	for (int i = 0; i < nkv; i++)
		if (!strcmp(kvs[i].path, path))
			fail_msg("duplicate key %s", path);
	assert_true(nkv < KV_MAX);
	snprintf(kvs[nkv].path, sizeof(kvs[nkv].path), "%s", path);
	snprintf(kvs[nkv].val, sizeof(kvs[nkv].val), "%s", val);
	kvs[nkv].str = str;
	kvs[nkv].seen = false;
	nkv++;
}

static void jvalue(const char *path)
{
	char sub[96], tok[64];

	ws_skip();
	if (*jp == '{') {
		jp++;
		ws_skip();
		if (*jp == '}') {
			jp++;
			return;
		}
		for (;;) {
			char key[48];

			ws_skip();
			jstring(key, sizeof(key));
			ws_skip();
			assert_int_equal(*jp, ':');
			jp++;
			snprintf(sub, sizeof(sub), "%s%s%s", path, *path ? "." : "", key);
			jvalue(sub);
			ws_skip();
			if (*jp == ',') {
				jp++;
				continue;
			}
			assert_int_equal(*jp, '}');
			jp++;
			return;
		}
	}
	if (*jp == '[') {
		jp++;
		ws_skip();
		if (*jp == ']') {
			jp++;
			return;
		}
		for (int i = 0;; i++) {
			snprintf(sub, sizeof(sub), "%s[%d]", path, i);
			jvalue(sub);
			ws_skip();
			if (*jp == ',') {
				jp++;
				continue;
			}
			assert_int_equal(*jp, ']');
			jp++;
			return;
		}
	}
	if (*jp == '"') {
		jstring(tok, sizeof(tok));
		add_kv(path, tok, true);
		return;
	}
	{
		size_t k = 0;
		char *end;

		while (*jp && !strchr(",}] \n\t\r", *jp) && k + 1 < sizeof(tok))
			tok[k++] = *jp++;
		tok[k] = '\0';
		if (strcmp(tok, "true") && strcmp(tok, "false") && strcmp(tok, "null")) {
			(void)strtod(tok, &end);
			if (k == 0 || *end)
				fail_msg("not a JSON value at %s: '%s'", path, tok);
		}
		add_kv(path, tok, false);
	}
}

static void parse_json(const char *text)
{
	nkv = 0;
	jp = text;
	jvalue("");
	ws_skip();
	assert_int_equal(*jp, '\0');
}

static struct kv *key(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct kv *key(const char *fmt, ...)
{
	char path[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	for (int i = 0; i < nkv; i++) {
		if (!strcmp(kvs[i].path, path)) {
			assert_false(kvs[i].seen);
			kvs[i].seen = true;
			return &kvs[i];
		}
	}
	fail_msg("JSON has no key %s", path);
	return NULL;
}

static void num_eq(struct kv *k, uint64_t want)
{
	if (k->str || strtoull(k->val, NULL, 10) != want || strchr(k->val, '.'))
		fail_msg("%s is %s, the API says %llu", k->path, k->val, (unsigned long long)want);
}

static void bool_eq(struct kv *k, bool want)
{
	assert_false(k->str);
	assert_string_equal(k->val, want ? "true" : "false");
}

static void hist_eq(const char *path, const struct moirai_hist *h)
{
	static const char *const qn[] = { "p50", "p90", "p99", "p999" };
	static const double qs[] = { 50, 90, 99, 99.9 };
	struct kv *m;

	num_eq(key("%s.count", path), moirai_hist_count(h));
	num_eq(key("%s.min", path), moirai_hist_min(h));
	num_eq(key("%s.max", path), moirai_hist_max(h));
	for (int q = 0; q < 4; q++)
		num_eq(key("%s.%s", path, qn[q]), moirai_hist_percentile(h, qs[q]));
	m = key("%s.mean", path);
	assert_true(fabs(strtod(m->val, NULL) - moirai_hist_mean(h)) <= 0.051);
}

/* Every key of the JSON equals the API's value, and none is left over. */
static void test_json(void **state)
{
	struct moirai_timer timer;
	struct moirai_rt *rt = deterministic_run(&timer);
	struct moirai_rt_stats s;
	char *text = print_stats(rt, true);
	int seen = 0;

	(void)state;
	parse_json(text);
	assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
	num_eq(key("workers_count"), (uint64_t)s.workers);
	bool_eq(key("virtual_placement"), s.virtual_placement);
	bool_eq(key("stopping"), s.stopping);
	num_eq(key("spawned"), s.spawned);
	num_eq(key("refused"), s.refused);
	num_eq(key("overflow_spills"), s.overflow_spills);
	num_eq(key("deferred_pending"), s.deferred_pending);
	num_eq(key("deferred_freed"), s.deferred_freed);
	num_eq(key("tasks_in_use"), s.tasks_in_use);
	assert_true(s.tasks_in_use >= 10); /* the run left tasks queued */
	for (int i = 0; i < s.workers; i++) {
		struct moirai_rt_worker_stats w;
		struct moirai_rt_worker_info wi;
		const char *p;

		assert_int_equal(moirai_rt_worker_stats_get(rt, i, &w), 0);
		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		num_eq(key("workers[%d].worker", i), (uint64_t)i);
		num_eq(key("workers[%d].pu", i), (uint64_t)wi.pu);
		num_eq(key("workers[%d].node", i), (uint64_t)wi.node);
		for (int l = 0; l < RT_LEVELS; l++) {
			p = level_name[l];
			num_eq(key("workers[%d].tasks_run.%s", i, p), w.tasks_run[l]);
			num_eq(key("workers[%d].continuations.%s", i, p), w.continuations[l]);
			num_eq(key("workers[%d].aged_dispatches.%s", i, p), w.aged_dispatches[l]);
			num_eq(key("workers[%d].queue_depth.%s", i, p), w.queue_depth[l]);
		}
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++)
			num_eq(key("workers[%d].steals.%s", i, class_name[c]), w.steals[c]);
		num_eq(key("workers[%d].steal_attempts", i), w.steal_attempts);
		num_eq(key("workers[%d].stolen_from", i), w.stolen_from);
		num_eq(key("workers[%d].mailbox_full", i), w.mailbox_full);
		num_eq(key("workers[%d].parks", i), w.parks);
		num_eq(key("workers[%d].wakeups", i), w.wakeups);
		num_eq(key("workers[%d].polls_busy", i), w.polls_busy);
		num_eq(key("workers[%d].polls_idle", i), w.polls_idle);
		num_eq(key("workers[%d].poll_busy_ns", i), w.poll_busy_ns);
		num_eq(key("workers[%d].poll_idle_ns", i), w.poll_idle_ns);
		num_eq(key("workers[%d].timers_fired", i), w.timers_fired);
		num_eq(key("workers[%d].busy_ns", i), w.busy_ns);
		num_eq(key("workers[%d].stuck_reports", i), w.stuck_reports);
		num_eq(key("workers[%d].stuck_run_ns", i), w.stuck_run_ns);
		{
			struct kv *k = key("workers[%d].stuck_task", i);

			assert_true(k->str);
			assert_string_equal(k->val, w.stuck_task);
		}
		num_eq(key("workers[%d].cancelled", i), w.cancelled);
	}
	for (int l = 0; l < RT_LEVELS; l++) {
		for (int k = 0; k < 2; k++) {
			struct moirai_hist h;
			char path[64];

			memset(&h, 0, sizeof(h));
			assert_int_equal(moirai_rt_latency_get(
						 rt, -1, prios[l],
						 k ? MOIRAI_RT_LAT_RUN : MOIRAI_RT_LAT_WAIT, &h),
					 0);
			snprintf(path, sizeof(path), "latency_ns.%s.%s", level_name[l],
				 k ? "run" : "wait");
			hist_eq(path, &h);
		}
	}
	for (int i = 0; i < nkv; i++)
		seen += kvs[i].seen;
	for (int i = 0; i < nkv; i++)
		if (!kvs[i].seen)
			fail_msg("JSON key %s is not checked against the API", kvs[i].path);
	assert_int_equal(seen, nkv);
	free(text);
	finish(rt);
}

/* ---- text --------------------------------------------------------------- */

#define COL_MAX 128

struct col {
	char name[32];
	char val[8][32]; /* per worker (the run has 2) */
	bool seen;
};

static struct col cols[COL_MAX];
static int ncols;

/* Every table: a header line starting with "worker", then one line per
 * worker starting with its index. */
static void parse_tables(char *text, int nworkers)
{
	char *save = NULL, *line;
	int hdr = -1, hn = 0;
	int idx[COL_MAX];

	ncols = 0;
	assert_true(nworkers <= 8);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tsave = NULL, *tok = strtok_r(line, " ", &tsave);

		if (tok && !strcmp(tok, "worker")) {
			hdr = 0;
			hn = 0;
			while ((tok = strtok_r(NULL, " ", &tsave))) {
				for (int c = 0; c < ncols; c++)
					if (!strcmp(cols[c].name, tok))
						fail_msg("column %s in two tables", tok);
				assert_true(ncols < COL_MAX);
				snprintf(cols[ncols].name, sizeof(cols[ncols].name), "%s", tok);
				idx[hn++] = ncols++;
			}
			continue;
		}
		if (hdr < 0 || !tok || tok[0] < '0' || tok[0] > '9') {
			hdr = -1;
			continue;
		}
		int w = atoi(tok), k = 0;

		assert_true(w >= 0 && w < nworkers);
		while ((tok = strtok_r(NULL, " ", &tsave))) {
			assert_true(k < hn);
			snprintf(cols[idx[k]].val[w], sizeof(cols[0].val[0]), "%s", tok);
			k++;
		}
		assert_int_equal(k, hn);
	}
}

static void col_eq(const char *name, int w, uint64_t want)
{
	for (int c = 0; c < ncols; c++) {
		if (strcmp(cols[c].name, name))
			continue;
		cols[c].seen = true;
		if (strtoull(cols[c].val[w], NULL, 10) != want || !cols[c].val[w][0])
			fail_msg("text column %s of worker %d is '%s', the API says %llu", name, w,
				 cols[c].val[w], (unsigned long long)want);
		return;
	}
	fail_msg("text has no column %s", name);
}

static void test_text(void **state)
{
	struct moirai_timer timer;
	struct moirai_rt *rt = deterministic_run(&timer);
	struct moirai_rt_stats s;
	char *text = print_stats(rt, false), *copy = strdup(text), want[512], h[256];

	(void)state;
	if (getenv("SHOW"))
		printf("%s", text);
	assert_int_equal(moirai_rt_stats_get(rt, &s), 0);
	snprintf(want, sizeof(want),
		 "runtime: %d workers (virtual placement), %llu tasks spawned, %llu refused, "
		 "%llu spilled, %llu in use, %llu deferred frees pending, %llu done\n",
		 s.workers, (unsigned long long)s.spawned, (unsigned long long)s.refused,
		 (unsigned long long)s.overflow_spills, (unsigned long long)s.tasks_in_use,
		 (unsigned long long)s.deferred_pending, (unsigned long long)s.deferred_freed);
	if (strncmp(text, want, strlen(want)))
		fail_msg("first line differs:\n%s\nwant\n%s", text, want);
	parse_tables(copy, s.workers);
	for (int i = 0; i < s.workers; i++) {
		struct moirai_rt_worker_stats w;
		struct moirai_rt_worker_info wi;
		char name[48];

		assert_int_equal(moirai_rt_worker_stats_get(rt, i, &w), 0);
		assert_int_equal(moirai_rt_worker_info(rt, i, &wi), 0);
		col_eq("pu", i, (uint64_t)wi.pu);
		col_eq("node", i, (uint64_t)wi.node);
		for (int l = 0; l < RT_LEVELS; l++) {
			col_eq(level_name[l], i, w.tasks_run[l]);
			snprintf(name, sizeof(name), "queued:%s", level_name[l]);
			col_eq(name, i, w.queue_depth[l]);
			snprintf(name, sizeof(name), "cont:%s", level_name[l]);
			col_eq(name, i, w.continuations[l]);
			snprintf(name, sizeof(name), "aged:%s", level_name[l]);
			col_eq(name, i, w.aged_dispatches[l]);
		}
		for (int c = 0; c < MOIRAI_RT_STEAL_CLASSES; c++) {
			snprintf(name, sizeof(name), "steal:%s", class_name[c]);
			col_eq(name, i, w.steals[c]);
		}
		col_eq("attempts", i, w.steal_attempts);
		col_eq("stolen", i, w.stolen_from);
		col_eq("mbox_full", i, w.mailbox_full);
		col_eq("parks", i, w.parks);
		col_eq("wakeups", i, w.wakeups);
		col_eq("polls_busy", i, w.polls_busy);
		col_eq("polls_idle", i, w.polls_idle);
		col_eq("poll_busy_ns", i, w.poll_busy_ns);
		col_eq("poll_idle_ns", i, w.poll_idle_ns);
		col_eq("timers", i, w.timers_fired);
		col_eq("busy_ns", i, w.busy_ns);
		col_eq("cancelled", i, w.cancelled);
		col_eq("stuck", i, w.stuck_reports);
		if (w.stuck_reports) {
			snprintf(want, sizeof(want),
				 "\nstuck worker %d (moirai-w%d): task '%s' had run %llu ns when "
				 "last reported\n",
				 i, i, w.stuck_task, (unsigned long long)w.stuck_run_ns);
			if (!strstr(text, want))
				fail_msg("no line\n%s\nin\n%s", want, text);
		}
	}
	for (int c = 0; c < ncols; c++)
		if (!cols[c].seen)
			fail_msg("text column %s is not checked against the API", cols[c].name);
	/* One line per level and kind that has records. */
	for (int l = 0; l < RT_LEVELS; l++) {
		for (int k = 0; k < 2; k++) {
			struct moirai_hist hist;

			memset(&hist, 0, sizeof(hist));
			assert_int_equal(moirai_rt_latency_get(
						 rt, -1, prios[l],
						 k ? MOIRAI_RT_LAT_RUN : MOIRAI_RT_LAT_WAIT, &hist),
					 0);
			assert_int_equal(moirai_hist_format(&hist, h, sizeof(h)), 0);
			snprintf(want, sizeof(want), "\n%-4s %-10s %s\n", k ? "run" : "wait",
				 level_name[l], h);
			if (moirai_hist_count(&hist) ? !strstr(text, want) : !!strstr(text, want))
				fail_msg("latency line '%s' %s", want,
					 moirai_hist_count(&hist) ? "missing"
								  : "printed while empty");
		}
	}
	free(copy);
	free(text);
	finish(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_text),
	};

	test_filter_from_env();
	return cmocka_run_group_tests_name("rt_stats", tests, NULL, NULL);
}
