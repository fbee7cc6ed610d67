/*
 * Clocks.  CLOCK_MONOTONIC goes through the vDSO (no system call), so an
 * out-of-line wrapper costs a call, not a kernel entry.
 */
#include <time.h>

#include "internal.h"

uint64_t moirai_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
