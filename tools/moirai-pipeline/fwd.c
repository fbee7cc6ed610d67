/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The stage boundary over the network (fwd.h has the design): the sender's
 * two channels and the receiver's listener, accept, hellos and packets, on
 * moirai's network channels.  Everything here runs on the worker that owns
 * the net (worker 0).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fwd.h"

#define NCH	    2	  /* channels: 0 critical, 1 normal */
#define FWD_BURST   64	  /* messages per send or receive, at most */
#define WINDOW	    1024u /* messages in flight per channel (the net's credits) */
#define MAX_PENDING 8	  /* receiver: accepted connections waiting for their hello */

/* Channel states.  Sender: OPEN -> END (its end message sent) -> DONE
 * (the receiver's receipt matched).  Receiver: NONE -> OPEN (hello) -> EOS
 * (end message taken, receipt sent). */
enum { ST_NONE = 0, ST_OPEN, ST_END, ST_DONE, ST_EOS };

struct pl_fwd {
	struct moirai_net *net;
	struct moirai_net_listener *l; /* receiver */
	struct moirai_net_chan *ch[NCH];
	int state[NCH];
	uint64_t count[NCH]; /* packets sent / received on each channel */
	/* receiver: accepted channels whose hello has not come yet */
	struct moirai_net_chan *pending[MAX_PENDING];
	int npending;
	uint64_t session;
	bool have_session;
	char addr[MOIRAI_NET_ADDR_MAX + 1];
	struct pl_fwd_stats st;
	char error[256];
};

static int fail(struct pl_fwd *f, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct pl_fwd *f, int rc, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->error, sizeof(f->error), fmt, ap);
	va_end(ap);
	return rc;
}

static const struct moirai_net_chan_opts chan_opts = {
	.elem_size = 0, /* variable length: header + frame */
	.max_msg = PL_FWD_MSG_MAX,
	.window = WINDOW,
};

int pl_fwd_open(const char *addr, bool listen, struct pl_fwd **out, char *err, size_t errlen)
{
	struct moirai_net_config nc = { .rt = moirai_rt_current() };
	struct pl_fwd *f = calloc(1, sizeof(*f));
	int rc;

	if (!f) {
		snprintf(err, errlen, "%s: out of memory", addr);
		return -ENOMEM;
	}
	snprintf(f->addr, sizeof(f->addr), "%s", addr);
	f->session = moirai_now_ns() ^ (uint64_t)getpid() << 32;
	rc = moirai_net_create(&nc, &f->net);
	if (rc) {
		snprintf(err, errlen, "%s %s: cannot start the network layer: %s",
			 listen ? "--listen" : "--forward", addr, moirai_last_error());
		free(f);
		return rc;
	}
	if (listen) {
		rc = moirai_net_listen(f->net, addr, &chan_opts, &f->l);
		if (rc) {
			snprintf(err, errlen, "--listen: %s", moirai_last_error());
			pl_fwd_destroy(f);
			return rc;
		}
	}
	*out = f;
	return 0;
}

int pl_fwd_connect(struct pl_fwd *f, int64_t timeout_ns, char *err, size_t errlen)
{
	for (int cls = 0; cls < NCH; cls++) {
		struct pl_wire_hello h = { .magic = PL_FWD_MAGIC,
					   .version = PL_FWD_VERSION,
					   .cls = (uint16_t)cls,
					   .session = f->session };
		struct moirai_net_msg m = { .base = &h, .len = sizeof(h) };
		int rc;

		if (f->state[cls] == ST_OPEN)
			continue;
		rc = moirai_net_connect(f->net, f->addr, &chan_opts, timeout_ns, &f->ch[cls]);
		if (rc) {
			f->ch[cls] = NULL;
			snprintf(err, errlen, "--forward: %s", moirai_last_error());
			return rc;
		}
		rc = moirai_net_sendv(f->ch[cls], &m, 1, timeout_ns);
		if (rc != 1) {
			snprintf(err, errlen, "--forward %s: cannot send the hello: %s", f->addr,
				 rc == -EPIPE ? "the receiver closed the connection (busy with "
						"another sender?)"
				 : rc == -ECONNRESET ? "the receiver failed (connection reset)"
						     : moirai_last_error());
			moirai_net_chan_destroy(f->ch[cls]);
			f->ch[cls] = NULL;
			return rc < 0 ? rc : -EIO;
		}
		f->state[cls] = ST_OPEN;
	}
	return 0;
}

int pl_fwd_send(struct pl_fwd *f, int cls, struct pl_pkt *const *pkts, int n)
{
	struct moirai_net_msg m[FWD_BURST];
	int rc;

	if (n > FWD_BURST)
		n = FWD_BURST;
	for (int i = 0; i < n; i++) {
		struct pl_pkt *p = pkts[i];
		struct pl_wire_pkt h = { .flags = (uint16_t)(p->flags & PL_PKT_F_CRITICAL),
					 .arrival_ns = p->arrival_ns };

		memcpy(p->wire, &h, sizeof(h));
		m[i].base = p->wire;
		m[i].len = PL_WIRE_HDR + p->len;
	}
	rc = moirai_net_sendv(f->ch[cls], m, (unsigned)n, 0);
	if (rc == -EAGAIN)
		rc = 0;
	if (rc < 0)
		return fail(f, rc, "--forward %s: %s after %llu packets", f->addr,
			    rc == -ECONNRESET ? "the receiver failed (connection reset)"
			    : rc == -EPIPE    ? "the receiver closed the connection"
					      : moirai_last_error(),
			    (unsigned long long)f->st.packets);
	if (rc < n)
		f->st.stalls++;
	f->count[cls] += (uint64_t)rc;
	f->st.packets += (uint64_t)rc;
	if (cls == 0)
		f->st.critical += (uint64_t)rc;
	return rc;
}

/* Receiver: the end message of channel @cls came after @have packets:
 * check its count and send the receipt (our count). */
static int end_of_channel(struct pl_fwd *f, int cls, const struct pl_wire_pkt *h, uint64_t have,
			  bool last)
{
	struct pl_wire_pkt r = { .flags = PL_WIRE_F_END, .arrival_ns = have };
	struct moirai_net_msg m = { .base = &r, .len = sizeof(r) };
	int rc;

	if (!last || h->arrival_ns != have)
		return fail(f, -EPROTO,
			    "--listen %s: the sender's end message says %llu %s packets, %llu "
			    "arrived%s",
			    f->addr, (unsigned long long)h->arrival_ns,
			    cls == 0 ? "critical" : "normal", (unsigned long long)have,
			    last ? "" : " (and more after it)");
	/* The sender holds a whole window for receipts: a second is plenty. */
	rc = moirai_net_sendv(f->ch[cls], &m, 1, 1000ll * 1000 * 1000);
	if (rc != 1)
		return fail(f, rc < 0 ? rc : -EIO, "--listen %s: cannot confirm the end: %s",
			    f->addr, moirai_last_error());
	f->state[cls] = ST_EOS;
	return 0;
}

/* Receiver: take new connections and their hellos. */
static int accept_sender(struct pl_fwd *f)
{
	struct moirai_net_chan *ch;
	int rc;

	/* Before the sender: a peer the net refused is the wrong peer (exit
	 * 2).  Once the sender is there, later ones are turned away without
	 * disturbing it: the net refuses (and logs) strangers, and a second
	 * pipeline sender gets its connection closed (its next send fails). */
	if (!f->have_session && moirai_net_listener_refused(f->l) > 0)
		return fail(f, -EPROTO,
			    "--listen %s: refused a peer that is not a moirai-pipeline sender "
			    "(another protocol version or message size)",
			    f->addr);
	while (moirai_net_accept(f->l, 0, &ch) == 0) {
		if (f->state[0] != ST_NONE && f->state[1] != ST_NONE) {
			moirai_net_chan_destroy(ch);
			f->st.turned_away++;
			continue;
		}
		if (f->npending == MAX_PENDING) {
			moirai_net_chan_destroy(ch);
			f->st.turned_away++;
			continue;
		}
		f->pending[f->npending++] = ch;
	}
	for (int i = 0; i < f->npending; i++) {
		struct pl_wire_hello h;
		struct moirai_net_msg m = { .base = &h, .len = sizeof(h) };

		rc = moirai_net_recvv(f->pending[i], &m, 1, 0);
		if (rc == -EAGAIN)
			continue;
		bool valid = rc == 1 && m.len == sizeof(h) && h.magic == PL_FWD_MAGIC &&
			     h.version == PL_FWD_VERSION && h.cls < NCH;

		if (f->have_session && (!valid || h.session != f->session)) {
			/* Another peer's channel, after the sender's hello:
			 * close it (its sends fail), keep the sender. */
			moirai_net_chan_destroy(f->pending[i]);
			f->st.turned_away++;
			f->pending[i--] = f->pending[--f->npending];
			continue;
		}
		if (!valid || f->state[h.cls] != ST_NONE)
			return fail(f, -EPROTO,
				    "--listen %s: the peer is not a moirai-pipeline --forward "
				    "sender of protocol version %u (%s)",
				    f->addr, PL_FWD_VERSION,
				    rc < 0 && rc != -EMSGSIZE ? "it left before its hello"
				    : rc != 1 || m.len != sizeof(h)
					    ? "its first message is no hello"
				    : h.magic != PL_FWD_MAGIC	  ? "bad magic"
				    : h.version != PL_FWD_VERSION ? "another version"
				    : h.cls >= NCH		  ? "bad class"
								  : "a class twice");
		f->session = h.session;
		f->have_session = true;
		f->ch[h.cls] = f->pending[i];
		f->state[h.cls] = ST_OPEN;
		f->pending[i--] = f->pending[--f->npending];
	}
	return 0;
}

int pl_fwd_finish(struct pl_fwd *f)
{
	int done = 0;

	for (int cls = 0; cls < NCH; cls++) {
		struct pl_wire_pkt h = { .flags = PL_WIRE_F_END, .arrival_ns = f->count[cls] };
		struct moirai_net_msg m = { .base = &h, .len = sizeof(h) };
		int rc;

		if (f->state[cls] == ST_OPEN) {
			rc = moirai_net_sendv(f->ch[cls], &m, 1, 0);
			if (rc == 0 || rc == -EAGAIN)
				continue; /* window full: next poll */
			if (rc < 0)
				return fail(f, rc, "--forward %s: %s before the end of the stream",
					    f->addr,
					    rc == -ECONNRESET
						    ? "the receiver failed (connection reset)"
					    : rc == -EPIPE ? "the receiver closed the connection"
							   : moirai_last_error());
			f->state[cls] = ST_END;
		}
		if (f->state[cls] == ST_END) {
			m.len = sizeof(h);
			rc = moirai_net_recvv(f->ch[cls], &m, 1, 0);
			if (rc == -EAGAIN)
				continue;
			if (rc < 0)
				return fail(
					f, rc, "--forward %s: %s before confirming %llu packets",
					f->addr,
					rc == -ECONNRESET ? "the receiver failed (connection reset)"
					: rc == -EPIPE	  ? "the receiver closed the connection"
							  : moirai_last_error(),
					(unsigned long long)f->count[cls]);
			if (m.len != sizeof(h) || !(h.flags & PL_WIRE_F_END) ||
			    h.arrival_ns != f->count[cls])
				return fail(f, -EPROTO,
					    "--forward %s: the receiver confirmed %llu of the %llu "
					    "%s packets sent",
					    f->addr, (unsigned long long)h.arrival_ns,
					    (unsigned long long)f->count[cls],
					    cls == 0 ? "critical" : "normal");
			f->state[cls] = ST_DONE;
		}
		done += f->state[cls] == ST_DONE;
	}
	f->st.confirmed = done == NCH;
	return done == NCH;
}

int pl_fwd_recv(struct pl_fwd *f, struct pl_bufs *bufs, struct pl_pkt **pkts, int n,
		const unsigned room[NCH], uint64_t now_ns)
{
	struct moirai_net_msg m[FWD_BURST];
	int got = 0, nbuf = 0, rc;

	rc = accept_sender(f);
	if (rc)
		return rc;
	if (f->state[0] == ST_EOS && f->state[1] == ST_EOS)
		return -ENODATA;
	if (f->state[0] != ST_OPEN && f->state[1] != ST_OPEN)
		return 0;
	if (n > FWD_BURST)
		n = FWD_BURST;
	/* Buffers first: without one nothing is received, and the sender
	 * waits on its window (backpressure, not loss). */
	for (; nbuf < n; nbuf++) {
		pkts[nbuf] = pl_pkt_alloc(bufs);
		if (!pkts[nbuf])
			break;
	}
	/* The critical channel first: its packets never wait behind normal
	 * ones here, nor behind a full normal ring (each class takes only
	 * what its own ring has room for). */
	for (int cls = 0; cls < NCH && got < nbuf; cls++) {
		unsigned lim = (unsigned)(nbuf - got);

		if (room[cls] < lim)
			lim = room[cls];
		if (f->state[cls] != ST_OPEN || lim == 0)
			continue;
		for (unsigned i = 0; i < lim; i++)
			m[i] = (struct moirai_net_msg){ .base = pkts[got + (int)i]->wire,
							.len = PL_FWD_MSG_MAX };
		rc = moirai_net_recvv(f->ch[cls], m, lim, 0);
		if (rc == -EAGAIN)
			continue;
		if (rc < 0) {
			for (int i = got; i < nbuf; i++)
				pl_pkt_free(pkts[i]);
			return fail(f, rc, "--listen %s: %s after %llu packets", f->addr,
				    rc == -ECONNRESET ? "the sender failed (connection reset)"
				    : rc == -EPIPE    ? "the sender closed without its end message"
				    : rc == -EMSGSIZE ? "the sender sent a message over the limit"
						      : moirai_last_error(),
				    (unsigned long long)f->st.packets);
		}
		for (int i = 0; i < rc; i++) {
			struct pl_pkt *p = pkts[got + i];
			struct pl_wire_pkt h;

			if (m[i].len < PL_WIRE_HDR) {
				for (int k = got; k < nbuf; k++)
					pl_pkt_free(pkts[k]);
				return fail(f, -EPROTO,
					    "--listen %s: a message of %zu bytes, shorter than its "
					    "header",
					    f->addr, m[i].len);
			}
			memcpy(&h, p->wire, sizeof(h));
			if (h.flags & PL_WIRE_F_END) {
				/* The sender's last message on this channel: its
				 * count must be ours; the receipt tells it so. */
				int erc = end_of_channel(f, cls, &h, f->count[cls] + (uint64_t)i,
							 i == rc - 1);

				if (erc) {
					for (int k = got; k < nbuf; k++)
						pl_pkt_free(pkts[k]);
					return erc;
				}
				rc = i; /* its buffer is freed below */
				break;
			}
			p->len = (uint32_t)(m[i].len - PL_WIRE_HDR);
			p->flags = h.flags & PL_PKT_F_CRITICAL;
			p->arrival_ns = now_ns;
			p->seq = f->st.packets + (uint64_t)i;
			p->flow = 0;
			p->port = 0;
		}
		got += rc;
		f->count[cls] += (uint64_t)rc;
		f->st.packets += (uint64_t)rc;
		if (cls == 0)
			f->st.critical += (uint64_t)rc;
	}
	for (int i = got; i < nbuf; i++)
		pl_pkt_free(pkts[i]);
	if (got == 0 && f->state[0] == ST_EOS && f->state[1] == ST_EOS)
		return -ENODATA;
	return got;
}

uint64_t pl_fwd_origin_ns(const struct pl_pkt *p)
{
	struct pl_wire_pkt h;

	memcpy(&h, p->wire, sizeof(h));
	return h.arrival_ns;
}

void pl_fwd_stats(const struct pl_fwd *f, struct pl_fwd_stats *out)
{
	*out = f->st;
	out->refused = (f->l ? moirai_net_listener_refused(f->l) : 0) + f->st.turned_away;
	out->ams = out->window_full = 0;
	for (int cls = 0; cls < NCH; cls++) {
		struct moirai_net_chan_stats cs;

		if (f->ch[cls] && moirai_net_chan_stats(f->ch[cls], &cs) == 0) {
			out->ams += f->l ? cs.ams_received : cs.ams_sent;
			out->window_full += cs.window_full;
		}
	}
}

const char *pl_fwd_error(const struct pl_fwd *f)
{
	return f->error;
}

void pl_fwd_destroy(struct pl_fwd *f)
{
	if (!f)
		return;
	for (int cls = 0; cls < NCH; cls++)
		moirai_net_chan_destroy(f->ch[cls]);
	for (int i = 0; i < f->npending; i++)
		moirai_net_chan_destroy(f->pending[i]);
	moirai_net_listener_destroy(f->l);
	moirai_net_destroy(f->net);
	free(f);
}

/* ---- the receiver as a source port ------------------------------------------ */

static int net_in_open(struct pl_port *port, const struct pl_port_conf *conf, char *err,
		       size_t errlen)
{
	(void)conf;
	(void)err;
	(void)errlen;
	port->priv = NULL; /* pl_run() listens on worker 0 and sets it */
	return 0;
}

static int net_in_rx(struct pl_port *port, struct pl_pkt **pkts, int n, uint64_t now_ns)
{
	struct pl_fwd *f = port->priv;
	int rc;

	if (!f)
		return -ENODATA;
	rc = pl_fwd_recv(f, port->bufs, pkts, n, port->class_room, now_ns);
	if (rc < 0 && rc != -ENODATA)
		pl_port_error(port, "%s", f->error);
	return rc;
}

static void net_in_close(struct pl_port *port)
{
	(void)port; /* pl_run() destroyed the net on its worker */
}

const struct pl_port_ops pl_net_in_ops = {
	.name = "net",
	.classified = true,
	.open = net_in_open,
	.rx_burst = net_in_rx,
	.close = net_in_close,
};
