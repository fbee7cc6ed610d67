/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Rings: creation, caller-owned initialisation, sizing and teardown of
 * moirai rings on top of rte_ring.  This file validates input (every bad
 * argument gets its own -errno and message), maps MOIRAI_RING_* flags to
 * RING_F_* flags, lays out the moirai header in front of the rte_ring, and
 * calls rte_ring_init() on that memory.  The ring algorithm itself is
 * DPDK's and runs in the inline wrappers of moirai/ring_inline.h.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "moirai/alloc.h"
#include "moirai/numa.h"
#include "ring_int.h"

#define ENQ_MODES                                                                 \
	(MOIRAI_RING_F_SP_ENQ | MOIRAI_RING_F_MP_ENQ | MOIRAI_RING_F_MP_RTS_ENQ | \
	 MOIRAI_RING_F_MP_HTS_ENQ)
#define DEQ_MODES                                                                 \
	(MOIRAI_RING_F_SC_DEQ | MOIRAI_RING_F_MC_DEQ | MOIRAI_RING_F_MC_RTS_DEQ | \
	 MOIRAI_RING_F_MC_HTS_DEQ)
#define ALL_FLAGS (ENQ_MODES | DEQ_MODES | MOIRAI_RING_F_EXACT_SZ)

static bool one_bit(unsigned v)
{
	return v && !(v & (v - 1));
}

/*
 * Check @flags and fill in the default modes (RTS on a side with no mode
 * named: see the @file block of ring.h for why).  Returns the resolved
 * flags in *resolved and the RING_F_* flags in *rte.
 */
static int resolve_flags(unsigned flags, unsigned *resolved, unsigned *rte)
{
	unsigned enq = flags & ENQ_MODES, deq = flags & DEQ_MODES;
	unsigned out = 0;

	if (flags & ~ALL_FLAGS)
		return moirai__err(-EINVAL, "ring: unknown flags 0x%x", flags & ~ALL_FLAGS);
	if (enq && !one_bit(enq))
		return moirai__err(-EINVAL, "ring: flags 0x%x name more than one enqueue mode",
				   flags);
	if (deq && !one_bit(deq))
		return moirai__err(-EINVAL, "ring: flags 0x%x name more than one dequeue mode",
				   flags);
	if (!enq)
		enq = MOIRAI_RING_F_MP_RTS_ENQ;
	if (!deq)
		deq = MOIRAI_RING_F_MC_RTS_DEQ;
	*resolved = enq | deq | (flags & MOIRAI_RING_F_EXACT_SZ);

	/* MP and MC are DPDK's default: no RING_F_ bit. */
	if (enq == MOIRAI_RING_F_SP_ENQ)
		out |= RING_F_SP_ENQ;
	else if (enq == MOIRAI_RING_F_MP_RTS_ENQ)
		out |= RING_F_MP_RTS_ENQ;
	else if (enq == MOIRAI_RING_F_MP_HTS_ENQ)
		out |= RING_F_MP_HTS_ENQ;
	if (deq == MOIRAI_RING_F_SC_DEQ)
		out |= RING_F_SC_DEQ;
	else if (deq == MOIRAI_RING_F_MC_RTS_DEQ)
		out |= RING_F_MC_RTS_DEQ;
	else if (deq == MOIRAI_RING_F_MC_HTS_DEQ)
		out |= RING_F_MC_HTS_DEQ;
	if (flags & MOIRAI_RING_F_EXACT_SZ)
		out |= RING_F_EXACT_SZ;
	*rte = out;
	return 0;
}

/* Slots the rte_ring really has for @count under @flags (DPDK's rule). */
static int ring_slots(unsigned count, unsigned flags, unsigned *slots)
{
	if (count == 0)
		return moirai__err(-EINVAL, "ring: count must not be 0");
	if (flags & MOIRAI_RING_F_EXACT_SZ) {
		/* rte_ring_init rounds count + 1 up to a power of two. */
		if (count >= (MOIRAI_RING_MAX_COUNT + 1u) / 2)
			return moirai__err(-ERANGE, "ring: exact count %u is over the limit %u",
					   count, (MOIRAI_RING_MAX_COUNT + 1u) / 2 - 1);
		*slots = rte_align32pow2(count + 1);
		return 0;
	}
	if (count > MOIRAI_RING_MAX_COUNT)
		return moirai__err(-ERANGE, "ring: count %u is over the limit %u", count,
				   (unsigned)MOIRAI_RING_MAX_COUNT);
	if (count & (count - 1))
		return moirai__err(
			-EINVAL,
			"ring: count %u is not a power of two (use MOIRAI_RING_F_EXACT_SZ "
			"for an exact size)",
			count);
	/* DPDK's rule leaves count - 1 usable: a ring that holds nothing
	 * would make a send without timeout wait forever. */
	if (count == 1)
		return moirai__err(-EINVAL,
				   "ring: count 1 holds no object (a power-of-two ring holds count "
				   "- 1; use 2, or MOIRAI_RING_F_EXACT_SZ for exactly 1)");
	*slots = count;
	return 0;
}

static int check_esize(unsigned esize)
{
	if (esize == 0 || esize % 4 != 0)
		return moirai__err(-EINVAL, "ring: element size %u is not a non-zero multiple of 4",
				   esize);
	return 0;
}

static int check_name(const char *name)
{
	size_t len;

	if (!name)
		return moirai__err(-EINVAL, "ring: NULL name");
	len = strnlen(name, MOIRAI_RING_NAME_MAX + 1);
	if (len == 0)
		return moirai__err(-EINVAL, "ring: empty name");
	if (len > MOIRAI_RING_NAME_MAX)
		return moirai__err(-ENAMETOOLONG,
				   "ring: name '%.*s...' is longer than %d characters",
				   MOIRAI_RING_NAME_MAX, name, MOIRAI_RING_NAME_MAX);
	return 0;
}

ssize_t moirai_ring_memsize(unsigned esize, unsigned count, unsigned flags)
{
	unsigned resolved, rte, slots = 0;
	ssize_t sz;
	int rc;

	rc = resolve_flags(flags, &resolved, &rte);
	if (rc)
		return rc;
	rc = check_esize(esize);
	if (rc)
		return rc;
	rc = ring_slots(count, flags, &slots);
	if (rc)
		return rc;
	sz = rte_ring_get_memsize_elem(esize, slots);
	if (sz < 0)
		return moirai__err((int)sz, "ring: rte_ring_get_memsize_elem(%u, %u) failed", esize,
				   slots);
	return (ssize_t)MOIRAI__RING_HDR_SIZE + sz;
}

/*
 * Lay out the header and initialise the rte_ring at @mem (already
 * validated), then enter it in the registry.  On failure the memory is left
 * to the caller.
 */
static int ring_setup(void *mem, size_t memsize, size_t maplen, const char *name, unsigned esize,
		      unsigned count, unsigned resolved, unsigned rte_flags, int node,
		      struct moirai_ring **out)
{
	struct moirai_ring *r = mem;
	struct rte_ring *rr = moirai__ring_rte(r);
	int rc;

	/* Under the registry lock from the overlap check to the insert, so a
	 * live ring's header (and its registry links) is never wiped. */
	moirai__ring_registry_lock();
	rc = moirai__ring_check_free_locked(mem, memsize, name);
	if (rc)
		goto out_unlock;
	memset(r, 0, MOIRAI__RING_HDR_SIZE);
	r->magic = MOIRAI__RING_MAGIC;
	r->node = node;
	r->flags = resolved;
	r->esize = esize;
	r->memsize = memsize;
	r->maplen = maplen;
	strcpy(r->name, name); /* length checked by check_name() */
	rc = rte_ring_init(rr, name, count, rte_flags);
	if (rc) {
		r->magic = 0;
		rc = moirai__err(rc, "ring: rte_ring_init('%s', %u, 0x%x) failed: %s", name, count,
				 rte_flags, moirai_strerror(rc));
		goto out_unlock;
	}
	moirai__ring_register_locked(r);
	moirai_assert_internal(moirai__ring_is_valid(r));
	*out = r;
out_unlock:
	moirai__ring_registry_unlock();
	return rc;
}

/* What create and init both check: name, flags and the size they imply. */
static int check_args(const char *name, unsigned esize, unsigned count, unsigned flags,
		      unsigned *resolved, unsigned *rte_flags, ssize_t *sz)
{
	int rc = check_name(name);

	if (rc)
		return rc;
	rc = resolve_flags(flags, resolved, rte_flags);
	if (rc)
		return rc;
	*sz = moirai_ring_memsize(esize, count, flags);
	return *sz < 0 ? (int)*sz : 0;
}

int moirai_ring_create_elem(const char *name, unsigned esize, unsigned count, int node,
			    unsigned flags, struct moirai_ring **out)
{
	unsigned resolved, rte_flags;
	ssize_t sz;
	void *mem;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "ring: NULL out pointer");
	*out = NULL;
	rc = check_args(name, esize, count, flags, &resolved, &rte_flags, &sz);
	if (rc)
		return rc;
	node = moirai_numa_node_resolve(node);
	if (node < 0)
		return moirai__err(node, "ring '%s': %s", name, moirai_last_error());
	/* Cheap early check; ring_setup() re-checks under the registry lock. */
	if (moirai_ring_lookup(name))
		return moirai__err(-EEXIST, "ring: name '%s' is already in use", name);
	rc = moirai__ring_mem_acquire((size_t)sz, node, &mem);
	if (rc)
		return rc;
	rc = ring_setup(mem, (size_t)sz, (size_t)sz, name, esize, count, resolved, rte_flags, node,
			out);
	if (rc)
		goto err_release_mem;
	return 0;

err_release_mem:
	moirai__ring_mem_release(mem, (size_t)sz);
	return rc;
}

int moirai_ring_create(const char *name, unsigned count, int node, unsigned flags,
		       struct moirai_ring **out)
{
	return moirai_ring_create_elem(name, sizeof(void *), count, node, flags, out);
}

int moirai_ring_init(void *mem, size_t len, const char *name, unsigned esize, unsigned count,
		     unsigned flags, struct moirai_ring **out)
{
	unsigned resolved, rte_flags;
	ssize_t sz;
	int rc, node;

	if (!out)
		return moirai__err(-EINVAL, "ring: NULL out pointer");
	*out = NULL;
	if (!mem)
		return moirai__err(-EINVAL, "ring: NULL memory");
	if ((uintptr_t)mem % MOIRAI_CACHE_LINE)
		return moirai__err(-EINVAL, "ring: memory %p is not aligned to %d bytes", mem,
				   MOIRAI_CACHE_LINE);
	rc = check_args(name, esize, count, flags, &resolved, &rte_flags, &sz);
	if (rc)
		return rc;
	if (len < (size_t)sz)
		return moirai__err(-EINVAL,
				   "ring '%s': %zu bytes given, %zd needed (moirai_ring_memsize)",
				   name, len, sz);
	/* Caller-owned: report where the first page is, if it is present. */
	node = moirai_numa_page_node(mem);
	if (node < 0) {
		node = -1;
		moirai_clear_error();
	}
	return ring_setup(mem, (size_t)sz, 0, name, esize, count, resolved, rte_flags, node, out);
}

int moirai_ring_fini(struct moirai_ring *r)
{
	int rc;

	if (!r)
		return 0;
	if (r->magic != MOIRAI__RING_MAGIC)
		return moirai__err(-EINVAL, "ring: %p is not a ring", (void *)r);
	if (r->maplen)
		return moirai__err(
			-EINVAL, "ring '%s' came from moirai_ring_create: use moirai_ring_destroy",
			r->name);
	rc = moirai__ring_unregister(r);
	if (rc)
		return rc;
	r->magic = 0;
	return 0;
}

void moirai_ring_destroy(struct moirai_ring *r)
{
	size_t maplen;

	if (!r || r->magic != MOIRAI__RING_MAGIC)
		return;
	moirai_assert_internal(moirai__ring_is_valid(r));
	maplen = r->maplen;
	if (moirai__ring_unregister(r))
		return;
	r->magic = 0;
	if (maplen)
		moirai__ring_mem_release(r, maplen);
}

int moirai_ring_info(const struct moirai_ring *r, struct moirai_ring_info *out)
{
	if (!r || !out)
		return moirai__err(-EINVAL, "ring: NULL argument to moirai_ring_info");
	memset(out, 0, sizeof(*out));
	memcpy(out->name, r->name, sizeof(out->name));
	out->node = r->node;
	out->flags = r->flags;
	out->esize = r->esize;
	out->capacity = moirai_ring_capacity(r);
	out->count = moirai_ring_count(r);
	out->memsize = r->memsize;
	out->caller_owned = r->maplen == 0;
	return 0;
}

const char *moirai_ring_name(const struct moirai_ring *r)
{
	return r ? r->name : "";
}

bool moirai__ring_is_valid(const struct moirai_ring *r)
{
	const struct rte_ring *rr;

	if (!r || r->magic != MOIRAI__RING_MAGIC)
		return false;
	rr = moirai__ring_rte(r);
	if (strcmp(r->name, rr->name) != 0)
		return false;
	if (rr->size == 0 || (rr->size & rr->mask) != 0 || rr->capacity > rr->mask)
		return false;
	if (moirai_ring_count(r) > rr->capacity)
		return false;
	return r->memsize >= MOIRAI__RING_HDR_SIZE + sizeof(*rr) + (size_t)rr->size * r->esize;
}

/*
 * The memory seam of the ring layer (rings, channels, pools): the node's
 * arena, bound before first touch and on hugepages when the system has them,
 * cache-line aligned as rte_ring requires.  Not zeroed: each user
 * initialises its header, and a pool's objects are left untouched so their
 * pages fault in where they are first used.  Strict placement: memory asked
 * for on a node the cgroup forbids fails rather than living elsewhere.
 */
int moirai__ring_mem_acquire(size_t len, int node, void **out)
{
	*out = moirai_malloc_node_flags(len, MOIRAI_CACHE_LINE, node, 0);
	return *out ? 0 : -errno;
}

void moirai__ring_mem_release(void *mem, size_t len)
{
	(void)len;
	moirai_free(mem);
}
