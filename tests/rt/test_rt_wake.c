/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Wake fds of pollers (moirai_poller_set_wake): a worker whose poller has
 * a wake fd arms it before parking and wakes when the fd turns readable,
 * with no timer and no submission to wake it; an arm callback that reports
 * work keeps the worker up; submissions still wake a worker that sleeps
 * in ppoll; the argument checks.  Every wait is bounded (10 s) and the
 * assertions are on counts, not on timing.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "moirai.h"
#include "testutil.h"

#define WAIT_NS (10ll * 1000 * 1000 * 1000)

struct src {
	int fd;
	struct moirai_poller *p;
	_Atomic uint64_t seen;	/* events the poller consumed */
	_Atomic uint64_t arms;	/* arm calls */
	_Atomic int busy_arms;	/* arm calls left that report work */
	_Atomic int set_rc;	/* moirai_poller_set_wake() on the worker */
	_Atomic int foreign_rc; /* the same from the test thread */
	_Atomic int flag;	/* set by a plain task */
};

static int src_poll(void *arg)
{
	struct src *s = arg;
	uint64_t v;

	if (read(s->fd, &v, sizeof(v)) == sizeof(v)) {
		atomic_fetch_add(&s->seen, v);
		return MOIRAI_POLL_BUSY;
	}
	return MOIRAI_POLL_IDLE;
}

static int src_arm(void *arg)
{
	struct src *s = arg;

	atomic_fetch_add(&s->arms, 1);
	if (atomic_load(&s->busy_arms) > 0) {
		atomic_fetch_sub(&s->busy_arms, 1);
		return 1;
	}
	return 0;
}

static int set_wake_task(void *arg)
{
	struct src *s = arg;

	atomic_store(&s->set_rc, moirai_poller_set_wake(s->p, s->fd, src_arm, s));
	return 0;
}

static int flag_task(void *arg)
{
	atomic_store(&((struct src *)arg)->flag, 1);
	return 0;
}

static uint64_t parks(struct moirai_rt *rt)
{
	struct moirai_rt_worker_stats ws;

	assert_int_equal(moirai_rt_worker_stats_get(rt, 0, &ws), 0);
	return ws.parks;
}

static void sleep_us(long us)
{
	struct timespec ts = { 0, us * 1000 };

	nanosleep(&ts, NULL);
}

/* Wait (bounded) until @v reaches @want; false at the deadline. */
static bool wait_u64(_Atomic uint64_t *v, uint64_t want)
{
	uint64_t end = moirai_now_ns() + WAIT_NS;

	while (atomic_load(v) < want)
		if (moirai_now_ns() > end)
			return false;
		else
			sleep_us(100);
	return true;
}

/* Wait until the worker parked more than @before times. */
static bool wait_parked(struct moirai_rt *rt, uint64_t before)
{
	uint64_t end = moirai_now_ns() + WAIT_NS;

	while (parks(rt) <= before)
		if (moirai_now_ns() > end)
			return false;
		else
			sleep_us(100);
	/* Counted just before the sleep: give it time to be in ppoll (a
	 * wake-up that comes earlier is simply not missed either). */
	sleep_us(2000);
	return true;
}

static struct moirai_rt *one_worker_rt(void)
{
	struct moirai_plan_opts po = { .workers = 1 };
	struct moirai_rt_config cfg = { .plan = &po, .spin_ns = 20000 };
	struct moirai_rt *rt = NULL;
	int rc = moirai_rt_create(&cfg, &rt);

	if (rc)
		fail_msg("moirai_rt_create: %d (%s)", rc, moirai_last_error());
	return rt;
}

static void register_src(struct moirai_rt *rt, struct src *s, int busy_arms)
{
	memset(s, 0, sizeof(*s));
	s->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(s->fd >= 0);
	atomic_store(&s->busy_arms, busy_arms);
	atomic_store(&s->set_rc, 1);
	assert_int_equal(moirai_poller_register(rt, 0, "wake-src", src_poll, s, 0, 0, &s->p), 0);
	atomic_store(&s->foreign_rc, moirai_poller_set_wake(s->p, s->fd, src_arm, s));
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, set_wake_task, s), 0);
	while (atomic_load(&s->set_rc) == 1)
		sleep_us(100);
	assert_int_equal(atomic_load(&s->set_rc), 0);
}

static void test_fd_wakes_parked_worker(void **state)
{
	struct moirai_rt *rt = one_worker_rt();
	struct src s;
	uint64_t one = 1, p0;

	register_src(rt, &s, 0);
	assert_int_equal(atomic_load(&s.foreign_rc), -EINVAL); /* not from its worker */
	/* Parks are counted before the sleep: each round reads the count
	 * while the worker sleeps, wakes it, and waits for the next park. */
	assert_true(wait_parked(rt, 0));
	for (int round = 1; round <= 5; round++) {
		p0 = parks(rt);
		/* No timer, no task: only the fd can wake it now. */
		assert_int_equal(write(s.fd, &one, sizeof(one)), sizeof(one));
		assert_true(wait_u64(&s.seen, (uint64_t)round));
		assert_true(wait_parked(rt, p0));
	}
	assert_true(atomic_load(&s.arms) >= 5);

	/* A submission still wakes a worker asleep in ppoll. */
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, flag_task, &s), 0);
	for (uint64_t end = moirai_now_ns() + WAIT_NS; !atomic_load(&s.flag);)
		assert_true(moirai_now_ns() < end);

	assert_int_equal(moirai_poller_unregister(s.p), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	close(s.fd);
}

static void test_arm_busy_keeps_worker_up(void **state)
{
	struct moirai_rt *rt = one_worker_rt();
	struct src s;
	uint64_t p0 = parks(rt);

	register_src(rt, &s, 3);
	/* Three arm calls said "work pending": the worker looked again each
	 * time and parked only after the fourth armed it. */
	assert_true(wait_parked(rt, p0));
	assert_true(atomic_load(&s.arms) >= 4);
	assert_int_equal(atomic_load(&s.busy_arms), 0);
	assert_int_equal(moirai_poller_unregister(s.p), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	close(s.fd);
}

struct many {
	struct moirai_poller *p[MOIRAI_POLLER_WAKE_MAX + 1];
	int rc[MOIRAI_POLLER_WAKE_MAX + 1];
	int fd;
	int null_arm_rc, null_rc, unset_rc;
	_Atomic int done;
};

static int idle_poll(void *arg)
{
	return MOIRAI_POLL_IDLE;
}

static int arm_ok(void *arg)
{
	return 0;
}

static int many_task(void *arg)
{
	struct many *m = arg;

	m->null_rc = moirai_poller_set_wake(NULL, m->fd, arm_ok, NULL);
	m->null_arm_rc = moirai_poller_set_wake(m->p[0], m->fd, NULL, NULL);
	for (int i = 0; i <= MOIRAI_POLLER_WAKE_MAX; i++)
		m->rc[i] = moirai_poller_set_wake(m->p[i], m->fd, arm_ok, NULL);
	/* Setting one again replaces it; removing one frees a place. */
	m->unset_rc = moirai_poller_set_wake(m->p[0], -1, NULL, NULL);
	m->rc[MOIRAI_POLLER_WAKE_MAX] =
		moirai_poller_set_wake(m->p[MOIRAI_POLLER_WAKE_MAX], m->fd, arm_ok, NULL);
	atomic_store(&m->done, 1);
	return 0;
}

static void test_limits(void **state)
{
	struct moirai_rt *rt = one_worker_rt();
	struct many m;

	memset(&m, 0, sizeof(m));
	m.fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	assert_true(m.fd >= 0);
	for (int i = 0; i <= MOIRAI_POLLER_WAKE_MAX; i++)
		assert_int_equal(
			moirai_poller_register(rt, 0, "idle", idle_poll, NULL, 0, 0, &m.p[i]), 0);
	assert_int_equal(moirai_rt_send(rt, 0, MOIRAI_PRIO_NORMAL, many_task, &m), 0);
	while (!atomic_load(&m.done))
		sleep_us(100);
	assert_int_equal(m.null_rc, -EINVAL);
	assert_int_equal(m.null_arm_rc, -EINVAL);
	for (int i = 0; i < MOIRAI_POLLER_WAKE_MAX; i++)
		assert_int_equal(m.rc[i], 0);
	assert_int_equal(m.unset_rc, 0);
	assert_int_equal(m.rc[MOIRAI_POLLER_WAKE_MAX], 0); /* after the unset */
	/* Unregistering pollers that have wake fds keeps the count right. */
	for (int i = 0; i <= MOIRAI_POLLER_WAKE_MAX; i++)
		assert_int_equal(moirai_poller_unregister(m.p[i]), 0);
	assert_int_equal(moirai_rt_destroy(rt), 0);
	close(m.fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fd_wakes_parked_worker),
		cmocka_unit_test(test_arm_busy_keeps_worker_up),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
