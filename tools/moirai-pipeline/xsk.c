/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * AF_XDP sockets for moirai-pipeline (xsk.h): a UMEM from moirai's node
 * arena, libxdp's socket and default XDP program (an XSKMAP redirect per
 * queue), the fill/completion ring bookkeeping, RX bursts handing out
 * frame pointers, TX bursts that copy into TX frames and kick the kernel.
 *
 * Modes: zero-copy needs a driver with AF_XDP zero-copy support; driver
 * (native) copy mode needs native XDP; SKB mode (generic XDP) works on any
 * interface and is what veth pairs get reliably: veth runs its native XDP
 * program only for frames that take its NAPI path, so frames a peer
 * transmits with TSO on can bypass a driver-mode socket (docs/pipeline.md).
 *
 * libxdp and libbpf print through process-wide callbacks; while a socket
 * is being opened they are redirected into a buffer, so that a mode that
 * does not work falls back quietly and a final failure can quote the
 * library's own reason.
 */
#include <errno.h>
#include <dirent.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <xdp/libxdp.h>
#include <xdp/xsk.h>

#include <moirai.h>

#include "xsk.h"

/* Counters: each has one writer (its side's thread); readers load them
 * relaxed, so a live read is a racy snapshot but never a data race. */
struct counters {
	_Atomic uint64_t rx_packets, rx_bytes, rx_wakeups;
	_Atomic uint64_t tx_packets, tx_bytes, tx_completed, tx_no_frame, tx_kicks, tx_kick_errors;
};

struct afxdp_sock {
	/* RX side: one thread */
	struct xsk_ring_cons rx;
	struct xsk_ring_prod fill;
	/* TX side: one thread */
	struct xsk_ring_prod tx;
	struct xsk_ring_cons comp;
	uint64_t *tx_free; /* stack of free TX frame addresses */
	uint32_t tx_free_n;

	struct counters c;
	struct xsk_umem *umem;
	struct xsk_socket *xsk;
	char *area;
	size_t area_size;
	uint32_t frames, frame_size;
	uint32_t rx_frames, tx_frames;
	int fd, node;
	enum afxdp_mode mode;
	bool rx_on, tx_on;
	char ifname[IF_NAMESIZE];
	uint32_t queue;
};

static void count(_Atomic uint64_t *c, uint64_t v)
{
	/* single writer: a plain load and store, no locked instruction */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
			      memory_order_relaxed);
}

static uint64_t load(const _Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* ---- libxdp/libbpf messages, captured while opening -------------------- */

static char lib_msg[256];

static void keep_msg(const char *fmt, va_list ap)
{
	char buf[sizeof(lib_msg)];
	size_t n;

	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	if (n > 0)
		memcpy(lib_msg, buf, n + 1);
}

static int xdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBXDP_DEBUG)
		keep_msg(fmt, ap);
	return 0;
}

static int bpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level != LIBBPF_DEBUG)
		keep_msg(fmt, ap);
	return 0;
}

/* ---- names -------------------------------------------------------------- */

static const char *const mode_names[] = {
	[AFXDP_MODE_AUTO] = "auto",
	[AFXDP_MODE_ZEROCOPY] = "zerocopy",
	[AFXDP_MODE_DRIVER] = "driver",
	[AFXDP_MODE_SKB] = "skb",
};

const char *afxdp_mode_name(enum afxdp_mode m)
{
	if ((unsigned)m >= sizeof(mode_names) / sizeof(mode_names[0]))
		return "?";
	return mode_names[m];
}

int afxdp_mode_parse(const char *s, enum afxdp_mode *out)
{
	for (unsigned i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (s && strcmp(s, mode_names[i]) == 0) {
			*out = (enum afxdp_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

enum afxdp_mode afxdp_mode(const struct afxdp_sock *s)
{
	return s->mode;
}

int afxdp_fd(const struct afxdp_sock *s)
{
	return s->fd;
}

int afxdp_node(const struct afxdp_sock *s)
{
	int n = moirai_alloc_ptr_node(s->area);

	return n >= 0 ? n : s->node;
}

int afxdp_queue_count(const char *ifname)
{
	char path[64 + IF_NAMESIZE];
	struct dirent *d;
	DIR *dir;
	int n = 0;

	if (!ifname || strlen(ifname) >= IF_NAMESIZE || !if_nametoindex(ifname))
		return -ENODEV;
	snprintf(path, sizeof(path), "/sys/class/net/%s/queues", ifname);
	dir = opendir(path);
	if (!dir)
		return 1; /* no sysfs view (another namespace's /sys): one queue */
	while ((d = readdir(dir)))
		if (strncmp(d->d_name, "rx-", 3) == 0)
			n++;
	closedir(dir);
	return n > 0 ? n : 1;
}

/* ---- open and close ----------------------------------------------------- */

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* One attempt in one mode; on failure nothing of it is left. */
static int try_mode(struct afxdp_sock *s, enum afxdp_mode mode)
{
	/*
	 * The fill and TX rings are twice the frames they carry: the kernel
	 * publishes its consumer index of both lazily (in batches), so a
	 * frame it took and handed back (RX, or completion) can still count
	 * as queued when we give it again; with rings of exactly the frames,
	 * the reservations in afxdp_rx_release() and afxdp_tx_burst() failed
	 * now and then (make SAN=address check, skb mode, once).  Twice holds
	 * every frame given and not yet seen taken, plus every frame we give.
	 */
	struct xsk_umem_config ucfg = {
		.fill_size = s->rx_on ? 2 * s->frames : 64,
		.comp_size = s->tx_on ? s->frames : 64,
		.frame_size = s->frame_size,
		.frame_headroom = 0,
		.flags = 0,
	};
	struct xsk_socket_config scfg = {
		.rx_size = s->rx_on ? s->frames : 0,
		.tx_size = s->tx_on ? 2 * s->frames : 0,
		/* a TX-only socket needs no program redirecting frames to it */
		.libxdp_flags = s->rx_on ? 0 : XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.xdp_flags = mode == AFXDP_MODE_SKB ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE,
		.bind_flags = (uint16_t)((mode == AFXDP_MODE_ZEROCOPY ? XDP_ZEROCOPY : XDP_COPY) |
					 XDP_USE_NEED_WAKEUP),
	};
	int rc;

	rc = xsk_umem__create(&s->umem, s->area, s->area_size, &s->fill, &s->comp, &ucfg);
	if (rc)
		return rc < 0 ? rc : -EIO;
	rc = xsk_socket__create(&s->xsk, s->ifname, s->queue, s->umem, s->rx_on ? &s->rx : NULL,
				s->tx_on ? &s->tx : NULL, &scfg);
	if (rc) {
		xsk_umem__delete(s->umem);
		s->umem = NULL;
		s->xsk = NULL;
		return rc < 0 ? rc : -EIO;
	}
	return 0;
}

static int fill_frames(struct afxdp_sock *s)
{
	uint32_t idx = 0;

	if (s->rx_frames) {
		if (xsk_ring_prod__reserve(&s->fill, s->rx_frames, &idx) != s->rx_frames)
			return -EIO;
		for (uint32_t i = 0; i < s->rx_frames; i++)
			*xsk_ring_prod__fill_addr(&s->fill, idx + i) = (uint64_t)i * s->frame_size;
		xsk_ring_prod__submit(&s->fill, s->rx_frames);
	}
	for (uint32_t i = 0; i < s->tx_frames; i++)
		s->tx_free[i] = (uint64_t)(s->rx_frames + i) * s->frame_size;
	s->tx_free_n = s->tx_frames;
	return 0;
}

static bool is_pow2(uint32_t v)
{
	return v && !(v & (v - 1));
}

int afxdp_open(const struct afxdp_config *cfg, struct afxdp_sock **out, char *err, size_t errlen)
{
	static const enum afxdp_mode auto_order[] = { AFXDP_MODE_ZEROCOPY, AFXDP_MODE_DRIVER,
						      AFXDP_MODE_SKB };
	libxdp_print_fn_t old_xdp;
	libbpf_print_fn_t old_bpf;
	const enum afxdp_mode *modes;
	struct afxdp_sock *s;
	unsigned nmodes;
	int rc, nq, node;

	if (err && errlen)
		err[0] = '\0';
	if (!cfg || !out)
		return fail(err, errlen, -EINVAL, "afxdp: no config");
	if (!cfg->ifname || !cfg->ifname[0] || strlen(cfg->ifname) >= IF_NAMESIZE)
		return fail(err, errlen, -EINVAL, "afxdp: bad interface name '%s'",
			    cfg->ifname ? cfg->ifname : "(null)");
	uint32_t frames = cfg->frames ? cfg->frames : AFXDP_FRAMES_DEFAULT;
	uint32_t fsize = cfg->frame_size ? cfg->frame_size : AFXDP_FRAME_SIZE_DEFAULT;
	if (!cfg->rx && !cfg->tx)
		return fail(err, errlen, -EINVAL, "%s: AF_XDP socket with neither RX nor TX",
			    cfg->ifname);
	if (!is_pow2(frames) || frames < 64 || frames > 65536)
		return fail(err, errlen, -EINVAL, "%s: %u frames (a power of two from 64 to 65536)",
			    cfg->ifname, frames);
	if (fsize != 2048 && fsize != 4096)
		return fail(err, errlen, -EINVAL, "%s: frame size %u (2048 or 4096)", cfg->ifname,
			    fsize);
	if ((unsigned)cfg->mode > AFXDP_MODE_SKB)
		return fail(err, errlen, -EINVAL, "%s: unknown XDP mode %d", cfg->ifname,
			    (int)cfg->mode);
	if (!if_nametoindex(cfg->ifname))
		return fail(err, errlen, -ENODEV, "%s: no such network interface", cfg->ifname);
	nq = afxdp_queue_count(cfg->ifname);
	if (nq < 0)
		return fail(err, errlen, -ENODEV, "%s: no such network interface", cfg->ifname);
	if (cfg->queue >= (uint32_t)nq)
		return fail(err, errlen, -EINVAL, "%s: queue %u out of range (%d RX queue%s)",
			    cfg->ifname, cfg->queue, nq, nq == 1 ? "" : "s");

	node = cfg->node;
	s = moirai_malloc_node(sizeof(*s), node);
	if (!s)
		return fail(err, errlen, -errno, "%s: socket state on node %d: %s", cfg->ifname,
			    node, strerror(errno));
	memset(s, 0, sizeof(*s));
	snprintf(s->ifname, sizeof(s->ifname), "%s", cfg->ifname);
	s->queue = cfg->queue;
	s->node = node;
	s->frames = frames;
	s->frame_size = fsize;
	s->rx_on = cfg->rx;
	s->tx_on = cfg->tx;
	s->rx_frames = cfg->rx ? frames : 0;
	s->tx_frames = cfg->tx ? frames : 0;
	s->fd = -1;
	s->area_size = (size_t)(s->rx_frames + s->tx_frames) * fsize;
	/* page-aligned, bound to the node before the kernel pins it */
	s->area = moirai_malloc_node_flags(s->area_size, 4096, node, 0);
	if (!s->area) {
		rc = fail(err, errlen, -errno, "%s: UMEM of %zu bytes on node %d: %s", s->ifname,
			  s->area_size, node, strerror(errno));
		goto err_free_sock;
	}
	if (s->tx_frames) {
		s->tx_free = moirai_malloc_node(s->tx_frames * sizeof(uint64_t), node);
		if (!s->tx_free) {
			rc = fail(err, errlen, -errno, "%s: TX frame stack: %s", s->ifname,
				  strerror(errno));
			goto err_free_area;
		}
	}

	if (cfg->mode == AFXDP_MODE_AUTO) {
		modes = auto_order;
		nmodes = 3;
	} else {
		modes = &cfg->mode;
		nmodes = 1;
	}
	lib_msg[0] = '\0';
	old_xdp = libxdp_set_print(xdp_print);
	old_bpf = libbpf_set_print(bpf_print);
	rc = -EOPNOTSUPP;
	for (unsigned i = 0; i < nmodes; i++) {
		rc = try_mode(s, modes[i]);
		if (rc == 0) {
			s->mode = modes[i];
			break;
		}
		/* no other mode helps with these */
		if (rc == -EPERM || rc == -EACCES || rc == -ENODEV || rc == -EAFNOSUPPORT ||
		    rc == -ENOMEM)
			break;
	}
	libxdp_set_print(old_xdp);
	libbpf_set_print(old_bpf);
	if (rc) {
		const char *m = afxdp_mode_name(cfg->mode);
		const char *why = lib_msg[0] ? lib_msg : strerror(-rc);

		if (rc == -EPERM || rc == -EACCES)
			rc = fail(err, errlen, -EPERM,
				  "%s: AF_XDP needs root or CAP_NET_ADMIN/CAP_BPF (and "
				  "CAP_NET_RAW): %s",
				  s->ifname, strerror(-rc));
		else if (rc == -EAFNOSUPPORT)
			rc = fail(err, errlen, -EOPNOTSUPP,
				  "%s: AF_XDP sockets are not available in this kernel", s->ifname);
		else if (rc == -EBUSY)
			rc = fail(err, errlen, -EBUSY,
				  "%s: queue %u is busy (another XDP program or AF_XDP socket): %s",
				  s->ifname, s->queue, why);
		else if (rc == -EOPNOTSUPP || rc == -EINVAL || rc == -EPROTONOSUPPORT)
			rc = fail(err, errlen, -EOPNOTSUPP,
				  "%s: XDP is unavailable in mode %s on queue %u: %s", s->ifname, m,
				  s->queue, why);
		else
			rc = fail(err, errlen, rc, "%s: AF_XDP socket on queue %u (mode %s): %s",
				  s->ifname, s->queue, m, why);
		goto err_free_stack;
	}
	s->fd = xsk_socket__fd(s->xsk);
	rc = fill_frames(s);
	if (rc) {
		rc = fail(err, errlen, rc, "%s: cannot fill the fill ring", s->ifname);
		goto err_close;
	}
	*out = s;
	return 0;

err_close:
	xsk_socket__delete(s->xsk);
	xsk_umem__delete(s->umem);
err_free_stack:
	moirai_free(s->tx_free);
err_free_area:
	moirai_free(s->area);
err_free_sock:
	moirai_free(s);
	return rc;
}

void afxdp_close(struct afxdp_sock *s)
{
	libxdp_print_fn_t old_xdp;
	libbpf_print_fn_t old_bpf;

	if (!s)
		return;
	/* libxdp explains here how it detaches (no bpffs: legacy mode);
	 * nothing the user can act on */
	old_xdp = libxdp_set_print(xdp_print);
	old_bpf = libbpf_set_print(bpf_print);
	xsk_socket__delete(s->xsk);
	xsk_umem__delete(s->umem);
	libxdp_set_print(old_xdp);
	libbpf_set_print(old_bpf);
	moirai_free(s->tx_free);
	moirai_free(s->area);
	moirai_free(s);
}

/* ---- RX ----------------------------------------------------------------- */

unsigned afxdp_rx_burst(struct afxdp_sock *s, struct afxdp_frame *f, unsigned n)
{
	uint32_t idx = 0;
	uint64_t bytes = 0;
	unsigned got;

	got = xsk_ring_cons__peek(&s->rx, n, &idx);
	if (!got) {
		/* driver modes with need_wakeup: the kernel waits for a nudge
		 * to look at the fill ring again */
		if (xsk_ring_prod__needs_wakeup(&s->fill)) {
			count(&s->c.rx_wakeups, 1);
			recvfrom(s->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		}
		return 0;
	}
	for (unsigned i = 0; i < got; i++) {
		const struct xdp_desc *d = xsk_ring_cons__rx_desc(&s->rx, idx + i);

		f[i].addr = d->addr;
		f[i].len = d->len;
		f[i].data = xsk_umem__get_data(s->area, d->addr);
		bytes += d->len;
	}
	xsk_ring_cons__release(&s->rx, got);
	count(&s->c.rx_packets, got);
	count(&s->c.rx_bytes, bytes);
	return got;
}

void afxdp_rx_release(struct afxdp_sock *s, const struct afxdp_frame *f, unsigned n)
{
	uint64_t mask = ~(uint64_t)(s->frame_size - 1);
	uint32_t idx = 0;

	if (!n)
		return;
	/* Frames are conserved and the fill ring holds twice the RX frames
	 * (try_mode), so the reservation cannot fail. */
	if (xsk_ring_prod__reserve(&s->fill, n, &idx) != n) {
		fprintf(stderr, "moirai-pipeline: AF_XDP %s: fill ring has no room for %u frames\n",
			s->ifname, n);
		abort();
	}
	for (unsigned i = 0; i < n; i++)
		*xsk_ring_prod__fill_addr(&s->fill, idx + i) = f[i].addr & mask;
	xsk_ring_prod__submit(&s->fill, n);
}

/* ---- TX ----------------------------------------------------------------- */

static void kick(struct afxdp_sock *s)
{
	/* Zero-copy drivers with need_wakeup only want a kick when they say
	 * so; the copy modes transmit only inside sendto(). */
	if (s->mode == AFXDP_MODE_ZEROCOPY && !xsk_ring_prod__needs_wakeup(&s->tx))
		return;
	/* EAGAIN: a batch went out and more is left (the copy modes send at
	 * most 32 frames per call), so call again, as many times as the ring
	 * can hold batches; EBUSY, ENOBUFS: the device is busy, the next
	 * burst or reap kicks again. */
	for (uint32_t i = 0; i <= s->tx_frames / 32; i++) {
		count(&s->c.tx_kicks, 1);
		if (sendto(s->fd, NULL, 0, MSG_DONTWAIT, NULL, 0) >= 0)
			return;
		if (errno == EAGAIN)
			continue;
		if (errno != EBUSY && errno != ENOBUFS)
			count(&s->c.tx_kick_errors, 1);
		return;
	}
}

static void reap(struct afxdp_sock *s)
{
	uint32_t idx = 0;
	unsigned got;

	got = xsk_ring_cons__peek(&s->comp, s->tx_frames, &idx);
	if (!got)
		return;
	for (unsigned i = 0; i < got; i++)
		s->tx_free[s->tx_free_n++] = *xsk_ring_cons__comp_addr(&s->comp, idx + i);
	xsk_ring_cons__release(&s->comp, got);
	count(&s->c.tx_completed, got);
}

unsigned afxdp_tx_burst(struct afxdp_sock *s, const void *const *pkts, const uint32_t *lens,
			unsigned n)
{
	uint32_t max = AFXDP_TX_MAX(s->frame_size);
	uint32_t idx = 0;
	uint64_t bytes = 0;
	unsigned k, want;

	if (!s->tx_on || !n)
		return 0;
	reap(s);
	want = n < s->tx_free_n ? n : s->tx_free_n;
	for (k = 0; k < want; k++)
		if (lens[k] == 0 || lens[k] > max)
			break;
	want = k;
	if (want < n)
		count(&s->c.tx_no_frame, n - want);
	if (!want)
		return 0;
	/* The TX ring has two slots for every TX frame (try_mode), and a
	 * frame not on the free stack holds a slot or is in the completion
	 * ring: this reservation cannot fail. */
	if (xsk_ring_prod__reserve(&s->tx, want, &idx) != want) {
		fprintf(stderr, "moirai-pipeline: AF_XDP %s: TX ring has no room for %u frames\n",
			s->ifname, want);
		abort();
	}
	for (unsigned i = 0; i < want; i++) {
		struct xdp_desc *d = xsk_ring_prod__tx_desc(&s->tx, idx + i);
		uint64_t addr = s->tx_free[--s->tx_free_n];

		memcpy(s->area + addr, pkts[i], lens[i]);
		d->addr = addr;
		d->len = lens[i];
		bytes += lens[i];
	}
	xsk_ring_prod__submit(&s->tx, want);
	count(&s->c.tx_packets, want);
	count(&s->c.tx_bytes, bytes);
	kick(s);
	return want;
}

unsigned afxdp_tx_reap(struct afxdp_sock *s)
{
	if (!s->tx_on)
		return 0;
	reap(s);
	/* descriptors the kernel has not taken from the TX ring yet (the
	 * ring is twice the TX frames, try_mode) */
	if (xsk_prod_nb_free(&s->tx, 2 * s->tx_frames) < 2 * s->tx_frames)
		kick(s);
	return s->tx_frames - s->tx_free_n;
}

void afxdp_stats_get(const struct afxdp_sock *s, struct afxdp_stats *out)
{
	struct xdp_statistics ks;
	socklen_t len = sizeof(ks);

	memset(out, 0, sizeof(*out));
	out->rx_packets = load(&s->c.rx_packets);
	out->rx_bytes = load(&s->c.rx_bytes);
	out->rx_wakeups = load(&s->c.rx_wakeups);
	out->tx_packets = load(&s->c.tx_packets);
	out->tx_bytes = load(&s->c.tx_bytes);
	out->tx_completed = load(&s->c.tx_completed);
	out->tx_no_frame = load(&s->c.tx_no_frame);
	out->tx_kicks = load(&s->c.tx_kicks);
	out->tx_kick_errors = load(&s->c.tx_kick_errors);
	memset(&ks, 0, sizeof(ks));
	if (getsockopt(s->fd, SOL_XDP, XDP_STATISTICS, &ks, &len) == 0) {
		out->k_rx_dropped = ks.rx_dropped;
		out->k_rx_invalid = ks.rx_invalid_descs;
		out->k_tx_invalid = ks.tx_invalid_descs;
		out->k_rx_ring_full = ks.rx_ring_full;
		out->k_fill_empty = ks.rx_fill_ring_empty_descs;
		out->k_tx_ring_empty = ks.tx_ring_empty_descs;
	}
}
