/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Suite "sched", peer "openmp": OpenMP tasks (gcc's libgomp, or LLVM's
 * libomp under clang), the only file built with -fopenmp.  One team of
 * one thread per usable CPU; OpenMP's threads are not pinned (the
 * runtime's defaults, OMP_PROC_BIND unset), and OpenMP has no way for a
 * thread outside the team to submit a task, so spawn_inject and the wake
 * cases are not run.
 */
#include <errno.h>
#include <stdio.h>
#include <time.h>

#include <moirai.h>

#include "bench_sched.h"

static int omp_spawn_local(struct sched_run *run)
{
	long tasks = sched_spawn_tasks(run->ctx), marked = 0;
	unsigned char flags[SPAWN_BATCH] = { 0 };
	uint64_t ns = 0;

#pragma omp parallel num_threads(run->workers)
#pragma omp single
	{
		uint64_t t0 = moirai_now_ns();

		for (long done = 0; done < tasks; done += SPAWN_BATCH) {
			for (int i = 0; i < SPAWN_BATCH; i++) {
#pragma omp task firstprivate(i) shared(flags)
				sched_mark(&flags[i]);
			}
#pragma omp taskwait
			marked += sched_count_marks(flags, SPAWN_BATCH);
		}
		ns = moirai_now_ns() - t0;
	}
	if (marked != tasks) {
		snprintf(run->out->note, sizeof(run->out->note), "%ld of %ld tasks ran", marked,
			 tasks);
		return -EIO;
	}
	run->out->ns_per_op = (double)ns / (double)tasks;
	run->out->ops = tasks;
	return 0;
}

static int omp_spawn_inject(struct sched_run *run)
{
	snprintf(run->out->note, sizeof(run->out->note),
		 "OpenMP has no submission from a thread outside the team");
	return -ENOTSUP;
}

static long omp_fib(int n)
{
	long x, y;

	if (n <= SCHED_FIB_CUTOFF)
		return sched_fib_serial(n);
#pragma omp task shared(x)
	x = omp_fib(n - 1);
	y = omp_fib(n - 2);
#pragma omp taskwait
	return x + y;
}

static int omp_fib_run(struct sched_run *run)
{
	int reps = sched_fib_reps(run->ctx);
	uint64_t ns = 0;
	long bad = 0;

#pragma omp parallel num_threads(run->workers)
#pragma omp single
	{
		uint64_t t0 = moirai_now_ns();

		for (int i = 0; i < reps; i++)
			bad += omp_fib(SCHED_FIB_N) != SCHED_FIB_VALUE;
		ns = moirai_now_ns() - t0;
	}
	if (bad) {
		snprintf(run->out->note, sizeof(run->out->note), "fib(%d) wrong in %ld of %d runs",
			 SCHED_FIB_N, bad, reps);
		return -EIO;
	}
	snprintf(run->out->note, sizeof(run->out->note), "fib(%d) = %ld, cutoff %d", SCHED_FIB_N,
		 SCHED_FIB_VALUE, SCHED_FIB_CUTOFF);
	run->out->ns_per_op = (double)ns / reps;
	run->out->ops = reps;
	return 0;
}

static int omp_pfor(struct sched_run *run)
{
	uint64_t expect, t0, ns;
	const uint32_t *a = sched_pfor_array(&expect);
	int passes = sched_pfor_passes(run->ctx);
	long bad = 0;

	if (!a)
		return -ENOMEM;
	t0 = moirai_now_ns();
	for (int k = 0; k < passes; k++) {
		uint64_t sum = 0;

#pragma omp parallel for num_threads(run->workers) reduction(+ : sum) schedule(static)
		for (size_t i = 0; i < SCHED_PFOR_N; i++)
			sum += a[i];
		bad += sum != expect;
	}
	ns = moirai_now_ns() - t0;
	return sched_pfor_result(run, passes, bad, ns);
}

static int omp_idle(struct sched_run *run)
{
	uint64_t w = sched_idle_window_ns(run->ctx), c0, c1;
	unsigned char flags[SPAWN_BATCH] = { 0 };
	struct timespec ts = { .tv_sec = (time_t)(w / 1000000000ULL),
			       .tv_nsec = (long)(w % 1000000000ULL) };

#pragma omp parallel num_threads(run->workers)
#pragma omp single
	for (int i = 0; i < SPAWN_BATCH; i++) {
#pragma omp task firstprivate(i) shared(flags)
		sched_mark(&flags[i]);
	}
	if (sched_count_marks(flags, SPAWN_BATCH) != SPAWN_BATCH)
		return -EIO;
	c0 = sched_process_cpu_ns();
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
	c1 = sched_process_cpu_ns();
	run->out->ns_per_op = (double)(c1 - c0) / run->workers * 1e9 / (double)w;
	run->out->ops = run->workers;
	return 0;
}

const struct sched_peer sched_omp = {
	.name = "openmp",
	.spawn_local = omp_spawn_local,
	.spawn_inject = omp_spawn_inject,
	.fib = omp_fib_run,
	.pfor = omp_pfor,
	.idle_cpu = omp_idle,
	.wake = NULL,
};
