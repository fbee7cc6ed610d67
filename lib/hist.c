/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The latency histogram's read side: percentiles, merge, reset and the text
 * and JSON summaries.  Recording is inline in moirai/hist.h; this file holds
 * everything a reader or a tool calls, none of it on a hot path.
 *
 * Every read of a histogram's fields goes through the __atomic builtins,
 * because the single writer may be recording while we read.  A reader first
 * loads count with acquire (pairing with the writer's release store of
 * count in moirai_hist_record_n), so everything that count includes is
 * visible in the fields read after it; the buckets may hold a few records
 * more, which is why every walk below is bounded by MOIRAI_HIST_BUCKETS and
 * never by what count promises.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "moirai/hist.h"

/* The size the header states; a layout change must update it there. */
_Static_assert(sizeof(struct moirai_hist) == 32 + 8 * 1920, "moirai_hist is 15392 bytes");
_Static_assert(MOIRAI_HIST_BUCKETS == 1920, "bucket count stated in moirai/hist.h");

/* The six figures both summaries print, in ascending order: one walk. */
static const double summary_qs[] = { 0, 50, 90, 99, 99.9, 100 };
enum { SUMMARY_N = MOIRAI_ARRAY_SIZE(summary_qs) };

static inline uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void store(uint64_t *p, uint64_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELAXED);
}

/* What a reader knows before walking the buckets. */
struct view {
	uint64_t count;
	uint64_t lo, hi; /* min and max as read */
	uint64_t sum;
	bool ordered; /* lo <= hi: false only while a reset runs concurrently */
};

static void read_view(const struct moirai_hist *h, struct view *v)
{
	/* Acquire: pairs with the release store of count in record_n/merge. */
	v->count = h ? __atomic_load_n(&h->count, __ATOMIC_ACQUIRE) : 0;
	if (v->count == 0) {
		*v = (struct view){ 0 };
		return;
	}
	v->lo = ~load(&h->min_inv);
	v->hi = load(&h->max);
	v->sum = load(&h->sum);
	v->ordered = v->lo <= v->hi;
}

static inline uint64_t clamp(const struct view *v, uint64_t x)
{
	if (!v->ordered)
		return x;
	return x < v->lo ? v->lo : x > v->hi ? v->hi : x;
}

uint64_t moirai_hist_bucket_low(unsigned idx)
{
	unsigned shift;

	if (idx >= MOIRAI_HIST_BUCKETS)
		idx = MOIRAI_HIST_BUCKETS - 1;
	if (idx < 2 * MOIRAI_HIST_SUB)
		return idx;
	/* Inverse of moirai_hist_bucket_index(): idx = shift * SUB + sub. */
	shift = (idx >> MOIRAI_HIST_SUB_BITS) - 1;
	return (uint64_t)(idx - (shift << MOIRAI_HIST_SUB_BITS)) << shift;
}

static inline uint64_t bucket_width(unsigned idx)
{
	if (idx >= MOIRAI_HIST_BUCKETS)
		idx = MOIRAI_HIST_BUCKETS - 1;
	if (idx < 2 * MOIRAI_HIST_SUB)
		return 1;
	return (uint64_t)1 << ((idx >> MOIRAI_HIST_SUB_BITS) - 1);
}

uint64_t moirai_hist_bucket_high(unsigned idx)
{
	/* low + (width - 1): the last bucket ends at UINT64_MAX without wrapping. */
	return moirai_hist_bucket_low(idx) + (bucket_width(idx) - 1);
}

/*
 * The midpoint: a value x in the bucket is at least SUB widths above zero,
 * and the midpoint is at most half a width from x, hence the 1/(2*SUB)
 * bound.  Width-1 buckets report their value exactly.
 */
static inline uint64_t bucket_mid(unsigned idx)
{
	return moirai_hist_bucket_low(idx) + bucket_width(idx) / 2;
}

/*
 * Nearest rank ceil(q/100 * n), in [1, n].  The product is taken slightly
 * low (relative 1e-12) before rounding up so that decimal percentiles whose
 * exact rank is an integer get it: 99.9 is stored as 99.90000000000000568,
 * and 99.9% of 1000 must be rank 999, not 1000.  The shift is below one
 * rank for any count under 10^12 records and far above double rounding.
 */
static uint64_t rank_of(double q, uint64_t n)
{
	double x;
	uint64_t r;

	if (!(q > 0))
		return 1;
	if (q >= 100)
		return n;
	x = q * (double)n / 100.0;
	x -= x * 1e-12;
	/* Compare in double first: (double)n may round up to 2^64. */
	if (x >= (double)n)
		return n;
	r = (uint64_t)x; /* x < 2^64 here, so the conversion is defined */
	if ((double)r < x)
		r++;
	if (r < 1)
		r = 1;
	return r > n ? n : r;
}

/*
 * The one walk: out[i] for ranks taken from qs[i], already validated.
 * Buckets are loaded once each per walk, so ascending qs give ascending
 * results even while the writer runs; a descending step restarts the walk.
 * Returns the count the figures are relative to (0: empty, all out 0).
 */
static uint64_t compute(const struct moirai_hist *h, const double *qs, size_t n, uint64_t *out,
			struct view *vout)
{
	struct view v;
	uint64_t cum = 0, cum_before = 0;
	unsigned j = 0;
	bool started = false;

	read_view(h, &v);
	if (vout)
		*vout = v;
	for (size_t i = 0; i < n; i++) {
		uint64_t r;

		if (v.count == 0) {
			out[i] = 0;
			continue;
		}
		r = rank_of(qs[i], v.count);
		/* The extreme ranks are known exactly without a walk. */
		if (v.ordered && r == 1) {
			out[i] = v.lo;
			continue;
		}
		if (v.ordered && r == v.count) {
			out[i] = v.hi;
			continue;
		}
		if (started && r <= cum_before) {
			started = false;
			cum = 0;
		}
		/* Invariant when started: cum = buckets [0, j], cum_before = [0, j). */
		while (cum < r) {
			unsigned next = started ? j + 1 : 0;

			if (next >= MOIRAI_HIST_BUCKETS)
				break;
			j = next;
			started = true;
			cum_before = cum;
			cum += load(&h->buckets[j]);
		}
		if (cum < r)
			/* Fewer records than count: only a concurrent reset does that. */
			out[i] = v.ordered ? v.hi : 0;
		else
			out[i] = clamp(&v, bucket_mid(j));
	}
	return v.count;
}

void moirai_hist_init(struct moirai_hist *h)
{
	memset(h, 0, sizeof(*h));
}

void moirai_hist_reset(struct moirai_hist *h)
{
	/*
	 * count first, so a reader that starts now sees an empty histogram
	 * instead of old counts against half-cleared buckets.  Stores, not
	 * memset: readers may be loading these fields.
	 */
	store(&h->count, 0);
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++)
		store(&h->buckets[i], 0);
	store(&h->sum, 0);
	store(&h->min_inv, 0);
	store(&h->max, 0);
}

int moirai_hist_merge(struct moirai_hist *dst, const struct moirai_hist *src)
{
	uint64_t n, s, d;

	if (!dst || !src)
		return moirai__err(-EINVAL, "hist: merge of a NULL histogram (dst %p, src %p)",
				   (void *)dst, (const void *)src);
	/*
	 * Acquire: pairs with src's writer's release of count, so every
	 * record in n is in the buckets, sum, min and max read below.
	 */
	n = __atomic_load_n(&src->count, __ATOMIC_ACQUIRE);
	if (n == 0)
		return 0;
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++) {
		uint64_t b = load(&src->buckets[i]);

		/* Skipping empty buckets keeps dst's untouched lines clean. */
		if (b)
			store(&dst->buckets[i], load(&dst->buckets[i]) + b);
	}
	s = load(&src->sum);
	d = load(&dst->sum);
	store(&dst->sum, __builtin_add_overflow(d, s, &d) ? UINT64_MAX : d);
	s = load(&src->min_inv);
	if (s > load(&dst->min_inv))
		store(&dst->min_inv, s);
	s = load(&src->max);
	if (s > load(&dst->max))
		store(&dst->max, s);
	/* Release: pairs with the acquire of count in dst's readers. */
	__atomic_store_n(&dst->count, load(&dst->count) + n, __ATOMIC_RELEASE);
	return 0;
}

uint64_t moirai_hist_count(const struct moirai_hist *h)
{
	return h ? load(&h->count) : 0;
}

uint64_t moirai_hist_min(const struct moirai_hist *h)
{
	struct view v;

	read_view(h, &v);
	return v.lo;
}

uint64_t moirai_hist_max(const struct moirai_hist *h)
{
	struct view v;

	read_view(h, &v);
	return v.hi;
}

double moirai_hist_mean(const struct moirai_hist *h)
{
	struct view v;
	double total = 0, weighted = 0;

	read_view(h, &v);
	if (v.count == 0)
		return 0.0;
	if (v.sum != UINT64_MAX)
		return (double)v.sum / (double)v.count;
	/*
	 * Saturated sum: estimate from the buckets, dividing by what the walk
	 * saw (not count) so the estimate is a true weighted mean of midpoints.
	 */
	for (unsigned i = 0; i < MOIRAI_HIST_BUCKETS; i++) {
		uint64_t b = load(&h->buckets[i]);

		if (b) {
			total += (double)b;
			weighted += (double)b * (double)clamp(&v, bucket_mid(i));
		}
	}
	return total > 0 ? weighted / total : 0.0;
}

uint64_t moirai_hist_percentile(const struct moirai_hist *h, double q)
{
	uint64_t out;

	if (isnan(q))
		return 0;
	compute(h, &q, 1, &out, NULL);
	return out;
}

int moirai_hist_percentiles(const struct moirai_hist *h, const double *qs, size_t n, uint64_t *out)
{
	if (n == 0)
		return 0;
	if (!qs || !out)
		return moirai__err(-EINVAL, "hist: percentiles with NULL %s",
				   !qs ? "quantiles" : "output");
	for (size_t i = 0; i < n; i++)
		if (!(qs[i] >= 0 && qs[i] <= 100))
			return moirai__err(-EINVAL,
					   "hist: percentile %g (index %zu) is outside [0, 100]",
					   qs[i], i);
	compute(h, qs, n, out, NULL);
	return 0;
}

/* snprintf's return value into 0 / -ENOSPC, recording the detail. */
static int fitted(int written, size_t len, const char *what)
{
	if (written < 0 || (size_t)written >= len)
		return moirai__err(-ENOSPC, "hist: %s needs %d bytes, buffer has %zu", what,
				   written + 1, len);
	return 0;
}

int moirai_hist_format_ns(uint64_t ns, char *buf, size_t len)
{
	static const struct {
		double scale;
		const char *name;
	} units[] = { { 1e3, "us" }, { 1e6, "ms" }, { 1e9, "s" } };
	char tmp[32];
	size_t u = 0;
	double x;

	if (!buf || len == 0)
		return moirai__err(-EINVAL, "hist: format into a NULL or empty buffer");
	if (ns < 1000) {
		snprintf(tmp, sizeof(tmp), "%" PRIu64 "ns", ns);
	} else {
		while (u + 1 < MOIRAI_ARRAY_SIZE(units) && (double)ns >= units[u + 1].scale)
			u++;
		x = (double)ns / units[u].scale;
		/* 999.96us prints as 1.00ms, not "1000us". */
		if (x >= 999.5 && u + 1 < MOIRAI_ARRAY_SIZE(units)) {
			u++;
			x = (double)ns / units[u].scale;
		}
		/* Three significant digits: the histogram's precision is ~1.6%. */
		snprintf(tmp, sizeof(tmp), "%.*f%s",
			 x < 9.995   ? 2
			 : x < 99.95 ? 1
				     : 0,
			 x, units[u].name);
	}
	return fitted(snprintf(buf, len, "%6s", tmp), len, "duration text");
}

int moirai_hist_format(const struct moirai_hist *h, char *buf, size_t len)
{
	uint64_t p[SUMMARY_N];
	char t[SUMMARY_N][32];
	uint64_t n;

	if (!buf || len == 0)
		return moirai__err(-EINVAL, "hist: format into a NULL or empty buffer");
	n = compute(h, summary_qs, SUMMARY_N, p, NULL);
	if (n == 0)
		return fitted(snprintf(buf, len, "n 0"), len, "summary");
	for (size_t i = 0; i < SUMMARY_N; i++)
		moirai_hist_format_ns(p[i], t[i], sizeof(t[i])); /* 32 bytes always fit */
	return fitted(snprintf(buf, len,
			       "n %" PRIu64 " min %s p50 %s p90 %s p99 %s p99.9 %s max %s", n, t[0],
			       t[1], t[2], t[3], t[4], t[5]),
		      len, "summary");
}

int moirai_hist_format_json(const struct moirai_hist *h, const char *suffix, char *buf, size_t len)
{
	uint64_t p[SUMMARY_N];
	struct view v;
	const char *s = suffix ? suffix : "";
	double mean = 0;

	if (!buf || len == 0)
		return moirai__err(-EINVAL, "hist: format into a NULL or empty buffer");
	compute(h, summary_qs, SUMMARY_N, p, &v);
	/* The mean from the same view as the percentiles, unless saturated. */
	if (v.count)
		mean = v.sum != UINT64_MAX ? (double)v.sum / (double)v.count : moirai_hist_mean(h);
	return fitted(
		snprintf(buf, len,
			 "\"count\": %" PRIu64 ", \"min%s\": %" PRIu64 ", \"mean%s\": %.1f"
			 ", \"p50%s\": %" PRIu64 ", \"p90%s\": %" PRIu64 ", \"p99%s\": %" PRIu64
			 ", \"p999%s\": %" PRIu64 ", \"max%s\": %" PRIu64,
			 v.count, s, p[0], s, mean, s, p[1], s, p[2], s, p[3], s, p[4], s, p[5]),
		len, "JSON summary");
}
