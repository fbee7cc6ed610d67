/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Logging.  The library logs only what an operator needs (warnings about
 * fallbacks, option values at debug level) and never on a fast path.
 */
#include <stdio.h>

#include "internal.h"

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void moirai__log(int level, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	if (level > moirai_option_get(MOIRAI_OPT_LOG_LEVEL))
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One fprintf per line so concurrent threads do not interleave. */
	fprintf(stderr, "moirai %s: %s\n",
		level_names[level < 0	? 0
			    : level > 3 ? 3
					: level],
		line);
}
