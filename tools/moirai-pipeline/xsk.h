/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AF_XDP sockets for moirai-pipeline: one XSK on one queue of one
 * interface, with its own UMEM on a chosen NUMA node, over Debian's libxdp
 * (xdp/xsk.h) and libbpf.  Private to the tool; not part of libmoirai.
 *
 * The UMEM is split in two halves: RX frames live on the fill ring, in
 * the kernel's RX ring or in the caller's hands between afxdp_rx_burst()
 * and afxdp_rx_release(); TX frames live on a free stack, in the TX ring
 * or in the completion ring.  Frames are conserved, so the fill ring can
 * always take back every released frame and nothing is lost or leaked.
 *
 * Threads: the RX side (afxdp_rx_burst, afxdp_rx_release) and the TX side
 * (afxdp_tx_burst, afxdp_tx_reap) each belong to one thread at a time;
 * the two sides may run on two threads.  afxdp_open() and afxdp_close()
 * are not safe concurrently with any other call (libxdp loads and removes
 * the interface's XDP program there).
 */
#ifndef MOIRAI_PIPELINE_XSK_H
#define MOIRAI_PIPELINE_XSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** How the socket is attached; AFXDP_MODE_AUTO tries them in this order. */
enum afxdp_mode {
	AFXDP_MODE_AUTO = 0, /**< zero-copy, then driver copy, then SKB copy */
	AFXDP_MODE_ZEROCOPY, /**< native XDP in the driver, UMEM shared with the NIC */
	AFXDP_MODE_DRIVER,   /**< native XDP in the driver, frames copied */
	AFXDP_MODE_SKB,	     /**< generic XDP on the SKB path, frames copied */
};

/** Default frames per direction and frame size. */
#define AFXDP_FRAMES_DEFAULT	 2048u
#define AFXDP_FRAME_SIZE_DEFAULT 2048u
/** Longest frame afxdp_tx_burst() takes: a whole UMEM frame. */
#define AFXDP_TX_MAX(frame_size) (frame_size)

/** What to open. */
struct afxdp_config {
	const char *ifname;   /**< interface name */
	uint32_t queue;	      /**< RX/TX queue index */
	int node;	      /**< NUMA node of the UMEM, or MOIRAI_NODE_ANY */
	enum afxdp_mode mode; /**< attach mode */
	bool rx;	      /**< receive: loads libxdp's XDP program on the interface */
	bool tx;	      /**< transmit */
	uint32_t frames;      /**< frames per direction, power of two, 64..65536; 0: default */
	uint32_t frame_size;  /**< 2048 or 4096; 0: default */
};

/** One received frame, valid until afxdp_rx_release(). */
struct afxdp_frame {
	void *data;    /**< first byte of the Ethernet frame */
	uint32_t len;  /**< bytes */
	uint64_t addr; /**< UMEM address (for the release) */
};

/** Counters of one socket (ours and the kernel's XDP_STATISTICS). */
struct afxdp_stats {
	uint64_t rx_packets, rx_bytes;
	uint64_t tx_packets, tx_bytes; /**< queued on the TX ring */
	uint64_t tx_completed;	       /**< frames the kernel gave back */
	uint64_t tx_no_frame;	       /**< packets refused: no free TX frame or ring slot */
	uint64_t tx_kicks, tx_kick_errors;
	uint64_t rx_wakeups; /**< fill-ring wake-ups (need_wakeup) */
	/* XDP_STATISTICS of the socket (0 when the kernel has none) */
	uint64_t k_rx_dropped, k_rx_invalid, k_tx_invalid, k_rx_ring_full, k_fill_empty,
		k_tx_ring_empty;
};

struct afxdp_sock;

/**
 * Open an AF_XDP socket on cfg->queue of cfg->ifname with its UMEM on
 * cfg->node.  In AFXDP_MODE_AUTO the modes are tried from zero-copy down
 * to SKB mode; the one obtained is afxdp_mode().
 * @param cfg what to open.
 * @param[out] out the socket.
 * @param err buffer for a one-line message naming the interface and what
 *        failed (may be NULL).
 * @param errlen size of @p err.
 * @return 0; -EINVAL bad config or queue out of range; -ENODEV no such
 *         interface; -EPERM not root (needs CAP_NET_RAW, CAP_NET_ADMIN,
 *         CAP_BPF); -EOPNOTSUPP AF_XDP or XDP (in the mode asked) not
 *         available; -EBUSY another XDP program or socket holds the queue;
 *         -ENOMEM; other negative errno from the kernel.  Not thread-safe
 *         (see the file comment).
 */
int afxdp_open(const struct afxdp_config *cfg, struct afxdp_sock **out, char *err, size_t errlen);

/** Close @p s (NULL is a no-op), detaching the XDP program when it is the
 *  interface's last socket.  Frames still held become invalid. */
void afxdp_close(struct afxdp_sock *s);

/** The mode obtained. */
enum afxdp_mode afxdp_mode(const struct afxdp_sock *s);

/** "auto", "zerocopy", "driver", "skb". */
const char *afxdp_mode_name(enum afxdp_mode m);

/** Parse a mode name; 0 or -EINVAL. */
int afxdp_mode_parse(const char *s, enum afxdp_mode *out);

/** The socket's file descriptor (for poll()). */
int afxdp_fd(const struct afxdp_sock *s);

/** NUMA node whose arena holds the UMEM (moirai_alloc_ptr_node()). */
int afxdp_node(const struct afxdp_sock *s);

/**
 * Number of RX queues of @p ifname (real_num_rx_queues, from sysfs).
 * @return >= 1; -ENODEV no such interface.
 */
int afxdp_queue_count(const char *ifname);

/**
 * Take up to @p n received frames.  Each stays valid until it is given
 * back with afxdp_rx_release(), which must happen on the RX thread.
 * @return frames written to @p f, 0..n.
 */
unsigned afxdp_rx_burst(struct afxdp_sock *s, struct afxdp_frame *f, unsigned n);

/** Give @p n frames from afxdp_rx_burst() back to the fill ring. */
void afxdp_rx_release(struct afxdp_sock *s, const struct afxdp_frame *f, unsigned n);

/**
 * Copy up to @p n packets into free TX frames, queue them and kick the
 * kernel.  Completed frames are reaped first.  Stops at the first packet
 * of length 0 or longer than AFXDP_TX_MAX(frame size), which the caller
 * must drop, or when the free TX frames run out.
 * @return packets queued, 0..n: the first ones, in order.
 */
unsigned afxdp_tx_burst(struct afxdp_sock *s, const void *const *pkts, const uint32_t *lens,
			unsigned n);

/**
 * Reap the completion ring and kick the kernel again while frames are in
 * flight (SKB mode sends at most a batch per kick).
 * @return frames still in flight (queued and not completed).
 */
unsigned afxdp_tx_reap(struct afxdp_sock *s);

/** Read the counters (the kernel's read now). */
void afxdp_stats_get(const struct afxdp_sock *s, struct afxdp_stats *out);

#endif /* MOIRAI_PIPELINE_XSK_H */
