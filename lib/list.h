/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Intrusive doubly linked list with a sentinel head (the kernel's
 * list_head shape): O(1) insert and unlink without a search, no allocation,
 * and no special case for the first or last element.  Not thread-safe:
 * every list is guarded by its owner's lock or owned by one thread.
 */
#ifndef MOIRAI_LIST_H
#define MOIRAI_LIST_H

#include <stdbool.h>
#include <stddef.h>

#include "internal.h"

struct moirai__list {
	struct moirai__list *next, *prev;
};

/* A head (or an unlinked node) points at itself. */
#define MOIRAI__LIST_INIT(name)  \
	{                        \
		&(name), &(name) \
	}

static inline void moirai__list_init(struct moirai__list *l)
{
	l->next = l->prev = l;
}

static inline bool moirai__list_empty(const struct moirai__list *head)
{
	return head->next == head;
}

/* Whether @n is on some list (unlinked nodes point at themselves). */
static inline bool moirai__list_linked(const struct moirai__list *n)
{
	return n->next != n;
}

static inline void moirai__list_insert(struct moirai__list *n, struct moirai__list *prev,
				       struct moirai__list *next)
{
	n->prev = prev;
	n->next = next;
	prev->next = n;
	next->prev = n;
}

static inline void moirai__list_add_head(struct moirai__list *head, struct moirai__list *n)
{
	moirai__list_insert(n, head, head->next);
}

static inline void moirai__list_add_tail(struct moirai__list *head, struct moirai__list *n)
{
	moirai__list_insert(n, head->prev, head);
}

/* Unlink @n and leave it self-pointing, so a second del is harmless. */
static inline void moirai__list_del(struct moirai__list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	moirai__list_init(n);
}

/* The struct of type @type whose member @member is the node @n. */
#define moirai__list_entry(n, type, member) moirai__container_of(n, type, member)

/* First entry, or NULL on an empty list. */
#define moirai__list_first(head, type, member) \
	(moirai__list_empty(head) ? NULL : moirai__list_entry((head)->next, type, member))

/* Walk the nodes; @it must not be unlinked inside the loop. */
#define moirai__list_foreach(it, head) for ((it) = (head)->next; (it) != (head); (it) = (it)->next)

/* Walk the nodes; @it may be unlinked (or freed) inside the loop. */
#define moirai__list_foreach_safe(it, tmp, head)                      \
	for ((it) = (head)->next, (tmp) = (it)->next; (it) != (head); \
	     (it) = (tmp), (tmp) = (it)->next)

#endif /* MOIRAI_LIST_H */
