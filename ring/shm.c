/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Shared-memory segments between two processes: layout, create, attach
 * with header validation, peer liveness, recovery after the client goes
 * away, detach and destroy.  The file itself (names, ownership, locks,
 * reclaim) is in shm_file.c, the SIGBUS guard in shm_guard.c, messages in
 * shm_msg.c.
 *
 * The segment is /dev/shm/moirai.NAME:
 *
 *   [struct shm_hdr][data ring to 0][data ring to 1][return ring to 0]
 *   [return ring to 1][side 0 buffers ...][side 1 buffers ...]
 *
 * where each ring is [prod line][cons line][ring_size uint32 slots].
 *
 * The creator fills everything, then publishes the magic with a release
 * store; attach reads it with acquire, so a complete header is seen or the
 * attach fails with -EPROTO.  Every field an attacher relies on is
 * recomputed from the geometry (read once) and compared; after that the
 * attacher uses only its own copy, so a peer that rewrites the header
 * later changes nothing here.  Recovery rewrites everything attach checks.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moirai/numa.h"
#include "shm_int.h"

#define DEFAULT_BUF_SIZE 2048u
#define DEFAULT_BUFS	 256u
#define KNOWN_FLAGS	 (MOIRAI_SHM_F_BIND_NODE | MOIRAI_SHM_F_SHARED)

int moirai__shm_layout(uint32_t buf_size, uint32_t bufs, struct shm_layout *l)
{
	uint64_t off;

	if (buf_size == 0 || buf_size > MOIRAI_SHM_BUF_MAX || bufs == 0 ||
	    bufs > MOIRAI_SHM_BUFS_MAX)
		return -EINVAL;
	l->ring_size = 1;
	while (l->ring_size < bufs)
		l->ring_size <<= 1;
	l->ring_bytes = moirai__align_up((uint64_t)sizeof(struct shm_ring_pub) +
						 (uint64_t)l->ring_size * sizeof(uint32_t),
					 64);
	off = sizeof(struct shm_hdr);
	for (int i = 0; i < SHM_RINGS; i++) {
		l->ring_off[i] = off;
		off += l->ring_bytes;
	}
	l->buf_off = off;
	l->slot_size = (uint32_t)moirai__align_up((uint64_t)MOIRAI__SHM_MSG_HDR + buf_size, 64);
	l->seg_size = off + 2ull * bufs * l->slot_size;
	return 0;
}

/* ---- liveness --------------------------------------------------------- */

bool moirai__shm_peer_gone(struct moirai_shm *seg, bool check_lock)
{
	/* (D') Acquire pairs with the release store of DETACHED in the peer's
	 * detach (D): whatever it published before leaving is visible to
	 * loads after this one. */
	uint32_t st = atomic_load_explicit(&seg->hdr->side[seg->peer].state, memory_order_acquire);

	if (st == SHM_SIDE_DETACHED)
		return true;
	if (!check_lock)
		return false;
	if (moirai__shm_lock_held(seg->fd, SHM_LOCK_SIDE0 + seg->peer)) {
		moirai__shm_peer_seen(seg);
		return false;
	}
	/*
	 * No lock: the peer died.  For a death the order comes from the
	 * kernel: the dying process's stores precede the release of its file
	 * locks, and our F_OFD_GETLK takes the same file-lock spinlock.  An
	 * open client slot (EMPTY, no lock) that has seen nobody is a client
	 * yet to come; the state word alone cannot say (the client writes it),
	 * so what this process saw itself decides.
	 */
	return seg->peer == 0 || st != SHM_SIDE_EMPTY ||
	       atomic_load_explicit(&seg->peer_seen, memory_order_relaxed);
}

bool moirai_shm_peer_alive(const struct moirai_shm *seg)
{
	bool locked;

	if (!seg || moirai__shm_faulted(seg))
		return false;
	locked = moirai__shm_lock_held(seg->fd, SHM_LOCK_SIDE0 + seg->peer);
	if (locked) /* the handle was allocated writable: the cast is sound */
		moirai__shm_peer_seen((struct moirai_shm *)seg);
	return locked && atomic_load_explicit(&seg->hdr->side[seg->peer].state,
					      memory_order_acquire) != SHM_SIDE_DETACHED;
}

/* ---- handle setup ----------------------------------------------------- */

static void ring_end_init(struct shm_ring_end *e, struct shm_hdr *h, const struct shm_layout *l,
			  int ring, bool producer, uint32_t capacity)
{
	struct shm_ring_pub *pub = (struct shm_ring_pub *)((char *)h + l->ring_off[ring]);

	e->slots = (_Atomic uint32_t *)(void *)(pub + 1);
	e->mine = producer ? &pub->prod : &pub->cons;
	e->theirs = producer ? &pub->cons : &pub->prod;
	/* Our starting position is the one the server left for this side
	 * (0 at create and after recover); from here on it is ours alone. */
	atomic_init(&e->pos, atomic_load_explicit(e->mine, memory_order_relaxed));
	e->mask = l->ring_size - 1;
	e->capacity = capacity;
}

static void ring_ends_init(struct moirai_shm *seg)
{
	struct shm_hdr *h = seg->hdr;
	const struct shm_layout *l = &seg->layout;
	int me = seg->me, peer = seg->peer;

	ring_end_init(&seg->rx, h, l, SHM_RING_DATA0 + me, false, seg->bufs_per_side);
	ring_end_init(&seg->tx, h, l, SHM_RING_DATA0 + peer, true, seg->bufs_per_side);
	ring_end_init(&seg->ret_rx, h, l, SHM_RING_RET0 + me, false, seg->bufs_per_side);
	ring_end_init(&seg->ret_tx, h, l, SHM_RING_RET0 + peer, true, seg->bufs_per_side);
}

/*
 * Build the handle from a layout this process computed and validated (never
 * from header fields re-read afterwards: the peer can rewrite them).
 */
static int handle_init(struct moirai_shm *seg, const char *name, int fd, const struct stat *st,
		       void *map, int me, const struct shm_layout *l, uint32_t bufs,
		       uint32_t buf_size)
{
	seg->hdr = map;
	seg->map_len = l->seg_size;
	seg->fd = fd;
	seg->dev = st->st_dev;
	seg->ino = st->st_ino;
	seg->me = me;
	seg->peer = 1 - me;
	seg->layout = *l;
	seg->bufs = (char *)map + l->buf_off;
	seg->slot_size = l->slot_size;
	seg->buf_size = buf_size;
	seg->bufs_per_side = bufs;
	snprintf(seg->name, sizeof(seg->name), "%s", name);
	seg->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	ring_ends_init(seg);
	return moirai__shm_local_init(seg);
}

int64_t moirai__shm_index(const struct moirai_shm *seg, const struct moirai_shm_msg *msg)
{
	const char *p = (const char *)msg;
	size_t off;

	if (!msg || p < seg->bufs)
		return -1;
	off = (size_t)(p - seg->bufs);
	if (off % seg->slot_size || off / seg->slot_size >= 2 * (size_t)seg->bufs_per_side)
		return -1;
	return (int64_t)(off / seg->slot_size);
}

/* Everything attach validates, from this process's own layout. */
static void hdr_write_geometry(struct moirai_shm *seg)
{
	struct shm_hdr *h = seg->hdr;
	const struct shm_layout *l = &seg->layout;

	h->version = MOIRAI__SHM_VERSION;
	h->hdr_size = sizeof(*h);
	h->seg_size = l->seg_size;
	h->buf_size = seg->buf_size;
	h->bufs = seg->bufs_per_side;
	h->slot_size = l->slot_size;
	h->ring_size = l->ring_size;
	h->ring_bytes = l->ring_bytes;
	memcpy(h->ring_off, l->ring_off, sizeof(h->ring_off));
	h->buf_off = l->buf_off;
}

/* ---- create ----------------------------------------------------------- */

static int check_opts(const char *who, const char *name, const struct moirai_shm_opts *o)
{
	if (o->flags & ~KNOWN_FLAGS)
		return moirai__err(-EINVAL, "shm %s: %s: unknown flags %#x", name, who,
				   o->flags & ~KNOWN_FLAGS);
	if ((o->flags & MOIRAI_SHM_F_SHARED) && ((o->mode & ~0666u) || (o->mode & 0600u) != 0600u))
		return moirai__err(-EINVAL,
				   "shm %s: %s: shared mode %04o must include 0600 and stay within "
				   "0666",
				   name, who, o->mode);
	return 0;
}

int moirai_shm_create(const char *name, const struct moirai_shm_opts *opts, struct moirai_shm **out)
{
	struct moirai_shm_opts o = { 0 };
	struct shm_layout l;
	struct moirai_shm *seg;
	struct shm_hdr *h;
	struct stat st = { 0 };
	void *map;
	int fd, rc, node = -1;

	if (!out)
		return moirai__err(-EINVAL, "shm: create: NULL output pointer");
	*out = NULL;
	rc = moirai__shm_check_name(name);
	if (rc)
		return rc;
	if (opts)
		o = *opts;
	rc = check_opts("create", name, &o);
	if (rc)
		return rc;
	if (!o.buf_size)
		o.buf_size = DEFAULT_BUF_SIZE;
	if (!o.bufs)
		o.bufs = DEFAULT_BUFS;
	if (moirai__shm_layout(o.buf_size, o.bufs, &l) != 0)
		return moirai__err(
			-EINVAL, "shm %s: buffer size %u (1..%u) or count %u (1..%u) out of range",
			name, o.buf_size, MOIRAI_SHM_BUF_MAX, o.bufs, MOIRAI_SHM_BUFS_MAX);
	if (o.flags & MOIRAI_SHM_F_BIND_NODE) {
		node = moirai_numa_node_resolve(o.node);
		if (node < 0)
			return node; /* -EINVAL, -ENODEV, -EPERM with its message */
	}
	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return moirai__err(-ENOMEM, "shm %s: no memory for the handle", name);
	rc = moirai__shm_create_file(name, &o, &fd);
	if (rc)
		goto err_free_seg;
	if (fstat(fd, &st) != 0) {
		rc = moirai__err(-errno, "shm %s: fstat: %s", name, moirai_strerror(errno));
		goto err_unlink;
	}
	rc = moirai__shm_check_space(name, fd, l.seg_size);
	if (rc)
		goto err_unlink;
	/* Mapped before the file has its size, so that the NUMA policy is in
	 * place when the reservation allocates the pages. */
	map = mmap(NULL, l.seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = moirai__err(-ENOMEM, "shm %s: mmap of %llu bytes: %s", name,
				 (unsigned long long)l.seg_size, moirai_strerror(errno));
		goto err_unlink;
	}
	rc = moirai__shm_guard_add(map, l.seg_size, &seg->guard);
	if (rc)
		goto err_unmap;
	if (node >= 0) {
		/* A shared mapping's policy is the file's: the pages the
		 * reservation allocates next land on the node. */
		rc = moirai_numa_bind_range(map, l.seg_size, node);
		if (rc)
			goto err_unguard;
	}
	rc = moirai__shm_reserve(name, fd, l.seg_size);
	if (rc)
		goto err_unguard;
	rc = handle_init(seg, name, fd, &st, map, 0, &l, o.bufs, o.buf_size);
	if (rc)
		goto err_unguard;
	h = map;
	hdr_write_geometry(seg);
	moirai__shm_side_claim(&h->side[0]);
	atomic_store_explicit(&h->side[0].state, SHM_SIDE_ATTACHED, memory_order_relaxed);
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_EMPTY, memory_order_relaxed);
	/* Release pairs with the acquire in validate_header(): the header
	 * and the zeroed rings are complete once the magic is seen. */
	atomic_store_explicit(&h->magic, MOIRAI__SHM_MAGIC, memory_order_release);
	if (moirai__shm_faulted(seg)) {
		rc = moirai__err(-EFAULT, "shm %s: the file was truncated while being created",
				 name);
		moirai__shm_local_fini(seg);
		goto err_unguard;
	}
	*out = seg;
	return 0;

err_unguard:
	moirai__shm_guard_del(seg->guard);
err_unmap:
	munmap(map, l.seg_size);
err_unlink:
	moirai__shm_unlink_if_same(name, fd, st.st_dev, st.st_ino);
	close(fd);
err_free_seg:
	free(seg);
	return rc;
}

/* ---- attach ------------------------------------------------------------ */

/*
 * Validate the header from one snapshot of its geometry (bufs, buf_size
 * are read once) and hand that snapshot back: everything the attaching
 * process later derives comes from *l, *bufs and *buf_size, never from
 * header fields the peer could rewrite in between.
 */
static int validate_header(const char *name, const struct shm_hdr *h, size_t file_size,
			   struct shm_layout *l, uint32_t *bufs, uint32_t *buf_size)
{
	uint32_t nb, bs;

	/* Acquire pairs with the creator's release store of the magic. */
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != MOIRAI__SHM_MAGIC)
		return moirai__err(
			-EPROTO, "shm %s: bad magic: not a moirai segment (or still being created)",
			name);
	if (h->version != MOIRAI__SHM_VERSION)
		return moirai__err(-EPROTO, "shm %s: layout version %u, this library speaks %u",
				   name, h->version, MOIRAI__SHM_VERSION);
	if (h->hdr_size != sizeof(*h))
		return moirai__err(-EPROTO, "shm %s: header is %u bytes, expected %zu", name,
				   h->hdr_size, sizeof(*h));
	nb = *(const volatile uint32_t *)&h->bufs;
	bs = *(const volatile uint32_t *)&h->buf_size;
	if (moirai__shm_layout(bs, nb, l) != 0)
		return moirai__err(
			-EBADMSG, "shm %s: header geometry out of range (buffer size %u, count %u)",
			name, bs, nb);
	if (h->seg_size != l->seg_size || h->slot_size != l->slot_size ||
	    h->buf_off != l->buf_off || h->ring_size != l->ring_size ||
	    h->ring_bytes != l->ring_bytes ||
	    memcmp(h->ring_off, l->ring_off, sizeof(l->ring_off)) != 0)
		return moirai__err(-EBADMSG,
				   "shm %s: sizes or offsets in the header are inconsistent", name);
	if (file_size != l->seg_size)
		return moirai__err(-EBADMSG,
				   "shm %s: file is %zu bytes, header says %llu (truncated?)", name,
				   file_size, (unsigned long long)l->seg_size);
	*bufs = nb;
	*buf_size = bs;
	return 0;
}

/*
 * A slot left by create or recover has every ring's producer at most
 * capacity ahead of its consumer.  A previous client that scribbled and
 * left between two of the server's looks at its lock can break that; the
 * next client would inherit its positions, so it refuses the slot.  (It
 * cannot detect leftovers that look consistent: see docs/shm.md.)
 */
static bool rings_consistent(const struct shm_hdr *h, const struct shm_layout *l, uint32_t cap)
{
	for (int i = 0; i < SHM_RINGS; i++) {
		const struct shm_ring_pub *pub =
			(const struct shm_ring_pub *)((const char *)h + l->ring_off[i]);
		uint32_t d = atomic_load_explicit(&pub->prod, memory_order_relaxed) -
			     atomic_load_explicit(&pub->cons, memory_order_relaxed);

		if (d > cap)
			return false;
	}
	return true;
}

int moirai_shm_attach(const char *name, const struct moirai_shm_opts *opts, struct moirai_shm **out)
{
	struct moirai_shm_opts o = { 0 };
	struct moirai_shm *seg;
	struct shm_hdr *h;
	struct stat st;
	struct shm_layout l;
	struct shm_guard *guard;
	uint32_t nbufs = 0, bsize = 0, state;
	size_t map_len;
	void *map;
	int fd, rc;

	if (!out)
		return moirai__err(-EINVAL, "shm: attach: NULL output pointer");
	*out = NULL;
	rc = moirai__shm_check_name(name);
	if (rc)
		return rc;
	if (opts)
		o = *opts;
	rc = check_opts("attach", name, &o);
	if (rc)
		return rc;
	rc = moirai__shm_open_file(name, &o, &fd, &st);
	if (rc)
		return rc;
	if ((uint64_t)st.st_size < sizeof(*h)) {
		rc = moirai__err(-EBADMSG,
				 "shm %s: file is %lld bytes, shorter than the header (truncated)",
				 name, (long long)st.st_size);
		goto err_close;
	}
	map_len = (size_t)st.st_size;
	map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = moirai__err(-ENOMEM, "shm %s: mmap: %s", name, moirai_strerror(errno));
		goto err_close;
	}
	/* Guarded before the first read: the file may shrink at any time. */
	rc = moirai__shm_guard_add(map, map_len, &guard);
	if (rc)
		goto err_unmap;
	h = map;
	rc = validate_header(name, h, map_len, &l, &nbufs, &bsize);
	if (rc)
		goto err_unguard;
	if (!moirai__shm_lock_held(fd, SHM_LOCK_SIDE0) ||
	    atomic_load_explicit(&h->side[0].state, memory_order_acquire) == SHM_SIDE_DETACHED) {
		rc = moirai__err(-ECONNREFUSED, "shm %s: the server is gone", name);
		goto err_unguard;
	}
	/* The client lock makes us the only client: a live one holds it, and
	 * the server holds it while it recovers the slot. */
	rc = moirai__shm_lock_try(fd, SHM_LOCK_SIDE1);
	if (rc) {
		rc = moirai__err(rc == -EAGAIN ? -EBUSY : rc, "shm %s: %s", name,
				 rc == -EAGAIN
					 ? "a client is attached (or the server is recovering)"
					 : "cannot lock the client slot");
		goto err_unguard;
	}
	/* Acquire pairs with the release store of EMPTY by create/recover:
	 * the reset rings are visible. */
	state = atomic_load_explicit(&h->side[1].state, memory_order_acquire);
	if (state != SHM_SIDE_EMPTY) {
		rc = moirai__err(-EBUSY,
				 "shm %s: the previous client left; the server must recover "
				 "first",
				 name);
		goto err_unlock;
	}
	if (!rings_consistent(h, &l, nbufs)) {
		rc = moirai__err(-EBUSY,
				 "shm %s: the client slot's ring positions are inconsistent (a "
				 "client left without the server noticing); the server must "
				 "recover first",
				 name);
		goto err_unlock;
	}
	moirai__shm_side_claim(&h->side[1]);
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_ATTACHED, memory_order_release);
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		rc = moirai__err(-ENOMEM, "shm %s: no memory for the handle", name);
		goto err_release_slot;
	}
	seg->guard = guard;
	rc = handle_init(seg, name, fd, &st, map, 1, &l, nbufs, bsize);
	if (rc) {
		free(seg);
		goto err_release_slot;
	}
	if (moirai__shm_faulted(seg)) {
		moirai__shm_local_fini(seg);
		free(seg);
		rc = moirai__err(-EFAULT, "shm %s: the file was truncated during attach", name);
		goto err_unlock;
	}
	*out = seg;
	return 0;

err_release_slot:
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_DETACHED, memory_order_release);
err_unlock:
	moirai__shm_unlock(fd, SHM_LOCK_SIDE1);
err_unguard:
	moirai__shm_guard_del(guard);
err_unmap:
	munmap(map, map_len);
err_close:
	close(fd);
	return rc;
}

/* ---- detach, destroy, recover ------------------------------------------- */

void moirai_shm_detach(struct moirai_shm *seg)
{
	if (!seg)
		return;
	if (!moirai__shm_faulted(seg)) {
		/* (D) Release, after every publish of ours: pairs with the
		 * acquire (D') in the peer's moirai__shm_peer_gone().  The
		 * wake-up makes a blocked receive see it now. */
		atomic_store_explicit(&seg->hdr->side[seg->me].state, SHM_SIDE_DETACHED,
				      memory_order_release);
		moirai__waitq_notify(&seg->hdr->wake[seg->peer].wq, INT_MAX, MOIRAI__WAITQ_SHARED);
	}
	/* Explicitly: a forked child may share the open file (and the lock). */
	moirai__shm_unlock(seg->fd, SHM_LOCK_SIDE0 + seg->me);
	moirai__shm_guard_del(seg->guard);
	moirai__shm_local_fini(seg);
	munmap(seg->hdr, seg->map_len);
	close(seg->fd);
	free(seg);
}

void moirai_shm_destroy(struct moirai_shm *seg)
{
	if (!seg)
		return;
	/* Only if the name still refers to our segment: a new server may
	 * have reclaimed it.  No open of the path, so a FIFO put under the
	 * name cannot block us. */
	moirai__shm_unlink_if_same(seg->name, seg->fd, seg->dev, seg->ino);
	moirai_shm_detach(seg);
}

int moirai_shm_recover(struct moirai_shm *seg)
{
	struct shm_hdr *h;
	int rc;

	if (!seg)
		return moirai__err(-EINVAL, "shm: recover: NULL segment");
	h = seg->hdr;
	if (seg->me != 0)
		return moirai__err(
			-EINVAL,
			"shm %s: only the server recovers; a client tears down with destroy",
			seg->name);
	if (moirai__shm_faulted(seg))
		return moirai__err(-EFAULT, "shm %s: the segment was truncated: destroy it",
				   seg->name);
	if (atomic_load_explicit(&seg->held_peer, memory_order_relaxed))
		return moirai__err(-EBUSY, "shm %s: %u received messages not freed yet", seg->name,
				   atomic_load_explicit(&seg->held_peer, memory_order_relaxed));
	/* Holding the client's lock: no client is alive, and none can attach
	 * until the slot is reset and the lock released. */
	rc = moirai__shm_lock_try(seg->fd, SHM_LOCK_SIDE1);
	if (rc)
		return moirai__err(rc == -EAGAIN ? -EBUSY : rc, "shm %s: %s", seg->name,
				   rc == -EAGAIN ? "the client is alive (it holds its lock)"
						 : "cannot lock the client slot");
	/*
	 * The old client could have written anything anywhere: rewrite all
	 * that attach validates or starts from, from our own copies.
	 */
	hdr_write_geometry(seg);
	moirai__shm_side_claim(&h->side[0]);
	atomic_store_explicit(&h->side[0].state, SHM_SIDE_ATTACHED, memory_order_relaxed);
	atomic_store_explicit(&h->side[1].pid, 0, memory_order_relaxed);
	atomic_store_explicit(&h->side[1].start_time, 0, memory_order_relaxed);
	for (int d = 0; d < 2; d++)
		moirai__waitq_init(&h->wake[d].wq);
	for (int i = 0; i < SHM_RINGS; i++) {
		struct shm_ring_pub *pub =
			(struct shm_ring_pub *)((char *)h + seg->layout.ring_off[i]);

		atomic_store_explicit(&pub->prod, 0, memory_order_relaxed);
		atomic_store_explicit(&pub->cons, 0, memory_order_relaxed);
	}
	atomic_store_explicit(&seg->tx.pos, 0, memory_order_relaxed);
	atomic_store_explicit(&seg->rx.pos, 0, memory_order_relaxed);
	atomic_store_explicit(&seg->ret_tx.pos, 0, memory_order_relaxed);
	atomic_store_explicit(&seg->ret_rx.pos, 0, memory_order_relaxed);
	moirai__shm_local_reset(seg);
	atomic_store_explicit(&seg->peer_seen, false, memory_order_relaxed);
	atomic_store_explicit(&h->magic, MOIRAI__SHM_MAGIC, memory_order_relaxed);
	/* Release pairs with the attacher's acquire load of the state. */
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_EMPTY, memory_order_release);
	moirai__shm_unlock(seg->fd, SHM_LOCK_SIDE1);
	if (moirai__shm_faulted(seg))
		return moirai__err(-EFAULT, "shm %s: the segment was truncated: destroy it",
				   seg->name);
	return 0;
}

/* ---- accessors ---------------------------------------------------------- */

size_t moirai_shm_buf_size(const struct moirai_shm *seg)
{
	return seg ? seg->buf_size : 0;
}

int moirai_shm_side(const struct moirai_shm *seg)
{
	return seg ? seg->me : -1;
}
