/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The options table: one row per tunable with its type, default, range and
 * documentation.  Environment overrides (MOIRAI_<NAME>) are read once, the
 * first time any option is read; code may then override with
 * moirai_option_set().  Every value in force is logged at debug level.
 */
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "internal.h"

enum opt_type { OPT_LONG, OPT_SIZE, OPT_STR };

struct option_row {
	const char *name; /* env is MOIRAI_ + upper-case name */
	enum opt_type type;
	long def;
	const char *def_str;
	long min, max;
	const char *doc;
	const char *choices; /* OPT_STR: "a|b|c" = the only values accepted */
};

/*
 * String options with a syntax of their own: check validates a value (0,
 * or -EINVAL with the reason in why, recording and logging nothing), apply
 * acts on it once it is stored.
 */
struct option_hooks {
	int (*check)(const char *text, char *why, size_t why_len);
	void (*apply)(const char *text);
};

static int fault_check(const char *text, char *why, size_t why_len)
{
	uint64_t period[MOIRAI_FAULT__COUNT];

	return moirai__fault_parse(text, period, why, why_len);
}

static void fault_apply(const char *text)
{
	uint64_t period[MOIRAI_FAULT__COUNT];
	char why[160];

	if (moirai__fault_parse(text, period, why, sizeof(why)) == 0)
		moirai__fault_arm(period);
}

static const struct option_row rows[MOIRAI_OPT__COUNT] = {
	[MOIRAI_OPT_TOPOLOGY] = { "topology", OPT_STR, 0, "", 0, 0,
				  "hwloc XML file or synthetic description used instead of the "
				  "live machine",
				  NULL },

	[MOIRAI_OPT_WORKERS] = { "workers", OPT_LONG, 0, NULL, 0, 65536,
				 "worker count; 0 means one per usable core", NULL },

	[MOIRAI_OPT_LOG_LEVEL] = { "log_level", OPT_LONG, 1, NULL, 0, 3,
				   "0 errors, 1 warnings, 2 info, 3 debug", NULL },

	[MOIRAI_OPT_DEBUG] = { "debug", OPT_LONG, 0, NULL, 0, 1,
			       "1 enables allocator debug checks (poison, double free, canaries)",
			       NULL },

	[MOIRAI_OPT_HUGEPAGES] = { "hugepages", OPT_STR, 0, "auto", 0, 0,
				   "arena page mode: auto, hugetlb, thp or none",
				   "auto|hugetlb|thp|none" },
	[MOIRAI_OPT_ARENA_RESERVE] = { "arena_reserve", OPT_SIZE, 64L << 30, NULL, 2L << 20,
				       LONG_MAX, "address space reserved per node arena", NULL },

	[MOIRAI_OPT_ARENA_CHUNK] = { "arena_chunk", OPT_SIZE, 2L << 20, NULL, 2L << 20, 1L << 30,
				     "commit granule of a node arena", NULL },

	[MOIRAI_OPT_DECOMMIT_THRESHOLD] = { "decommit_threshold", OPT_SIZE, 64L << 20, NULL, 0,
					    LONG_MAX,
					    "free bytes a heap keeps committed before returning "
					    "pages",
					    NULL },

	[MOIRAI_OPT_TCACHE_MAX] = { "tcache_max", OPT_LONG, 64, NULL, 0, 4096,
				    "blocks per size class cached by a thread (classes under 1 KiB "
				    "cache up to 64 KiB of blocks, at most 1024, when that is "
				    "more)",
				    NULL },

	[MOIRAI_OPT_SPIN_NS] = { "spin_ns", OPT_LONG, 20000, NULL, 0, 1000000000L,
				 "how long a waiting channel endpoint or idle worker spins, ns",
				 NULL },
	[MOIRAI_OPT_RT_IDLE] = { "rt_idle", OPT_STR, 0, "park", 0, 0,
				 "idle runtime workers: park (sleep after spinning) or spin",
				 "park|spin" },
	[MOIRAI_OPT_RT_MAILBOX] = { "rt_mailbox", OPT_LONG, 1024, NULL, 2, 1L << 20,
				    "slots of each runtime mailbox ring (a power of two)", NULL },
	[MOIRAI_OPT_RT_TASKS] = { "rt_tasks", OPT_LONG, 65536, NULL, 64, 1L << 28,
				  "runtime task descriptors per NUMA node", NULL },
	[MOIRAI_OPT_RT_STUCK_MS] = { "rt_stuck_ms", OPT_LONG, 10, NULL, 0, 3600000,
				     "stuck-task threshold, ms (0 = no detector)", NULL },
	[MOIRAI_OPT_RT_BUDGET_US] = { "rt_budget_us", OPT_LONG, 200, NULL, 1, 60000000,
				      "run time after which a task should yield, us", NULL },
	[MOIRAI_OPT_RT_PREFETCH] = { "rt_prefetch", OPT_LONG, 1, NULL, 0, 1,
				     "1 = prefetch the next task descriptor, 0 = off", NULL },
	[MOIRAI_OPT_RT_STATS] = { "rt_stats", OPT_STR, 0, "", 0, 0,
				  "publish runtime stats for moirai-top: \"\" or 0 off, "
				  "1 a segment named after the process, else its name",
				  NULL },
	[MOIRAI_OPT_RT_STATS_MS] = { "rt_stats_ms", OPT_LONG, 100, NULL, 1, 60000,
				     "how often the runtime publishes its stats, ms", NULL },
	[MOIRAI_OPT_RT_STATS_DIR] = { "rt_stats_dir", OPT_STR, 0, "", 0, 0,
				      "directory of the runtime stats segments (\"\" = /dev/shm)",
				      NULL },
	[MOIRAI_OPT_FAULT] = { "fault", OPT_STR, 0, "", 0, 0,
			       "fault injection: \"\" off, or SITE=N,... (arena_commit, pool_get, "
			       "ring_enqueue) to fail every Nth call of each",
			       NULL },
};

static const struct option_hooks hooks[MOIRAI_OPT__COUNT] = {
	[MOIRAI_OPT_FAULT] = { fault_check, fault_apply },
};

static long values[MOIRAI_OPT__COUNT];
static char *strings[MOIRAI_OPT__COUNT];
/* Set by the environment or by code rather than left at the default. */
static bool is_set[MOIRAI_OPT__COUNT];
static pthread_once_t once = PTHREAD_ONCE_INIT;

struct retired {
	char *str;
	struct retired *next;
};
static struct retired *retired_list;

int moirai__parse_size(const char *text, long *out)
{
	char *end;
	long v;
	int shift = 0;

	if (!text || !*text)
		return -EINVAL;
	errno = 0;
	v = strtol(text, &end, 0);
	if (errno || end == text || v < 0)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		shift = 10;
		end++;
		break;
	case 'M':
		shift = 20;
		end++;
		break;
	case 'G':
		shift = 30;
		end++;
		break;
	case 'T':
		shift = 40;
		end++;
		break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end++;
	if (*end == 'B')
		end++;
	if (*end != '\0')
		return -EINVAL;
	if (shift && v > (LONG_MAX >> shift))
		return -EINVAL;
	*out = v << shift;
	return 0;
}

/* Whether @text is one of the '|'-separated words of @choices (NULL: any). */
static bool is_choice(const char *choices, const char *text)
{
	size_t len = strlen(text);

	if (!choices)
		return true;
	for (const char *c = choices; *c;) {
		size_t n = strcspn(c, "|");

		if (n == len && strncmp(c, text, n) == 0)
			return true;
		c += n + (c[n] == '|');
	}
	return false;
}

static int parse_value(enum moirai_option opt, const char *text, long *out)
{
	const struct option_row *r = &rows[opt];
	long v;

	if (r->type == OPT_SIZE) {
		if (moirai__parse_size(text, &v))
			return -EINVAL;
	} else {
		char *end;

		errno = 0;
		v = strtol(text, &end, 0);
		if (errno || end == text || *end != '\0')
			return -EINVAL;
	}
	if (v < r->min || v > r->max)
		return -EINVAL;
	*out = v;
	return 0;
}

static void env_name(enum moirai_option opt, char *buf, size_t len)
{
	size_t i = 0;
	const char *n = rows[opt].name;

	snprintf(buf, len, "MOIRAI_");
	i = strlen(buf);
	for (; *n && i + 1 < len; n++)
		buf[i++] = (char)toupper((unsigned char)*n);
	buf[i] = '\0';
}

/*
 * Runs inside pthread_once, so it must not call moirai__log() (which reads
 * an option and would re-enter the once): it prints with fprintf directly.
 */
static void load_options(void)
{
	bool bad[MOIRAI_OPT__COUNT] = { false };
	static char why[MOIRAI_OPT__COUNT][160];
	char env[64];

	for (int i = 0; i < MOIRAI_OPT__COUNT; i++) {
		const char *e;

		values[i] = rows[i].def;
		env_name(i, env, sizeof(env));
		e = getenv(env);
		if (rows[i].type == OPT_STR) {
			if (e &&
			    (!is_choice(rows[i].choices, e) ||
			     (hooks[i].check && hooks[i].check(e, why[i], sizeof(why[i])) != 0))) {
				bad[i] = true;
				e = NULL;
			}
			strings[i] = strdup(e ? e : rows[i].def_str);
			is_set[i] = e != NULL;
			if (e && hooks[i].apply)
				hooks[i].apply(e);
			continue;
		}
		if (e && parse_value(i, e, &values[i]) != 0) {
			values[i] = rows[i].def;
			bad[i] = true;
		}
		is_set[i] = e && !bad[i];
	}
	for (int i = 0; i < MOIRAI_OPT__COUNT; i++) {
		env_name(i, env, sizeof(env));
		/* A typo in an env var must not silently change behaviour. */
		if (bad[i] && values[MOIRAI_OPT_LOG_LEVEL] >= MOIRAI_LOG_WARN) {
			if (rows[i].type == OPT_STR && hooks[i].check)
				fprintf(stderr, "moirai warn: ignoring %s='%s': %s\n", env,
					getenv(env), why[i]);
			else if (rows[i].type == OPT_STR)
				fprintf(stderr,
					"moirai warn: ignoring %s='%s': expected one of %s\n", env,
					getenv(env), rows[i].choices);
			else
				fprintf(stderr,
					"moirai warn: ignoring %s='%s': expected %s in [%ld, "
					"%ld]\n",
					env, getenv(env),
					rows[i].type == OPT_SIZE ? "a size" : "an integer",
					rows[i].min, rows[i].max);
		}
		if (values[MOIRAI_OPT_LOG_LEVEL] < MOIRAI_LOG_DEBUG)
			continue;
		if (rows[i].type == OPT_STR)
			fprintf(stderr, "moirai debug: option %s = '%s'\n", rows[i].name,
				strings[i] ? strings[i] : "");
		else
			fprintf(stderr, "moirai debug: option %s = %ld\n", rows[i].name, values[i]);
	}
}

static inline bool opt_valid(enum moirai_option opt)
{
	return (unsigned)opt < MOIRAI_OPT__COUNT;
}

long moirai_option_get(enum moirai_option opt)
{
	pthread_once(&once, load_options);
	if (!opt_valid(opt) || rows[opt].type == OPT_STR)
		return 0;
	return values[opt];
}

const char *moirai_option_get_str(enum moirai_option opt)
{
	pthread_once(&once, load_options);
	if (!opt_valid(opt) || rows[opt].type != OPT_STR || !strings[opt])
		return "";
	return strings[opt];
}

int moirai_option_set(enum moirai_option opt, long value)
{
	pthread_once(&once, load_options);
	if (!opt_valid(opt))
		return moirai__err(-EINVAL, "options: unknown option %d", (int)opt);
	if (rows[opt].type == OPT_STR)
		return moirai__err(-EINVAL, "options: '%s' takes a string", rows[opt].name);
	if (value < rows[opt].min || value > rows[opt].max)
		return moirai__err(-EINVAL, "options: %s=%ld is out of range [%ld, %ld]",
				   rows[opt].name, value, rows[opt].min, rows[opt].max);
	values[opt] = value;
	is_set[opt] = true;
	return 0;
}

int moirai_option_set_str(enum moirai_option opt, const char *value)
{
	pthread_once(&once, load_options);
	if (!opt_valid(opt))
		return moirai__err(-EINVAL, "options: unknown option %d", (int)opt);
	if (!value)
		return moirai__err(-EINVAL, "options: NULL value for '%s'", rows[opt].name);
	if (rows[opt].type != OPT_STR) {
		long v;

		if (parse_value(opt, value, &v))
			return moirai__err(-EINVAL,
					   "options: cannot use '%s' for %s (range [%ld, %ld])",
					   value, rows[opt].name, rows[opt].min, rows[opt].max);
		values[opt] = v;
		is_set[opt] = true;
		return 0;
	}
	if (!is_choice(rows[opt].choices, value))
		return moirai__err(-EINVAL, "options: '%s' is not a value of %s (one of %s)", value,
				   rows[opt].name, rows[opt].choices);
	if (hooks[opt].check) {
		char why[160];

		if (hooks[opt].check(value, why, sizeof(why)) != 0)
			return moirai__err(-EINVAL, "options: %s='%.60s': %s", rows[opt].name,
					   value, why);
	}
	struct retired *old = malloc(sizeof(*old));
	char *copy = strdup(value);

	if (!copy || !old) {
		free(copy);
		free(old);
		return moirai__err(-ENOMEM, "options: out of memory setting %s", rows[opt].name);
	}
	/*
	 * A reader may still hold the old string, so it is kept (reachable,
	 * not leaked) rather than freed; options are set a handful of times.
	 */
	old->str = strings[opt];
	old->next = retired_list;
	retired_list = old;
	strings[opt] = copy;
	is_set[opt] = true;
	if (hooks[opt].apply)
		hooks[opt].apply(copy);
	return 0;
}

bool moirai__option_is_set(enum moirai_option opt)
{
	pthread_once(&once, load_options);
	return opt_valid(opt) && is_set[opt];
}

const char *moirai_option_name(enum moirai_option opt)
{
	return opt_valid(opt) ? rows[opt].name : NULL;
}
