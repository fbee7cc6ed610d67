/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Fault injection (the MOIRAI_FAULT option): every Nth call of a site
 * fails the way the real failure does, so that callers' own error paths
 * are what a stress run exercises (tools/moirai-stress, docs/stress.md).
 *
 * Cost when off, on every site: one load of a global word, one test, one
 * not-taken branch (moirai__fault_on); the counting is out of line.  The
 * word is written only when the option is set, before the objects that
 * use the sites exist, so relaxed loads suffice.  Private to the library
 * (shared by lib/, alloc/ and ring/, like internal.h).  Never installed.
 */
#ifndef MOIRAI_FAULT_H
#define MOIRAI_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "internal.h"

/* Bit (1u << site) set: the site is armed (MOIRAI_FAULT names it). */
extern unsigned moirai__fault_mask MOIRAI_HIDDEN;

/* Counts the call; true when this is the Nth one and it must fail. */
bool moirai__fault_hit_slow(enum moirai_fault_site site) MOIRAI_HIDDEN;

/* Whether @site is armed at all (for setup code that routes calls). */
static inline bool moirai__fault_on(enum moirai_fault_site site)
{
	return moirai_unlikely(__atomic_load_n(&moirai__fault_mask, __ATOMIC_RELAXED) &
			       (1u << site));
}

/* The hot-path check: true when this call must fail. */
static inline bool moirai__fault_hit(enum moirai_fault_site site)
{
	return moirai__fault_on(site) && moirai__fault_hit_slow(site);
}

/*
 * Parse a MOIRAI_FAULT value: "" (off) or comma-separated SITE=N with
 * SITE a name of moirai_fault_site_name() and N in 1..1000000000, each
 * site at most once.  Fills @period (0 = not armed) and returns 0, or
 * returns -EINVAL with the reason in @why.  Records nothing and logs
 * nothing: the options table calls it while loading (inside its once).
 */
int moirai__fault_parse(const char *spec, uint64_t period[MOIRAI_FAULT__COUNT], char *why,
			size_t why_len) MOIRAI_HIDDEN;

/* Arm the sites of a parsed value (restarting their call counts). */
void moirai__fault_arm(const uint64_t period[MOIRAI_FAULT__COUNT]) MOIRAI_HIDDEN;

#endif /* MOIRAI_FAULT_H */
