/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench suite "ring": moirai rings and channels against their peers,
 * measured in one run.
 *
 *   spsc_bB_{cross,same}   1 producer, 1 consumer, bursts of B pointers;
 *                          cross = one thread per core, same = both on one
 *   mpmc_bB_{cross,same}   2 producers + 2 consumers (producers on one core,
 *                          consumers on the other, or all four on one);
 *                          moirai and rte_ring use the preemption-safe RTS
 *                          mode moirai defaults to, ck_ring its MPMC ring
 *   oversub_4p4c_{mpmc,rts,hts}  8 unpinned threads on the box's cores,
 *                          bursts of 8: classic MP/MC against RTS and HTS
 *   pingpong_spin          round trip of one 8-byte message between two
 *                          cores, receivers polling (channel spinning)
 *   pingpong_parked        the same with receivers asleep in the kernel
 *                          (channel with MOIRAI_SPIN_NS=0: futex park)
 *
 * ns/op is per item moved (throughput cases) or per round trip (ping-pong,
 * with p50/p99/p99.9).  Every implementation gets the same loop shape: on
 * no progress, pause, and yield after 64 fruitless tries.  Peers: raw
 * rte_ring on the same kind of memory at the same offset (so the ratio is
 * the wrapper's overhead), ck_ring
 * (Concurrency Kit, no burst API: B single operations), a mutex+condvar
 * bounded queue, a pipe and an eventfd (a counter, so it moves counts).
 *
 * The moirai rows use the inline fast paths (MOIRAI_RING_INLINE), so the
 * ratio to rte_ring is the wrapper's own cost.  The moirai_outline rows
 * (single_thread and spsc) call the exported out-of-line fast paths that
 * programs get by default, from bench_ring_outline.c, so their ratio to
 * moirai is what the call costs.
 *
 * Each call of a case function is one measurement; the framework repeats
 * and interleaves them (main.c).
 */
#define MOIRAI_RING_INLINE 1
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <ck_ring.h>
#include <moirai.h>
#include <rte_pause.h>

#include "bench.h"
#include "bench_ring.h"

#define QCAP	    1024u
#define MAXT	    8
#define SENTINEL    BENCH_RING_SENTINEL
#define CAP_FULL_S  10 /* a throughput run stops producing after this */
#define CAP_QUICK_S 1

/* I_OUTLINE: a moirai ring driven through the out-of-line calls. */
enum impl { I_MOIRAI, I_OUTLINE, I_RTE, I_CK, I_MUTEX, I_PIPE, I_EVENTFD };

/* ---- mutex + condvar bounded queue --------------------------------- */

struct mqueue {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void **slot;
	unsigned cap, head, count;
	bool closed;
};

static void mq_init(struct mqueue *q, unsigned cap)
{
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->not_empty, NULL);
	pthread_cond_init(&q->not_full, NULL);
	q->slot = calloc(cap, sizeof(void *));
	q->cap = cap;
	q->head = q->count = 0;
	q->closed = false;
}

static void mq_fini(struct mqueue *q)
{
	free(q->slot);
	pthread_mutex_destroy(&q->lock);
	pthread_cond_destroy(&q->not_empty);
	pthread_cond_destroy(&q->not_full);
}

static unsigned mq_enq(struct mqueue *q, void *const *o, unsigned n)
{
	unsigned k;

	pthread_mutex_lock(&q->lock);
	while (q->count == q->cap)
		pthread_cond_wait(&q->not_full, &q->lock);
	for (k = 0; k < n && q->count < q->cap; k++, q->count++)
		q->slot[(q->head + q->count) % q->cap] = o[k];
	pthread_cond_signal(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
	return k;
}

/* Returns 0 only when closed and empty. */
static unsigned mq_deq(struct mqueue *q, void **o, unsigned n)
{
	unsigned k;

	pthread_mutex_lock(&q->lock);
	while (q->count == 0 && !q->closed)
		pthread_cond_wait(&q->not_empty, &q->lock);
	for (k = 0; k < n && q->count; k++, q->count--) {
		o[k] = q->slot[q->head];
		q->head = (q->head + 1) % q->cap;
	}
	pthread_cond_signal(&q->not_full);
	pthread_mutex_unlock(&q->lock);
	return k;
}

static void mq_close(struct mqueue *q)
{
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	pthread_cond_broadcast(&q->not_empty);
	pthread_mutex_unlock(&q->lock);
}

/* ---- one queue of any kind ----------------------------------------- */

struct q {
	enum impl impl;
	unsigned flags; /* moirai flags for moirai and rte_ring */
	struct moirai_ring *mr;
	struct rte_ring *rr;
	void *rr_mem;
	size_t rr_len;
	struct ck_ring ck;
	struct ck_ring_buffer *ckbuf;
	bool ck_mpmc;
	struct mqueue mq;
	int fd[2]; /* pipe: read, write; eventfd: fd[0] */
};

static unsigned rte_flags_of(unsigned f)
{
	unsigned r = 0;

	if (f & MOIRAI_RING_F_SP_ENQ)
		r |= RING_F_SP_ENQ;
	if (f & MOIRAI_RING_F_SC_DEQ)
		r |= RING_F_SC_DEQ;
	if (f & MOIRAI_RING_F_MP_RTS_ENQ)
		r |= RING_F_MP_RTS_ENQ;
	if (f & MOIRAI_RING_F_MC_RTS_DEQ)
		r |= RING_F_MC_RTS_DEQ;
	if (f & MOIRAI_RING_F_MP_HTS_ENQ)
		r |= RING_F_MP_HTS_ENQ;
	if (f & MOIRAI_RING_F_MC_HTS_DEQ)
		r |= RING_F_MC_HTS_DEQ;
	return r;
}

static int q_create(struct q *q, enum impl impl, unsigned flags, bool mpmc, const char *name,
		    char *note)
{
	memset(q, 0, sizeof(*q));
	q->impl = impl;
	q->flags = flags;
	switch (impl) {
	case I_MOIRAI:
	case I_OUTLINE: return moirai_ring_create(name, QCAP, MOIRAI_NODE_ANY, flags, &q->mr);
	case I_RTE: {
		ssize_t sz = rte_ring_get_memsize(QCAP);

		/*
		 * Same memory as a moirai ring (the node arena, the rte_ring
		 * MOIRAI__RING_HDR_SIZE bytes in), so that the comparison
		 * isolates the wrapper from placement and alignment effects.
		 */
		if (sz < 0)
			return -EINVAL;
		q->rr_len = (size_t)sz + MOIRAI__RING_HDR_SIZE;
		q->rr_mem =
			moirai_malloc_node_flags(q->rr_len, MOIRAI_CACHE_LINE, MOIRAI_NODE_ANY, 0);
		if (!q->rr_mem)
			return -ENOMEM;
		memset(q->rr_mem, 0, q->rr_len);
		q->rr = (struct rte_ring *)((char *)q->rr_mem + MOIRAI__RING_HDR_SIZE);
		return rte_ring_init(q->rr, name, QCAP, rte_flags_of(flags));
	}
	case I_CK:
		q->ckbuf = calloc(QCAP, sizeof(*q->ckbuf));
		if (!q->ckbuf)
			return -ENOMEM;
		ck_ring_init(&q->ck, QCAP);
		q->ck_mpmc = mpmc;
		return 0;
	case I_MUTEX: mq_init(&q->mq, QCAP - 1); return 0;
	case I_PIPE:
		if (pipe(q->fd))
			return -errno;
		return 0;
	case I_EVENTFD:
		q->fd[0] = eventfd(0, 0);
		if (q->fd[0] < 0) {
			snprintf(note, 96, "eventfd: %s", strerror(errno));
			return -ENOTSUP;
		}
		return 0;
	}
	return -EINVAL;
}

static void q_destroy(struct q *q)
{
	switch (q->impl) {
	case I_MOIRAI:
	case I_OUTLINE: moirai_ring_destroy(q->mr); break;
	case I_RTE: moirai_free(q->rr_mem); break;
	case I_CK: free(q->ckbuf); break;
	case I_MUTEX: mq_fini(&q->mq); break;
	case I_PIPE:
		close(q->fd[0]);
		if (q->fd[1] >= 0)
			close(q->fd[1]);
		break;
	case I_EVENTFD: close(q->fd[0]); break;
	}
}

/*
 * Lock-free ring enqueue/dequeue, inlined per implementation and mode so
 * that no indirect call sits between the loop and the ring.  @mode is a
 * compile-time constant at every call site below.
 */
enum mode { M_SPSC, M_RTS, M_MPMC, M_HTS };

static inline __attribute__((always_inline)) unsigned ring_enq(struct q *q, enum impl impl,
							       enum mode m, void *const *o,
							       unsigned n)
{
	if (impl == I_MOIRAI) {
		switch (m) {
		case M_SPSC: return moirai_ring_sp_enqueue_burst(q->mr, o, n, NULL);
		case M_RTS: return moirai_ring_mp_rts_enqueue_burst(q->mr, o, n, NULL);
		case M_HTS: return moirai_ring_mp_hts_enqueue_burst(q->mr, o, n, NULL);
		default: return moirai_ring_mp_enqueue_burst(q->mr, o, n, NULL);
		}
	}
	if (impl == I_RTE) {
		switch (m) {
		case M_SPSC: return rte_ring_sp_enqueue_burst(q->rr, o, n, NULL);
		case M_RTS: return rte_ring_mp_rts_enqueue_burst(q->rr, o, n, NULL);
		case M_HTS: return rte_ring_mp_hts_enqueue_burst(q->rr, o, n, NULL);
		default: return rte_ring_mp_enqueue_burst(q->rr, o, n, NULL);
		}
	}
	/* ck_ring: no burst call, so B single operations. */
	unsigned k;

	for (k = 0; k < n; k++) {
		bool ok = m == M_SPSC ? ck_ring_enqueue_spsc(&q->ck, q->ckbuf, o[k])
				      : ck_ring_enqueue_mpmc(&q->ck, q->ckbuf, o[k]);
		if (!ok)
			break;
	}
	return k;
}

static inline __attribute__((always_inline)) unsigned ring_deq(struct q *q, enum impl impl,
							       enum mode m, void **o, unsigned n)
{
	if (impl == I_MOIRAI) {
		switch (m) {
		case M_SPSC: return moirai_ring_sc_dequeue_burst(q->mr, o, n, NULL);
		case M_RTS: return moirai_ring_mc_rts_dequeue_burst(q->mr, o, n, NULL);
		case M_HTS: return moirai_ring_mc_hts_dequeue_burst(q->mr, o, n, NULL);
		default: return moirai_ring_mc_dequeue_burst(q->mr, o, n, NULL);
		}
	}
	if (impl == I_RTE) {
		switch (m) {
		case M_SPSC: return rte_ring_sc_dequeue_burst(q->rr, o, n, NULL);
		case M_RTS: return rte_ring_mc_rts_dequeue_burst(q->rr, o, n, NULL);
		case M_HTS: return rte_ring_mc_hts_dequeue_burst(q->rr, o, n, NULL);
		default: return rte_ring_mc_dequeue_burst(q->rr, o, n, NULL);
		}
	}
	unsigned k;

	for (k = 0; k < n; k++) {
		bool ok = m == M_SPSC ? ck_ring_dequeue_spsc(&q->ck, q->ckbuf, &o[k])
				      : ck_ring_trydequeue_mpmc(&q->ck, q->ckbuf, &o[k]);
		if (!ok)
			break;
	}
	return k;
}

/* ---- throughput harness ------------------------------------------- */

void bench__ring_start(struct tput *t, int cpu)
{
	if (cpu >= 0)
		bench_pin(cpu);
	atomic_fetch_add_explicit(&t->ready, 1, memory_order_acq_rel);
	while (!atomic_load_explicit(&t->go, memory_order_acquire))
		rte_pause();
}

/* Ring producers/consumers: one instance per (impl, mode) pair. */
#define RING_WORKERS(NAME, IMPL, MODE)                                                             \
	static inline __attribute__((always_inline)) unsigned NAME##_enq(                          \
		struct tput *t, void *const *o, unsigned n)                                        \
	{                                                                                          \
		return ring_enq(t->q, IMPL, MODE, o, n);                                           \
	}                                                                                          \
	static inline __attribute__((always_inline)) unsigned NAME##_deq(struct tput *t, void **o, \
									 unsigned n)               \
	{                                                                                          \
		return ring_deq(t->q, IMPL, MODE, o, n);                                           \
	}                                                                                          \
	BENCH_RING_WORKERS(NAME, NAME##_enq, NAME##_deq)

RING_WORKERS(moirai_spsc, I_MOIRAI, M_SPSC)
RING_WORKERS(moirai_rts, I_MOIRAI, M_RTS)
RING_WORKERS(moirai_hts, I_MOIRAI, M_HTS)
RING_WORKERS(moirai_mpmc, I_MOIRAI, M_MPMC)
RING_WORKERS(rte_spsc, I_RTE, M_SPSC)
RING_WORKERS(rte_rts, I_RTE, M_RTS)
RING_WORKERS(rte_hts, I_RTE, M_HTS)
RING_WORKERS(rte_mpmc, I_RTE, M_MPMC)
RING_WORKERS(ck_spsc, I_CK, M_SPSC)
RING_WORKERS(ck_mpmc, I_CK, M_MPMC)

static void *mutex_prod(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	void *buf[32];
	long sent = 0;

	bench__ring_start(t, w->cpu);
	while (sent < t->per_producer && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		unsigned n = t->burst;

		if ((long)n > t->per_producer - sent)
			n = (unsigned)(t->per_producer - sent);
		for (unsigned i = 0; i < n; i++)
			buf[i] = (void *)(uintptr_t)(16 + sent + i);
		sent += mq_enq(&t->q->mq, buf, n);
	}
	w->got = sent;
	return NULL;
}

static void *mutex_cons(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	void *buf[32];
	unsigned got;

	bench__ring_start(t, w->cpu);
	while ((got = mq_deq(&t->q->mq, buf, t->burst)) > 0)
		w->got += got;
	return NULL;
}

static void *pipe_prod(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	uint64_t buf[32];
	long sent = 0;

	bench__ring_start(t, w->cpu);
	while (sent < t->per_producer && !atomic_load_explicit(&t->stop, memory_order_relaxed)) {
		unsigned n = t->burst;

		if ((long)n > t->per_producer - sent)
			n = (unsigned)(t->per_producer - sent);
		for (unsigned i = 0; i < n; i++)
			buf[i] = (uint64_t)(16 + sent + i);
		/* Writes up to PIPE_BUF are atomic: whole items only. */
		ssize_t put = write(t->q->fd[1], buf, n * sizeof(uint64_t));

		if (put < 0 || put % 8) {
			t->bad++;
			return NULL;
		}
		sent += put / 8;
	}
	w->got = sent;
	return NULL;
}

static void *pipe_cons(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	uint64_t buf[32];
	ssize_t got;

	bench__ring_start(t, w->cpu);
	/* Every write is a multiple of 8 bytes, so reads are too. */
	while ((got = read(t->q->fd[0], buf, t->burst * sizeof(uint64_t))) > 0)
		w->got += got / 8;
	return NULL;
}

static void *efd_prod(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	long sent = 0;

	bench__ring_start(t, w->cpu);
	/* No early stop: consumers count up to the full total. */
	while (sent < t->per_producer) {
		uint64_t n = t->burst;

		if ((long)n > t->per_producer - sent)
			n = (uint64_t)(t->per_producer - sent);
		if (write(t->q->fd[0], &n, sizeof(n)) != sizeof(n)) {
			t->bad++;
			return NULL;
		}
		sent += (long)n;
	}
	w->got = sent;
	return NULL;
}

static void *efd_cons(void *arg)
{
	struct tthread *w = arg;
	struct tput *t = w->t;
	long total = t->per_producer * t->nprod;
	uint64_t v, one = 1;

	bench__ring_start(t, w->cpu);
	for (;;) {
		if (read(t->q->fd[0], &v, sizeof(v)) != sizeof(v))
			break;
		if (atomic_load_explicit(&t->done, memory_order_acquire)) {
			/* A wake-up token: pass it to the next sleeper. */
			if (write(t->q->fd[0], &one, sizeof(one)) < 0)
				t->bad++;
			break;
		}
		w->got += (long)v;
		if (atomic_fetch_add_explicit(&t->consumed, (long)v, memory_order_acq_rel) +
			    (long)v >=
		    total) {
			atomic_store_explicit(&t->done, 1, memory_order_release);
			if (write(t->q->fd[0], &one, sizeof(one)) < 0)
				t->bad++;
			break;
		}
	}
	return NULL;
}

struct workers {
	void *(*prod)(void *);
	void *(*cons)(void *);
};

static struct workers workers_for(enum impl impl, enum mode m)
{
	switch (impl) {
	case I_MOIRAI:
		return m == M_SPSC  ? (struct workers){ moirai_spsc_prod, moirai_spsc_cons }
		       : m == M_RTS ? (struct workers){ moirai_rts_prod, moirai_rts_cons }
		       : m == M_HTS ? (struct workers){ moirai_hts_prod, moirai_hts_cons }
				    : (struct workers){ moirai_mpmc_prod, moirai_mpmc_cons };
	case I_RTE:
		return m == M_SPSC  ? (struct workers){ rte_spsc_prod, rte_spsc_cons }
		       : m == M_RTS ? (struct workers){ rte_rts_prod, rte_rts_cons }
		       : m == M_HTS ? (struct workers){ rte_hts_prod, rte_hts_cons }
				    : (struct workers){ rte_mpmc_prod, rte_mpmc_cons };
	case I_OUTLINE: /* SPSC only */
		return (struct workers){ bench__outline_spsc_prod, bench__outline_spsc_cons };
	case I_CK:
		return m == M_SPSC ? (struct workers){ ck_spsc_prod, ck_spsc_cons }
				   : (struct workers){ ck_mpmc_prod, ck_mpmc_cons };
	case I_MUTEX: return (struct workers){ mutex_prod, mutex_cons };
	case I_PIPE: return (struct workers){ pipe_prod, pipe_cons };
	case I_EVENTFD: return (struct workers){ efd_prod, efd_cons };
	}
	return (struct workers){ NULL, NULL };
}

static unsigned flags_for(enum mode m)
{
	switch (m) {
	case M_SPSC: return MOIRAI_RING_F_SPSC;
	case M_RTS: return MOIRAI_RING_F_MP_RTS_ENQ | MOIRAI_RING_F_MC_RTS_DEQ;
	case M_HTS: return MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ;
	default: return MOIRAI_RING_F_MPMC_PINNED;
	}
}

/* Tell consumers the stream is over (producers have all been joined). */
static void end_stream(struct tput *t)
{
	void *s[MAXT];

	switch (t->q->impl) {
	case I_MOIRAI:
	case I_OUTLINE:
	case I_RTE:
	case I_CK:
		for (int i = 0; i < t->ncons; i++)
			s[i] = SENTINEL;
		/* Producers are joined, so even an SP ring may be fed here. */
		for (int put = 0; put < t->ncons;)
			put += (int)ring_enq(t->q, t->q->impl == I_OUTLINE ? I_MOIRAI : t->q->impl,
					     (enum mode)t->mode, s + put,
					     (unsigned)(t->ncons - put));
		break;
	case I_MUTEX: mq_close(&t->q->mq); break;
	case I_PIPE:
		close(t->q->fd[1]);
		t->q->fd[1] = -1;
		break;
	case I_EVENTFD: break; /* consumers count to the total themselves */
	}
}

/*
 * One throughput run.  Oversubscribed rows are repeated like the others: a
 * convoy is the rare, long event they exist to show, and it stays visible
 * as the max of the spread (a best-of would hide it).
 */
static int run_tput(const struct bench_ctx *ctx, struct bench_result *out, enum impl impl,
		    enum mode mode, unsigned burst, int nprod, int ncons, bool same_core,
		    bool pinned, long items)
{
	static atomic_int serial;
	struct run {
		struct tput t;
		struct q q;
	} * run;
	struct tput *t;
	struct tthread th[MAXT];
	struct workers wk = workers_for(impl, mode);
	char name[32];
	long total = 0, got = 0;
	uint64_t t0, t1;
	int rc, nt = nprod + ncons;
	bool capped = false;

	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	t = &run->t;
	t->q = &run->q;
	snprintf(name, sizeof(name), "bench%d",
		 atomic_fetch_add_explicit(&serial, 1, memory_order_relaxed));
	rc = q_create(t->q, impl, flags_for(mode), mode != M_SPSC, name, out->note);
	if (rc) {
		free(run);
		return rc;
	}
	t->mr = t->q->mr;
	t->mode = mode;
	t->burst = burst;
	t->nprod = nprod;
	t->ncons = ncons;
	t->per_producer = bench_iters(ctx, items) / nprod;
	memset(th, 0, sizeof(th));
	for (int i = 0; i < nt; i++) {
		/*
		 * cross: producer i and consumer i on different cores (SPSC:
		 * producer on cpu_a, consumer on cpu_b); same: all on cpu_a.
		 */
		bool prod = i < nprod;
		int k = prod ? i : i - nprod;
		bool on_b = !same_core && ((k % 2 == 0) != prod);

		th[i].t = t;
		th[i].id = i;
		th[i].cpu = !pinned ? -1 : on_b ? ctx->cpu_b : ctx->cpu_a;
		pthread_create(&th[i].tid, NULL, prod ? wk.prod : wk.cons, &th[i]);
	}
	while (atomic_load_explicit(&t->ready, memory_order_acquire) < nt)
		sched_yield();
	t0 = moirai_now_ns();
	atomic_store_explicit(&t->go, 1, memory_order_release);
	for (int i = 0; i < nprod; i++) {
		struct timespec dl;
		uint64_t cap = (uint64_t)(ctx->quick ? CAP_QUICK_S : CAP_FULL_S) * 1000000000u;

		/* A convoying mode may take minutes: stop producing at the cap. */
		uint64_t now = moirai_now_ns();
		uint64_t left = t0 + cap > now ? t0 + cap - now : 0;

		clock_gettime(CLOCK_REALTIME, &dl);
		left += (uint64_t)dl.tv_nsec;
		dl.tv_sec += (time_t)(left / 1000000000u);
		dl.tv_nsec = (long)(left % 1000000000u);
		if (pthread_timedjoin_np(th[i].tid, NULL, &dl) == ETIMEDOUT) {
			atomic_store_explicit(&t->stop, 1, memory_order_relaxed);
			capped = true;
			pthread_join(th[i].tid, NULL);
		}
		total += th[i].got;
	}
	end_stream(t);
	for (int i = nprod; i < nt; i++) {
		pthread_join(th[i].tid, NULL);
		got += th[i].got;
	}
	t1 = moirai_now_ns();
	if (capped) {
		snprintf(out->note, sizeof(out->note), "stopped at the %d s cap after %ld items",
			 ctx->quick ? CAP_QUICK_S : CAP_FULL_S, total);
		fprintf(stderr, "    %s\n", out->note);
	}
	q_destroy(t->q);
	if (got != total || t->bad) {
		snprintf(out->note, sizeof(out->note), "lost items: %ld of %ld", got, total);
		free(run);
		return -EIO;
	}
	out->ns_per_op = (double)(t1 - t0) / (double)total;
	out->ops = total;
	free(run);
	return 0;
}

/* ---- ping-pong latency -------------------------------------------- */

struct pp {
	enum impl impl;
	bool parked;
	struct moirai_chan *ch[2];
	struct q q[2];
	long rounds;
	int cpu;
	atomic_int ready;
	long bad;
};

static inline bool pp_send(struct pp *p, int dir, uint64_t v)
{
	struct q *q = &p->q[dir];
	void *o = (void *)(uintptr_t)v;

	switch (p->impl) {
	case I_MOIRAI:
	case I_OUTLINE: return moirai_chan_send(p->ch[dir], &v, 1, MOIRAI_TIMEOUT_FOREVER) == 1;
	case I_RTE:
		while (!rte_ring_sp_enqueue_burst(q->rr, &o, 1, NULL))
			rte_pause();
		return true;
	case I_CK:
		while (!ck_ring_enqueue_spsc(&q->ck, q->ckbuf, o))
			rte_pause();
		return true;
	case I_MUTEX: return mq_enq(&q->mq, &o, 1) == 1;
	case I_PIPE: return write(q->fd[1], &v, 8) == 8;
	case I_EVENTFD: return write(q->fd[0], &v, 8) == 8;
	}
	return false;
}

static inline bool pp_recv(struct pp *p, int dir, uint64_t *v)
{
	struct q *q = &p->q[dir];
	void *o;

	switch (p->impl) {
	case I_MOIRAI:
	case I_OUTLINE: return moirai_chan_recv(p->ch[dir], v, 1, MOIRAI_TIMEOUT_FOREVER) == 1;
	case I_RTE:
		while (!rte_ring_sc_dequeue_burst(q->rr, &o, 1, NULL))
			rte_pause();
		*v = (uint64_t)(uintptr_t)o;
		return true;
	case I_CK:
		while (!ck_ring_dequeue_spsc(&q->ck, q->ckbuf, &o))
			rte_pause();
		*v = (uint64_t)(uintptr_t)o;
		return true;
	case I_MUTEX:
		if (mq_deq(&q->mq, &o, 1) != 1)
			return false;
		*v = (uint64_t)(uintptr_t)o;
		return true;
	case I_PIPE: return read(q->fd[0], v, 8) == 8;
	case I_EVENTFD: return read(q->fd[0], v, 8) == 8;
	}
	return false;
}

static void *pp_echo(void *arg)
{
	struct pp *p = arg;
	uint64_t v;

	bench_pin(p->cpu);
	atomic_store_explicit(&p->ready, 1, memory_order_release);
	for (long i = 0; i < p->rounds; i++) {
		if (!pp_recv(p, 0, &v) || !pp_send(p, 1, v + 1))
			p->bad++;
	}
	return NULL;
}

static int run_pingpong(const struct bench_ctx *ctx, struct bench_result *out, enum impl impl,
			bool parked, long rounds)
{
	static atomic_int serial;
	struct pp *p = calloc(1, sizeof(*p));
	struct moirai_hist *lat;
	uint64_t v, sum = 0;
	pthread_t tid;
	long spin_saved = moirai_option_get(MOIRAI_OPT_SPIN_NS);
	int rc = 0, made = 0;

	if (!p)
		return -ENOMEM;
	p->impl = impl;
	p->parked = parked;
	p->rounds = bench_iters(ctx, rounds);
	p->cpu = ctx->cpu_b;
	/* The project's one histogram: percentiles within 1/64 (moirai/hist.h). */
	lat = calloc(1, sizeof(*lat));
	if (!lat) {
		free(p);
		return -ENOMEM;
	}
	if (parked)
		moirai_option_set(MOIRAI_OPT_SPIN_NS, 0);
	for (int d = 0; d < 2; d++) {
		char name[32];

		snprintf(name, sizeof(name), "pp%d_%d",
			 atomic_fetch_add_explicit(&serial, 1, memory_order_relaxed), d);
		if (impl == I_MOIRAI)
			rc = moirai_chan_create(name, 8, 64, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC,
						&p->ch[d]);
		else
			rc = q_create(&p->q[d], impl, MOIRAI_RING_F_SPSC, false, name, out->note);
		if (rc)
			goto out_free;
		made++;
	}
	moirai_option_set(MOIRAI_OPT_SPIN_NS, spin_saved);
	bench_pin(ctx->cpu_a);
	pthread_create(&tid, NULL, pp_echo, p);
	while (!atomic_load_explicit(&p->ready, memory_order_acquire))
		sched_yield();
	for (long i = 0; i < p->rounds; i++) {
		uint64_t t0 = moirai_now_ns();

		if (!pp_send(p, 0, (uint64_t)i + 16) || !pp_recv(p, 1, &v) || v != (uint64_t)i + 17)
			p->bad++;
		uint64_t dt = moirai_now_ns() - t0;

		moirai_hist_record(lat, dt);
		sum += dt;
	}
	pthread_join(tid, NULL);
	if (p->bad) {
		snprintf(out->note, sizeof(out->note), "%ld bad round trips", p->bad);
		rc = -EIO;
	} else {
		static const double qs[3] = { 50, 99, 99.9 };
		uint64_t pc[3];

		moirai_hist_percentiles(lat, qs, 3, pc);
		out->ns_per_op = (double)sum / (double)p->rounds;
		out->ops = p->rounds;
		out->p50_ns = (double)pc[0];
		out->p99_ns = (double)pc[1];
		out->p999_ns = (double)pc[2];
	}
out_free:
	moirai_option_set(MOIRAI_OPT_SPIN_NS, spin_saved);
	for (int d = 0; d < made; d++) {
		if (impl == I_MOIRAI)
			moirai_chan_destroy(p->ch[d]);
		else
			q_destroy(&p->q[d]);
	}
	free(lat);
	free(p);
	return rc;
}

/* ---- single thread: the wrapper's cost without cross-core noise ---- */

unsigned st_loop_moirai(struct q *q, void *const *in, void **o, long n, unsigned burst);
unsigned st_loop_rte_ring(struct q *q, void *const *in, void **o, long n, unsigned burst);
unsigned st_loop_ck_ring(struct q *q, void *const *in, void **o, long n, unsigned burst);

#define ST_ENQ_MOIRAI(q, o, n) ring_enq(q, I_MOIRAI, M_SPSC, o, n)
#define ST_DEQ_MOIRAI(q, o, n) ring_deq(q, I_MOIRAI, M_SPSC, o, n)
#define ST_ENQ_RTE(q, o, n)    ring_enq(q, I_RTE, M_SPSC, o, n)
#define ST_DEQ_RTE(q, o, n)    ring_deq(q, I_RTE, M_SPSC, o, n)
#define ST_ENQ_CK(q, o, n)     ring_enq(q, I_CK, M_SPSC, o, n)
#define ST_DEQ_CK(q, o, n)     ring_deq(q, I_CK, M_SPSC, o, n)

BENCH_RING_ST_LOOP(st_loop_moirai, struct q *, ST_ENQ_MOIRAI, ST_DEQ_MOIRAI)
BENCH_RING_ST_LOOP(st_loop_rte_ring, struct q *, ST_ENQ_RTE, ST_DEQ_RTE)
BENCH_RING_ST_LOOP(st_loop_ck_ring, struct q *, ST_ENQ_CK, ST_DEQ_CK)

#define ST_OPS 30000000L

static int run_st(const struct bench_ctx *ctx, struct bench_result *out, enum impl impl,
		  unsigned burst)
{
	static atomic_int serial;
	/* A run-time burst for every impl, as in the threaded loops. */
	volatile unsigned vburst = burst;
	unsigned b = vburst, moved = 0;
	long n = bench_iters(ctx, ST_OPS) / b;
	void *in[32], *o[32];
	uint64_t t0, t1;
	char name[32];
	struct q q;
	int rc;

	snprintf(name, sizeof(name), "st%d_%u",
		 atomic_fetch_add_explicit(&serial, 1, memory_order_relaxed), b);
	rc = q_create(&q, impl, MOIRAI_RING_F_SPSC, false, name, out->note);
	if (rc)
		return rc;
	for (unsigned i = 0; i < 32; i++)
		in[i] = (void *)(uintptr_t)(i + 16);
	bench_pin(ctx->cpu_a);
	t0 = moirai_now_ns();
	switch (impl) {
	case I_MOIRAI: moved = st_loop_moirai(&q, in, o, n, b); break;
	case I_OUTLINE: moved = st_loop_moirai_outline(q.mr, in, o, n, b); break;
	case I_RTE: moved = st_loop_rte_ring(&q, in, o, n, b); break;
	case I_CK: moved = st_loop_ck_ring(&q, in, o, n, b); break;
	default: break;
	}
	t1 = moirai_now_ns();
	q_destroy(&q);
	if (moved != 2u * (unsigned)(n * b)) {
		snprintf(out->note, sizeof(out->note), "moved %u", moved);
		return -EIO;
	}
	/* One op = one item enqueued and dequeued. */
	out->ns_per_op = (double)(t1 - t0) / (double)(n * b);
	out->ops = n * b;
	return 0;
}

#define ST_CASE(B, IMPL, TAG, INAME)                                                     \
	static int st_##B##_##TAG(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                                \
		return run_st(ctx, out, IMPL, B);                                        \
	}                                                                                \
	BENCH_CASE("ring", "single_thread_b" #B, INAME, st_##B##_##TAG)

#define ST_ALL(B)                                        \
	ST_CASE(B, I_MOIRAI, moirai, "moirai")           \
	ST_CASE(B, I_OUTLINE, outline, "moirai_outline") \
	ST_CASE(B, I_RTE, rte, "rte_ring")               \
	ST_CASE(B, I_CK, ck, "ck_ring")

ST_ALL(1)
ST_ALL(8)
ST_ALL(32)

/* ---- case table ---------------------------------------------------- */

BENCH_SUITE(ring, "rings and channels: rte_ring, ck_ring, mutex queue, pipe, eventfd")

#define SPSC_ITEMS    20000000L
#define MPMC_ITEMS    4000000L
#define SLOW_ITEMS    500000L /* kernel-crossing peers: fewer items */
#define OVERSUB_ITEMS 20000000L
#define PP_ROUNDS     100000L

static long items_for(enum impl impl, long n)
{
	return impl == I_MUTEX || impl == I_PIPE || impl == I_EVENTFD
		       ? (n < SLOW_ITEMS ? n : SLOW_ITEMS)
		       : n;
}

#define SPSC_CASE(B, WHERE, SAME, IMPL, TAG, INAME)                          \
	static int spsc_##B##_##WHERE##_##TAG(const struct bench_ctx *ctx,   \
					      struct bench_result *out)      \
	{                                                                    \
		return run_tput(ctx, out, IMPL, M_SPSC, B, 1, 1, SAME, true, \
				items_for(IMPL, SPSC_ITEMS));                \
	}                                                                    \
	BENCH_CASE("ring", "spsc_b" #B "_" #WHERE, INAME, spsc_##B##_##WHERE##_##TAG)

#define MPMC_CASE(B, WHERE, SAME, IMPL, MODE, TAG, INAME)                  \
	static int mpmc_##B##_##WHERE##_##TAG(const struct bench_ctx *ctx, \
					      struct bench_result *out)    \
	{                                                                  \
		return run_tput(ctx, out, IMPL, MODE, B, 2, 2, SAME, true, \
				items_for(IMPL, MPMC_ITEMS));              \
	}                                                                  \
	BENCH_CASE("ring", "mpmc_b" #B "_" #WHERE, INAME, mpmc_##B##_##WHERE##_##TAG)

#define SPSC_ALL(B, WHERE, SAME)                                        \
	SPSC_CASE(B, WHERE, SAME, I_MOIRAI, moirai, "moirai")           \
	SPSC_CASE(B, WHERE, SAME, I_OUTLINE, outline, "moirai_outline") \
	SPSC_CASE(B, WHERE, SAME, I_RTE, rte, "rte_ring")               \
	SPSC_CASE(B, WHERE, SAME, I_CK, ck, "ck_ring")                  \
	SPSC_CASE(B, WHERE, SAME, I_MUTEX, mutex, "mutex_queue")        \
	SPSC_CASE(B, WHERE, SAME, I_PIPE, pipe, "pipe")                 \
	SPSC_CASE(B, WHERE, SAME, I_EVENTFD, efd, "eventfd")

#define MPMC_ALL(B, WHERE, SAME)                                         \
	MPMC_CASE(B, WHERE, SAME, I_MOIRAI, M_RTS, moirai, "moirai")     \
	MPMC_CASE(B, WHERE, SAME, I_RTE, M_RTS, rte, "rte_ring")         \
	MPMC_CASE(B, WHERE, SAME, I_CK, M_MPMC, ck, "ck_ring")           \
	MPMC_CASE(B, WHERE, SAME, I_MUTEX, M_MPMC, mutex, "mutex_queue") \
	MPMC_CASE(B, WHERE, SAME, I_PIPE, M_MPMC, pipe, "pipe")          \
	MPMC_CASE(B, WHERE, SAME, I_EVENTFD, M_MPMC, efd, "eventfd")

SPSC_ALL(1, cross, false)
SPSC_ALL(8, cross, false)
SPSC_ALL(32, cross, false)
SPSC_ALL(1, same, true)
SPSC_ALL(8, same, true)
SPSC_ALL(32, same, true)
MPMC_ALL(1, cross, false)
MPMC_ALL(8, cross, false)
MPMC_ALL(32, cross, false)
MPMC_ALL(1, same, true)
MPMC_ALL(8, same, true)
MPMC_ALL(32, same, true)

/* MP/MC vs RTS vs HTS with 8 unpinned threads (more threads than cores). */
#define OVERSUB_CASE(MODE, MNAME, IMPL, TAG, INAME)                                               \
	static int oversub_##MNAME##_##TAG(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                                         \
		return run_tput(ctx, out, IMPL, MODE, 8, 4, 4, false, false, OVERSUB_ITEMS);      \
	}                                                                                         \
	BENCH_CASE("ring", "oversub_4p4c_" #MNAME, INAME, oversub_##MNAME##_##TAG)

OVERSUB_CASE(M_MPMC, mpmc, I_MOIRAI, moirai, "moirai")
OVERSUB_CASE(M_MPMC, mpmc, I_RTE, rte, "rte_ring")
OVERSUB_CASE(M_RTS, rts, I_MOIRAI, moirai, "moirai")
OVERSUB_CASE(M_RTS, rts, I_RTE, rte, "rte_ring")
OVERSUB_CASE(M_MPMC, rts, I_MUTEX, mutex, "mutex_queue")
OVERSUB_CASE(M_HTS, hts, I_MOIRAI, moirai, "moirai")
OVERSUB_CASE(M_HTS, hts, I_RTE, rte, "rte_ring")

#define PP_CASE(PARKED, PNAME, IMPL, TAG, INAME, ROUNDS)                                     \
	static int pp_##PNAME##_##TAG(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                                    \
		return run_pingpong(ctx, out, IMPL, PARKED, ROUNDS);                         \
	}                                                                                    \
	BENCH_CASE("ring", "pingpong_" #PNAME, INAME, pp_##PNAME##_##TAG)

PP_CASE(false, spin, I_MOIRAI, moirai, "moirai", PP_ROUNDS)
PP_CASE(false, spin, I_RTE, rte, "rte_ring", PP_ROUNDS)
PP_CASE(false, spin, I_CK, ck, "ck_ring", PP_ROUNDS)
PP_CASE(true, parked, I_MOIRAI, moirai, "moirai", PP_ROUNDS / 5)
PP_CASE(true, parked, I_MUTEX, mutex, "mutex_queue", PP_ROUNDS / 5)
PP_CASE(true, parked, I_PIPE, pipe, "pipe", PP_ROUNDS / 5)
PP_CASE(true, parked, I_EVENTFD, efd, "eventfd", PP_ROUNDS / 5)
