/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/hist.h
 * @brief The log-linear latency histogram every moirai layer and tool uses
 *        for percentiles (queue wait, run time, bench latencies).
 *
 * Design: HdrHistogram's bucket layout, fixed at compile time.  Values
 * (nanoseconds, 0 allowed, any uint64_t) below 2 * MOIRAI_HIST_SUB (64)
 * have a bucket each and are counted exactly; above that every power of
 * two [2^e, 2^(e+1)) is split into MOIRAI_HIST_SUB (32) equal sub-buckets
 * of width 2^(e-5).  A value v >= 64 therefore shares its bucket only with
 * values within v/32 of it, and the bucket's midpoint is within v/64 of v.
 * 1920 buckets cover the whole uint64_t range, so recording never clamps
 * and never fails.
 *
 * Size: struct moirai_hist is 15392 bytes (32 bytes of totals + 1920
 * 8-byte counters), small enough to embed several per worker without
 * allocation.  Sixty-four sub-buckets would halve the error and double the
 * size (30 KiB); 32-bit counters would halve the size but wrap after four
 * billion records, minutes at data-plane rates.
 *
 * Percentiles follow the nearest-rank definition: p(q) is the smallest
 * recorded value x such that at least q% of the records are <= x, i.e. the
 * r-th smallest record with r = ceil(q/100 * count), r in [1, count].  The
 * histogram finds the bucket that holds the r-th record and reports its
 * midpoint clamped to the recorded [min, max]; p0 is min and p100 is max,
 * both exact.  Error bound: the reported value is in the same bucket as the
 * exact percentile x, so it equals x for x < 64 and is within x/64 of x
 * otherwise (|reported - x| <= floor(x / 64)).  tests/lib/test_hist.c checks
 * this against sorted data over many seeds and distributions; the worst
 * relative error it measures is 1/64 (a percentile that falls on the lower
 * edge of a bucket with sub-bucket 32), and none exceeds it.
 *
 * Concurrency: ONE writer per histogram.  The owner (normally one worker)
 * records with plain loads and stores of its own counters; no
 * read-modify-write instruction, no lock, no fence on x86.  Any number of
 * readers may call the read functions (count, min, max, mean, percentile,
 * percentiles, format) or merge it into their own histogram while the writer
 * runs; every shared field is accessed through the __atomic builtins
 * (relaxed, plus one release/acquire pair on @c count), so this is race-free
 * under the C11 model and ThreadSanitizer.  What a reader sees is a
 * snapshot that may be mid-update:
 *  - every record included in the @c count it reads is also visible in the
 *    buckets, min, max and sum it reads afterwards (count is published last
 *    with release, read first with acquire);
 *  - the buckets, min, max and sum may already include a few records that
 *    count does not (those recorded while the reader walks), so a
 *    percentile may land a little higher, and the mean be slightly off;
 *  - a reader's results are always within [min, max] as it read them, and
 *    are 0 when it reads count 0; nothing indexes out of range or divides
 *    by zero, whatever it sees (even during a concurrent reset, whose
 *    results are meaningless but in range).
 * Several writers: give each its own histogram (e.g. per worker and per
 * priority) and merge them into one when reading.  Never record into one
 * histogram from two threads: records are load-add-store, so concurrent
 * writers lose counts.
 *
 * Reading a consistent copy: zero a struct moirai_hist and
 * moirai_hist_merge() the live one (or several) into it; the copy can then
 * be queried at leisure and merged further.
 */
#ifndef MOIRAI_HIST_H
#define MOIRAI_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/** log2 of the sub-buckets per power of two: the precision knob. */
#define MOIRAI_HIST_SUB_BITS 5
/** Sub-buckets per power of two (32): relative error <= 1 / (2 * 32). */
#define MOIRAI_HIST_SUB (1u << MOIRAI_HIST_SUB_BITS)
/**
 * Number of buckets: values below 2 * SUB take one each, and each of the
 * 63 - SUB_BITS higher powers of two takes SUB: (65 - SUB_BITS) * SUB = 1920.
 */
#define MOIRAI_HIST_BUCKETS ((65u - MOIRAI_HIST_SUB_BITS) * MOIRAI_HIST_SUB)

/**
 * A latency histogram.  The caller owns the storage (embed it, put it on
 * the stack, or in shared memory); an all-zero struct is an empty
 * histogram, so static, calloc'ed or `= { 0 }` storage needs no init call.
 * The layout is public so that moirai_hist_record() can inline; read it
 * through the functions below, which handle concurrent updates.
 */
struct moirai_hist {
	uint64_t count; /**< records (published last by the writer) */
	uint64_t sum;	/**< sum of the values, saturating at UINT64_MAX */
	uint64_t
		min_inv; /**< ~min, so the zero state means min = UINT64_MAX: any value lowers it */
	uint64_t max;	 /**< largest value recorded (0 when empty) */
	uint64_t buckets[MOIRAI_HIST_BUCKETS]; /**< records per bucket */
};

/**
 * Bucket that counts value @p v.  Exact (index == v) below 2 * SUB.
 * @param v any value.
 * @return an index in [0, MOIRAI_HIST_BUCKETS). Thread-safe.
 */
static inline unsigned moirai_hist_bucket_index(uint64_t v)
{
	/*
	 * OR-ing in 2*SUB-1 makes the operand non-zero (clz(0) is undefined)
	 * and floors the exponent at SUB_BITS, so values below 2*SUB get
	 * shift 0 and index v: the exact range needs no branch.  Above it,
	 * v >> shift is in [SUB, 2*SUB) and each shift adds SUB buckets.
	 */
	unsigned msb = 63u - (unsigned)__builtin_clzll(v | (2u * MOIRAI_HIST_SUB - 1u));
	unsigned shift = msb - MOIRAI_HIST_SUB_BITS;

	return (shift << MOIRAI_HIST_SUB_BITS) + (unsigned)(v >> shift);
}

/**
 * Record value @p v @p n times: the same as @p n calls to
 * moirai_hist_record(), in one update.
 * @param h the histogram; the calling thread must be its only writer.
 * @param v the value (ns), any uint64_t.
 * @param n repetitions; 0 records nothing (min and max stay as they are).
 * Single-writer: not safe concurrently with another record, record_n,
 * reset or a merge into @p h; safe with concurrent readers of @p h.
 */
static inline void moirai_hist_record_n(struct moirai_hist *h, uint64_t v, uint64_t n)
{
	uint64_t *b = &h->buckets[moirai_hist_bucket_index(v)];
	uint64_t sum, add;

	if (moirai_unlikely(n == 0))
		return;
	sum = __atomic_load_n(&h->sum, __ATOMIC_RELAXED);
	/*
	 * Only this thread writes, so plain (relaxed) load + store is an
	 * exact increment without a locked instruction; relaxed atomics keep
	 * concurrent readers race-free at the cost of a plain mov.
	 * Saturating the sum keeps mean() meaningful (it falls back to the
	 * buckets) instead of wrapping.
	 */
	if (__builtin_mul_overflow(v, n, &add) || __builtin_add_overflow(sum, add, &sum))
		sum = UINT64_MAX;
	__atomic_store_n(&h->sum, sum, __ATOMIC_RELAXED);
	if (~v > __atomic_load_n(&h->min_inv, __ATOMIC_RELAXED))
		__atomic_store_n(&h->min_inv, ~v, __ATOMIC_RELAXED);
	if (v > __atomic_load_n(&h->max, __ATOMIC_RELAXED))
		__atomic_store_n(&h->max, v, __ATOMIC_RELAXED);
	__atomic_store_n(b, __atomic_load_n(b, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
	/*
	 * Release: pairs with the acquire load of count in every reader
	 * (lib/hist.c), so a reader that sees this record counted also sees
	 * its bucket, min, max and sum.  A plain mov on x86.
	 */
	__atomic_store_n(&h->count, __atomic_load_n(&h->count, __ATOMIC_RELAXED) + n,
			 __ATOMIC_RELEASE);
}

/**
 * Record one value: the hot path (a count-leading-zeros, a shift, and a
 * handful of loads and stores to two cache lines the writer owns).
 * @param h the histogram; the calling thread must be its only writer.
 * @param v the value (ns), any uint64_t.
 * Single-writer, as moirai_hist_record_n().
 */
static inline void moirai_hist_record(struct moirai_hist *h, uint64_t v)
{
	moirai_hist_record_n(h, v, 1);
}

/**
 * Make @p h an empty histogram (the same as zeroing it).
 * @param h the histogram, not NULL.
 * Not safe concurrently with any other use of @p h.
 */
MOIRAI_API void moirai_hist_init(struct moirai_hist *h);

/**
 * Empty @p h, keeping the storage.
 * @param h the histogram, not NULL.
 * Writer side: only the histogram's writer may call it.  Readers running
 * concurrently get results that are in range but meaningless (a mix of
 * before and after).
 */
MOIRAI_API void moirai_hist_reset(struct moirai_hist *h);

/**
 * Add every record of @p src to @p dst: afterwards @p dst is what recording
 * the union would have produced (count, sum, min, max and every bucket).
 * Merging a histogram into itself doubles it.
 * @param dst the histogram to add to; the calling thread acts as its writer.
 * @param src the histogram to add; it may be written concurrently by its
 *        own writer, in which case @p dst receives a snapshot (see the file
 *        comment: its buckets may hold a few records more than its count).
 * @return 0; -EINVAL @p dst or @p src is NULL.
 * Single-writer on @p dst (not safe concurrently with a record, reset or
 * other merge into @p dst; safe with readers of @p dst); any number of
 * threads may merge the same @p src at once.
 */
MOIRAI_API int moirai_hist_merge(struct moirai_hist *dst, const struct moirai_hist *src);

/**
 * Number of records.
 * @param h the histogram (NULL reads as empty).
 * @return the count, 0 when empty.  Safe concurrently with the writer: the
 *         count only grows between resets.
 */
MOIRAI_API uint64_t moirai_hist_count(const struct moirai_hist *h);

/**
 * Smallest recorded value, exact.
 * @param h the histogram (NULL reads as empty).
 * @return the minimum, 0 when empty.  Safe concurrently with the writer.
 */
MOIRAI_API uint64_t moirai_hist_min(const struct moirai_hist *h);

/**
 * Largest recorded value, exact.
 * @param h the histogram (NULL reads as empty).
 * @return the maximum, 0 when empty.  Safe concurrently with the writer.
 */
MOIRAI_API uint64_t moirai_hist_max(const struct moirai_hist *h);

/**
 * Arithmetic mean of the records.
 * @param h the histogram (NULL reads as empty).
 * @return sum / count, exact up to double rounding; when the sum has
 *         saturated (more than 2^64 ns recorded in total, 584 years), the
 *         mean of the bucket midpoints instead, within 1/64 of the truth.
 *         0.0 when empty.  Safe concurrently with the writer.
 */
MOIRAI_API double moirai_hist_mean(const struct moirai_hist *h);

/**
 * One percentile.
 * @param h the histogram (NULL reads as empty).
 * @param q the percentile in [0, 100] (e.g. 99.9); values outside are
 *        clamped to that range.
 * @return the nearest-rank percentile within the bound of the file comment:
 *         exactly min for q = 0 (and whenever the rank is 1), exactly max
 *         for q = 100 (and whenever the rank is count); 0 when empty or
 *         when @p q is NaN.  Safe concurrently with the writer.
 */
MOIRAI_API uint64_t moirai_hist_percentile(const struct moirai_hist *h, double q);

/**
 * Several percentiles in one walk over the buckets, for the usual
 * p50/p99/p99.9 triple.  qs in ascending order take exactly one walk; any
 * order is accepted (a descending step restarts the walk).  Each out[i] is
 * what moirai_hist_percentile(h, qs[i]) would return on the same snapshot,
 * and out[] is ascending wherever qs[] is.
 * @param h the histogram (NULL reads as empty).
 * @param qs @p n percentiles, each in [0, 100].
 * @param n how many (0 is a no-op).
 * @param[out] out receives @p n values (all 0 when empty).
 * @return 0; -EINVAL @p qs or @p out is NULL while @p n > 0, or a q is
 *         outside [0, 100] or NaN (out is left unspecified).
 *         Safe concurrently with the writer.
 */
MOIRAI_API int moirai_hist_percentiles(const struct moirai_hist *h, const double *qs, size_t n,
				       uint64_t *out);

/**
 * Smallest value counted by bucket @p idx.
 * @param idx a bucket index; indexes >= MOIRAI_HIST_BUCKETS read as the last.
 * @return the lower bound (inclusive). Thread-safe.
 */
MOIRAI_API uint64_t moirai_hist_bucket_low(unsigned idx);

/**
 * Largest value counted by bucket @p idx.
 * @param idx a bucket index; indexes >= MOIRAI_HIST_BUCKETS read as the last.
 * @return the upper bound (inclusive; UINT64_MAX for the last). Thread-safe.
 */
MOIRAI_API uint64_t moirai_hist_bucket_high(unsigned idx);

/**
 * Format a duration in ns with an automatic unit and three significant
 * digits: "870ns", "1.23us", "45.6ms", "12.0s".  Right-aligned in 6
 * columns (wider only past 999 s) so that rows of figures line up.
 * @param ns the duration.
 * @param[out] buf receives the text, NUL-terminated.
 * @param len size of @p buf (16 bytes always suffice).
 * @return 0; -EINVAL @p buf is NULL or @p len is 0; -ENOSPC the text did not
 *         fit (@p buf holds as much as fitted, NUL-terminated). Thread-safe.
 */
MOIRAI_API int moirai_hist_format_ns(uint64_t ns, char *buf, size_t len);

/**
 * Format the usual summary for people, one line, no newline:
 * "n 12345 min  870ns p50 1.23us p90 2.01us p99 4.56us p99.9 7.89us max 10.1us",
 * each figure as moirai_hist_format_ns() prints it; "n 0" when empty.
 * @param h the histogram (NULL reads as empty).
 * @param[out] buf receives the text, NUL-terminated.
 * @param len size of @p buf (128 bytes always suffice).
 * @return 0; -EINVAL @p buf is NULL or @p len is 0; -ENOSPC the text did not
 *         fit (@p buf holds as much as fitted, NUL-terminated).
 *         Safe concurrently with the writer (one snapshot for all figures).
 */
MOIRAI_API int moirai_hist_format(const struct moirai_hist *h, char *buf, size_t len);

/**
 * Format the summary as JSON members for scripts, without braces, so the
 * caller can put them in its own object:
 * `"count": 12345, "min<S>": 870, "mean<S>": 1302.5, "p50<S>": 1230,
 * "p90<S>": 2010, "p99<S>": 4560, "p999<S>": 7890, "max<S>": 10100`, all in
 * ns, integers except the mean, all 0 when empty.  moirai-bench passes
 * "_ns" (its p50_ns/p99_ns/p999_ns fields); the runtime and
 * moirai-pipeline pass "" inside `"critical": { ... }`.
 * @param h the histogram (NULL reads as empty).
 * @param suffix appended to every key but "count" (NULL means "").
 * @param[out] buf receives the text, NUL-terminated.
 * @param len size of @p buf (256 bytes suffice for suffixes up to 8 chars).
 * @return 0; -EINVAL @p buf is NULL or @p len is 0; -ENOSPC the text did not
 *         fit (@p buf holds a truncated, invalid fragment).
 *         Safe concurrently with the writer (one snapshot for all figures).
 */
MOIRAI_API int moirai_hist_format_json(const struct moirai_hist *h, const char *suffix, char *buf,
				       size_t len);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_HIST_H */
