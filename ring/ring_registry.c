/*
 * Ring registry: the process-wide list of rings by name, so that tools and
 * stats can find a ring (moirai_ring_lookup) or walk them all
 * (moirai_ring_foreach).  A mutex guards a doubly linked list threaded
 * through the ring headers; it is touched only by create, init, destroy,
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
static struct moirai_ring *registry_head;
static struct moirai_ring *registry_tail;

static struct moirai_ring *find_locked(const char *name)
{
	for (struct moirai_ring *r = registry_head; r; r = r->reg_next)
		if (strcmp(r->name, name) == 0)
			return r;
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

	if (find_locked(name))
		return moirai__err(-EEXIST, "ring: name '%s' is already in use", name);
	for (struct moirai_ring *r = registry_head; r; r = r->reg_next) {
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
	r->reg_next = NULL;
	r->reg_prev = registry_tail;
	if (registry_tail)
		registry_tail->reg_next = r;
	else
		registry_head = r;
	registry_tail = r;
}

int moirai__ring_unregister(struct moirai_ring *r)
{
	struct moirai_ring *it;

	pthread_mutex_lock(&registry_lock);
	for (it = registry_head; it && it != r; it = it->reg_next)
		;
	if (!it) {
		pthread_mutex_unlock(&registry_lock);
		return moirai__err(-EINVAL, "ring '%s' is not registered", r->name);
	}
	if (r->reg_prev)
		r->reg_prev->reg_next = r->reg_next;
	else
		registry_head = r->reg_next;
	if (r->reg_next)
		r->reg_next->reg_prev = r->reg_prev;
	else
		registry_tail = r->reg_prev;
	r->reg_next = r->reg_prev = NULL;
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
	int rc = 0;

	if (!fn)
		return moirai__err(-EINVAL, "ring: NULL callback to moirai_ring_foreach");
	pthread_mutex_lock(&registry_lock);
	for (struct moirai_ring *r = registry_head; r && !rc; r = r->reg_next)
		rc = fn(r, arg);
	pthread_mutex_unlock(&registry_lock);
	return rc;
}
