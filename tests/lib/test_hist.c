/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The latency histogram (moirai/hist.h).  Every figure is checked against
 * an oracle computed here from the raw data: exact nearest-rank percentiles
 * of the sorted values (ranks in integer arithmetic, so the library's
 * floating-point rank is tested too), the exact min, max and sum, and
 * struct-level equality with a histogram recorded the plain way (merge,
 * record_n, reset).  Data comes from a seeded generator over many seeds and
 * several distributions; a failure prints the seed.  The concurrent case
 * runs one writer and several snapshotting readers, bounded, under TSan in
 * `make SAN=thread check`.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "moirai/hist.h"
#include "testutil.h"

#define SEEDS	  64
#define MAX_VALS  6000
#define K_SCALE	  100000 /* percentiles as k / 1000, k in [0, K_SCALE] */
#define N_READERS 2

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* splitmix64: tiny, seedable, full 64-bit output. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

/* Uniform in (0, 1]: never 0, so -log() below is finite. */
static double rng_unit(uint64_t *s)
{
	return ((double)(rng_next(s) >> 11) + 1.0) / 9007199254740992.0;
}

static uint64_t d_uniform_small(uint64_t *s)
{
	return rng_below(s, 200);
}

static uint64_t d_uniform_1ms(uint64_t *s)
{
	return rng_below(s, 1000000);
}

static uint64_t d_uniform_full(uint64_t *s)
{
	return rng_next(s);
}

static uint64_t d_exp_1us(uint64_t *s)
{
	return (uint64_t)(-log(rng_unit(s)) * 1000.0);
}

static uint64_t d_exp_1ms(uint64_t *s)
{
	return (uint64_t)(-log(rng_unit(s)) * 1e6);
}

/* 99.5% near 1 us, 0.5% a hundred times slower: a tail the mean hides. */
static uint64_t d_bimodal(uint64_t *s)
{
	uint64_t base = 900 + rng_below(s, 200);

	return rng_below(s, 1000) < 5 ? base * 100 : base;
}

/* 2^k - 1, 2^k, 2^k + 1: the edges between bucket groups. */
static uint64_t d_pow2(uint64_t *s)
{
	uint64_t p = (uint64_t)1 << rng_below(s, 64);

	switch (rng_below(s, 3)) {
	case 0: return p - 1;
	case 1: return p;
	default: return p + 1; /* p <= 2^63: no wrap */
	}
}

/* Every bit length equally likely: the whole dynamic range at once. */
static uint64_t d_log_uniform(uint64_t *s)
{
	unsigned bits = (unsigned)rng_below(s, 65);

	return bits == 0 ? 0 : rng_next(s) >> (64 - bits);
}

static uint64_t d_extremes(uint64_t *s)
{
	static const uint64_t v[] = { 0, 1, 2, 63, 64, UINT64_MAX - 1, UINT64_MAX };

	return rng_below(s, 4) ? v[rng_below(s, ARRAY_SIZE(v))] : rng_next(s);
}

struct dist {
	const char *name;
	uint64_t (*gen)(uint64_t *s);
};

static const struct dist dists[] = {
	{ "uniform[0,200)", d_uniform_small },
	{ "uniform[0,1ms)", d_uniform_1ms },
	{ "uniform[0,2^64)", d_uniform_full },
	{ "exp(1us)", d_exp_1us },
	{ "exp(1ms)", d_exp_1ms },
	{ "bimodal 99.5/0.5 x100", d_bimodal },
	{ "near powers of two", d_pow2 },
	{ "log-uniform", d_log_uniform },
	{ "0/1/UINT64_MAX", d_extremes },
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Oracle rank for q = k / 1000: ceil(k * n / K_SCALE) in [1, n], exactly. */
static uint64_t exact_rank(uint64_t k, uint64_t n)
{
	uint64_t r = (k * n + K_SCALE - 1) / K_SCALE;

	return r < 1 ? 1 : r > n ? n : r;
}

static double worst_rel_error;

/*
 * Check every figure of @h against the @n values it holds, @sorted in
 * ascending order.  The bound: same bucket as the exact percentile, hence
 * exact below 64 and within floor(x / 64) above.
 */
static void check_against(const struct moirai_hist *h, const uint64_t *sorted, size_t n,
			  uint64_t *rng, const char *what, unsigned seed)
{
	uint64_t ks[40] = { 0,	   1,	  100,	 1000,	10000, 25000, 50000,
			    75000, 90000, 99000, 99900, 99990, 100000 };
	size_t nk = 13;
	double qs[40];
	uint64_t outs[40];
	uint64_t bucket_total = 0;

	while (nk < ARRAY_SIZE(ks))
		ks[nk++] = rng_below(rng, K_SCALE + 1);
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++)
		bucket_total += h->buckets[i];
	assert_int_equal(moirai_hist_count(h), n);
	assert_int_equal(bucket_total, n);
	assert_int_equal(moirai_hist_min(h), sorted[0]);
	assert_int_equal(moirai_hist_max(h), sorted[n - 1]);

	for (size_t i = 0; i < nk; i++)
		qs[i] = (double)ks[i] / 1000.0;
	assert_int_equal(moirai_hist_percentiles(h, qs, nk, outs), 0);
	for (size_t i = 0; i < nk; i++) {
		uint64_t x = sorted[exact_rank(ks[i], n) - 1];
		uint64_t got = moirai_hist_percentile(h, qs[i]);
		uint64_t err = got > x ? got - x : x - got;

		if (got != outs[i] ||
		    moirai_hist_bucket_index(got) != moirai_hist_bucket_index(x) || err > x / 64 ||
		    (x < 64 && err != 0)) {
			print_error("%s seed %u n %zu: p%g = %llu (batch %llu), exact %llu\n", what,
				    seed, n, qs[i], (unsigned long long)got,
				    (unsigned long long)outs[i], (unsigned long long)x);
			fail();
		}
		if (x && (double)err / (double)x > worst_rel_error)
			worst_rel_error = (double)err / (double)x;
	}
	/* The ends are exact, not just within the bound. */
	assert_int_equal(moirai_hist_percentile(h, 0), sorted[0]);
	assert_int_equal(moirai_hist_percentile(h, 100), sorted[n - 1]);
}

/* Record @n values of @d into @h and into @vals (sorted on return). */
static void fill(struct moirai_hist *h, const struct dist *d, uint64_t *vals, size_t n,
		 uint64_t *rng)
{
	for (size_t i = 0; i < n; i++) {
		vals[i] = d->gen(rng);
		moirai_hist_record(h, vals[i]);
	}
	qsort(vals, n, sizeof(*vals), cmp_u64);
}

/* Sizes: small ones stress the rank edges, large ones the bucket walk. */
static size_t pick_size(uint64_t *rng, unsigned seed)
{
	static const size_t tiny[] = { 1, 2, 3, 7, 100, 1000 };

	if (seed < ARRAY_SIZE(tiny))
		return tiny[seed];
	return 1 + (size_t)rng_below(rng, MAX_VALS);
}

static void test_error_bound(void **state)
{
	uint64_t *vals = malloc(MAX_VALS * sizeof(*vals));
	struct moirai_hist *h = malloc(sizeof(*h));
	unsigned seeds = SEEDS * (unsigned)test_scale();

	(void)state;
	assert_non_null(vals);
	assert_non_null(h);
	for (size_t d = 0; d < ARRAY_SIZE(dists); d++) {
		for (unsigned seed = 0; seed < seeds; seed++) {
			uint64_t rng = seed * 1000003ull + d;
			size_t n = pick_size(&rng, seed);
			long double exact_sum = 0;
			uint64_t sum = 0;
			bool saturated = false;
			double mean;

			moirai_hist_init(h);
			fill(h, &dists[d], vals, n, &rng);
			check_against(h, vals, n, &rng, dists[d].name, seed);
			for (size_t i = 0; i < n; i++) {
				exact_sum += vals[i];
				saturated |= __builtin_add_overflow(sum, vals[i], &sum);
			}
			/* Exact mean when the sum fits, within the bucket bound otherwise. */
			mean = moirai_hist_mean(h);
			if (!saturated)
				assert_true(fabs(mean - (double)(exact_sum / n)) <=
					    1e-9 * (double)(exact_sum / n) + 1e-9);
			else
				assert_true(fabs(mean - (double)(exact_sum / n)) <=
					    (double)(exact_sum / n) / 64 * 1.000001);
		}
	}
	print_message("worst relative error measured: %.6f (1/%.1f), bound 1/64\n", worst_rel_error,
		      worst_rel_error > 0 ? 1 / worst_rel_error : 0.0);
	assert_true(worst_rel_error <= 1.0 / 64);
	free(h);
	free(vals);
}

/*
 * The rank rule itself, where a rank off by one is visible: the r-th record
 * is 1 and the (r+1)-th is 10^6, or the r-th is already 10^6.  Most cases
 * pick counts that make q/100 * n an integer (99.9% of 41000), where
 * floating-point rounding would otherwise add one; record_n keeps counts
 * of millions cheap.
 */
static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

static void test_rank_edges(void **state)
{
	static const uint64_t usual[] = { 1000, 25000, 50000, 90000, 99000, 99900, 99990, 99999 };
	struct moirai_hist h = { 0 };
	uint64_t rng = 23;

	(void)state;
	for (unsigned seed = 0; seed < SEEDS * 8 * (unsigned)test_scale(); seed++) {
		uint64_t k, n, r;

		/* Thirds: usual q, integral rank; any q, integral rank; anything. */
		if (seed % 3 == 0)
			k = usual[rng_below(&rng, ARRAY_SIZE(usual))];
		else
			k = rng_below(&rng, K_SCALE + 1);
		if (seed % 3 != 2)
			n = K_SCALE / gcd(k ? k : K_SCALE, K_SCALE) * (1 + rng_below(&rng, 200));
		else
			n = 1 + rng_below(&rng, 5000);
		r = exact_rank(k, n);
		for (uint64_t split = r - 1; split <= r; split++) {
			uint64_t want = split >= r ? 1 : 1000000, got;

			moirai_hist_reset(&h);
			moirai_hist_record_n(&h, 1, split);
			moirai_hist_record_n(&h, 1000000, n - split);
			got = moirai_hist_percentile(&h, (double)k / 1000.0);
			if (got != want) {
				print_error("n %llu p%g: rank %llu, %llu ones: got %llu\n",
					    (unsigned long long)n, (double)k / 1000.0,
					    (unsigned long long)r, (unsigned long long)split,
					    (unsigned long long)got);
				fail();
			}
		}
	}
}

/* One value many times: every percentile is that value, exactly. */
static void test_constant(void **state)
{
	struct moirai_hist h = { 0 };
	uint64_t rng = 7;

	(void)state;
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		uint64_t v = d_log_uniform(&rng);
		uint64_t n = 1 + rng_below(&rng, 1000);

		moirai_hist_reset(&h);
		moirai_hist_record_n(&h, v, n);
		for (int q = 0; q <= 100; q += 5)
			assert_int_equal(moirai_hist_percentile(&h, q), v);
		assert_int_equal(moirai_hist_min(&h), v);
		assert_int_equal(moirai_hist_max(&h), v);
	}
}

/* The bucket map: contiguous, covering, exact below 64, width <= low/32. */
static void test_buckets(void **state)
{
	uint64_t rng = 42;

	(void)state;
	assert_int_equal(moirai_hist_bucket_low(0), 0);
	assert_int_equal(moirai_hist_bucket_high(MOIRAI_HIST_BUCKETS - 1), UINT64_MAX);
	assert_int_equal(moirai_hist_bucket_index(UINT64_MAX), MOIRAI_HIST_BUCKETS - 1);
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++) {
		uint64_t lo = moirai_hist_bucket_low(i), hi = moirai_hist_bucket_high(i);

		assert_true(lo <= hi);
		assert_int_equal(moirai_hist_bucket_index(lo), i);
		assert_int_equal(moirai_hist_bucket_index(hi), i);
		if (i + 1 < MOIRAI_HIST_BUCKETS)
			assert_int_equal(hi + 1, moirai_hist_bucket_low(i + 1));
		if (lo < 2 * MOIRAI_HIST_SUB)
			assert_int_equal(lo, hi);
		else
			assert_true(hi - lo + 1 <= lo / MOIRAI_HIST_SUB);
	}
	/* Out-of-range indexes read as the last bucket rather than overrunning. */
	assert_int_equal(moirai_hist_bucket_low(MOIRAI_HIST_BUCKETS + 5),
			 moirai_hist_bucket_low(MOIRAI_HIST_BUCKETS - 1));
	for (int i = 0; i < 100000; i++) {
		uint64_t v = d_log_uniform(&rng);
		unsigned idx = moirai_hist_bucket_index(v);

		assert_true(idx < MOIRAI_HIST_BUCKETS);
		assert_true(moirai_hist_bucket_low(idx) <= v && v <= moirai_hist_bucket_high(idx));
	}
	assert_int_equal(sizeof(struct moirai_hist), 15392);
}

/* Percentiles never decrease with q, in one batch or call by call. */
static void test_monotone(void **state)
{
	static double qs[10001];
	static uint64_t out[10001];
	struct moirai_hist h = { 0 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(qs); i++)
		qs[i] = (double)i / 100.0;
	for (unsigned seed = 0; seed < SEEDS / 2; seed++) {
		uint64_t rng = seed + 99;
		const struct dist *d = &dists[seed % ARRAY_SIZE(dists)];
		uint64_t prev = 0;

		moirai_hist_reset(&h);
		for (uint64_t n = 1 + rng_below(&rng, 3000); n; n--)
			moirai_hist_record(&h, d->gen(&rng));
		assert_int_equal(moirai_hist_percentiles(&h, qs, ARRAY_SIZE(qs), out), 0);
		for (size_t i = 1; i < ARRAY_SIZE(qs); i++)
			assert_true(out[i - 1] <= out[i]);
		for (int i = 0; i < 200; i++) {
			double q = (double)i / 2 + rng_unit(&rng) * 0.5;
			uint64_t p = moirai_hist_percentile(&h, q);

			assert_true(prev <= p);
			prev = p;
		}
	}
}

/* A batch in any order gives what single calls give. */
static void test_batch_any_order(void **state)
{
	struct moirai_hist h = { 0 };
	double qs[64];
	uint64_t out[64];

	(void)state;
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		uint64_t rng = seed * 31 + 5;
		size_t n = 1 + (size_t)rng_below(&rng, ARRAY_SIZE(qs));

		moirai_hist_reset(&h);
		for (uint64_t c = 1 + rng_below(&rng, 2000); c; c--)
			moirai_hist_record(&h, d_exp_1us(&rng));
		for (size_t i = 0; i < n; i++)
			qs[i] = rng_below(&rng, 8) ? rng_unit(&rng) * 100
						   : (double)rng_below(&rng, 2) * 100;
		assert_int_equal(moirai_hist_percentiles(&h, qs, n, out), 0);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(out[i], moirai_hist_percentile(&h, qs[i]));
	}
}

/* Merging parts gives, field for field, the histogram of the union. */
static void test_merge(void **state)
{
	struct moirai_hist *parts = calloc(5, sizeof(*parts));
	struct moirai_hist *all = calloc(1, sizeof(*all)), *merged = calloc(1, sizeof(*merged));
	struct moirai_hist *twice = calloc(1, sizeof(*twice));

	(void)state;
	assert_true(parts && all && merged && twice);
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		uint64_t rng = seed * 7 + 1;
		const struct dist *d = &dists[seed % ARRAY_SIZE(dists)];
		unsigned k = 2 + (unsigned)rng_below(&rng, 4);

		for (unsigned i = 0; i < 5; i++)
			moirai_hist_reset(&parts[i]);
		moirai_hist_reset(all);
		moirai_hist_reset(merged);
		moirai_hist_reset(twice);
		for (uint64_t n = rng_below(&rng, 4000); n; n--) {
			uint64_t v = d->gen(&rng);

			/* Some parts stay empty: merging an empty one is a no-op. */
			moirai_hist_record(&parts[rng_below(&rng, k)], v);
			moirai_hist_record(all, v);
			moirai_hist_record_n(twice, v, 2);
		}
		for (unsigned i = 0; i < k; i++)
			assert_int_equal(moirai_hist_merge(merged, &parts[i]), 0);
		assert_memory_equal(merged, all, sizeof(*all));
		/* Merging into itself doubles every record. */
		assert_int_equal(moirai_hist_merge(merged, merged), 0);
		assert_memory_equal(merged, twice, sizeof(*twice));
	}
	free(twice);
	free(merged);
	free(all);
	free(parts);
}

/* record_n(v, n) is n records of v, including n = 0 and a saturating sum. */
static void test_record_n(void **state)
{
	struct moirai_hist a = { 0 }, b = { 0 }, before;
	uint64_t rng = 3;

	(void)state;
	for (unsigned seed = 0; seed < SEEDS * 4; seed++) {
		uint64_t v = d_log_uniform(&rng), n = rng_below(&rng, 40);

		for (uint64_t i = 0; i < n; i++)
			moirai_hist_record(&a, v);
		moirai_hist_record_n(&b, v, n);
		assert_memory_equal(&a, &b, sizeof(a));
	}
	memcpy(&before, &b, sizeof(b));
	moirai_hist_record_n(&b, 12345, 0);
	assert_memory_equal(&before, &b, sizeof(b));

	/* v * n overflows: the sum saturates and the mean comes from the buckets. */
	moirai_hist_reset(&a);
	moirai_hist_record_n(&a, UINT64_MAX / 3, 4);
	assert_int_equal(a.sum, UINT64_MAX);
	assert_int_equal(moirai_hist_count(&a), 4);
	assert_true(fabs(moirai_hist_mean(&a) - (double)(UINT64_MAX / 3)) <=
		    (double)(UINT64_MAX / 3) / 64);
}

static void test_reset_init(void **state)
{
	struct moirai_hist *h = malloc(sizeof(*h)), *zero = calloc(1, sizeof(*zero));
	uint64_t rng = 11;

	(void)state;
	assert_true(h && zero);
	memset(h, 0xa5, sizeof(*h)); /* init must not trust the old contents */
	moirai_hist_init(h);
	assert_memory_equal(h, zero, sizeof(*h));
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		for (uint64_t n = rng_below(&rng, 500); n; n--)
			moirai_hist_record(h, d_extremes(&rng));
		moirai_hist_reset(h);
		assert_memory_equal(h, zero, sizeof(*h));
	}
	/* After a reset the histogram behaves as new. */
	moirai_hist_record(h, 5);
	assert_int_equal(moirai_hist_min(h), 5);
	assert_int_equal(moirai_hist_percentile(h, 50), 5);
	free(zero);
	free(h);
}

/* Empty (zeroed, or NULL) histograms read as zero everywhere. */
static void test_empty(void **state)
{
	struct moirai_hist h = { 0 };
	const double qs[] = { 0, 50, 99.9, 100 };
	uint64_t out[4] = { 1, 2, 3, 4 };
	char buf[256];
	static const struct moirai_hist zero;
	const struct moirai_hist *null = NULL;

	(void)state;
	for (int i = 0; i < 2; i++) {
		const struct moirai_hist *p = i ? null : &h;

		assert_int_equal(moirai_hist_count(p), 0);
		assert_int_equal(moirai_hist_min(p), 0);
		assert_int_equal(moirai_hist_max(p), 0);
		assert_true(moirai_hist_mean(p) == 0.0);
		assert_int_equal(moirai_hist_percentile(p, 50), 0);
		assert_int_equal(moirai_hist_percentiles(p, qs, 4, out), 0);
		for (int j = 0; j < 4; j++)
			assert_int_equal(out[j], 0);
		assert_int_equal(moirai_hist_format(p, buf, sizeof(buf)), 0);
		assert_string_equal(buf, "n 0");
		assert_int_equal(moirai_hist_format_json(p, "_ns", buf, sizeof(buf)), 0);
		assert_non_null(strstr(buf, "\"count\": 0,"));
		assert_non_null(strstr(buf, "\"p999_ns\": 0,"));
	}
	/* Merging an empty histogram changes nothing, not even min. */
	moirai_hist_record(&h, 10);
	assert_int_equal(moirai_hist_merge(&h, &zero), 0);
	assert_int_equal(moirai_hist_count(&h), 1);
	assert_int_equal(moirai_hist_min(&h), 10);
}

/* Parse "1.23us" back to ns; -1 when the text is not a figure we print. */
static double parse_ns(const char *s, size_t *width)
{
	static const struct {
		const char *unit;
		double scale;
	} units[] = { { "ns", 1 }, { "us", 1e3 }, { "ms", 1e6 }, { "s", 1e9 } };
	char *end;
	double x = strtod(s, &end);

	*width = strlen(s);
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (strcmp(end, units[i].unit) == 0) {
			/* Units roll over at 1000, except seconds. */
			if (x >= 999.5 && units[i].scale < 1e9)
				return -1;
			return x * units[i].scale;
		}
	return -1;
}

static void test_format_ns(void **state)
{
	uint64_t rng = 17;
	char buf[32];
	size_t width;

	(void)state;
	for (int i = 0; i < 20000; i++) {
		uint64_t v = i < 3 ? (uint64_t[]){ 0, 999, UINT64_MAX }[i] : d_log_uniform(&rng);
		double back;

		assert_int_equal(moirai_hist_format_ns(v, buf, sizeof(buf)), 0);
		back = parse_ns(buf, &width);
		assert_true(width >= 6 && width < 16);
		if (back < 0) {
			print_error("unparsable duration '%s' for %llu\n", buf,
				    (unsigned long long)v);
			fail();
		}
		/* Three significant digits: within 0.5% (ns are exact). */
		if (v < 1000)
			assert_true(back == (double)v);
		else
			assert_true(fabs(back - (double)v) <= 0.005 * (double)v);
	}
	assert_int_equal(moirai_hist_format_ns(1234, buf, 4), -ENOSPC);
	assert_int_equal(strlen(buf), 3);
	assert_non_null(strstr(moirai_last_error(), "hist"));
	assert_int_equal(moirai_hist_format_ns(1, NULL, 8), -EINVAL);
	assert_int_equal(moirai_hist_format_ns(1, buf, 0), -EINVAL);
}

/* The summaries print what the query functions return. */
static void test_format(void **state)
{
	static const double qs[] = { 0, 50, 90, 99, 99.9, 100 };
	struct moirai_hist h = { 0 };
	char buf[256], key[32];

	(void)state;
	for (unsigned seed = 0; seed < SEEDS; seed++) {
		uint64_t rng = seed + 1000;
		const struct dist *d = &dists[seed % ARRAY_SIZE(dists)];
		uint64_t p[6], n, got;
		char t[6][32];
		unsigned long long cnt;
		const char *sfx = seed & 1 ? "_ns" : "";
		double mean;
		size_t width;

		moirai_hist_reset(&h);
		for (uint64_t c = 1 + rng_below(&rng, 3000); c; c--)
			moirai_hist_record(&h, d->gen(&rng));
		n = moirai_hist_count(&h);
		assert_int_equal(moirai_hist_percentiles(&h, qs, 6, p), 0);

		assert_int_equal(moirai_hist_format(&h, buf, 128), 0);
		assert_int_equal(sscanf(buf,
					"n %llu min %31s p50 %31s p90 %31s p99 %31s p99.9 %31s "
					"max %31s",
					&cnt, t[0], t[1], t[2], t[3], t[4], t[5]),
				 7);
		assert_int_equal(cnt, n);
		for (int i = 0; i < 6; i++) {
			double back = parse_ns(t[i], &width);

			assert_true(back >= 0);
			assert_true(fabs(back - (double)p[i]) <= 0.005 * (double)p[i]);
		}

		assert_int_equal(moirai_hist_format_json(&h, sfx, buf, sizeof(buf)), 0);
		assert_int_equal(sscanf(buf, "\"count\": %llu,", &cnt), 1);
		assert_int_equal(cnt, n);
		static const char *const names[] = { "min", "p50", "p90", "p99", "p999", "max" };
		for (int i = 0; i < 6; i++) {
			const char *at;
			unsigned long long v;

			snprintf(key, sizeof(key), "\"%s%s\": ", names[i], sfx);
			at = strstr(buf, key);
			assert_non_null(at);
			assert_int_equal(sscanf(at + strlen(key), "%llu", &v), 1);
			got = v;
			assert_int_equal(got, p[i]);
		}
		snprintf(key, sizeof(key), "\"mean%s\": ", sfx);
		assert_non_null(strstr(buf, key));
		mean = strtod(strstr(buf, key) + strlen(key), NULL);
		assert_true(fabs(mean - moirai_hist_mean(&h)) <= 0.05 + 1e-9 * mean);
	}
	/* Too small: -ENOSPC, still a terminated string. */
	assert_int_equal(moirai_hist_format(&h, buf, 10), -ENOSPC);
	assert_int_equal(strlen(buf), 9);
	assert_int_equal(moirai_hist_format_json(&h, "_ns", buf, 20), -ENOSPC);
	assert_int_equal(strlen(buf), 19);
}

static void test_negative(void **state)
{
	struct moirai_hist h = { 0 };
	uint64_t out[2];
	const double bad[][2] = { { 50, -0.001 }, { 100.0001, 50 }, { NAN, 1 } };

	(void)state;
	moirai_hist_record(&h, 100);
	moirai_hist_record(&h, 200);
	moirai_clear_error();
	assert_int_equal(moirai_hist_merge(NULL, &h), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "hist"));
	assert_int_equal(moirai_hist_merge(&h, NULL), -EINVAL);
	assert_int_equal(moirai_hist_count(&h), 2);
	assert_int_equal(moirai_hist_percentiles(&h, NULL, 1, out), -EINVAL);
	assert_int_equal(moirai_hist_percentiles(&h, bad[0], 1, NULL), -EINVAL);
	assert_int_equal(moirai_hist_percentiles(&h, NULL, 0, NULL), 0);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(moirai_hist_percentiles(&h, bad[i], 2, out), -EINVAL);
	/* The single-value form clamps q and maps NaN to 0. */
	assert_int_equal(moirai_hist_percentile(&h, -5), 100);
	assert_int_equal(moirai_hist_percentile(&h, 1e9), 200);
	assert_int_equal(moirai_hist_percentile(&h, NAN), 0);
	assert_int_equal(moirai_hist_format(&h, NULL, 10), -EINVAL);
	assert_int_equal(moirai_hist_format_json(&h, NULL, NULL, 10), -EINVAL);
}

/*
 * One writer records a seeded sequence (values in [LO, HI]) while readers
 * query it and merge snapshots.  Readers check what the header promises:
 * count never decreases; a snapshot's buckets hold at least its count;
 * every figure lies within [LO, HI] and within the live [min, max] read
 * just after (min only falls and max only rises while the writer runs);
 * a batch is ascending.  At the end the live histogram must equal the same
 * sequence recorded without readers, byte for byte.
 */
#define CONC_LO 1000
#define CONC_HI 50000000

struct conc {
	struct moirai_hist *h;
	long records;
	uint64_t seed;
	atomic_int done;
	long reader_rounds[N_READERS];
	int reader_failed[N_READERS];
};

struct reader_arg {
	struct conc *c;
	int id;
};

static uint64_t conc_value(uint64_t *rng)
{
	return CONC_LO + rng_below(rng, rng_below(rng, 8) ? 20000 : CONC_HI - CONC_LO + 1);
}

static void conc_record(struct moirai_hist *h, long records, uint64_t seed)
{
	uint64_t rng = seed;

	for (long i = 0; i < records; i++) {
		uint64_t v = conc_value(&rng);

		if (i % 64 == 0)
			moirai_hist_record_n(h, v, 1 + rng_below(&rng, 4));
		else
			moirai_hist_record(h, v);
	}
}

static void *writer_main(void *arg)
{
	struct conc *c = arg;

	conc_record(c->h, c->records, c->seed);
	/* Release: pairs with the readers' acquire of done (final round). */
	atomic_store_explicit(&c->done, 1, memory_order_release);
	return NULL;
}

static int reader_round(struct conc *c, struct moirai_hist *snap, uint64_t *prev_count,
			uint64_t *prev_snap)
{
	static const double qs[] = { 0, 50, 99, 99.9, 100 };
	uint64_t out[5], total = 0, cnt, lo, hi;

	cnt = moirai_hist_count(c->h);
	if (cnt < *prev_count)
		return 1;
	*prev_count = cnt;

	moirai_hist_reset(snap);
	if (moirai_hist_merge(snap, c->h) != 0)
		return 2;
	if (snap->count < *prev_snap)
		return 3;
	*prev_snap = snap->count;
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++)
		total += snap->buckets[i];
	if (total < snap->count)
		return 4;
	if (snap->count && (moirai_hist_min(snap) < CONC_LO || moirai_hist_max(snap) > CONC_HI ||
			    moirai_hist_min(snap) > moirai_hist_max(snap)))
		return 5;
	/* The snapshot is still: its figures lie within its own [min, max]. */
	if (moirai_hist_percentiles(snap, qs, 5, out) != 0)
		return 6;
	for (int i = 0; snap->count && i < 5; i++)
		if (out[i] < moirai_hist_min(snap) || out[i] > moirai_hist_max(snap) ||
		    (i && out[i] < out[i - 1]))
			return 7;

	/* The live histogram, mid-update. */
	if (moirai_hist_percentiles(c->h, qs, 5, out) != 0)
		return 8;
	lo = moirai_hist_min(c->h);
	hi = moirai_hist_max(c->h);
	for (int i = 0; i < 5; i++) {
		if (out[i] == 0 && i == 0 && cnt == 0)
			break; /* read as empty: all zeros */
		if (out[i] < CONC_LO || out[i] > CONC_HI || out[i] < lo || out[i] > hi ||
		    (i && out[i] < out[i - 1]))
			return 9;
	}
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader_arg *ra = arg;
	struct conc *c = ra->c;
	struct moirai_hist *snap = calloc(1, sizeof(*snap));
	uint64_t prev_count = 0, prev_snap = 0;
	int last = 0;

	if (!snap) {
		c->reader_failed[ra->id] = -1;
		return NULL;
	}
	/* One more round after the writer finishes, so every reader sees the end. */
	while (!last) {
		last = atomic_load_explicit(&c->done, memory_order_acquire);
		c->reader_failed[ra->id] = reader_round(c, snap, &prev_count, &prev_snap);
		c->reader_rounds[ra->id]++;
		if (c->reader_failed[ra->id])
			break;
	}
	if (!c->reader_failed[ra->id] && memcmp(snap, c->h, sizeof(*snap)) != 0)
		c->reader_failed[ra->id] = 10; /* the last snapshot is the final state */
	free(snap);
	return NULL;
}

static void test_concurrent(void **state)
{
	struct conc c = { 0 };
	struct reader_arg ra[N_READERS];
	pthread_t w, r[N_READERS];
	struct moirai_hist *ref = calloc(1, sizeof(*ref));

	(void)state;
	c.h = calloc(1, sizeof(*c.h));
	assert_true(c.h && ref);
	c.records = 2000000 * test_scale() / TEST_SAN_DIVISOR;
	c.seed = 0x5eed;
	for (int i = 0; i < N_READERS; i++) {
		ra[i] = (struct reader_arg){ &c, i };
		assert_int_equal(pthread_create(&r[i], NULL, reader_main, &ra[i]), 0);
	}
	assert_int_equal(pthread_create(&w, NULL, writer_main, &c), 0);
	assert_int_equal(pthread_join(w, NULL), 0);
	for (int i = 0; i < N_READERS; i++) {
		assert_int_equal(pthread_join(r[i], NULL), 0);
		if (c.reader_failed[i])
			print_error("reader %d failed check %d after %ld rounds\n", i,
				    c.reader_failed[i], c.reader_rounds[i]);
		assert_int_equal(c.reader_failed[i], 0);
	}
	print_message("%ld records, reader rounds %ld / %ld\n", c.records, c.reader_rounds[0],
		      c.reader_rounds[1]);
	conc_record(ref, c.records, c.seed);
	assert_memory_equal(c.h, ref, sizeof(*ref));
	free(ref);
	free(c.h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),	   cmocka_unit_test(test_error_bound),
		cmocka_unit_test(test_rank_edges), cmocka_unit_test(test_constant),
		cmocka_unit_test(test_monotone),   cmocka_unit_test(test_batch_any_order),
		cmocka_unit_test(test_merge),	   cmocka_unit_test(test_record_n),
		cmocka_unit_test(test_reset_init), cmocka_unit_test(test_empty),
		cmocka_unit_test(test_format_ns),  cmocka_unit_test(test_format),
		cmocka_unit_test(test_negative),   cmocka_unit_test(test_concurrent),
	};

	return cmocka_run_group_tests_name("hist", tests, NULL, NULL);
}
