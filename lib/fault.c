/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection: the sites' call counters, the count of faults each site
 * injected, and the parser of the MOIRAI_FAULT option (lib/fault.h says
 * what the hot-path check costs).  A site armed with period N fails calls
 * N, 2N, 3N, ... counted over all threads since it was armed: exactly
 * every Nth call, whichever thread makes it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"

unsigned moirai__fault_mask;

static const char *const site_names[MOIRAI_FAULT__COUNT] = {
	[MOIRAI_FAULT_ARENA_COMMIT] = "arena_commit",
	[MOIRAI_FAULT_POOL_GET] = "pool_get",
	[MOIRAI_FAULT_RING_ENQUEUE] = "ring_enqueue",
};

#define PERIOD_MAX 1000000000ull

static uint64_t periods[MOIRAI_FAULT__COUNT];
/* Relaxed counters: the count is the contract, not any ordering. */
static uint64_t calls[MOIRAI_FAULT__COUNT];
static uint64_t injected[MOIRAI_FAULT__COUNT];

bool moirai__fault_hit_slow(enum moirai_fault_site site)
{
	uint64_t period = __atomic_load_n(&periods[site], __ATOMIC_RELAXED);
	uint64_t n = __atomic_add_fetch(&calls[site], 1, __ATOMIC_RELAXED);

	if (period == 0 || n % period != 0)
		return false;
	__atomic_add_fetch(&injected[site], 1, __ATOMIC_RELAXED);
	return true;
}

int moirai__fault_parse(const char *spec, uint64_t period[MOIRAI_FAULT__COUNT], char *why,
			size_t why_len)
{
	const char *p = spec;

	memset(period, 0, MOIRAI_FAULT__COUNT * sizeof(period[0]));
	if (!spec) {
		snprintf(why, why_len, "NULL fault specification");
		return -EINVAL;
	}
	while (*p) {
		size_t len = strcspn(p, "=,");
		int site = -1;
		char *end;
		unsigned long long n;

		for (int i = 0; i < MOIRAI_FAULT__COUNT; i++)
			if (strlen(site_names[i]) == len && strncmp(p, site_names[i], len) == 0)
				site = i;
		if (site < 0) {
			snprintf(why, why_len,
				 "unknown fault site '%.*s' (arena_commit, pool_get, ring_enqueue)",
				 (int)(len > 40 ? 40 : len), p);
			return -EINVAL;
		}
		if (p[len] != '=') {
			snprintf(why, why_len, "fault site %s needs '=N' (fail every Nth call)",
				 site_names[site]);
			return -EINVAL;
		}
		p += len + 1;
		errno = 0;
		n = (*p >= '0' && *p <= '9') ? strtoull(p, &end, 10) : 0;
		if (errno || *p < '0' || *p > '9' || (*end && *end != ',') || n < 1 ||
		    n > PERIOD_MAX) {
			snprintf(why, why_len, "fault site %s: N must be an integer in 1..%llu",
				 site_names[site], PERIOD_MAX);
			return -EINVAL;
		}
		if (period[site]) {
			snprintf(why, why_len, "fault site %s given twice", site_names[site]);
			return -EINVAL;
		}
		period[site] = n;
		p = end;
		if (*p == ',') {
			p++;
			if (!*p) {
				snprintf(why, why_len, "trailing ',' in fault specification");
				return -EINVAL;
			}
		}
	}
	return 0;
}

void moirai__fault_arm(const uint64_t period[MOIRAI_FAULT__COUNT])
{
	unsigned mask = 0;

	for (int i = 0; i < MOIRAI_FAULT__COUNT; i++) {
		__atomic_store_n(&periods[i], period[i], __ATOMIC_RELAXED);
		__atomic_store_n(&calls[i], 0, __ATOMIC_RELAXED);
		if (period[i])
			mask |= 1u << i;
	}
	__atomic_store_n(&moirai__fault_mask, mask, __ATOMIC_RELAXED);
}

uint64_t moirai_fault_injected(enum moirai_fault_site site)
{
	if ((unsigned)site >= MOIRAI_FAULT__COUNT)
		return 0;
	return __atomic_load_n(&injected[site], __ATOMIC_RELAXED);
}

const char *moirai_fault_site_name(enum moirai_fault_site site)
{
	return (unsigned)site < MOIRAI_FAULT__COUNT ? site_names[site] : NULL;
}
