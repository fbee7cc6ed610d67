/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/net.h
 * @brief Network channels: the channel vocabulary of moirai/channel.h
 *        between processes and hosts, on UCX active messages.
 *
 * Design: a struct moirai_net is one UCX context and one UCX worker, owned
 * by one thread: a runtime worker (@c config.rt: its progress then runs as
 * a poller of that worker, which reports busy/idle as ucp_worker_progress()
 * does and arms the UCX worker before the runtime worker parks, so an
 * arriving message wakes it) or any other thread (progress then happens
 * inside the calls).  Every call on a net, its listeners and its channels
 * comes from that thread: the fast path takes no lock.
 *
 * A network channel joins two endpoints, one from moirai_net_connect() to
 * an address `tcp://HOST:PORT`, one from moirai_net_accept() on a
 * listener.  Each endpoint sends and receives (one stream each way), with
 * the return codes of moirai_chan_send() / moirai_chan_recv(): a count,
 * -EAGAIN (try), -ETIMEDOUT, -EPIPE (closed / end of stream), -EINVAL.
 * Messages are copied by value: either of one fixed size (@c elem_size, a
 * non-zero multiple of 4, moirai_net_send() / moirai_net_recv()) or of
 * variable length up to @c max_msg bytes with their length
 * (moirai_net_sendv() / moirai_net_recvv()).  A burst goes out as one UCX
 * active message while it fits in MOIRAI_NET_AM_MAX bytes; with
 * moirai_net_chan_opts.coalesce, so do consecutive sends.  Messages
 * arrive exactly once and in the order each endpoint sent them.
 *
 * Flow control: each endpoint receives into a queue of @c window messages
 * and grants its peer that many credits; a message consumed by a receive
 * returns its credit (in batches of a quarter window).  A sender out of
 * credit gets -EAGAIN (try) or waits: nothing is buffered beyond the
 * window, nothing is dropped.
 *
 * Close: moirai_net_close() on either endpoint closes the channel in both
 * directions, as moirai_chan_close() closes a local channel: later sends
 * on both sides fail with -EPIPE; each side's receives still get every
 * message the other side's sends accepted, then -EPIPE (end of stream).
 *
 * Peer failure: a peer process that dies or a connection that breaks shows
 * up as -ECONNRESET on the next send; receives first drain what arrived,
 * then return -ECONNRESET (-EPIPE instead once the peer had closed
 * cleanly).  Destroy the channel and connect again to reconnect.
 *
 * Handshake: a connect sends magic, protocol version, message size and
 * window; a peer of another version, another message size or no moirai
 * peer at all is refused with a clear error on both sides.
 *
 * A network channel as a struct moirai_chan: moirai_net_connect_chan() and
 * moirai_net_accept_chan() (or moirai_net_chan_as_chan() on an endpoint)
 * give a fixed-size endpoint as a struct moirai_chan, so code written
 * against moirai_chan_send/recv/close/is_closed/elem_size/count/stats/
 * destroy runs unchanged on one end of a network channel; only the open
 * differs.  The calls keep the codes of a local channel, argument checks
 * included (channel.c makes them before handing over), with these
 * differences, which a connection between two parties cannot avoid:
 *  - It is one end of a two-way connection: what this end sends, the
 *    other end receives (a local channel is one queue for every holder).
 *  - What the peer does is seen after progress (a waiting call, or any
 *    call with a timeout, or moirai_net_progress()): a receive with
 *    timeout 0 may find -EAGAIN while messages or the peer's close are on
 *    the way; with a timeout it waits for them.  A close by the peer stops
 *    this end's sends only once its FIN has arrived: messages sent in
 *    between are accepted and the closer still receives them (drain), so
 *    nothing is lost or duplicated, but -EPIPE comes later than on a local
 *    channel.  moirai_chan_close() is -EALREADY once either end closed and
 *    this end has heard of it.
 *  - moirai_chan_send() and _recv() can also return -ECONNRESET (the peer
 *    failed; receives first drain what arrived) and -EPROTO (the peer broke
 *    the protocol); moirai_chan_is_closed() is true after a failure too.
 *  - Capacity is the window (@c opts.window messages, where a local
 *    channel of @c count slots holds count - 1), and credit returns in
 *    batches of a quarter window: a sender facing a full window may wait
 *    until the receiver took that many, not just one.
 *  - moirai_chan_count() is what arrived at this end and is unread;
 *    moirai_chan_ring() is NULL; moirai_chan_stats() reads zeros (the
 *    network counters are moirai_net_chan_stats() on moirai_net_chan_of()).
 *  - Calls come from the net's owner thread only (a local channel is
 *    MPMC); destroy the moirai_chan before its net.
 * On a local channel the backend costs one never-taken branch per call.
 */
#ifndef MOIRAI_NET_H
#define MOIRAI_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct moirai_rt;
/** Opaque UCX context + worker, owned by one thread. */
struct moirai_net;
/** Opaque listener on an address. */
struct moirai_net_listener;
/** Opaque network channel endpoint. */
struct moirai_net_chan;
/** A channel of moirai/channel.h (a network endpoint can be one). */
struct moirai_chan;

/** The wire protocol version this library speaks (in the handshake). */
#define MOIRAI_NET_PROTO_VERSION 1u
/** Largest message (fixed or variable), bytes. */
#define MOIRAI_NET_MSG_MAX (64u * 1024u)
/** Largest active message a burst is coalesced into, bytes. */
#define MOIRAI_NET_AM_MAX (64u * 1024u)
/** Largest window (messages in flight per direction). */
#define MOIRAI_NET_WINDOW_MAX 65536u
/** Longest address string, not counting the NUL. */
#define MOIRAI_NET_ADDR_MAX 255

/** Configuration of a net; zeroed means defaults. */
struct moirai_net_config {
	/** Runtime whose current worker owns the net (moirai_net_create()
	 *  must then be called from a worker of it); NULL: the calling
	 *  thread owns it and no poller is registered. */
	struct moirai_rt *rt;
	/** UCX transports, as UCX_TLS takes them ("tcp", "tcp,posix", ...);
	 *  NULL: the UCX_TLS environment variable, else UCX's choice. */
	const char *transports;
};

/** Options of a channel endpoint (connect and listen); zeroed = defaults. */
struct moirai_net_chan_opts {
	/** Fixed message size, a multiple of 4 up to MOIRAI_NET_MSG_MAX; 0:
	 *  variable-length messages (moirai_net_sendv()/moirai_net_recvv()). */
	unsigned elem_size;
	/** Variable-length mode: the largest message, 1..MOIRAI_NET_MSG_MAX;
	 *  0 = 2048.  Ignored with @c elem_size. */
	unsigned max_msg;
	/** Messages this endpoint can hold received and unread (the credits
	 *  its peer gets), 1..MOIRAI_NET_WINDOW_MAX; 0 = 1024. */
	unsigned window;
	/** Send coalescing, bytes up to MOIRAI_NET_AM_MAX; 0 = off: every
	 *  send hands what it accepted to UCX before it returns.  Else the
	 *  messages of consecutive sends gather into one active message of up
	 *  to this many bytes (and a quarter of the peer's window) that
	 *  leaves when it is full or at the owner's next receive on any
	 *  endpoint of the net, moirai_net_progress() (the runtime poller
	 *  calls it), send that waits for credit, close or destroy.
	 *  Meanwhile moirai_net_arm() is -EBUSY.  For streams of small messages: one
	 *  system call and TCP segment per active message instead of per
	 *  send (docs/net.md, "Coalescing").  Local to this endpoint. */
	unsigned coalesce;
};

/** Counters of one endpoint (a snapshot). */
struct moirai_net_chan_stats {
	uint64_t msgs_sent;	/**< messages accepted by sends */
	uint64_t msgs_received; /**< messages handed to receives */
	uint64_t ams_sent;	/**< UCX active messages carrying them */
	uint64_t ams_received;	/**< data active messages received */
	uint64_t window_full;	/**< sends that found no credit */
	uint64_t credits_sent;	/**< credit messages sent back */
};

/**
 * Create a net: a UCX context and worker for the calling thread.
 * @param config NULL for defaults (see struct moirai_net_config).
 * @param[out] out the net.
 * @return 0; -EINVAL NULL @p out, or @c config->rt set but not called
 *         from a worker of it; -ENODEV UCX found no usable transport;
 *         -ENOMEM; other -errno from UCX (moirai_last_error() says which).
 *         Thread-safe; the net belongs to the calling thread.
 */
MOIRAI_API int moirai_net_create(const struct moirai_net_config *config, struct moirai_net **out);

/**
 * Destroy a net with every listener and channel still open on it (their
 * handles become invalid).  Owner thread only.
 * @param net the net; NULL is a no-op.
 */
MOIRAI_API void moirai_net_destroy(struct moirai_net *net);

/**
 * Make progress once: deliver what arrived, complete sends, accept
 * connections.  Blocking calls and the runtime poller call it; a thread
 * with its own event loop calls it when moirai_net_fd() is readable.
 * @param net the net.
 * @return > 0 something was done, 0 nothing; -EINVAL NULL.  Owner only.
 */
MOIRAI_API int moirai_net_progress(struct moirai_net *net);

/**
 * The net's event file descriptor (for an event loop of the owner): after
 * moirai_net_arm() returned 0 it turns readable when there is progress to
 * make.
 * @param net the net.
 * @return the fd (owned by the net); -EINVAL NULL.  Owner only.
 */
MOIRAI_API int moirai_net_fd(const struct moirai_net *net);

/**
 * Arm the event fd before sleeping on it.
 * @param net the net.
 * @return 0 armed; -EBUSY events are pending or coalesced messages wait
 *         to be sent (call moirai_net_progress() first); -EINVAL NULL.
 *         Owner only.
 */
MOIRAI_API int moirai_net_arm(struct moirai_net *net);

/**
 * Listen on @p addr (`tcp://HOST:PORT`; HOST an IPv4 address, `[IPv6]`
 * or a name; PORT 0 picks a free port, see moirai_net_listener_port()).
 * @param net the net.
 * @param addr the address.
 * @param opts options every accepted channel gets (NULL: defaults); a
 *        connecting peer must ask for the same message size.
 * @param[out] out the listener.
 * @return 0; -EINVAL NULL or unparsable address or bad options;
 *         -EADDRNOTAVAIL HOST does not resolve; -EADDRINUSE; -ENOMEM;
 *         other -errno from UCX.  Owner only.
 */
MOIRAI_API int moirai_net_listen(struct moirai_net *net, const char *addr,
				 const struct moirai_net_chan_opts *opts,
				 struct moirai_net_listener **out);

/**
 * The port a listener is bound to.
 * @param l the listener.
 * @return the port (1..65535); -EINVAL NULL.  Owner only.
 */
MOIRAI_API int moirai_net_listener_port(const struct moirai_net_listener *l);

/**
 * Take the next connection whose handshake completed.  Connections that
 * fail the handshake (other version, other message size, not moirai) are
 * refused, logged at warning level and counted
 * (moirai_net_listener_refused()), never returned.
 * @param l the listener.
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @param[out] out the channel.
 * @return 0; -EAGAIN none yet and @p timeout_ns == 0; -ETIMEDOUT;
 *         -EINVAL NULL or bad timeout; -ENOMEM.  Owner only.
 */
MOIRAI_API int moirai_net_accept(struct moirai_net_listener *l, int64_t timeout_ns,
				 struct moirai_net_chan **out);

/**
 * Connections a listener refused in the handshake.
 * @param l the listener.
 * @return the count; 0 for NULL.  Owner only.
 */
MOIRAI_API uint64_t moirai_net_listener_refused(const struct moirai_net_listener *l);

/**
 * Close a listener (channels it accepted stay open).
 * @param l the listener; NULL is a no-op.  Owner only.
 */
MOIRAI_API void moirai_net_listener_destroy(struct moirai_net_listener *l);

/**
 * Connect to a listener at @p addr and complete the handshake.
 * @param net the net.
 * @param addr `tcp://HOST:PORT` (HOST as for moirai_net_listen(), PORT
 *        1..65535).
 * @param opts options (NULL: defaults); @c elem_size (or variable mode)
 *        must match the listener's.
 * @param timeout_ns -1 forever, > 0 at most that many ns (0 is -EINVAL:
 *        a connect cannot complete without waiting).
 * @param[out] out the channel.
 * @return 0; -EINVAL NULL, unparsable address, bad options or timeout, or
 *         the peer has another message size; -EADDRNOTAVAIL HOST does not
 *         resolve; -ECONNREFUSED nobody listens there (or the peer went
 *         away during the handshake); -EPROTONOSUPPORT the peer speaks
 *         another protocol version; -EPROTO the peer is not a moirai
 *         listener (bad magic); -ETIMEDOUT no answer in time; -ENOMEM.
 *         Owner only.
 */
MOIRAI_API int moirai_net_connect(struct moirai_net *net, const char *addr,
				  const struct moirai_net_chan_opts *opts, int64_t timeout_ns,
				  struct moirai_net_chan **out);

/**
 * Send up to @p n fixed-size messages (burst); waits, as @p timeout_ns
 * says, only while none can be sent (no credit).  With
 * moirai_net_chan_opts.coalesce the messages may wait in the endpoint for
 * the owner's next call on the net (see there).
 * @param ch the channel (fixed-size mode).
 * @param msgs @p n messages of the channel's element size, contiguous.
 * @param n how many (0 returns 0 at once).
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return the number sent, 1..n (0 only for n == 0); -EAGAIN window full
 *         and @p timeout_ns == 0; -ETIMEDOUT still full at the deadline;
 *         -EPIPE closed by either side (nothing sent); -ECONNRESET the
 *         peer failed; -EINVAL NULL argument, a timeout below -1, or a
 *         variable-length channel.  Owner only.
 */
MOIRAI_API int moirai_net_send(struct moirai_net_chan *ch, const void *msgs, unsigned n,
			       int64_t timeout_ns);

/**
 * Receive up to @p max fixed-size messages (burst); waits, as
 * @p timeout_ns says, only while none has arrived and the channel is open.
 * @param ch the channel (fixed-size mode).
 * @param[out] msgs room for @p max messages.
 * @param max capacity of @p msgs in messages (0 returns 0 at once).
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return the number received, 1..max; -EAGAIN none and @p timeout_ns ==
 *         0; -ETIMEDOUT; -EPIPE closed and drained (end of stream);
 *         -ECONNRESET the peer failed and everything that arrived before
 *         was received; -EINVAL NULL argument, bad timeout, or a
 *         variable-length channel.  Owner only.
 */
MOIRAI_API int moirai_net_recv(struct moirai_net_chan *ch, void *msgs, unsigned max,
			       int64_t timeout_ns);

/** One variable-length message: @c base and @c len. */
struct moirai_net_msg {
	void *base; /**< the bytes (for a receive: the buffer) */
	size_t len; /**< their length (for a receive: in, the capacity; out, the length) */
};

/**
 * Send up to @p n variable-length messages (burst), as moirai_net_send().
 * @param ch the channel (fixed or variable mode; with a fixed size every
 *        @c len must equal it).
 * @param msgs the messages.
 * @param n how many.
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return as moirai_net_send(); -EMSGSIZE a message is longer than the
 *         channel's @c max_msg (or not the fixed size): nothing sent.
 *         Owner only.
 */
MOIRAI_API int moirai_net_sendv(struct moirai_net_chan *ch, const struct moirai_net_msg *msgs,
				unsigned n, int64_t timeout_ns);

/**
 * Receive up to @p max variable-length messages, as moirai_net_recv();
 * each @c len is set to the message's length.
 * @param ch the channel.
 * @param[in,out] msgs buffers and their capacities.
 * @param max how many.
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @return as moirai_net_recv(); -EMSGSIZE the next message does not fit
 *         its buffer (it stays queued; @c len of that entry says how long
 *         it is) and nothing was received before it in this call.
 *         Owner only.
 */
MOIRAI_API int moirai_net_recvv(struct moirai_net_chan *ch, struct moirai_net_msg *msgs,
				unsigned max, int64_t timeout_ns);

/**
 * Close the channel in both directions (see the design block): later
 * sends on either side fail with -EPIPE, receives drain, then -EPIPE.
 * @param ch the channel.
 * @return 0; -EALREADY already closed (by either side); -EINVAL NULL.
 *         Owner only.
 */
MOIRAI_API int moirai_net_close(struct moirai_net_chan *ch);

/**
 * Whether the channel is closed (by either side) or failed.
 * @param ch the channel.
 * @return true once closed or failed; false for NULL.  Owner only.
 */
MOIRAI_API bool moirai_net_is_closed(const struct moirai_net_chan *ch);

/**
 * Message size of a channel.
 * @param ch the channel.
 * @return the fixed size in bytes, 0 for a variable-length channel or NULL.
 */
MOIRAI_API unsigned moirai_net_elem_size(const struct moirai_net_chan *ch);

/**
 * Messages received and not yet taken by a receive.
 * @param ch the channel.
 * @return the count; 0 for NULL.  Owner only.
 */
MOIRAI_API unsigned moirai_net_count(const struct moirai_net_chan *ch);

/**
 * Read an endpoint's counters.
 * @param ch the channel.
 * @param[out] out the counters.
 * @return 0; -EINVAL NULL argument.  Owner only.
 */
MOIRAI_API int moirai_net_chan_stats(const struct moirai_net_chan *ch,
				     struct moirai_net_chan_stats *out);

/**
 * Destroy an endpoint: a channel still open is closed first (its peer
 * sees end of stream), then the connection is released.  Bounded: a peer
 * that does not answer is cut off after a second.
 * @param ch the channel; NULL is a no-op.  Owner only.
 */
MOIRAI_API void moirai_net_chan_destroy(struct moirai_net_chan *ch);

/**
 * Connect as moirai_net_connect() and give the endpoint as a struct
 * moirai_chan (see "A network channel as a struct moirai_chan" above):
 * moirai_chan_send/recv/close/... then work on it, and
 * moirai_chan_destroy() destroys the endpoint.
 * @param net the net.
 * @param addr `tcp://HOST:PORT`, as for moirai_net_connect().
 * @param opts options; @c elem_size must be set (a moirai_chan carries
 *        fixed-size messages).
 * @param timeout_ns -1 forever, > 0 at most that many ns (0 is -EINVAL).
 * @param[out] out the channel (NULL on an error).
 * @return 0; -EINVAL NULL @p out, @p opts NULL or with @c elem_size 0;
 *         the errors of moirai_net_connect(); -ENOMEM.  Owner only.
 */
MOIRAI_API int moirai_net_connect_chan(struct moirai_net *net, const char *addr,
				       const struct moirai_net_chan_opts *opts, int64_t timeout_ns,
				       struct moirai_chan **out);

/**
 * Accept as moirai_net_accept() and give the endpoint as a struct
 * moirai_chan (as moirai_net_connect_chan()).
 * @param l the listener; it must have been made with @c opts.elem_size.
 * @param timeout_ns 0 try, -1 forever, > 0 at most that many ns.
 * @param[out] out the channel (NULL on an error).
 * @return 0; -EINVAL NULL @p out or a variable-length listener (checked
 *         before any connection is taken); the errors of
 *         moirai_net_accept(); -ENOMEM.  Owner only.
 */
MOIRAI_API int moirai_net_accept_chan(struct moirai_net_listener *l, int64_t timeout_ns,
				      struct moirai_chan **out);

/**
 * Give an endpoint as a struct moirai_chan.  The moirai_chan owns the
 * endpoint from then on: moirai_chan_destroy() destroys it (never call
 * moirai_net_chan_destroy() on it).  The moirai_net_* calls still work on
 * @p ch (moirai_net_chan_stats(), and moirai_net_sendv() interleaved with
 * moirai_chan_send() keeps one order).
 * @param ch a fixed-size endpoint (connected or accepted).
 * @param[out] out the channel (NULL on an error).
 * @return 0; -EINVAL NULL argument or a variable-length endpoint; -ENOMEM
 *         (@p ch is then still the caller's).  Owner only.
 */
MOIRAI_API int moirai_net_chan_as_chan(struct moirai_net_chan *ch, struct moirai_chan **out);

/**
 * The endpoint under a channel made by moirai_net_connect_chan(),
 * moirai_net_accept_chan() or moirai_net_chan_as_chan().
 * @param ch a channel.
 * @return the endpoint (owned by @p ch); NULL for a local channel or NULL.
 *         Thread-safe (reads what was set at creation).
 */
MOIRAI_API struct moirai_net_chan *moirai_net_chan_of(struct moirai_chan *ch);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_NET_H */
