/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging.  The library logs only what an operator needs (warnings about
 * fallbacks, option values at debug level) and never on a fast path.
 */
#include <stdatomic.h>
#include <stdio.h>

#include "internal.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

/* Tests' capture of the log (moirai__log_set_hook); arg stored first and
 * read after the hook (seq_cst both), so a reader that sees a new hook
 * sees its argument. */
static void (*_Atomic log_hook)(int level, const char *line, void *arg);
static void *_Atomic log_hook_arg;

void moirai__log_set_hook(void (*fn)(int level, const char *line, void *arg), void *arg)
{
	atomic_store(&log_hook_arg, arg);
	atomic_store(&log_hook, fn);
}

void moirai__log(int level, const char *fmt, ...)
{
	void (*hook)(int, const char *, void *) = atomic_load(&log_hook);
	bool print = level <= moirai_option_get(MOIRAI_OPT_LOG_LEVEL);
	va_list ap;
	char line[1024];

	if (!print && !hook)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (hook)
		hook(level, line, atomic_load(&log_hook_arg));
	if (!print)
		return;
	/* One fprintf per line so concurrent threads do not interleave. */
	fprintf(stderr, "moirai %s: %s\n",
		level_names[level < 0	? 0
			    : level > 3 ? 3
					: level],
		line);
}
