/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Network channels behind the moirai_chan calls (moirai/net.h,
 * "A network channel as a struct moirai_chan"): a channel backend
 * (ring/chan_backend.h) whose object is one fixed-size endpoint, so that
 * moirai_chan_send/recv/close/is_closed/count/destroy run the moirai_net_*
 * call of the same name.  Only the public net calls are used: the protocol
 * stays in net.c alone.  channel.c has already checked the arguments that
 * every channel checks (NULL, timeout below -1, count 0), so the codes for
 * them are those of a local channel.
 */
#include <errno.h>

#include "../ring/chan_backend.h"
#include "moirai/channel.h"
#include "net_int.h"

static int nc_send(void *impl, const void *msgs, unsigned n, int64_t timeout_ns)
{
	return moirai_net_send(impl, msgs, n, timeout_ns);
}

static int nc_recv(void *impl, void *msgs, unsigned max, int64_t timeout_ns)
{
	return moirai_net_recv(impl, msgs, max, timeout_ns);
}

static int nc_close(void *impl)
{
	return moirai_net_close(impl);
}

static bool nc_is_closed(const void *impl)
{
	return moirai_net_is_closed(impl);
}

static unsigned nc_count(const void *impl)
{
	return moirai_net_count(impl);
}

static void nc_destroy(void *impl)
{
	moirai_net_chan_destroy(impl);
}

static const struct moirai__chan_ops net_chan_ops = {
	.send = nc_send,
	.recv = nc_recv,
	.close = nc_close,
	.is_closed = nc_is_closed,
	.count = nc_count,
	.destroy = nc_destroy,
};

int moirai_net_chan_as_chan(struct moirai_net_chan *ch, struct moirai_chan **out)
{
	if (out)
		*out = NULL;
	if (!ch || !out)
		return moirai__err(-EINVAL, "net as_chan: NULL argument");
	/* moirai_chan calls move whole messages of one size: a variable-length
	 * endpoint has none (moirai_net_sendv/recvv are its calls). */
	if (!moirai_net_elem_size(ch))
		return moirai__err(-EINVAL, "net as_chan: a variable-length channel has no "
					    "fixed message size (open it with opts.elem_size)");
	return moirai__chan_backend_create(&net_chan_ops, ch, moirai_net_elem_size(ch), out);
}

struct moirai_net_chan *moirai_net_chan_of(struct moirai_chan *ch)
{
	return moirai__chan_backend_impl(ch, &net_chan_ops);
}

/* Wrap a fresh endpoint; on failure it is destroyed (the caller never saw it). */
static int wrap(struct moirai_net_chan *nch, struct moirai_chan **out)
{
	int rc = moirai_net_chan_as_chan(nch, out);

	if (rc)
		moirai_net_chan_destroy(nch);
	return rc;
}

int moirai_net_connect_chan(struct moirai_net *net, const char *addr,
			    const struct moirai_net_chan_opts *opts, int64_t timeout_ns,
			    struct moirai_chan **out)
{
	struct moirai_net_chan *nch;
	int rc;

	if (out)
		*out = NULL;
	if (!out)
		return moirai__err(-EINVAL, "net connect_chan: NULL out");
	/* Refused before connecting: a handshake for a channel that cannot be
	 * wrapped would only be torn down again. */
	if (!opts || !opts->elem_size)
		return moirai__err(-EINVAL, "net connect_chan: a moirai_chan needs a fixed "
					    "message size (opts.elem_size)");
	rc = moirai_net_connect(net, addr, opts, timeout_ns, &nch);
	return rc ? rc : wrap(nch, out);
}

int moirai_net_accept_chan(struct moirai_net_listener *l, int64_t timeout_ns,
			   struct moirai_chan **out)
{
	struct moirai_net_chan *nch;
	int rc;

	if (out)
		*out = NULL;
	if (!out)
		return moirai__err(-EINVAL, "net accept_chan: NULL out");
	/* Refused before taking a connection that would only be closed. */
	if (l && !l->opts.elem_size)
		return moirai__err(-EINVAL,
				   "net accept_chan: the listener is variable-length; a "
				   "moirai_chan needs a fixed message size (opts.elem_size)");
	rc = moirai_net_accept(l, timeout_ns, &nch);
	return rc ? rc : wrap(nch, out);
}
