/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai/ring.h: every sync mode, bulk vs burst semantics, pointer and
 * element rings, counts, the name registry, caller-owned memory, placement
 * on every allowed node, and the negative-input group.  This file uses the
 * inline fast paths (MOIRAI_RING_INLINE, as the library itself does);
 * test_ring_race.c and test_channel.c use the default out-of-line ones.
 */
#define MOIRAI_RING_INLINE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "moirai/numa.h"
#include "moirai/ring.h"
#include "ring_int.h"
#include "testutil.h"

struct mode {
	const char *name;
	unsigned flags;
};

static const struct mode modes[] = {
	{ "spsc", MOIRAI_RING_F_SP_ENQ | MOIRAI_RING_F_SC_DEQ },
	{ "mpmc", MOIRAI_RING_F_MP_ENQ | MOIRAI_RING_F_MC_DEQ },
	{ "rts", MOIRAI_RING_F_MP_RTS_ENQ | MOIRAI_RING_F_MC_RTS_DEQ },
	{ "hts", MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ },
	{ "default", 0 },
};

/* Mode-named enqueue/dequeue matching the ring's flags, pointer API. */
static unsigned enq_burst(struct moirai_ring *r, unsigned flags, void **o, unsigned n)
{
	if (flags & MOIRAI_RING_F_SP_ENQ)
		return moirai_ring_sp_enqueue_burst(r, o, n, NULL);
	if (flags & MOIRAI_RING_F_MP_ENQ)
		return moirai_ring_mp_enqueue_burst(r, o, n, NULL);
	if (flags & MOIRAI_RING_F_MP_HTS_ENQ)
		return moirai_ring_mp_hts_enqueue_burst(r, o, n, NULL);
	return moirai_ring_mp_rts_enqueue_burst(r, o, n, NULL);
}

static unsigned deq_bulk(struct moirai_ring *r, unsigned flags, void **o, unsigned n,
			 unsigned *avail)
{
	if (flags & MOIRAI_RING_F_SC_DEQ)
		return moirai_ring_sc_dequeue_bulk(r, o, n, avail);
	if (flags & MOIRAI_RING_F_MC_DEQ)
		return moirai_ring_mc_dequeue_bulk(r, o, n, avail);
	if (flags & MOIRAI_RING_F_MC_HTS_DEQ)
		return moirai_ring_mc_hts_dequeue_bulk(r, o, n, avail);
	return moirai_ring_mc_rts_dequeue_bulk(r, o, n, avail);
}

static void test_modes_pointer(void **state)
{
	(void)state;
	for (size_t m = 0; m < MOIRAI_ARRAY_SIZE(modes); m++) {
		struct moirai_ring *r;
		struct moirai_ring_info info;
		void *in[64], *out[64];
		unsigned fs, av;

		assert_int_equal(
			moirai_ring_create(modes[m].name, 64, MOIRAI_NODE_ANY, modes[m].flags, &r),
			0);
		assert_true(moirai__ring_is_valid(r));
		assert_int_equal(moirai_ring_capacity(r), 63);
		assert_true(moirai_ring_empty(r));
		for (uintptr_t i = 0; i < 64; i++)
			in[i] = (void *)(i + 1);
		/* Burst takes what fits: 63 of 64. */
		assert_int_equal(enq_burst(r, modes[m].flags, in, 64), 63);
		assert_true(moirai_ring_full(r));
		assert_int_equal(moirai_ring_count(r), 63);
		assert_int_equal(moirai_ring_free_count(r), 0);
		/* Bulk is all or nothing. */
		assert_int_equal(deq_bulk(r, modes[m].flags, out, 64, &av), 0);
		assert_int_equal(av, 63);
		assert_int_equal(deq_bulk(r, modes[m].flags, out, 40, &av), 40);
		assert_int_equal(av, 23);
		for (uintptr_t i = 0; i < 40; i++)
			assert_ptr_equal(out[i], (void *)(i + 1));
		/* Generic calls use the mode chosen at create. */
		assert_int_equal(moirai_ring_enqueue_bulk(r, in, 41, &fs), 0);
		assert_int_equal(fs, 40);
		assert_int_equal(moirai_ring_enqueue_bulk(r, in, 40, &fs), 40);
		assert_int_equal(fs, 0);
		assert_int_equal(moirai_ring_dequeue_burst(r, out, 64, &av), 63);
		assert_int_equal(av, 0);
		for (uintptr_t i = 0; i < 23; i++)
			assert_ptr_equal(out[i], (void *)(i + 41));
		for (uintptr_t i = 0; i < 40; i++)
			assert_ptr_equal(out[23 + i], (void *)(i + 1));
		assert_int_equal(moirai_ring_dequeue_burst(r, out, 1, NULL), 0);
		assert_int_equal(moirai_ring_info(r, &info), 0);
		assert_string_equal(info.name, modes[m].name);
		assert_int_equal(info.esize, sizeof(void *));
		assert_int_equal(info.capacity, 63);
		assert_false(info.caller_owned);
		if (modes[m].flags == 0)
			assert_int_equal(info.flags,
					 MOIRAI_RING_F_MP_RTS_ENQ | MOIRAI_RING_F_MC_RTS_DEQ);
		else
			assert_int_equal(info.flags, modes[m].flags);
		moirai_ring_destroy(r);
	}
}

struct elem16 {
	uint32_t a, b, c, d;
};

static void test_modes_elem(void **state)
{
	(void)state;
	for (size_t m = 0; m < MOIRAI_ARRAY_SIZE(modes); m++) {
		struct moirai_ring *r;
		struct elem16 in[20], out[20];
		unsigned f = modes[m].flags, got;

		assert_int_equal(moirai_ring_create_elem(modes[m].name, sizeof(struct elem16), 20,
							 MOIRAI_NODE_ANY,
							 f | MOIRAI_RING_F_EXACT_SZ, &r),
				 0);
		assert_int_equal(moirai_ring_capacity(r), 20);
		for (uint32_t i = 0; i < 20; i++)
			in[i] = (struct elem16){ i, ~i, i * 7, 0xabcd0000u + i };
		if (f & MOIRAI_RING_F_SP_ENQ)
			got = moirai_ring_sp_enqueue_bulk_elem(r, in, 16, 20, NULL);
		else if (f & MOIRAI_RING_F_MP_ENQ)
			got = moirai_ring_mp_enqueue_bulk_elem(r, in, 16, 20, NULL);
		else if (f & MOIRAI_RING_F_MP_HTS_ENQ)
			got = moirai_ring_mp_hts_enqueue_bulk_elem(r, in, 16, 20, NULL);
		else
			got = moirai_ring_mp_rts_enqueue_bulk_elem(r, in, 16, 20, NULL);
		assert_int_equal(got, 20);
		assert_int_equal(moirai_ring_enqueue_burst_elem(r, in, 16, 1, NULL), 0);
		if (f & MOIRAI_RING_F_SC_DEQ)
			got = moirai_ring_sc_dequeue_burst_elem(r, out, 16, 7, NULL);
		else if (f & MOIRAI_RING_F_MC_DEQ)
			got = moirai_ring_mc_dequeue_burst_elem(r, out, 16, 7, NULL);
		else if (f & MOIRAI_RING_F_MC_HTS_DEQ)
			got = moirai_ring_mc_hts_dequeue_burst_elem(r, out, 16, 7, NULL);
		else
			got = moirai_ring_mc_rts_dequeue_burst_elem(r, out, 16, 7, NULL);
		assert_int_equal(got, 7);
		assert_int_equal(moirai_ring_dequeue_bulk_elem(r, out + 7, 16, 14, NULL), 0);
		assert_int_equal(moirai_ring_dequeue_bulk_elem(r, out + 7, 16, 13, NULL), 13);
		assert_memory_equal(in, out, sizeof(in));
		moirai_ring_destroy(r);
	}
}

/* Every suffix-named wrapper pairs with its rte_ring namesake. */
static void test_all_wrappers(void **state)
{
	struct moirai_ring *c, *rts, *hts;
	void *p[4] = { (void *)1, (void *)2, (void *)3, (void *)4 }, *o[4];
	uint64_t e[4] = { 5, 6, 7, 8 }, eo[4];

	(void)state;
	assert_int_equal(
		moirai_ring_create("w_classic", 8, MOIRAI_NODE_ANY, MOIRAI_RING_F_MPMC_PINNED, &c),
		0);
	assert_int_equal(moirai_ring_create("w_rts", 8, MOIRAI_NODE_ANY, 0, &rts), 0);
	assert_int_equal(moirai_ring_create("w_hts", 8, MOIRAI_NODE_ANY,
					    MOIRAI_RING_F_MP_HTS_ENQ | MOIRAI_RING_F_MC_HTS_DEQ,
					    &hts),
			 0);
	/* classic layout: sp/mp enqueue, sc/mc dequeue all apply. */
	assert_int_equal(moirai_ring_sp_enqueue_bulk(c, p, 2, NULL), 2);
	assert_int_equal(moirai_ring_mp_enqueue_bulk(c, p + 2, 2, NULL), 2);
	assert_int_equal(moirai_ring_sc_dequeue_burst(c, o, 1, NULL), 1);
	assert_int_equal(moirai_ring_mc_dequeue_burst(c, o + 1, 3, NULL), 3);
	assert_memory_equal(p, o, sizeof(p));
	assert_int_equal(moirai_ring_sp_enqueue_burst_elem(c, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_dequeue_bulk_elem(c, eo, 8, 4, NULL), 4);
	assert_memory_equal(e, eo, sizeof(e));
	assert_int_equal(moirai_ring_mp_enqueue_burst_elem(c, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_sc_dequeue_bulk_elem(c, eo, 8, 4, NULL), 4);
	assert_memory_equal(e, eo, sizeof(e));
	/* RTS */
	assert_int_equal(moirai_ring_mp_rts_enqueue_bulk(rts, p, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_rts_dequeue_burst(rts, o, 4, NULL), 4);
	assert_memory_equal(p, o, sizeof(p));
	assert_int_equal(moirai_ring_mp_rts_enqueue_burst_elem(rts, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_rts_dequeue_bulk_elem(rts, eo, 8, 4, NULL), 4);
	assert_memory_equal(e, eo, sizeof(e));
	assert_int_equal(moirai_ring_enqueue_bulk_elem(rts, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_count(rts), 4);
	assert_int_equal(moirai_ring_dequeue_burst_elem(rts, eo, 8, 4, NULL), 4);
	/* HTS */
	assert_int_equal(moirai_ring_mp_hts_enqueue_burst(hts, p, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_hts_dequeue_bulk(hts, o, 4, NULL), 4);
	assert_memory_equal(p, o, sizeof(p));
	assert_int_equal(moirai_ring_mp_hts_enqueue_bulk_elem(hts, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_hts_dequeue_burst_elem(hts, eo, 8, 4, NULL), 4);
	assert_memory_equal(e, eo, sizeof(e));
	assert_int_equal(moirai_ring_sp_enqueue_bulk_elem(c, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_sc_dequeue_burst_elem(c, eo, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_mp_enqueue_bulk_elem(c, e, 8, 4, NULL), 4);
	assert_int_equal(moirai_ring_mc_dequeue_burst_elem(c, eo, 8, 4, NULL), 4);
	assert_ptr_equal(moirai_ring_rte(c), moirai__ring_rte(c));
	moirai_ring_destroy(c);
	moirai_ring_destroy(rts);
	moirai_ring_destroy(hts);
}

/* Index wrap-around: many passes through a tiny ring keep order. */
static void test_wraparound(void **state)
{
	struct moirai_ring *r;
	uintptr_t next_in = 0, next_out = 0;

	(void)state;
	assert_int_equal(moirai_ring_create("wrap", 8, MOIRAI_NODE_ANY, MOIRAI_RING_F_SPSC, &r), 0);
	for (int pass = 0; pass < 100000; pass++) {
		void *b[5];
		unsigned n = (unsigned)(pass % 5) + 1, got;

		for (unsigned i = 0; i < n; i++)
			b[i] = (void *)(next_in + i);
		got = moirai_ring_sp_enqueue_burst(r, b, n, NULL);
		next_in += got;
		got = moirai_ring_sc_dequeue_burst(r, b, 5, NULL);
		for (unsigned i = 0; i < got; i++)
			assert_true(b[i] == (void *)next_out++);
	}
	assert_int_equal(next_in - next_out, moirai_ring_count(r));
	moirai_ring_destroy(r);
}

static int count_cb(struct moirai_ring *r, void *arg)
{
	int *n = arg;

	if (strncmp(moirai_ring_name(r), "reg_", 4) == 0)
		(*n)++;
	return 0;
}

static int stop_cb(struct moirai_ring *r, void *arg)
{
	(void)r;
	(void)arg;
	return 42;
}

static void test_registry(void **state)
{
	struct moirai_ring *a, *b, *dup = (void *)1;
	int n = 0;

	(void)state;
	assert_null(moirai_ring_lookup("reg_a"));
	assert_int_equal(moirai_ring_create("reg_a", 16, MOIRAI_NODE_ANY, 0, &a), 0);
	assert_int_equal(moirai_ring_create("reg_b", 16, MOIRAI_NODE_ANY, 0, &b), 0);
	assert_ptr_equal(moirai_ring_lookup("reg_a"), a);
	assert_ptr_equal(moirai_ring_lookup("reg_b"), b);
	assert_string_equal(moirai_ring_name(a), "reg_a");
	assert_int_equal(moirai_ring_create("reg_a", 16, MOIRAI_NODE_ANY, 0, &dup), -EEXIST);
	assert_null(dup);
	assert_non_null(strstr(moirai_last_error(), "reg_a"));
	assert_int_equal(moirai_ring_foreach(count_cb, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(moirai_ring_foreach(stop_cb, NULL), 42);
	moirai_ring_destroy(a);
	assert_null(moirai_ring_lookup("reg_a"));
	/* The name is free again. */
	assert_int_equal(moirai_ring_create("reg_a", 16, MOIRAI_NODE_ANY, 0, &a), 0);
	n = 0;
	moirai_ring_foreach(count_cb, &n);
	assert_int_equal(n, 2);
	moirai_ring_destroy(a);
	moirai_ring_destroy(b);
	moirai_ring_destroy(NULL);
	assert_null(moirai_ring_lookup(NULL));
}

static void test_init_caller_memory(void **state)
{
	ssize_t sz = moirai_ring_memsize(8, 1000, MOIRAI_RING_F_EXACT_SZ);
	struct moirai_ring *r, *r2;
	struct moirai_ring_info info;
	void *mem, *p[3] = { (void *)7, (void *)8, (void *)9 };

	(void)state;
	assert_true(sz > 1024 * 8);
	assert_int_equal(moirai_ring_memsize(8, 1024, 0),
			 MOIRAI__RING_HDR_SIZE + rte_ring_get_memsize(1024));
	assert_int_equal(posix_memalign(&mem, 64, (size_t)sz), 0);
	memset(mem, 0, (size_t)sz);
	assert_int_equal(
		moirai_ring_init(mem, (size_t)sz - 1, "own", 8, 1000, MOIRAI_RING_F_EXACT_SZ, &r),
		-EINVAL);
	assert_int_equal(moirai_ring_init((char *)mem + 8, (size_t)sz - 8, "own", 8, 16, 0, &r),
			 -EINVAL);
	assert_int_equal(
		moirai_ring_init(mem, (size_t)sz, "own", 8, 1000, MOIRAI_RING_F_EXACT_SZ, &r), 0);
	assert_ptr_equal(r, mem);
	assert_ptr_equal(moirai_ring_lookup("own"), r);
	assert_int_equal(moirai_ring_capacity(r), 1000);
	assert_int_equal(moirai_ring_enqueue_bulk(r, p, 3, NULL), 3);
	assert_int_equal(moirai_ring_info(r, &info), 0);
	assert_true(info.caller_owned);
	assert_int_equal(info.count, 3);
	assert_int_equal(moirai_ring_create("own", 16, MOIRAI_NODE_ANY, 0, &r2), -EEXIST);
	assert_int_equal(moirai_ring_fini(r), 0);
	assert_null(moirai_ring_lookup("own"));
	assert_int_equal(moirai_ring_fini(r), -EINVAL);
	free(mem);

	/* fini refuses a created ring. */
	assert_int_equal(moirai_ring_create("own2", 16, MOIRAI_NODE_ANY, 0, &r2), 0);
	assert_int_equal(moirai_ring_fini(r2), -EINVAL);
	moirai_ring_destroy(r2);
	assert_int_equal(moirai_ring_fini(NULL), 0);
}

/* Ring memory lands on the node asked for, on every allowed node. */
static void test_placement(void **state)
{
	int nodes = moirai_numa_node_count(), tested = 0;

	(void)state;
	for (int node = 0; node < nodes; node++) {
		struct moirai_ring *r;
		struct moirai_ring_info info;
		void *p[32];
		char name[32];

		if (!moirai_numa_node_is_allowed(node))
			continue;
		snprintf(name, sizeof(name), "place%d", node);
		assert_int_equal(moirai_ring_create(name, 1 << 16, node, MOIRAI_RING_F_SPSC, &r),
				 0);
		/* Touch header, ring struct and slots, then ask the kernel. */
		for (unsigned i = 0; i < 32; i++)
			p[i] = (void *)(uintptr_t)i;
		for (int k = 0; k < 4096; k++) {
			assert_int_equal(moirai_ring_sp_enqueue_burst(r, p, 32, NULL), 32);
			assert_int_equal(moirai_ring_sc_dequeue_burst(r, p, 32, NULL), 32);
		}
		assert_int_equal(moirai_numa_page_node(r), node);
		assert_int_equal(moirai_numa_page_node(moirai_ring_rte(r)), node);
		assert_int_equal(moirai_numa_page_node((char *)r + 65536 * 8), node);
		assert_int_equal(moirai_ring_info(r, &info), 0);
		assert_int_equal(info.node, node);
		moirai_ring_destroy(r);
		tested++;
	}
	assert_true(tested >= 1);
	print_message("placement verified on %d node(s)\n", tested);
}

static void test_negative(void **state)
{
	struct moirai_ring *r = (void *)1;
	char longname[MOIRAI_RING_NAME_MAX + 5];
	char buf[4096] __attribute__((aligned(64)));

	(void)state;
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = 0;

	assert_int_equal(moirai_ring_create("n", 16, MOIRAI_NODE_ANY, 0, NULL), -EINVAL);
	assert_int_equal(moirai_ring_create(NULL, 16, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_null(r);
	assert_int_equal(moirai_ring_create("", 16, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_create(longname, 16, MOIRAI_NODE_ANY, 0, &r), -ENAMETOOLONG);
	assert_non_null(strstr(moirai_last_error(), "longer than"));
	/* The longest legal name works. */
	longname[MOIRAI_RING_NAME_MAX] = 0;
	assert_int_equal(moirai_ring_create(longname, 16, MOIRAI_NODE_ANY, 0, &r), 0);
	moirai_ring_destroy(r);

	assert_int_equal(moirai_ring_create("n", 0, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_create("n", 100, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "power of two"));
	assert_int_equal(moirai_ring_create("n", 0x80000000u, MOIRAI_NODE_ANY, 0, &r), -ERANGE);
	assert_non_null(strstr(moirai_last_error(), "limit"));
	assert_int_equal(
		moirai_ring_create("n", 0x40000000u, MOIRAI_NODE_ANY, MOIRAI_RING_F_EXACT_SZ, &r),
		-ERANGE);
	assert_int_equal(moirai_ring_create("n", 16, MOIRAI_NODE_ANY, 0x80000, &r), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "unknown flags"));
	assert_int_equal(moirai_ring_create("n", 16, MOIRAI_NODE_ANY,
					    MOIRAI_RING_F_SP_ENQ | MOIRAI_RING_F_MP_RTS_ENQ, &r),
			 -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "enqueue mode"));
	assert_int_equal(moirai_ring_create("n", 16, MOIRAI_NODE_ANY,
					    MOIRAI_RING_F_MC_DEQ | MOIRAI_RING_F_MC_HTS_DEQ, &r),
			 -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "dequeue mode"));
	assert_int_equal(moirai_ring_create("n", 16, moirai_numa_node_count() + 3, 0, &r), -ENODEV);
	assert_non_null(strstr(moirai_last_error(), "does not exist"));
	assert_int_equal(moirai_ring_create("n", 16, -7, 0, &r), -EINVAL);
	assert_null(moirai_ring_lookup("n"));

	assert_int_equal(moirai_ring_create_elem("n", 0, 16, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_create_elem("n", 6, 16, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "multiple of 4"));

	assert_int_equal(moirai_ring_memsize(8, 100, 0), -EINVAL);
	assert_int_equal(moirai_ring_memsize(3, 16, 0), -EINVAL);
	assert_int_equal(moirai_ring_memsize(8, 16, 0x80000), -EINVAL);
	assert_int_equal(moirai_ring_memsize(8, 0x80000000u, 0), -ERANGE);
	assert_true(moirai_ring_memsize(8, 100, MOIRAI_RING_F_EXACT_SZ) > 0);

	assert_int_equal(moirai_ring_init(NULL, 4096, "n", 8, 16, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), "n", 8, 16, 0, NULL), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), NULL, 8, 16, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), longname, 8, 16, 0, &r), 0);
	assert_int_equal(moirai_ring_init(buf + 128, sizeof(buf) - 128, longname, 8, 16, 0, &r),
			 -EEXIST);
	assert_int_equal(moirai_ring_fini((struct moirai_ring *)buf), 0);
	longname[MOIRAI_RING_NAME_MAX] = 'x';
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), longname, 8, 16, 0, &r), -ENAMETOOLONG);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), "n", 8, 15, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), "n", 5, 16, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), "n", 8, 1024, 0, &r), -EINVAL);
	assert_int_equal(moirai_ring_init(buf, sizeof(buf), "n", 8, 16, 0x3, 0), -EINVAL);
	assert_int_equal(moirai_ring_info(NULL, NULL), -EINVAL);
	assert_int_equal(moirai_ring_foreach(NULL, NULL), -EINVAL);
	assert_string_equal(moirai_ring_name(NULL), "");

	/* Count 1 without EXACT_SZ holds nothing (DPDK keeps one slot
	 * empty): refused; with EXACT_SZ it holds exactly one. */
	assert_int_equal(moirai_ring_create("n", 1, MOIRAI_NODE_ANY, 0, &r), -EINVAL);
	assert_non_null(strstr(moirai_last_error(), "count 1"));
	assert_int_equal(moirai_ring_memsize(8, 1, 0), -EINVAL);
	assert_int_equal(moirai_ring_create("one", 1, MOIRAI_NODE_ANY, MOIRAI_RING_F_EXACT_SZ, &r),
			 0);
	assert_int_equal(moirai_ring_capacity(r), 1);
	moirai_ring_destroy(r);
}

static int count_rings(struct moirai_ring *r, void *arg)
{
	(void)r;
	++*(int *)arg;
	return 0;
}

/*
 * Re-initialising memory that holds a live registered ring used to wipe
 * its header and registry links (a corrupt registry): now -EBUSY, and the
 * live ring stays intact, whatever name or offset the second init uses.
 */
static void test_init_over_live_ring(void **state)
{
	static char buf[16384] __attribute__((aligned(64)));
	struct moirai_ring *r, *r2;
	int before = 0, after = 0;
	ssize_t sz = moirai_ring_memsize(8, 64, 0);
	void *obj = (void *)0x1234, *got;

	(void)state;
	assert_true(sz > 0 && (size_t)sz * 2 < sizeof(buf));
	assert_int_equal(moirai_ring_init(buf, (size_t)sz, "live", 8, 64, 0, &r), 0);
	assert_int_equal(moirai_ring_enqueue_bulk(r, &obj, 1, NULL), 1);
	moirai_ring_foreach(count_rings, &before);
	assert_int_equal(moirai_ring_init(buf, (size_t)sz, "other", 8, 64, 0, &r2), -EBUSY);
	assert_non_null(strstr(moirai_last_error(), "overlaps live ring 'live'"));
	assert_int_equal(moirai_ring_init(buf + 64, (size_t)sz, "other", 8, 64, 0, &r2), -EBUSY);
	/* Memory that starts inside the live ring's tail overlaps too; the
	 * adjacent range does not. */
	assert_int_equal(moirai_ring_init(buf + sz - 64, (size_t)sz, "tail", 8, 64, 0, &r2),
			 -EBUSY);
	assert_int_equal(moirai_ring_init(buf + moirai__align_up((size_t)sz, 64), (size_t)sz,
					  "after", 8, 64, 0, &r2),
			 0);
	assert_int_equal(moirai_ring_fini(r2), 0);
	moirai_ring_foreach(count_rings, &after);
	assert_int_equal(after, before);
	assert_ptr_equal(moirai_ring_lookup("live"), r);
	assert_int_equal(moirai_ring_count(r), 1);
	assert_int_equal(moirai_ring_dequeue_bulk(r, &got, 1, NULL), 1);
	assert_ptr_equal(got, obj);
	assert_int_equal(moirai_ring_fini(r), 0);
	/* Once finished, the memory may be initialised again. */
	assert_int_equal(moirai_ring_init(buf + 64, (size_t)sz, "again", 8, 64, 0, &r2), 0);
	assert_int_equal(moirai_ring_fini(r2), 0);
}

int main(void)
{
	const struct CMUnitTest ring_tests[] = {
		cmocka_unit_test(test_modes_pointer), cmocka_unit_test(test_modes_elem),
		cmocka_unit_test(test_all_wrappers),  cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_registry),      cmocka_unit_test(test_init_caller_memory),
		cmocka_unit_test(test_placement),     cmocka_unit_test(test_init_over_live_ring),
	};
	const struct CMUnitTest negative_tests[] = {
		cmocka_unit_test(test_negative),
	};
	int fails = 0;

	fails += cmocka_run_group_tests_name("ring", ring_tests, NULL, NULL);
	fails += cmocka_run_group_tests_name("ring_negative", negative_tests, NULL, NULL);
	return fails ? 1 : 0;
}
