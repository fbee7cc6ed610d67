/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private state of net/: the wire format, the net (a UCX context and
 * worker), listeners and channel endpoints.  See moirai/net.h for the
 * contract and net.c for the protocol.
 */
#ifndef MOIRAI_NET_INT_H
#define MOIRAI_NET_INT_H

#include <netinet/in.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ucp/api/ucp.h>

#include "internal.h"
#include "list.h"
#include "waitq.h"
#include "moirai/net.h"

/* ---- wire format ------------------------------------------------------ */

#define NET_MAGIC 0x6d6f6e74u /* "mont" */

/* Active message ids (small: UCX indexes a table by them). */
enum net_am {
	AM_HELLO = 1,	/* client -> server: struct net_hello, reply ep */
	AM_ACK = 2,	/* server -> client: struct net_hello with the status */
	AM_DATA = 3,	/* messages; hdr.count of them, hdr.arg the first's sequence */
	AM_CREDIT = 4,	/* hdr.count credits back to the sender */
	AM_FIN = 5,	/* close: the sender sends nothing more */
	AM_FIN_ACK = 6, /* answer to FIN: nothing more from this side either */
	AM_COUNT = 7,
};

/* The header of every active message (the UCX AM header). */
struct net_hdr {
	uint32_t dst_id;  /* the receiving endpoint's id (0 in a HELLO) */
	uint32_t dst_gen; /* and generation: a stale id is dropped */
	uint32_t count;	  /* messages (DATA) or credits (CREDIT) */
	uint32_t arg;	  /* DATA: sequence number of the first message */
};

/* Handshake, both ways. */
struct net_hello {
	uint32_t magic;
	uint32_t version;
	uint32_t elem_size; /* 0: variable length */
	uint32_t max_msg;
	uint32_t window; /* the sender's receive window: the peer's credits */
	uint32_t src_id, src_gen;
	uint32_t status; /* in an ACK: enum net_status */
};

enum net_status {
	ST_OK = 0,
	ST_VERSION = 1, /* other protocol version */
	ST_SIZE = 2,	/* other message size or mode */
	ST_MAGIC = 3,	/* not a moirai hello */
};

/* For tests: the version this side announces (MOIRAI_NET_PROTO_VERSION). */
extern uint32_t moirai__net_hello_version;

/* ---- objects ----------------------------------------------------------- */

enum chan_state {
	CS_CONNECTING = 0, /* client: HELLO sent, waiting for the ACK */
	CS_PENDING = 1,	   /* server: ep from a conn request, waiting for HELLO */
	CS_READY = 2,	   /* handshake done */
	CS_REFUSED = 3,	   /* handshake failed: to be reaped */
};

struct tx_slot {
	struct tx_slot *next;
	struct moirai_net_chan *ch;
	struct net_hdr hdr;
	size_t cap;
	alignas(8) unsigned char data[];
};

#define TX_SLOTS_MAX 64

struct moirai_net_chan {
	struct moirai_net *net;
	struct moirai__list link;      /* net->chans */
	struct moirai__list qlink;     /* listener's accept queue */
	struct moirai_net_listener *l; /* server side, until accepted */
	ucp_ep_h ep;
	uint32_t id, gen, peer_id, peer_gen;
	enum chan_state state;
	int connect_rc; /* client: the handshake's outcome (0 while waiting) */
	bool accepted, queued, dying;
	bool cut; /* protocol error: force-close the ep from progress */

	unsigned elem_size, max_msg, slot_size, window;
	bool var;

	/* Receive side: a ring of window slots. */
	unsigned char *rx;
	uint32_t *rx_len; /* variable mode: the length of each slot */
	unsigned rx_head, rx_count;
	uint32_t rx_seq;
	unsigned unacked; /* consumed, credit not yet returned */

	/* Send side. */
	unsigned credits;
	uint32_t tx_seq;
	struct tx_slot *free_slots;
	unsigned slots, inflight;
	/* Coalescing (opts.coalesce): the open DATA message, agg_n messages
	 * in agg_len bytes, the first numbered agg_seq; sent once it reaches
	 * agg_max bytes or agg_cap messages, or from progress. */
	unsigned char *agg;
	unsigned agg_max, agg_cap, agg_len, agg_n;
	uint32_t agg_seq;

	/* Control messages that found no slot: sent from progress. */
	unsigned credit_owed;
	bool fin_owed, fin_ack_owed;

	/* Close and failure. */
	bool local_closed, got_fin, got_fin_ack, fin_sent;
	int err; /* -ECONNRESET, -EPROTO: the connection is gone */

	struct moirai_net_chan_stats st;
};

struct moirai_net_listener {
	struct moirai_net *net;
	struct moirai__list link; /* net->listeners */
	ucp_listener_h ul;
	struct moirai__list queue; /* handshaken, not yet accepted */
	struct moirai_net_chan_opts opts;
	int port;
	uint64_t refused;
};

struct moirai_net {
	ucp_context_h ctx;
	ucp_worker_h worker;
	int efd;
	struct moirai_rt *rt;
	struct moirai_poller *poller;
	uint64_t spin_ns;
	struct moirai__list chans, listeners;
	struct moirai_net_chan **tab; /* id - 1 -> endpoint */
	unsigned tab_cap;
	uint32_t next_gen;
	unsigned ctl_owed;	/* endpoints with owed control messages */
	bool reap;		/* refused or failed pending endpoints to free */
	unsigned char *scratch; /* packing buffer of MOIRAI_NET_AM_MAX + 8 */
};

/* net_ucx.c: UCX, loaded on first use (see there).  Every UCX function
 * net.c calls goes through this table; the names are redirected below. */
struct net_ucx {
	__typeof__(ucs_status_string) *ucs_status_string;
	__typeof__(ucp_config_read) *ucp_config_read;
	__typeof__(ucp_config_modify) *ucp_config_modify;
	__typeof__(ucp_config_release) *ucp_config_release;
	__typeof__(ucp_init_version) *ucp_init_version;
	__typeof__(ucp_cleanup) *ucp_cleanup;
	__typeof__(ucp_worker_create) *ucp_worker_create;
	__typeof__(ucp_worker_destroy) *ucp_worker_destroy;
	__typeof__(ucp_worker_get_efd) *ucp_worker_get_efd;
	__typeof__(ucp_worker_arm) *ucp_worker_arm;
	__typeof__(ucp_worker_progress) *ucp_worker_progress;
	__typeof__(ucp_worker_set_am_recv_handler) *ucp_worker_set_am_recv_handler;
	__typeof__(ucp_am_send_nbx) *ucp_am_send_nbx;
	__typeof__(ucp_am_data_release) *ucp_am_data_release;
	__typeof__(ucp_request_check_status) *ucp_request_check_status;
	__typeof__(ucp_request_free) *ucp_request_free;
	__typeof__(ucp_ep_create) *ucp_ep_create;
	__typeof__(ucp_ep_close_nbx) *ucp_ep_close_nbx;
	__typeof__(ucp_listener_create) *ucp_listener_create;
	__typeof__(ucp_listener_destroy) *ucp_listener_destroy;
	__typeof__(ucp_listener_query) *ucp_listener_query;
	__typeof__(ucp_listener_reject) *ucp_listener_reject;
};
extern struct net_ucx net_ucx;

/* Load UCX once per process: 0, or -ENODEV with the reason recorded. */
int net_ucx_load(void);

#ifndef NET_UCX_NO_REDIRECT
#define ucs_status_string	       (*net_ucx.ucs_status_string)
#define ucp_config_read		       (*net_ucx.ucp_config_read)
#define ucp_config_modify	       (*net_ucx.ucp_config_modify)
#define ucp_config_release	       (*net_ucx.ucp_config_release)
#define ucp_cleanup		       (*net_ucx.ucp_cleanup)
#define ucp_worker_create	       (*net_ucx.ucp_worker_create)
#define ucp_worker_destroy	       (*net_ucx.ucp_worker_destroy)
#define ucp_worker_get_efd	       (*net_ucx.ucp_worker_get_efd)
#define ucp_worker_arm		       (*net_ucx.ucp_worker_arm)
#define ucp_worker_progress	       (*net_ucx.ucp_worker_progress)
#define ucp_worker_set_am_recv_handler (*net_ucx.ucp_worker_set_am_recv_handler)
#define ucp_am_send_nbx		       (*net_ucx.ucp_am_send_nbx)
#define ucp_am_data_release	       (*net_ucx.ucp_am_data_release)
#define ucp_request_check_status       (*net_ucx.ucp_request_check_status)
#define ucp_request_free	       (*net_ucx.ucp_request_free)
#define ucp_ep_create		       (*net_ucx.ucp_ep_create)
#define ucp_ep_close_nbx	       (*net_ucx.ucp_ep_close_nbx)
#define ucp_listener_create	       (*net_ucx.ucp_listener_create)
#define ucp_listener_destroy	       (*net_ucx.ucp_listener_destroy)
#define ucp_listener_query	       (*net_ucx.ucp_listener_query)
#define ucp_listener_reject	       (*net_ucx.ucp_listener_reject)
/* ucp_init() is inline in ucp.h and calls ucp_init_version(). */
#define net_ucp_init(params, config, ctx) \
	(*net_ucx.ucp_init_version)(UCP_API_MAJOR, UCP_API_MINOR, params, config, ctx)
#endif

/* net_addr.c: parse "tcp://HOST:PORT" (port 0 only if @listen). */
int net_parse_addr(const char *addr, bool listen, struct sockaddr_storage *ss, socklen_t *len);

#endif /* MOIRAI_NET_INT_H */
