/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Ring registry: the process-wide list of rings by name, so that tools and
 * stats can find a ring (moirai_ring_lookup) or walk them all
 * (moirai_ring_foreach).  A mutex guards an intrusive list (lib/list.h)
 * threaded through the ring headers; it is touched only by create, init, destroy,
 * fini and the lookups, never by the fast path.  Setup checks the name and
 * the memory range and inserts under one lock hold, which is what makes
 * names unique and keeps init from wiping a live ring.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include "ring_int.h"

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static struct moirai__list registry = MOIRAI__LIST_INIT(registry);

#define reg_entry(it) moirai__list_entry(it, struct moirai_ring, reg)

static struct moirai_ring *find_locked(const char *name)
{
	struct moirai__list *it;

	moirai__list_foreach(it, &registry) {
		if (strcmp(reg_entry(it)->name, name) == 0)
			return reg_entry(it);
	}
	return NULL;
}

void moirai__ring_registry_lock(void)
{
	pthread_mutex_lock(&registry_lock);
}

void moirai__ring_registry_unlock(void)
{
	pthread_mutex_unlock(&registry_lock);
}

int moirai__ring_check_free_locked(const void *mem, size_t len, const char *name)
{
	uintptr_t lo = (uintptr_t)mem, hi = lo + len;
	struct moirai__list *it;

	if (find_locked(name))
		return moirai__err(-EEXIST, "ring: name '%s' is already in use", name);
	moirai__list_foreach(it, &registry) {
		struct moirai_ring *r = reg_entry(it);
		uintptr_t rlo = (uintptr_t)r, rhi = rlo + r->memsize;

		if (lo < rhi && rlo < hi)
			return moirai__err(-EBUSY,
					   "ring: memory %p..%p overlaps live ring '%s' (fini it "
					   "first)",
					   mem, (void *)hi, r->name);
	}
	return 0;
}

void moirai__ring_register_locked(struct moirai_ring *r)
{
	/* Append, so that moirai_ring_foreach() walks in creation order. */
	moirai__list_add_tail(&registry, &r->reg);
}

int moirai__ring_unregister(struct moirai_ring *r)
{
	struct moirai__list *it;

	pthread_mutex_lock(&registry_lock);
	/* Search rather than trust r->reg: r may be a stale or foreign pointer. */
	moirai__list_foreach(it, &registry)
		if (it == &r->reg)
			break;
	if (it != &r->reg) {
		pthread_mutex_unlock(&registry_lock);
		return moirai__err(-EINVAL, "ring '%s' is not registered", r->name);
	}
	moirai__list_del(&r->reg);
	pthread_mutex_unlock(&registry_lock);
	return 0;
}

struct moirai_ring *moirai_ring_lookup(const char *name)
{
	struct moirai_ring *r;

	if (!name)
		return NULL;
	pthread_mutex_lock(&registry_lock);
	r = find_locked(name);
	pthread_mutex_unlock(&registry_lock);
	return r;
}

int moirai_ring_foreach(int (*fn)(struct moirai_ring *r, void *arg), void *arg)
{
	struct moirai__list *it;
	int rc = 0;

	if (!fn)
		return moirai__err(-EINVAL, "ring: NULL callback to moirai_ring_foreach");
	pthread_mutex_lock(&registry_lock);
	moirai__list_foreach(it, &registry) {
		rc = fn(reg_entry(it), arg);
		if (rc)
			break;
	}
	pthread_mutex_unlock(&registry_lock);
	return rc;
}
