/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Channel backends: a struct moirai_chan whose calls go to something other
 * than a local ring (net/net_chan.c: one end of a network channel).
 *
 * Private to the library, never installed.  ring/ may not include a later
 * layer, so the backend is a table of functions that the later layer fills
 * in and hands down; tools/layer-check.py lets net/ (and only later
 * layers) include this one header of ring/ (PRIVATE_EXPORTS there).
 *
 * moirai_chan_send/recv/close/is_closed/count/destroy test the channel's
 * ops pointer (NULL for a local channel, on the handle's first cache line,
 * read-only after create) once, after their argument checks, and call the
 * backend when it is set: a local channel pays one predictable branch.
 * Arguments are checked by channel.c before the call (NULL handle or
 * buffer, a timeout below -1, a count of 0), so every backend returns the
 * same -EINVAL as a local channel for them; @c n and @c max arrive
 * non-zero and at most INT_MAX.  elem_size comes from the handle,
 * moirai_chan_ring() is NULL and moirai_chan_stats() reads zeros.
 */
#ifndef MOIRAI_CHAN_BACKEND_H
#define MOIRAI_CHAN_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "moirai/channel.h"

struct moirai__chan_ops {
	/* Same returns as moirai_chan_send() / _recv(), plus the backend's
	 * own failures (a network channel: -ECONNRESET, -EPROTO). */
	int (*send)(void *impl, const void *msgs, unsigned n, int64_t timeout_ns);
	int (*recv)(void *impl, void *msgs, unsigned max, int64_t timeout_ns);
	/* 0, or -EALREADY. */
	int (*close)(void *impl);
	bool (*is_closed)(const void *impl);
	/* Messages a receive on this handle would find now. */
	unsigned (*count)(const void *impl);
	/* Releases @impl (moirai_chan_destroy()). */
	void (*destroy)(void *impl);
};

/*
 * Make a channel handle for a backend: @ops (static, outlives the handle)
 * and @impl, owned by the handle from now on (ops->destroy releases it in
 * moirai_chan_destroy()).  @elem_size is what moirai_chan_elem_size()
 * returns.  Returns 0; -EINVAL a NULL argument or elem_size 0; -ENOMEM.
 * On an error @impl is left to the caller.
 */
int moirai__chan_backend_create(const struct moirai__chan_ops *ops, void *impl, unsigned elem_size,
				struct moirai_chan **out);

/* The backend object of @ch if @ch is a handle of @ops, else NULL. */
void *moirai__chan_backend_impl(const struct moirai_chan *ch, const struct moirai__chan_ops *ops);

#endif /* MOIRAI_CHAN_BACKEND_H */
