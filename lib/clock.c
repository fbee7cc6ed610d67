/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Clocks.  CLOCK_MONOTONIC goes through the vDSO (no system call), so an
 * out-of-line wrapper costs a call, not a kernel entry: ~25 ns on the
 * project's VMs.  Per-task timestamps of the runtime (three per task) use
 * ticks instead: the invariant TSC where the CPU has one (~7-12 ns),
 * scaled to nanoseconds by a factor calibrated once against
 * CLOCK_MONOTONIC.  Ticks are for durations only (latencies, run times,
 * budgets); deadlines handed to the kernel stay on CLOCK_MONOTONIC, since
 * the two drift apart by the calibration error (a few ppm).
 */
#include <cpuid.h>
#include <pthread.h>
#include <time.h>

#include "internal.h"

uint64_t moirai_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct moirai__tick_scale moirai__ticks_scale = { .tsc = false, .mult = 1, .shift = 0 };
static pthread_once_t ticks_once = PTHREAD_ONCE_INIT;

static bool invariant_tsc(void)
{
	unsigned a, b, c, d;

	/* CPUID 0x80000007, EDX bit 8: the TSC runs at a constant rate in
	 * every P-, C- and T-state, and so measures time. */
	return __get_cpuid(0x80000007u, &a, &b, &c, &d) && (d & (1u << 8));
}

static void ticks_init(void)
{
	uint64_t t0, c0, t1, c1, ns, ticks;

	if (!invariant_tsc())
		return;
	t0 = moirai_now_ns();
	c0 = __builtin_ia32_rdtsc();
	/* 2 ms: against a clock read of ~25 ns this pins the rate to about
	 * 1e-5, far below the histograms' 1/64 resolution. */
	do
		t1 = moirai_now_ns();
	while (t1 - t0 < 2000000u);
	c1 = __builtin_ia32_rdtsc();
	ns = t1 - t0;
	ticks = c1 - c0;
	if (ticks == 0 || ticks < ns / 16)
		return; /* a TSC slower than 16 MHz: not worth trusting */
	/* ns = ticks * mult >> 32 */
	moirai__ticks_scale.mult = (uint64_t)(((moirai__u128)ns << 32) / ticks);
	moirai__ticks_scale.shift = 32;
	moirai__ticks_scale.tsc = true;
}

void moirai__ticks_init(void)
{
	pthread_once(&ticks_once, ticks_init);
}
