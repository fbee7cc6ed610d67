/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Network channels on UCX active messages (moirai/net.h).
 *
 * One UCX context and worker per net, in UCS_THREAD_MODE_SINGLE: every
 * call comes from the owner thread, so nothing here takes a lock; UCX
 * calls the handlers below from inside ucp_worker_progress() on that
 * thread.
 *
 * Protocol (struct net_hdr is every message's AM header):
 *   connect:  client creates an ep to the sockaddr and sends HELLO (its
 *             id, window, message size, magic, version) with a reply ep;
 *             the listener's conn handler makes an ep (endpoint PENDING),
 *             the HELLO finds it by that ep, is checked, and is answered
 *             by ACK (the server's id and window, or why it was refused).
 *   data:     DATA carries hdr.count messages, the first numbered hdr.arg
 *             (checked: exactly once, in order); the sender spends one
 *             credit per message, the receiver holds at most its window
 *             and returns credits by CREDIT once a quarter window was
 *             consumed.  A receiver that gets more than its window, or a
 *             sequence gap, fails the connection (-EPROTO): never a silent
 *             drop.
 *   close:    FIN after the closer's last DATA; the other side answers
 *             FIN_ACK after its own last DATA (unless it sent FIN itself).
 *             Receiving either means the peer sends nothing more: once the
 *             queue is drained, end of stream.
 * A send goes out from the caller's buffer when UCX completes it at once
 * (UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL) and nothing of the endpoint is in
 * flight (so nothing is overtaken); else it is copied into one of the
 * endpoint's TX_SLOTS_MAX slots, returned by the completion callback.  A
 * control message that finds no slot is owed and sent from progress.
 * With opts.coalesce, sends append to one open DATA message (agg) instead:
 * it goes when full, or from progress, which every call but a send on that
 * endpoint makes (one sendmsg() and TCP segment per message was the cost of
 * a stream of small sends); FIN and FIN_ACK send it first.
 */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "moirai/poller.h"
#include "moirai/rt.h"
#include "net_int.h"

uint32_t moirai__net_hello_version = MOIRAI_NET_PROTO_VERSION;

#define DEF_WINDOW	1024u
#define DEF_MAX_MSG	2048u
#define SCRATCH_SIZE	(MOIRAI_NET_AM_MAX + 8u)
#define DESTROY_WAIT_NS (1000ull * 1000 * 1000)
#define POLL_SLICE_MS	100

static int status_errno(ucs_status_t s)
{
	switch (s) {
	case UCS_OK: return 0;
	case UCS_ERR_NO_MEMORY: return -ENOMEM;
	case UCS_ERR_INVALID_PARAM: return -EINVAL;
	case UCS_ERR_BUSY: return -EADDRINUSE;
	case UCS_ERR_NO_DEVICE:
	case UCS_ERR_UNSUPPORTED: return -ENODEV;
	case UCS_ERR_TIMED_OUT: return -ETIMEDOUT;
	case UCS_ERR_UNREACHABLE:
	case UCS_ERR_REJECTED:
	case UCS_ERR_NOT_CONNECTED:
	case UCS_ERR_CONNECTION_RESET:
	case UCS_ERR_ENDPOINT_TIMEOUT:
	case UCS_ERR_CANCELED: return -ECONNRESET;
	default: return -EIO;
	}
}

/* ---- endpoint table ---------------------------------------------------- */

static struct moirai_net_chan *lookup(struct moirai_net *net, uint32_t id, uint32_t gen)
{
	struct moirai_net_chan *ch;

	if (id == 0 || id > net->tab_cap)
		return NULL;
	ch = net->tab[id - 1];
	return ch && ch->gen == gen && !ch->dying ? ch : NULL;
}

static int tab_add(struct moirai_net *net, struct moirai_net_chan *ch)
{
	for (unsigned i = 0; i < net->tab_cap; i++)
		if (!net->tab[i]) {
			net->tab[i] = ch;
			ch->id = i + 1;
			return 0;
		}
	unsigned cap = net->tab_cap ? 2 * net->tab_cap : 16;
	struct moirai_net_chan **t = realloc(net->tab, cap * sizeof(*t));

	if (!t)
		return -ENOMEM;
	memset(t + net->tab_cap, 0, (cap - net->tab_cap) * sizeof(*t));
	net->tab = t;
	t[net->tab_cap] = ch;
	ch->id = net->tab_cap + 1;
	net->tab_cap = cap;
	return 0;
}

/* ---- endpoints ----------------------------------------------------------- */

static int opts_check(const struct moirai_net_chan_opts *o, struct moirai_net_chan_opts *out)
{
	*out = o ? *o : (struct moirai_net_chan_opts){ 0 };
	if (out->elem_size % 4 || out->elem_size > MOIRAI_NET_MSG_MAX)
		return moirai__err(
			-EINVAL,
			"net: element size %u is not a multiple of 4 up to %u (0: variable)",
			out->elem_size, MOIRAI_NET_MSG_MAX);
	if (out->elem_size)
		out->max_msg = out->elem_size;
	else if (!out->max_msg)
		out->max_msg = DEF_MAX_MSG;
	if (out->max_msg > MOIRAI_NET_MSG_MAX)
		return moirai__err(-EINVAL, "net: max_msg %u is above %u", out->max_msg,
				   MOIRAI_NET_MSG_MAX);
	if (!out->window)
		out->window = DEF_WINDOW;
	if (out->window > MOIRAI_NET_WINDOW_MAX)
		return moirai__err(-EINVAL, "net: window %u is above %u", out->window,
				   MOIRAI_NET_WINDOW_MAX);
	if (out->coalesce > MOIRAI_NET_AM_MAX)
		return moirai__err(-EINVAL, "net: coalesce %u is above %u bytes", out->coalesce,
				   MOIRAI_NET_AM_MAX);
	return 0;
}

static struct moirai_net_chan *chan_new(struct moirai_net *net,
					const struct moirai_net_chan_opts *o, enum chan_state state)
{
	struct moirai_net_chan *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->net = net;
	ch->state = state;
	ch->elem_size = o->elem_size;
	ch->var = o->elem_size == 0;
	ch->max_msg = o->max_msg;
	ch->window = o->window;
	ch->slot_size = ch->var ? (o->max_msg + 3u) & ~3u : o->elem_size;
	ch->rx = malloc((size_t)ch->slot_size * ch->window + 1);
	ch->rx_len = ch->var ? malloc(sizeof(uint32_t) * ch->window) : NULL;
	if (o->coalesce) {
		/* At most a quarter window per message: the peer returns credits
		 * per quarter, so the next messages go while one is consumed. */
		ch->agg_max = o->coalesce;
		ch->agg_cap = o->window / 4 ? o->window / 4 : 1;
		ch->agg = malloc(SCRATCH_SIZE); /* any one message fits */
	}
	moirai__list_init(&ch->qlink);
	if (!ch->rx || (ch->var && !ch->rx_len) || (o->coalesce && !ch->agg) || tab_add(net, ch)) {
		free(ch->rx);
		free(ch->rx_len);
		free(ch->agg);
		free(ch);
		return NULL;
	}
	ch->gen = ++net->next_gen;
	moirai__list_add_tail(&net->chans, &ch->link);
	return ch;
}

static void chan_free(struct moirai_net_chan *ch)
{
	struct tx_slot *s;

	if (ch->id && ch->net->tab[ch->id - 1] == ch)
		ch->net->tab[ch->id - 1] = NULL;
	if (moirai__list_linked(&ch->qlink))
		moirai__list_del(&ch->qlink);
	moirai__list_del(&ch->link);
	while ((s = ch->free_slots)) {
		ch->free_slots = s->next;
		free(s);
	}
	free(ch->rx);
	free(ch->rx_len);
	free(ch->agg);
	free(ch);
}

static void chan_fail(struct moirai_net_chan *ch, int err, const char *why)
{
	if (ch->err)
		return;
	ch->err = err;
	/* After a clean end of stream a reset is only the peer going away. */
	if (!(ch->got_fin || ch->got_fin_ack))
		moirai__log(MOIRAI_LOG_INFO, "net: endpoint %u: %s", ch->id, why);
	if (ch->state == CS_PENDING || ch->state == CS_REFUSED) {
		ch->state = CS_REFUSED;
		ch->net->reap = true;
	} else if (ch->state == CS_CONNECTING && !ch->connect_rc) {
		ch->connect_rc = err == -ECONNRESET ? -ECONNREFUSED : err;
	}
}

static void err_cb(void *arg, ucp_ep_h ep, ucs_status_t status)
{
	struct moirai_net_chan *ch = arg;

	chan_fail(ch, -ECONNRESET, ucs_status_string(status));
}

/* ---- sending ------------------------------------------------------------- */

static void slot_put(struct moirai_net_chan *ch, struct tx_slot *s)
{
	s->next = ch->free_slots;
	ch->free_slots = s;
}

static void send_done(void *request, ucs_status_t status, void *user_data)
{
	struct tx_slot *s = user_data;
	struct moirai_net_chan *ch = s->ch;

	ch->inflight--;
	slot_put(ch, s);
	ucp_request_free(request);
	if (status != UCS_OK && status != UCS_ERR_CANCELED)
		chan_fail(ch, -ECONNRESET, ucs_status_string(status));
}

static struct tx_slot *slot_get(struct moirai_net_chan *ch, size_t len)
{
	struct tx_slot *s = ch->free_slots;

	if (s && s->cap >= len) {
		ch->free_slots = s->next;
		return s;
	}
	if (s) { /* too small (a control slot): replace it */
		ch->free_slots = s->next;
		free(s);
		ch->slots--;
	}
	if (ch->slots >= TX_SLOTS_MAX)
		return NULL;
	size_t cap = len <= 64 ? 64 : SCRATCH_SIZE;

	s = malloc(sizeof(*s) + cap);
	if (!s)
		return NULL;
	s->cap = cap;
	s->ch = ch;
	ch->slots++;
	return s;
}

/*
 * Send one active message.  Returns 0 (sent or in flight), -EAGAIN (no
 * slot: try again after progress) or the connection's error.
 */
static int am_send(struct moirai_net_chan *ch, unsigned id, const struct net_hdr *hdr,
		   const void *data, size_t len, unsigned flags)
{
	ucp_request_param_t p;
	ucs_status_ptr_t r;
	struct tx_slot *s;

	if (ch->err)
		return ch->err;
	if (ch->inflight == 0) {
		memset(&p, 0, sizeof(p));
		p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FLAG_FORCE_IMM_CMPL;
		p.flags = UCP_AM_SEND_FLAG_EAGER | flags;
		r = ucp_am_send_nbx(ch->ep, id, hdr, sizeof(*hdr), data, len, &p);
		if (r == NULL)
			return 0;
		if (!UCS_PTR_IS_ERR(r)) { /* not expected with FORCE_IMM_CMPL */
			while (ucp_request_check_status(r) == UCS_INPROGRESS)
				ucp_worker_progress(ch->net->worker);
			ucp_request_free(r);
			return 0;
		}
		if (UCS_PTR_STATUS(r) != UCS_ERR_NO_RESOURCE &&
		    UCS_PTR_STATUS(r) != UCS_ERR_UNSUPPORTED) {
			chan_fail(ch, status_errno(UCS_PTR_STATUS(r)),
				  ucs_status_string(UCS_PTR_STATUS(r)));
			return ch->err;
		}
	}
	s = slot_get(ch, len);
	if (!s)
		return -EAGAIN;
	s->hdr = *hdr;
	if (len)
		memcpy(s->data, data, len);
	memset(&p, 0, sizeof(p));
	p.op_attr_mask =
		UCP_OP_ATTR_FIELD_FLAGS | UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
	p.flags = UCP_AM_SEND_FLAG_EAGER | flags;
	p.cb.send = send_done;
	p.user_data = s;
	r = ucp_am_send_nbx(ch->ep, id, &s->hdr, sizeof(s->hdr), s->data, len, &p);
	if (r == NULL) {
		slot_put(ch, s);
		return 0;
	}
	if (UCS_PTR_IS_ERR(r)) {
		slot_put(ch, s);
		chan_fail(ch, status_errno(UCS_PTR_STATUS(r)),
			  ucs_status_string(UCS_PTR_STATUS(r)));
		return ch->err;
	}
	ch->inflight++;
	return 0;
}

static int ctl_send(struct moirai_net_chan *ch, unsigned id, uint32_t count)
{
	struct net_hdr h = { .dst_id = ch->peer_id, .dst_gen = ch->peer_gen, .count = count };

	return am_send(ch, id, &h, NULL, 0, 0);
}

/* A hint for progress: some endpoint owes a control message or has
 * coalesced data waiting (progress recounts them). */
static void owe(struct moirai_net_chan *ch)
{
	ch->net->ctl_owed = 1;
}

/* Send the coalesced messages: 0 (nothing left open), -EAGAIN (no slot)
 * or the connection's error. */
static int agg_flush(struct moirai_net_chan *ch)
{
	struct net_hdr hd = { .dst_id = ch->peer_id,
			      .dst_gen = ch->peer_gen,
			      .count = ch->agg_n,
			      .arg = ch->agg_seq };
	int rc;

	if (!ch->agg_n)
		return 0;
	rc = am_send(ch, AM_DATA, &hd, ch->agg, ch->agg_len, 0);
	if (rc)
		return rc;
	ch->st.ams_sent++;
	ch->agg_n = ch->agg_len = 0;
	return 0;
}

/* FIN or FIN_ACK: after the last data, so coalesced messages go first. */
static int fin_send(struct moirai_net_chan *ch, unsigned id)
{
	int rc = agg_flush(ch);

	return rc ? rc : ctl_send(ch, id, 0);
}

/* Send what is owed; true when nothing is owed any more. */
static bool flush_owed(struct moirai_net_chan *ch)
{
	if (ch->err) {
		ch->credit_owed = 0;
		ch->fin_owed = ch->fin_ack_owed = false;
		ch->agg_n = ch->agg_len = 0; /* the connection is gone */
		return true;
	}
	(void)agg_flush(ch);
	if (ch->credit_owed && ctl_send(ch, AM_CREDIT, ch->credit_owed) == 0) {
		ch->st.credits_sent++;
		ch->credit_owed = 0;
	}
	if (ch->fin_owed && fin_send(ch, AM_FIN) == 0)
		ch->fin_owed = false;
	if (ch->fin_ack_owed && fin_send(ch, AM_FIN_ACK) == 0)
		ch->fin_ack_owed = false;
	return !ch->credit_owed && !ch->fin_owed && !ch->fin_ack_owed && !ch->agg_n;
}

/* ---- receiving ----------------------------------------------------------- */

/* The connect's HELLO and the listener's ACK describe their side alike:
 * the peer checks both against its own channel the same way. */
static struct net_hello hello_of(const struct moirai_net_chan *ch, uint32_t status)
{
	return (struct net_hello){ .magic = NET_MAGIC,
				   .version = moirai__net_hello_version,
				   .elem_size = ch->elem_size,
				   .max_msg = ch->max_msg,
				   .window = ch->window,
				   .src_id = ch->id,
				   .src_gen = ch->gen,
				   .status = status };
}

static void send_ack(struct moirai_net_chan *ch, uint32_t status)
{
	struct net_hello a = hello_of(ch, status);
	struct net_hdr h = { .dst_id = ch->peer_id, .dst_gen = ch->peer_gen };

	/* A fresh endpoint has every slot free: this cannot be -EAGAIN. */
	(void)am_send(ch, AM_ACK, &h, &a, sizeof(a), 0);
}

static ucs_status_t on_hello(void *arg, const void *header, size_t header_length, void *data,
			     size_t length, const ucp_am_recv_param_t *param)
{
	struct moirai_net *net = arg;
	struct moirai_net_chan *ch = NULL;
	struct moirai__list *it;
	struct net_hello h;
	uint32_t st = ST_OK;

	if (!(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
		return UCS_OK;
	moirai__list_foreach(it, &net->chans) {
		struct moirai_net_chan *c = moirai__list_entry(it, struct moirai_net_chan, link);

		if (c->state == CS_PENDING && c->ep == param->reply_ep) {
			ch = c;
			break;
		}
	}
	if (!ch || !ch->l)
		return UCS_OK;
	memset(&h, 0, sizeof(h));
	if (length != sizeof(h) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV))
		st = ST_MAGIC;
	else
		memcpy(&h, data, sizeof(h));
	if (st == ST_OK && h.magic != NET_MAGIC)
		st = ST_MAGIC;
	else if (st == ST_OK && h.version != MOIRAI_NET_PROTO_VERSION)
		st = ST_VERSION;
	else if (st == ST_OK && (h.elem_size != ch->elem_size ||
				 (!h.elem_size && h.max_msg != ch->max_msg) || h.window == 0))
		st = ST_SIZE;
	ch->peer_id = h.src_id;
	ch->peer_gen = h.src_gen;
	send_ack(ch, st);
	if (st != ST_OK) {
		static const char *const why[] = { "", "another protocol version",
						   "another message size", "no moirai hello" };

		moirai__log(
			MOIRAI_LOG_WARN,
			"net: refused a connection on port %d: %s (peer version %u, size %u/%u; "
			"here version %u, size %u/%u)",
			ch->l->port, why[st], h.version, h.elem_size, h.max_msg,
			MOIRAI_NET_PROTO_VERSION, ch->elem_size, ch->max_msg);
		ch->l->refused++;
		ch->state = CS_REFUSED;
		net->reap = true;
		return UCS_OK;
	}
	ch->credits = h.window;
	ch->state = CS_READY;
	ch->queued = true;
	moirai__list_add_tail(&ch->l->queue, &ch->qlink);
	return UCS_OK;
}

/* The channel an ACK, DATA or control message is for, or NULL (a header
 * of another size, a channel gone).  UCX does not align the header: it is
 * copied to @hd. */
static struct moirai_net_chan *am_chan(struct moirai_net *net, const void *header,
				       size_t header_length, struct net_hdr *hd)
{
	if (header_length != sizeof(*hd))
		return NULL;
	memcpy(hd, header, sizeof(*hd));
	return lookup(net, hd->dst_id, hd->dst_gen);
}

static ucs_status_t on_ack(void *arg, const void *header, size_t header_length, void *data,
			   size_t length, const ucp_am_recv_param_t *param)
{
	struct net_hdr hdr_copy, *hd = &hdr_copy;
	struct moirai_net_chan *ch;
	struct net_hello h;

	ch = am_chan(arg, header, header_length, hd);
	if (!ch || ch->state != CS_CONNECTING || ch->connect_rc)
		return UCS_OK;
	if (length != sizeof(h) || (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
		ch->connect_rc = moirai__err(-EPROTO, "net: connect: the peer's answer is not a "
						      "moirai handshake");
		return UCS_OK;
	}
	memcpy(&h, data, sizeof(h));
	if (h.magic != NET_MAGIC)
		ch->connect_rc = moirai__err(-EPROTO,
					     "net: connect: the peer is not a moirai "
					     "listener (bad magic 0x%08x)",
					     h.magic);
	else if (h.status == ST_VERSION || h.version != moirai__net_hello_version)
		ch->connect_rc = moirai__err(
			-EPROTONOSUPPORT,
			"net: connect: the peer speaks protocol version %u, this side %u",
			h.version, moirai__net_hello_version);
	else if (h.status == ST_SIZE)
		ch->connect_rc = moirai__err(-EINVAL,
					     "net: connect: the peer's channel has message size %u "
					     "(max %u), this one %u "
					     "(max %u; 0 = variable)",
					     h.elem_size, h.max_msg, ch->elem_size, ch->max_msg);
	else if (h.status != ST_OK || h.window == 0)
		ch->connect_rc =
			moirai__err(-EPROTO, "net: connect: refused (status %u)", h.status);
	else {
		ch->peer_id = h.src_id;
		ch->peer_gen = h.src_gen;
		ch->credits = h.window;
		ch->state = CS_READY;
		ch->connect_rc = 1;
	}
	return UCS_OK;
}

static void proto_error(struct moirai_net_chan *ch, const char *what)
{
	moirai__log(MOIRAI_LOG_WARN, "net: endpoint %u: protocol error from the peer: %s", ch->id,
		    what);
	chan_fail(ch, -EPROTO, what);
	/* Cut the connection (from progress, not inside a handler): the peer
	 * sees it fail too. */
	ch->cut = true;
	ch->net->reap = true;
}

static ucs_status_t on_data(void *arg, const void *header, size_t header_length, void *data,
			    size_t length, const ucp_am_recv_param_t *param)
{
	struct net_hdr hdr_copy, *hd = &hdr_copy;
	struct moirai_net_chan *ch;
	const unsigned char *p = data, *end = p + length;
	unsigned n, tail;

	ch = am_chan(arg, header, header_length, hd);
	if (!ch || ch->state != CS_READY || ch->err)
		return UCS_OK;
	/* Data is in the callback unless it came by rendezvous (never asked
	 * for: every send is UCP_AM_SEND_FLAG_EAGER). */
	if (param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) {
		ucp_am_data_release(ch->net->worker, data);
		proto_error(ch, "a message sent by rendezvous");
		return UCS_OK;
	}
	n = hd->count;
	if (n == 0 || n > ch->window - ch->rx_count) {
		proto_error(ch, "more messages than the window allows");
		return UCS_OK;
	}
	if (hd->arg != ch->rx_seq) {
		proto_error(ch, "a sequence gap");
		return UCS_OK;
	}
	tail = (ch->rx_head + ch->rx_count) % ch->window;
	if (!ch->var) {
		unsigned first = n < ch->window - tail ? n : ch->window - tail;

		if (length != (size_t)n * ch->elem_size) {
			proto_error(ch, "a data message of the wrong length");
			return UCS_OK;
		}
		memcpy(ch->rx + (size_t)tail * ch->slot_size, p, (size_t)first * ch->elem_size);
		if (n > first)
			memcpy(ch->rx, p + (size_t)first * ch->elem_size,
			       (size_t)(n - first) * ch->elem_size);
	} else {
		for (unsigned i = 0; i < n; i++) {
			uint32_t len;

			if (end - p < 4) {
				proto_error(ch, "a truncated message");
				return UCS_OK;
			}
			memcpy(&len, p, 4);
			p += 4;
			if (len > ch->max_msg || (size_t)(end - p) < len) {
				proto_error(ch, "a message longer than the channel's max_msg");
				return UCS_OK;
			}
			memcpy(ch->rx + (size_t)tail * ch->slot_size, p, len);
			ch->rx_len[tail] = len;
			p += (len + 3u) & ~3u;
			if (++tail == ch->window)
				tail = 0;
		}
	}
	ch->rx_count += n;
	ch->rx_seq += n;
	ch->st.ams_received++;
	return UCS_OK;
}

static ucs_status_t on_ctl(void *arg, const void *header, size_t header_length, void *data,
			   size_t length, const ucp_am_recv_param_t *param, unsigned id)
{
	struct net_hdr hdr_copy, *hd = &hdr_copy;
	struct moirai_net_chan *ch;

	ch = am_chan(arg, header, header_length, hd);
	if (!ch || ch->state != CS_READY || ch->err)
		return UCS_OK;
	if (id == AM_CREDIT) {
		ch->credits += hd->count;
	} else if (id == AM_FIN) {
		ch->got_fin = true;
		if (!ch->fin_sent && !ch->fin_owed) {
			ch->fin_sent = true;
			if (fin_send(ch, AM_FIN_ACK) == -EAGAIN) {
				ch->fin_ack_owed = true;
				owe(ch);
			}
		}
	} else {
		ch->got_fin_ack = true;
	}
	return UCS_OK;
}

static ucs_status_t on_credit(void *arg, const void *h, size_t hl, void *d, size_t l,
			      const ucp_am_recv_param_t *p)
{
	return on_ctl(arg, h, hl, d, l, p, AM_CREDIT);
}

static ucs_status_t on_fin(void *arg, const void *h, size_t hl, void *d, size_t l,
			   const ucp_am_recv_param_t *p)
{
	return on_ctl(arg, h, hl, d, l, p, AM_FIN);
}

static ucs_status_t on_fin_ack(void *arg, const void *h, size_t hl, void *d, size_t l,
			       const ucp_am_recv_param_t *p)
{
	return on_ctl(arg, h, hl, d, l, p, AM_FIN_ACK);
}

/* ---- progress and waiting -------------------------------------------- */

static void ep_close(struct moirai_net_chan *ch, bool force);

static void reap(struct moirai_net *net)
{
	struct moirai__list *it, *tmp;

	net->reap = false;
	moirai__list_foreach_safe(it, tmp, &net->chans) {
		struct moirai_net_chan *ch = moirai__list_entry(it, struct moirai_net_chan, link);

		if (ch->cut && ch->ep) {
			ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
						  .flags = UCP_EP_CLOSE_FLAG_FORCE };
			ucs_status_ptr_t r = ucp_ep_close_nbx(ch->ep, &p);

			ch->ep = NULL;
			if (UCS_PTR_IS_PTR(r))
				ucp_request_free(r);
		}
		if (ch->state != CS_REFUSED || ch->accepted || ch->dying)
			continue;
		if (ch->inflight) {
			net->reap = true; /* the refusal is still on its way */
			continue;
		}
		/* Flush, not force: a forced close can reset the connection
		 * before the refusing ACK left UCX and the kernel, and the peer
		 * saw -ECONNREFUSED instead of why (test_refused_handshakes
		 * under load, about 1 run in 6). */
		ep_close(ch, false);
		chan_free(ch);
	}
}

/* Send what endpoints owe (control messages, coalesced data); returns 1
 * when that changed anything. */
static int flush_all(struct moirai_net *net)
{
	struct moirai__list *it;
	unsigned owed = 0;
	int changed;

	moirai__list_foreach(it, &net->chans) {
		struct moirai_net_chan *ch = moirai__list_entry(it, struct moirai_net_chan, link);

		if ((ch->credit_owed || ch->fin_owed || ch->fin_ack_owed || ch->agg_n) &&
		    !flush_owed(ch))
			owed++;
	}
	changed = net->ctl_owed != owed;
	net->ctl_owed = owed;
	return changed;
}

static int net_progress(struct moirai_net *net)
{
	int n = 0;

	/* Coalesced data first: it is what the peer waits for. */
	if (net->ctl_owed)
		n += flush_all(net);
	n += (int)ucp_worker_progress(net->worker);
	if (net->ctl_owed) /* completions freed slots; handlers owe answers */
		n += flush_all(net);
	if (net->reap)
		reap(net);
	return n;
}

/*
 * Wait until @attempt(ctx) returns non-zero (handed back) or the deadline
 * (absolute ns, 0 none) passes (-ETIMEDOUT): progress, spin for spin_ns,
 * then arm the worker and sleep on its fd (in slices, as a bound).
 */
static int net_wait(struct moirai_net *net, int (*attempt)(void *), void *ctx, uint64_t deadline)
{
	uint64_t start = moirai_now_ns();

	for (;;) {
		int rc = attempt(ctx);
		uint64_t now;

		if (rc)
			return rc;
		if (net_progress(net) > 0)
			continue;
		rc = attempt(ctx);
		if (rc)
			return rc;
		now = moirai_now_ns();
		if (deadline && now >= deadline)
			return -ETIMEDOUT;
		if (now - start < net->spin_ns) {
			moirai__cpu_relax();
			continue;
		}
		if (ucp_worker_arm(net->worker) == UCS_OK) {
			struct pollfd pfd = { .fd = net->efd, .events = POLLIN };
			int ms = POLL_SLICE_MS;

			if (deadline && (deadline - now) / 1000000u < (uint64_t)ms)
				ms = (int)((deadline - now) / 1000000u) + 1;
			(void)poll(&pfd, 1, ms);
		}
	}
}

static int poll_progress(void *arg)
{
	return net_progress(arg) > 0 ? MOIRAI_POLL_BUSY : MOIRAI_POLL_IDLE;
}

static int poll_arm(void *arg)
{
	struct moirai_net *net = arg;

	return net->ctl_owed || net->reap || ucp_worker_arm(net->worker) != UCS_OK;
}

/* ---- the net ------------------------------------------------------------- */

static int set_handler(struct moirai_net *net, unsigned id, ucp_am_recv_callback_t cb)
{
	ucp_am_handler_param_t p = { .field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID |
						   UCP_AM_HANDLER_PARAM_FIELD_CB |
						   UCP_AM_HANDLER_PARAM_FIELD_ARG,
				     .id = id,
				     .cb = cb,
				     .arg = net };

	return status_errno(ucp_worker_set_am_recv_handler(net->worker, &p));
}

int moirai_net_create(const struct moirai_net_config *config, struct moirai_net **out)
{
	struct moirai_net_config c = config ? *config : (struct moirai_net_config){ 0 };
	ucp_params_t up = { 0 };
	ucp_worker_params_t wp = { 0 };
	ucp_config_t *uc = NULL;
	struct moirai_net *net;
	ucs_status_t s;
	int rc;

	if (!out)
		return moirai__err(-EINVAL, "net: NULL out");
	*out = NULL;
	if (c.rt && moirai_rt_current() != c.rt)
		return moirai__err(-EINVAL, "net: config.rt is set but the caller is not one of "
					    "its workers");
	rc = net_ucx_load();
	if (rc)
		return rc;
	net = calloc(1, sizeof(*net));
	if (!net)
		return moirai__err(-ENOMEM, "net: out of memory");
	net->efd = -1;
	moirai__list_init(&net->chans);
	moirai__list_init(&net->listeners);
	net->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	net->scratch = malloc(SCRATCH_SIZE);
	if (!net->scratch) {
		free(net);
		return moirai__err(-ENOMEM, "net: out of memory");
	}
	s = ucp_config_read(NULL, NULL, &uc);
	if (s == UCS_OK && c.transports)
		s = ucp_config_modify(uc, "TLS", c.transports);
	if (s != UCS_OK) {
		rc = moirai__err(status_errno(s), "net: UCX configuration%s%s: %s",
				 c.transports ? " with transports " : "",
				 c.transports ? c.transports : "", ucs_status_string(s));
		goto fail;
	}
	up.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_MT_WORKERS_SHARED;
	up.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
	up.mt_workers_shared = 0;
	s = net_ucp_init(&up, uc, &net->ctx);
	ucp_config_release(uc);
	if (s != UCS_OK) {
		rc = moirai__err(status_errno(s), "net: ucp_init: %s", ucs_status_string(s));
		goto fail;
	}
	wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
	wp.thread_mode = UCS_THREAD_MODE_SINGLE;
	s = ucp_worker_create(net->ctx, &wp, &net->worker);
	if (s == UCS_OK)
		s = ucp_worker_get_efd(net->worker, &net->efd);
	if (s != UCS_OK) {
		rc = moirai__err(status_errno(s), "net: UCX worker: %s", ucs_status_string(s));
		goto fail;
	}
	rc = set_handler(net, AM_HELLO, on_hello);
	if (!rc)
		rc = set_handler(net, AM_ACK, on_ack);
	if (!rc)
		rc = set_handler(net, AM_DATA, on_data);
	if (!rc)
		rc = set_handler(net, AM_CREDIT, on_credit);
	if (!rc)
		rc = set_handler(net, AM_FIN, on_fin);
	if (!rc)
		rc = set_handler(net, AM_FIN_ACK, on_fin_ack);
	if (rc) {
		moirai__err(rc, "net: cannot register the active message handlers");
		goto fail;
	}
	if (c.rt) {
		net->rt = c.rt;
		rc = moirai_poller_register(c.rt, moirai_rt_self(), "net-progress", poll_progress,
					    net, 0, 0, &net->poller);
		if (!rc)
			rc = moirai_poller_set_wake(net->poller, net->efd, poll_arm, net);
		if (rc)
			goto fail;
	}
	*out = net;
	return 0;
fail:
	moirai_net_destroy(net);
	return rc;
}

static void wait_request(struct moirai_net *net, ucs_status_ptr_t r, uint64_t deadline)
{
	if (!UCS_PTR_IS_PTR(r))
		return;
	while (ucp_request_check_status(r) == UCS_INPROGRESS && moirai_now_ns() < deadline)
		ucp_worker_progress(net->worker);
	/* Still in progress at the deadline: UCX frees it when it ends. */
	ucp_request_free(r);
}

static void ep_close(struct moirai_net_chan *ch, bool force)
{
	struct moirai_net *net = ch->net;
	uint64_t deadline = moirai_now_ns() + DESTROY_WAIT_NS;
	ucp_request_param_t p = { .op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS,
				  .flags = force ? UCP_EP_CLOSE_FLAG_FORCE : 0 };

	ch->dying = true;
	if (ch->ep) {
		ucp_ep_h ep = ch->ep;

		ch->ep = NULL;
		wait_request(net, ucp_ep_close_nbx(ep, &p), deadline);
	}
	/* Closing completes (or cancels) every send: their slots come back. */
	while (ch->inflight && moirai_now_ns() < deadline)
		ucp_worker_progress(net->worker);
}

void moirai_net_chan_destroy(struct moirai_net_chan *ch)
{
	struct moirai_net *net;

	if (!ch)
		return;
	net = ch->net;
	if (ch->state == CS_READY && !ch->err && !ch->local_closed && !ch->got_fin)
		moirai_net_close(ch);
	/* The FIN (and anything owed) goes out before the flush of the close. */
	for (uint64_t end = moirai_now_ns() + DESTROY_WAIT_NS;
	     !ch->err && (ch->fin_owed || ch->fin_ack_owed || ch->agg_n) && moirai_now_ns() < end;)
		net_progress(net);
	/* Force only when the connection is gone or the peer acknowledged our
	 * FIN (it has everything).  Else flush: over shared memory the
	 * disconnect (through the TCP connection manager) can overtake what is
	 * still in the FIFO, so the peer would see a reset instead of our last
	 * messages and FIN or FIN_ACK (TSan run, UCX's default transports). */
	ep_close(ch, ch->err != 0 || (ch->got_fin_ack && !ch->inflight));
	if (ch->inflight) {
		/* UCX still holds a slot: keep the endpoint (unreachable) until
		 * the net goes. */
		moirai__log(MOIRAI_LOG_WARN, "net: endpoint %u: sends still in flight at destroy",
			    ch->id);
		ch->state = CS_REFUSED;
		ch->accepted = false;
		return;
	}
	chan_free(ch);
}

void moirai_net_listener_destroy(struct moirai_net_listener *l)
{
	struct moirai__list *it, *tmp;

	if (!l)
		return;
	if (l->ul)
		ucp_listener_destroy(l->ul);
	/* Endpoints it made and nobody accepted go with it. */
	moirai__list_foreach_safe(it, tmp, &l->net->chans) {
		struct moirai_net_chan *ch = moirai__list_entry(it, struct moirai_net_chan, link);

		if (ch->l == l && !ch->accepted) {
			ch->l = NULL;
			moirai_net_chan_destroy(ch);
		}
	}
	moirai__list_del(&l->link);
	free(l);
}

void moirai_net_destroy(struct moirai_net *net)
{
	if (!net)
		return;
	while (!moirai__list_empty(&net->listeners))
		moirai_net_listener_destroy(
			moirai__list_first(&net->listeners, struct moirai_net_listener, link));
	for (;;) {
		struct moirai__list *it;
		struct moirai_net_chan *live = NULL;

		moirai__list_foreach(it, &net->chans) {
			struct moirai_net_chan *ch =
				moirai__list_entry(it, struct moirai_net_chan, link);

			if (!ch->dying) {
				live = ch;
				break;
			}
		}
		if (!live)
			break;
		moirai_net_chan_destroy(live);
	}
	if (net->poller)
		moirai_poller_unregister(net->poller);
	/* The worker completes what is left in flight: then the leftovers go. */
	if (net->worker)
		ucp_worker_destroy(net->worker);
	while (!moirai__list_empty(&net->chans))
		chan_free(moirai__list_first(&net->chans, struct moirai_net_chan, link));
	if (net->ctx)
		ucp_cleanup(net->ctx);
	free(net->tab);
	free(net->scratch);
	free(net);
}

int moirai_net_progress(struct moirai_net *net)
{
	if (!net)
		return moirai__err(-EINVAL, "net: NULL net");
	return net_progress(net);
}

int moirai_net_fd(const struct moirai_net *net)
{
	if (!net)
		return moirai__err(-EINVAL, "net: NULL net");
	return net->efd;
}

int moirai_net_arm(struct moirai_net *net)
{
	if (!net)
		return moirai__err(-EINVAL, "net: NULL net");
	if (net->ctl_owed || net->reap || ucp_worker_arm(net->worker) != UCS_OK)
		return moirai__err(-EBUSY, "net arm: progress is pending (call "
					   "moirai_net_progress() first)");
	return 0;
}

/* ---- listen, accept, connect --------------------------------------------- */

static void conn_cb(ucp_conn_request_h req, void *arg)
{
	struct moirai_net_listener *l = arg;
	struct moirai_net_chan *ch = chan_new(l->net, &l->opts, CS_PENDING);
	ucp_ep_params_t ep = { 0 };
	ucs_status_t s;

	if (!ch) {
		moirai__log(MOIRAI_LOG_WARN, "net: port %d: no memory for a connection", l->port);
		ucp_listener_reject(l->ul, req);
		return;
	}
	ch->l = l;
	ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
			UCP_EP_PARAM_FIELD_ERR_HANDLER;
	ep.conn_request = req;
	ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
	ep.err_handler.cb = err_cb;
	ep.err_handler.arg = ch;
	s = ucp_ep_create(l->net->worker, &ep, &ch->ep);
	if (s != UCS_OK) {
		moirai__log(MOIRAI_LOG_WARN, "net: port %d: cannot accept a connection: %s",
			    l->port, ucs_status_string(s));
		ch->ep = NULL;
		chan_free(ch);
	}
}

int moirai_net_listen(struct moirai_net *net, const char *addr,
		      const struct moirai_net_chan_opts *opts, struct moirai_net_listener **out)
{
	struct moirai_net_listener *l;
	ucp_listener_params_t lp = { 0 };
	ucp_listener_attr_t la = { .field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR };
	struct sockaddr_storage ss;
	socklen_t len;
	ucs_status_t s;
	int rc;

	if (out)
		*out = NULL;
	if (!net || !out)
		return moirai__err(-EINVAL, "net listen: NULL argument");
	rc = net_parse_addr(addr, true, &ss, &len);
	if (rc)
		return rc;
	l = calloc(1, sizeof(*l));
	if (!l)
		return moirai__err(-ENOMEM, "net listen: out of memory");
	rc = opts_check(opts, &l->opts);
	if (rc) {
		free(l);
		return rc;
	}
	l->net = net;
	moirai__list_init(&l->queue);
	lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
	lp.sockaddr.addr = (const struct sockaddr *)&ss;
	lp.sockaddr.addrlen = len;
	lp.conn_handler.cb = conn_cb;
	lp.conn_handler.arg = l;
	s = ucp_listener_create(net->worker, &lp, &l->ul);
	if (s != UCS_OK) {
		free(l);
		return moirai__err(status_errno(s), "net listen: %s: %s", addr,
				   ucs_status_string(s));
	}
	s = ucp_listener_query(l->ul, &la);
	if (s != UCS_OK) {
		ucp_listener_destroy(l->ul);
		free(l);
		return moirai__err(status_errno(s), "net listen: %s: query: %s", addr,
				   ucs_status_string(s));
	}
	l->port = la.sockaddr.ss_family == AF_INET6
			  ? ntohs(((struct sockaddr_in6 *)&la.sockaddr)->sin6_port)
			  : ntohs(((struct sockaddr_in *)&la.sockaddr)->sin_port);
	moirai__list_add_tail(&net->listeners, &l->link);
	*out = l;
	return 0;
}

int moirai_net_listener_port(const struct moirai_net_listener *l)
{
	return l ? l->port : moirai__err(-EINVAL, "net: NULL listener");
}

uint64_t moirai_net_listener_refused(const struct moirai_net_listener *l)
{
	return l ? l->refused : 0;
}

static int accept_attempt(void *ctx)
{
	struct moirai_net_listener *l = ctx;

	return moirai__list_empty(&l->queue) ? 0 : 1;
}

int moirai_net_accept(struct moirai_net_listener *l, int64_t timeout_ns,
		      struct moirai_net_chan **out)
{
	struct moirai_net_chan *ch;
	uint64_t deadline;
	int rc;

	if (out)
		*out = NULL;
	if (!l || !out)
		return moirai__err(-EINVAL, "net accept: NULL argument");
	rc = moirai__timeout_deadline("net accept", timeout_ns, &deadline);
	if (rc)
		return rc;
	if (timeout_ns == MOIRAI_TIMEOUT_TRY) {
		if (!accept_attempt(l)) {
			net_progress(l->net);
			if (!accept_attempt(l))
				return -EAGAIN;
		}
	} else {
		rc = net_wait(l->net, accept_attempt, l, deadline);
		if (rc < 0)
			return rc;
	}
	ch = moirai__list_first(&l->queue, struct moirai_net_chan, qlink);
	moirai__list_del(&ch->qlink);
	moirai__list_init(&ch->qlink);
	ch->queued = false;
	ch->accepted = true;
	ch->l = NULL;
	*out = ch;
	return 0;
}

static int connect_attempt(void *ctx)
{
	return ((struct moirai_net_chan *)ctx)->connect_rc;
}

int moirai_net_connect(struct moirai_net *net, const char *addr,
		       const struct moirai_net_chan_opts *opts, int64_t timeout_ns,
		       struct moirai_net_chan **out)
{
	struct moirai_net_chan_opts o;
	struct moirai_net_chan *ch;
	struct sockaddr_storage ss;
	ucp_ep_params_t ep = { 0 };
	struct net_hello h;
	struct net_hdr hd = { 0 };
	uint64_t deadline;
	socklen_t len;
	ucs_status_t s;
	int rc;

	if (out)
		*out = NULL;
	if (!net || !out)
		return moirai__err(-EINVAL, "net connect: NULL argument");
	if (timeout_ns == MOIRAI_TIMEOUT_TRY)
		return moirai__err(-EINVAL, "net connect: a connect needs a timeout (not 0)");
	rc = moirai__timeout_deadline("net connect", timeout_ns, &deadline);
	if (!rc)
		rc = opts_check(opts, &o);
	if (!rc)
		rc = net_parse_addr(addr, false, &ss, &len);
	if (rc)
		return rc;
	ch = chan_new(net, &o, CS_CONNECTING);
	if (!ch)
		return moirai__err(-ENOMEM, "net connect: out of memory");
	ep.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
			UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
	ep.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
	ep.sockaddr.addr = (const struct sockaddr *)&ss;
	ep.sockaddr.addrlen = len;
	ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
	ep.err_handler.cb = err_cb;
	ep.err_handler.arg = ch;
	s = ucp_ep_create(net->worker, &ep, &ch->ep);
	if (s != UCS_OK) {
		ch->ep = NULL;
		chan_free(ch);
		return moirai__err(s == UCS_ERR_UNREACHABLE ? -ECONNREFUSED : status_errno(s),
				   "net connect: %s: %s", addr, ucs_status_string(s));
	}
	h = hello_of(ch, ST_OK);
	rc = am_send(ch, AM_HELLO, &hd, &h, sizeof(h), UCP_AM_SEND_FLAG_REPLY);
	if (!rc)
		rc = net_wait(net, connect_attempt, ch, deadline);
	if (rc == 1) {
		*out = ch;
		return 0;
	}
	if (rc == -ETIMEDOUT)
		moirai__err(rc, "net connect: %s: no answer in time", addr);
	else if (rc == -ECONNREFUSED || rc == -ECONNRESET)
		rc = moirai__err(-ECONNREFUSED, "net connect: %s: refused or unreachable", addr);
	ch->state = CS_REFUSED; /* no FIN on the way out */
	ep_close(ch, true);
	chan_free(ch);
	return rc;
}

/* ---- send and receive -------------------------------------------------- */

static int send_state(struct moirai_net_chan *ch)
{
	if (ch->local_closed || ch->got_fin || ch->got_fin_ack)
		return -EPIPE;
	return ch->err;
}

/* Variable or fixed messages as one vector: the common send. */
struct sendv_ctx {
	struct moirai_net_chan *ch;
	const void *flat; /* fixed mode: n contiguous messages, or NULL */
	const struct moirai_net_msg *msgs;
	unsigned n;
	bool counted;
};

/*
 * Coalescing: append up to @room of @c's messages to the open DATA
 * message, sending it whenever the next one does not fit or it is full.
 * Returns the count appended; *rc is a send's error (-EAGAIN: no slot).
 */
static unsigned agg_some(struct sendv_ctx *c, unsigned sent, unsigned room, int *rc)
{
	struct moirai_net_chan *ch = c->ch;
	unsigned k;

	for (k = 0; k < room; k++) {
		unsigned i = sent + k;
		const void *base =
			c->flat ? (const unsigned char *)c->flat + (size_t)i * ch->elem_size
				: c->msgs[i].base;
		size_t len = c->flat ? ch->elem_size : c->msgs[i].len;
		size_t need = ch->var ? 4 + ((len + 3u) & ~(size_t)3u) : len;
		unsigned char *p;

		if (ch->agg_n && (ch->agg_len + need > ch->agg_max || ch->agg_n >= ch->agg_cap)) {
			*rc = agg_flush(ch);
			if (*rc)
				break;
		}
		if (!ch->agg_n)
			ch->agg_seq = ch->tx_seq + k;
		p = ch->agg + ch->agg_len;
		if (ch->var) {
			uint32_t l32 = (uint32_t)len;

			memcpy(p, &l32, 4);
			memset(p + need - 4, 0, 4); /* the padding (before the copy) */
			p += 4;
		}
		memcpy(p, base, len);
		ch->agg_len += (unsigned)need;
		ch->agg_n++;
	}
	if (ch->agg_n && (ch->agg_len >= ch->agg_max || ch->agg_n >= ch->agg_cap) && !*rc)
		(void)agg_flush(ch); /* -EAGAIN: progress sends it */
	if (ch->agg_n)
		owe(ch);
	return k;
}

static int send_some(struct sendv_ctx *c)
{
	struct moirai_net_chan *ch = c->ch;
	unsigned sent = 0;
	int rc = send_state(ch);

	if (rc)
		return rc;
	if (ch->agg_max && ch->credits) {
		unsigned room = c->n < ch->credits ? c->n : ch->credits;

		sent = agg_some(c, 0, room, &rc);
		ch->credits -= sent;
		ch->tx_seq += sent;
		ch->st.msgs_sent += sent;
	}
	while (!ch->agg_max && sent < c->n && ch->credits) {
		struct net_hdr hd = { .dst_id = ch->peer_id, .dst_gen = ch->peer_gen };
		unsigned k = 0, room = c->n - sent < ch->credits ? c->n - sent : ch->credits;
		const void *data;
		size_t len = 0;

		if (c->flat) {
			unsigned per = MOIRAI_NET_AM_MAX / ch->elem_size;

			k = room < per ? room : per;
			data = (const unsigned char *)c->flat + (size_t)sent * ch->elem_size;
			len = (size_t)k * ch->elem_size;
		} else {
			unsigned char *p = ch->net->scratch;

			while (k < room) {
				const struct moirai_net_msg *m = &c->msgs[sent + k];
				size_t need = ch->var ? 4 + ((m->len + 3u) & ~(size_t)3u) : m->len;
				uint32_t l32 = (uint32_t)m->len;

				if (k && len + need > MOIRAI_NET_AM_MAX)
					break;
				if (ch->var) {
					memcpy(p + len, &l32, 4);
					memcpy(p + len + 4, m->base, m->len);
					memset(p + len + 4 + m->len, 0, need - 4 - m->len);
				} else {
					memcpy(p + len, m->base, m->len);
				}
				len += need;
				k++;
			}
			data = p;
		}
		hd.count = k;
		hd.arg = ch->tx_seq;
		rc = am_send(ch, AM_DATA, &hd, data, len, 0);
		if (rc)
			break;
		ch->credits -= k;
		ch->tx_seq += k;
		ch->st.msgs_sent += k;
		ch->st.ams_sent++;
		sent += k;
	}
	if (sent) {
		c->n -= sent;
		return (int)sent;
	}
	if (rc && rc != -EAGAIN)
		return rc;
	if (!ch->credits && !c->counted) {
		ch->st.window_full++;
		c->counted = true;
	}
	return 0;
}

static int send_attempt(void *ctx)
{
	return send_some(ctx);
}

/*
 * The one body of every send and receive: @attempt(ctx) moves what it can
 * and returns the count (0: nothing yet, or an error); a try makes progress
 * once between two attempts, else net_wait() until something moved, an
 * error or the deadline.  @n is the count asked for (0: nothing to do).
 * A receive (@flush) first sends what sends left coalesced: the peer may
 * be waiting for it, and a wait would spend its spin on the send.
 */
static int xfer(struct moirai_net *net, const char *what, int (*attempt)(void *), void *ctx,
		unsigned n, int64_t timeout_ns, bool flush)
{
	uint64_t deadline;
	int rc = moirai__timeout_deadline(what, timeout_ns, &deadline);

	if (rc)
		return rc;
	if (flush && net->ctl_owed)
		flush_all(net);
	if (n == 0)
		return 0;
	rc = attempt(ctx);
	if (rc)
		return rc;
	if (timeout_ns == MOIRAI_TIMEOUT_TRY) {
		net_progress(net);
		rc = attempt(ctx);
		return rc ? rc : -EAGAIN;
	}
	return net_wait(net, attempt, ctx, deadline);
}

int moirai_net_send(struct moirai_net_chan *ch, const void *msgs, unsigned n, int64_t timeout_ns)
{
	struct sendv_ctx c = { .ch = ch, .flat = msgs, .n = n };

	if (!ch || (!msgs && n))
		return moirai__err(-EINVAL, "net send: NULL argument");
	if (ch->var)
		return moirai__err(-EINVAL, "net send: a variable-length channel (use sendv)");
	return xfer(ch->net, "net send", send_attempt, &c, n, timeout_ns, false);
}

int moirai_net_sendv(struct moirai_net_chan *ch, const struct moirai_net_msg *msgs, unsigned n,
		     int64_t timeout_ns)
{
	struct sendv_ctx c = { .ch = ch, .msgs = msgs, .n = n };

	if (!ch || (!msgs && n))
		return moirai__err(-EINVAL, "net sendv: NULL argument");
	for (unsigned i = 0; i < n; i++) {
		if (!msgs[i].base && msgs[i].len)
			return moirai__err(-EINVAL, "net sendv: message %u has no buffer", i);
		if (ch->var ? msgs[i].len > ch->max_msg : msgs[i].len != ch->elem_size)
			return moirai__err(
				-EMSGSIZE,
				"net sendv: message %u has %zu bytes; the channel takes %s "
				"%u",
				i, msgs[i].len, ch->var ? "at most" : "exactly",
				ch->var ? ch->max_msg : ch->elem_size);
	}
	return xfer(ch->net, "net send", send_attempt, &c, n, timeout_ns, false);
}

/* A receive consumed @n: return credits once a quarter window is due. */
static void consumed(struct moirai_net_chan *ch, unsigned n)
{
	unsigned batch = ch->window / 4 ? ch->window / 4 : 1;

	ch->st.msgs_received += n;
	ch->unacked += n;
	if (ch->unacked < batch || ch->err || ch->got_fin || ch->got_fin_ack)
		return;
	if (!ch->credit_owed && !ch->fin_owed && !ch->fin_ack_owed &&
	    ctl_send(ch, AM_CREDIT, ch->unacked) == 0) {
		ch->st.credits_sent++;
		ch->unacked = 0;
		return;
	}
	owe(ch);
	ch->credit_owed += ch->unacked;
	ch->unacked = 0;
}

struct recv_ctx {
	struct moirai_net_chan *ch;
	void *flat;
	struct moirai_net_msg *msgs;
	unsigned max;
};

static int recv_some(struct recv_ctx *c)
{
	struct moirai_net_chan *ch = c->ch;
	unsigned n;

	if (ch->rx_count == 0) {
		if (ch->got_fin || ch->got_fin_ack)
			return -EPIPE;
		if (ch->err)
			return ch->err;
		return 0;
	}
	n = ch->rx_count < c->max ? ch->rx_count : c->max;
	if (c->flat) {
		unsigned first = n < ch->window - ch->rx_head ? n : ch->window - ch->rx_head;

		memcpy(c->flat, ch->rx + (size_t)ch->rx_head * ch->slot_size,
		       (size_t)first * ch->elem_size);
		if (n > first)
			memcpy((unsigned char *)c->flat + (size_t)first * ch->elem_size, ch->rx,
			       (size_t)(n - first) * ch->elem_size);
		ch->rx_head = (ch->rx_head + n) % ch->window;
	} else {
		unsigned i;

		for (i = 0; i < n; i++) {
			size_t len = ch->var ? ch->rx_len[ch->rx_head] : ch->elem_size;

			if (len > c->msgs[i].len) {
				if (i == 0) {
					c->msgs[0].len = len;
					return moirai__err(-EMSGSIZE,
							   "net recvv: the next message has %zu "
							   "bytes, the buffer %zu",
							   len, c->msgs[0].len);
				}
				break;
			}
			memcpy(c->msgs[i].base, ch->rx + (size_t)ch->rx_head * ch->slot_size, len);
			c->msgs[i].len = len;
			if (++ch->rx_head == ch->window)
				ch->rx_head = 0;
		}
		n = i;
	}
	ch->rx_count -= n;
	consumed(ch, n);
	return (int)n;
}

static int recv_attempt(void *ctx)
{
	return recv_some(ctx);
}

int moirai_net_recv(struct moirai_net_chan *ch, void *msgs, unsigned max, int64_t timeout_ns)
{
	struct recv_ctx c = { .ch = ch, .flat = msgs, .max = max };

	if (!ch || (!msgs && max))
		return moirai__err(-EINVAL, "net recv: NULL argument");
	if (ch->var)
		return moirai__err(-EINVAL, "net recv: a variable-length channel (use recvv)");
	return xfer(ch->net, "net recv", recv_attempt, &c, max, timeout_ns, true);
}

int moirai_net_recvv(struct moirai_net_chan *ch, struct moirai_net_msg *msgs, unsigned max,
		     int64_t timeout_ns)
{
	struct recv_ctx c = { .ch = ch, .msgs = msgs, .max = max };

	if (!ch || (!msgs && max))
		return moirai__err(-EINVAL, "net recvv: NULL argument");
	for (unsigned i = 0; i < max; i++)
		if (!msgs[i].base && msgs[i].len)
			return moirai__err(-EINVAL, "net recvv: buffer %u is NULL", i);
	return xfer(ch->net, "net recv", recv_attempt, &c, max, timeout_ns, true);
}

int moirai_net_close(struct moirai_net_chan *ch)
{
	if (!ch)
		return moirai__err(-EINVAL, "net close: NULL channel");
	if (ch->local_closed || ch->got_fin)
		return moirai__err(-EALREADY, "net close: already closed (%s)",
				   ch->local_closed ? "here" : "by the peer");
	ch->local_closed = true;
	if (ch->err)
		return 0;
	ch->fin_sent = true;
	if (fin_send(ch, AM_FIN) == -EAGAIN) {
		owe(ch);
		ch->fin_owed = true;
	}
	return 0;
}

bool moirai_net_is_closed(const struct moirai_net_chan *ch)
{
	return ch && (ch->local_closed || ch->got_fin || ch->got_fin_ack || ch->err);
}

unsigned moirai_net_elem_size(const struct moirai_net_chan *ch)
{
	return ch ? ch->elem_size : 0;
}

unsigned moirai_net_count(const struct moirai_net_chan *ch)
{
	return ch ? ch->rx_count : 0;
}

int moirai_net_chan_stats(const struct moirai_net_chan *ch, struct moirai_net_chan_stats *out)
{
	if (!ch || !out)
		return moirai__err(-EINVAL, "net stats: NULL argument");
	*out = ch->st;
	return 0;
}
