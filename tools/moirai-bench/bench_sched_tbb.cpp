/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "sched", peer "tbb": oneTBB (libtbb-dev), the only C++ of
 * moirai-bench, behind the C table sched_tbb (bench_sched.h).
 *
 *   spawn_local   tbb::task_group::run + wait inside a task_arena of one
 *                 slot per usable CPU (the caller is in the arena)
 *   spawn_inject  task_arena::enqueue from a thread outside the arena (no
 *                 slot kept for it), completion counted in an atomic that
 *                 the submitter polls, yielding (oneTBB has no join of an
 *                 enqueued task)
 *   fib30         task_group fork-join; pfor_sum tbb::parallel_reduce
 *   wake cases    an arena of one worker, pinned to the second CPU by a
 *                 task_scheduler_observer, fed by task_arena::enqueue
 *
 * oneTBB's worker threads are not pinned otherwise (its defaults).  Every
 * entry catches every exception: C callers see -EIO.
 */
#include <cerrno>
#include <cstdio>
#include <ctime>

#include <atomic>
#include <functional>
#include <memory>

#include <oneapi/tbb/blocked_range.h>
#include <oneapi/tbb/global_control.h>
#include <oneapi/tbb/parallel_reduce.h>
#include <oneapi/tbb/task_arena.h>
#include <oneapi/tbb/task_group.h>
#include <oneapi/tbb/task_scheduler_observer.h>

#include <pthread.h>
#include <sched.h>

#include <moirai/base.h>

#include "bench_sched.h"

namespace
{

/* Room for one worker per slot of an arena no external thread joins. */
void allow_workers(int workers)
{
	static std::unique_ptr<tbb::global_control> gc;

	if (!gc)
		gc = std::make_unique<tbb::global_control>(
			tbb::global_control::max_allowed_parallelism, (size_t)workers + 1);
}

int fail_note(struct sched_run *run, const char *what)
{
	snprintf(run->out->note, sizeof(run->out->note), "oneTBB: %s", what);
	return -EIO;
}

int spawn_done(struct sched_run *run, long tasks, long marked, uint64_t ns)
{
	if (marked != tasks) {
		snprintf(run->out->note, sizeof(run->out->note), "%ld of %ld tasks ran", marked,
			 tasks);
		return -EIO;
	}
	run->out->ns_per_op = (double)ns / (double)tasks;
	run->out->ops = tasks;
	return 0;
}

int tbb_spawn_local(struct sched_run *run)
{
	try {
		long tasks = sched_spawn_tasks(run->ctx), marked = 0;
		unsigned char flags[SPAWN_BATCH] = {};
		uint64_t ns = 0;
		tbb::task_arena arena(run->workers);

		arena.execute([&] {
			tbb::task_group tg;
			uint64_t t0 = moirai_now_ns();

			for (long done = 0; done < tasks; done += SPAWN_BATCH) {
				for (int i = 0; i < SPAWN_BATCH; i++) {
					unsigned char *p = &flags[i];

					tg.run([p] { sched_mark(p); });
				}
				tg.wait();
				marked += sched_count_marks(flags, SPAWN_BATCH);
			}
			ns = moirai_now_ns() - t0;
		});
		return spawn_done(run, tasks, marked, ns);
	} catch (...) {
		return fail_note(run, "exception");
	}
}

/* Wait until @pending is 0: spin 20 us, then yield; bounded. */
int wait_zero(std::atomic<long> &pending)
{
	uint64_t t0 = moirai_now_ns();

	while (pending.load(std::memory_order_acquire) > 0) {
		uint64_t now = moirai_now_ns();

		if (now - t0 > SCHED_WAIT_NS)
			return -ETIMEDOUT;
		if (now - t0 > 20000)
			sched_yield();
	}
	return 0;
}

int tbb_spawn_inject(struct sched_run *run)
{
	try {
		long tasks = sched_spawn_tasks(run->ctx), marked = 0;
		unsigned char flags[SPAWN_BATCH] = {};
		std::atomic<long> pending{ 0 };
		int rc = 0;

		allow_workers(run->workers);
		tbb::task_arena arena(run->workers, 0);
		uint64_t t0 = moirai_now_ns();

		for (long done = 0; done < tasks && !rc; done += SPAWN_BATCH) {
			pending.store(SPAWN_BATCH, std::memory_order_relaxed);
			for (int i = 0; i < SPAWN_BATCH; i++) {
				unsigned char *p = &flags[i];

				arena.enqueue([p, &pending] {
					sched_mark(p);
					pending.fetch_sub(1, std::memory_order_release);
				});
			}
			rc = wait_zero(pending);
			marked += sched_count_marks(flags, SPAWN_BATCH);
		}
		uint64_t ns = moirai_now_ns() - t0;

		return rc ? rc : spawn_done(run, tasks, marked, ns);
	} catch (...) {
		return fail_note(run, "exception");
	}
}

long tbb_fib(int n)
{
	if (n <= SCHED_FIB_CUTOFF)
		return sched_fib_serial(n);
	long x = 0, y;
	tbb::task_group tg;

	tg.run([&x, n] { x = tbb_fib(n - 1); });
	y = tbb_fib(n - 2);
	tg.wait();
	return x + y;
}

int tbb_fib_run(struct sched_run *run)
{
	try {
		int reps = sched_fib_reps(run->ctx);
		long bad = 0;
		uint64_t ns = 0;
		tbb::task_arena arena(run->workers);

		arena.execute([&] {
			uint64_t t0 = moirai_now_ns();

			for (int i = 0; i < reps; i++)
				bad += tbb_fib(SCHED_FIB_N) != SCHED_FIB_VALUE;
			ns = moirai_now_ns() - t0;
		});
		if (bad) {
			snprintf(run->out->note, sizeof(run->out->note),
				 "fib(%d) wrong in %ld of %d runs", SCHED_FIB_N, bad, reps);
			return -EIO;
		}
		snprintf(run->out->note, sizeof(run->out->note), "fib(%d) = %ld, cutoff %d",
			 SCHED_FIB_N, SCHED_FIB_VALUE, SCHED_FIB_CUTOFF);
		run->out->ns_per_op = (double)ns / reps;
		run->out->ops = reps;
		return 0;
	} catch (...) {
		return fail_note(run, "exception");
	}
}

int tbb_pfor(struct sched_run *run)
{
	try {
		uint64_t expect;
		const uint32_t *a = sched_pfor_array(&expect);
		int passes = sched_pfor_passes(run->ctx);
		long bad = 0;
		uint64_t ns = 0;

		if (!a)
			return -ENOMEM;
		tbb::task_arena arena(run->workers);
		arena.execute([&] {
			uint64_t t0 = moirai_now_ns();

			for (int k = 0; k < passes; k++) {
				uint64_t sum = tbb::parallel_reduce(
					tbb::blocked_range<size_t>(0, SCHED_PFOR_N), (uint64_t)0,
					[a](const tbb::blocked_range<size_t> &r, uint64_t s) {
						for (size_t i = r.begin(); i != r.end(); i++)
							s += a[i];
						return s;
					},
					std::plus<uint64_t>());
				bad += sum != expect;
			}
			ns = moirai_now_ns() - t0;
		});
		return sched_pfor_result(run, passes, bad, ns);
	} catch (...) {
		return fail_note(run, "exception");
	}
}

int tbb_idle(struct sched_run *run)
{
	try {
		uint64_t w = sched_idle_window_ns(run->ctx);
		unsigned char flags[SPAWN_BATCH] = {};
		tbb::task_arena arena(run->workers);

		arena.execute([&] {
			tbb::task_group tg;

			for (int i = 0; i < SPAWN_BATCH; i++) {
				unsigned char *p = &flags[i];

				tg.run([p] { sched_mark(p); });
			}
			tg.wait();
		});
		if (sched_count_marks(flags, SPAWN_BATCH) != SPAWN_BATCH)
			return -EIO;
		uint64_t c0 = sched_process_cpu_ns();
		struct timespec ts = { (time_t)(w / 1000000000ULL), (long)(w % 1000000000ULL) };

		while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
			;
		uint64_t c1 = sched_process_cpu_ns();

		run->out->ns_per_op = (double)(c1 - c0) / run->workers * 1e9 / (double)w;
		run->out->ops = run->workers;
		return 0;
	} catch (...) {
		return fail_note(run, "exception");
	}
}

/* Pins the arena's workers to one CPU while they are in it. */
class pin_observer : public tbb::task_scheduler_observer
{
	int cpu_;
	cpu_set_t all_;

      public:
	pin_observer(tbb::task_arena &a, int cpu) : tbb::task_scheduler_observer(a), cpu_(cpu)
	{
		CPU_ZERO(&all_);
		sched_getaffinity(0, sizeof(all_), &all_);
		observe(true);
	}
	~pin_observer() override
	{
		observe(false);
	}
	void on_scheduler_entry(bool worker) override
	{
		if (worker)
			bench_pin(cpu_);
	}
	void on_scheduler_exit(bool worker) override
	{
		if (worker)
			sched_setaffinity(0, sizeof(all_), &all_);
	}
};

struct wake_impl {
	tbb::task_arena *arena;
};

int tbb_wake_submit(void *impl, struct sched_wake_slot *s)
{
	try {
		static_cast<wake_impl *>(impl)->arena->enqueue(
			[s] { sched_wake_body(s, moirai_now_ns()); });
		return 0;
	} catch (...) {
		return -EIO;
	}
}

int tbb_wake(struct sched_run *run, bool parked)
{
	try {
		allow_workers(run->workers);
		tbb::task_arena arena(1, 0);

		arena.initialize();
		pin_observer pin(arena, run->cpu_b);
		wake_impl impl{ &arena };

		return sched_wake_drive(run, parked, run->cpu_a, tbb_wake_submit, &impl);
	} catch (...) {
		return fail_note(run, "exception");
	}
}

} // namespace

extern "C" const struct sched_peer sched_tbb = {
	"tbb", tbb_spawn_local, tbb_spawn_inject, tbb_fib_run, tbb_pfor, tbb_idle, tbb_wake,
};
