/*
 * Shared-memory segments between two processes: naming, layout, create
 * (with reclaim of a dead segment), attach with header validation, peer
 * liveness, recovery after the client goes away, detach and destroy.
 * Message operations are in shm_msg.c.
 *
 * The segment is /dev/shm/moirai.NAME:
 *
 *   [struct shm_hdr][data ring to 0][data ring to 1][return ring to 0]
 *   [return ring to 1][side 0 buffers ...][side 1 buffers ...]
 *
 * The creator fills everything, then publishes the magic with a release
 * store; attach reads it with acquire, so a complete header is seen or the
 * attach fails with -EPROTO.  Every field an attacher relies on is
 * recomputed from the geometry and compared, so a corrupted or truncated
 * file is refused instead of being trusted.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
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
#define ALIGN64(x)	 (((x) + 63u) & ~(uint64_t)63u)

static int check_name(const char *name)
{
	size_t n;

	if (!name)
		return moirai__err(-EINVAL, "shm: NULL segment name");
	n = strlen(name);
	if (n == 0 || n > MOIRAI_SHM_NAME_MAX)
		return moirai__err(-EINVAL, "shm: name must be 1..%d characters",
				   MOIRAI_SHM_NAME_MAX);
	if (name[0] == '.')
		return moirai__err(-EINVAL, "shm: name '%s' starts with '.'", name);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return moirai__err(-EINVAL,
					   "shm: name '%s' has a character outside [A-Za-z0-9._-]",
					   name);
	}
	return 0;
}

static void shm_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "/moirai.%s", name);
}

int moirai__shm_layout(uint32_t buf_size, uint32_t bufs, struct shm_layout *l)
{
	ssize_t rsz;
	uint64_t off;

	if (buf_size == 0 || buf_size > MOIRAI_SHM_BUF_MAX || bufs == 0 ||
	    bufs > MOIRAI_SHM_BUFS_MAX)
		return -EINVAL;
	/* RING_F_EXACT_SZ rounds the slot count up inside rte_ring_init. */
	rsz = rte_ring_get_memsize_elem(sizeof(uint32_t), rte_align32pow2(bufs + 1));
	if (rsz < 0)
		return -EINVAL;
	l->ring_memsize = ALIGN64((uint64_t)rsz);
	off = sizeof(struct shm_hdr);
	for (int i = 0; i < SHM_RINGS; i++) {
		l->ring_off[i] = off;
		off += l->ring_memsize;
	}
	l->buf_off = off;
	l->slot_size = (uint32_t)ALIGN64((uint64_t)MOIRAI__SHM_MSG_HDR + buf_size);
	l->seg_size = off + 2ull * bufs * l->slot_size;
	return 0;
}

/* ---- liveness -------------------------------------------------------- */

/*
 * Start time (field 22) and state (field 3) of a process from
 * /proc/PID/stat.  Returns 0, or -ESRCH when the process does not exist.
 */
static int proc_stat(pid_t pid, uint64_t *start, char *state)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -ESRCH;
	buf[n] = '\0';
	/* comm may contain spaces and ')': fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -ESRCH;
	p++;
	*state = '?';
	for (int field = 3; field <= 22; field++) {
		while (*p == ' ')
			p++;
		if (!*p)
			return -ESRCH;
		if (field == 3)
			*state = *p;
		if (field == 22) {
			*start = strtoull(p, NULL, 10);
			return 0;
		}
		while (*p && *p != ' ')
			p++;
	}
	return -ESRCH;
}

bool moirai__shm_side_alive(const struct shm_side *s)
{
	/* Acquire pairs with the release store of state in attach/create:
	 * pid and start time are read after they were written. */
	uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
	pid_t pid;
	uint64_t start = 0;
	char pstate;

	if (st != SHM_SIDE_ATTACHED)
		return false;
	pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0 && errno != EPERM)
		return false;
	if (proc_stat(pid, &start, &pstate) != 0)
		return false;
	/* A zombie (killed, not reaped) or a new process with the old pid. */
	if (pstate == 'Z' || pstate == 'X')
		return false;
	return start == atomic_load_explicit(&s->start_time, memory_order_relaxed);
}

/*
 * A client between claiming the slot and publishing ATTACHED.  Its pid is
 * 0 (recover clears it) until written: then it counts as arriving; once
 * written, as arriving while that process lives (a client that died
 * mid-attach does not block recovery).
 */
static bool attaching_alive(const struct shm_side *s)
{
	/* Acquire pairs with the attacher's CAS (acq_rel). */
	pid_t pid;

	if (atomic_load_explicit(&s->state, memory_order_acquire) != SHM_SIDE_ATTACHING)
		return false;
	pid = atomic_load_explicit(&s->pid, memory_order_relaxed);
	return pid <= 0 || kill(pid, 0) == 0 || errno == EPERM;
}

static void side_claim(struct shm_side *s)
{
	uint64_t start = 0;
	char st;

	/* The pid first: a claimer killed before it is written would look
	 * alive (pid 0) to attaching_alive() and block recovery for good. */
	atomic_store_explicit(&s->pid, (int32_t)getpid(), memory_order_relaxed);
	proc_stat(getpid(), &start, &st);
	atomic_store_explicit(&s->start_time, start, memory_order_relaxed);
}

bool moirai_shm_peer_alive(const struct moirai_shm *seg)
{
	if (!seg)
		return false;
	return moirai__shm_side_alive(&seg->hdr->side[seg->peer]);
}

/* ---- handle setup ----------------------------------------------------- */

/*
 * Build the handle from a layout this process computed and validated (never
 * from header fields re-read afterwards: the peer can rewrite them).
 */
static int handle_init(struct moirai_shm *seg, const char *name, int fd, void *map, size_t map_len,
		       int me, const struct shm_layout *l, uint32_t bufs, uint32_t buf_size)
{
	struct shm_hdr *h = map;
	struct stat st;
	int rc;

	seg->hdr = h;
	seg->map_len = map_len;
	seg->fd = fd;
	if (fstat(fd, &st) == 0) {
		seg->dev = st.st_dev;
		seg->ino = st.st_ino;
	}
	seg->me = me;
	seg->peer = 1 - me;
	seg->rx = (struct rte_ring *)((char *)map + l->ring_off[SHM_RING_DATA0 + me]);
	seg->tx = (struct rte_ring *)((char *)map + l->ring_off[SHM_RING_DATA0 + 1 - me]);
	seg->ret_rx = (struct rte_ring *)((char *)map + l->ring_off[SHM_RING_RET0 + me]);
	seg->ret_tx = (struct rte_ring *)((char *)map + l->ring_off[SHM_RING_RET0 + 1 - me]);
	seg->bufs = (char *)map + l->buf_off;
	seg->slot_size = l->slot_size;
	seg->buf_size = buf_size;
	seg->bufs_per_side = bufs;
	snprintf(seg->name, sizeof(seg->name), "%s", name);
	seg->spin_ns = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);
	seg->state = calloc(2 * (size_t)bufs, sizeof(*seg->state));
	seg->peer_len = calloc(bufs, sizeof(*seg->peer_len));
	if (!seg->state || !seg->peer_len) {
		rc = moirai__err(-ENOMEM, "shm %s: no memory for buffer states", name);
		goto err_free_state;
	}
	rc = moirai__shm_local_init(seg);
	if (rc)
		goto err_free_state;
	return 0;

err_free_state:
	free(seg->state);
	free(seg->peer_len);
	seg->state = NULL;
	seg->peer_len = NULL;
	return rc;
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

/* ---- create ----------------------------------------------------------- */

/* A leftover segment whose server and client are both dead may go. */
static bool segment_is_stale(int fd)
{
	struct stat st;
	struct shm_hdr *h;
	bool stale;

	if (fstat(fd, &st) != 0)
		return false;
	/* Too short: a creator between shm_open and ftruncate, or one that
	 * died there.  They look alike, so leave it (never delete what is
	 * not proven dead); the -EEXIST message says how to remove it. */
	if ((size_t)st.st_size < sizeof(*h))
		return false;
	h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);
	if (h == MAP_FAILED)
		return false;
	if (atomic_load_explicit(&h->magic, memory_order_acquire) != MOIRAI__SHM_MAGIC)
		stale = false; /* not ours, or still being created: leave it */
	else
		stale = !moirai__shm_side_alive(&h->side[0]) &&
			!moirai__shm_side_alive(&h->side[1]);
	munmap(h, sizeof(*h));
	return stale;
}

static int open_exclusive(const char *name, const char *path)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		int fd = shm_open(path, O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);

		if (fd >= 0)
			return fd;
		if (errno != EEXIST)
			return moirai__err(-errno, "shm %s: shm_open: %s", name,
					   moirai_strerror(errno));
		fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
		if (fd < 0)
			continue; /* vanished meanwhile: try again */
		bool stale = segment_is_stale(fd);

		close(fd);
		if (!stale)
			break;
		moirai__log(MOIRAI_LOG_INFO,
			    "shm %s: reclaiming a segment whose processes are dead", name);
		shm_unlink(path);
	}
	return moirai__err(-EEXIST,
			   "shm %s: /dev/shm%s exists and is in use, still being created, or not a "
			   "moirai segment (remove it if no process uses it)",
			   name, path);
}

int moirai_shm_create(const char *name, const struct moirai_shm_opts *opts, struct moirai_shm **out)
{
	struct moirai_shm_opts o = { 0 };
	struct shm_layout l;
	struct moirai_shm *seg;
	struct shm_hdr *h;
	char path[MOIRAI_SHM_NAME_MAX + 16];
	void *map;
	int fd, rc;

	if (!out)
		return moirai__err(-EINVAL, "shm: NULL output pointer");
	*out = NULL;
	rc = check_name(name);
	if (rc)
		return rc;
	if (opts)
		o = *opts;
	if (!o.buf_size)
		o.buf_size = DEFAULT_BUF_SIZE;
	if (!o.bufs)
		o.bufs = DEFAULT_BUFS;
	if (moirai__shm_layout(o.buf_size, o.bufs, &l) != 0)
		return moirai__err(
			-EINVAL, "shm %s: buffer size %u (1..%u) or count %u (1..%u) out of range",
			name, o.buf_size, MOIRAI_SHM_BUF_MAX, o.bufs, MOIRAI_SHM_BUFS_MAX);
	if (o.bind_node && o.node != MOIRAI_NODE_ANY && !moirai_numa_node_is_allowed(o.node))
		return moirai__err(-EINVAL, "shm %s: node %d is not allowed", name, o.node);
	seg = calloc(1, sizeof(*seg));
	if (!seg)
		return moirai__err(-ENOMEM, "shm %s: no memory for the handle", name);

	shm_path(name, path, sizeof(path));
	fd = open_exclusive(name, path);
	if (fd < 0) {
		rc = fd;
		goto err_free_seg;
	}
	if (ftruncate(fd, (off_t)l.seg_size) != 0) {
		rc = moirai__err(-errno, "shm %s: cannot size to %llu bytes: %s", name,
				 (unsigned long long)l.seg_size, moirai_strerror(errno));
		goto err_unlink;
	}
	map = mmap(NULL, l.seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = moirai__err(-ENOMEM, "shm %s: mmap of %llu bytes: %s", name,
				 (unsigned long long)l.seg_size, moirai_strerror(errno));
		goto err_unlink;
	}
	if (o.bind_node) {
		int node = o.node == MOIRAI_NODE_ANY ? moirai_numa_current_node() : o.node;

		/* Before first touch, so every page lands on the node. */
		rc = moirai_numa_bind_range(map, l.seg_size, node < 0 ? 0 : node);
		if (rc)
			goto err_unmap;
	}
	h = map;
	h->version = MOIRAI__SHM_VERSION;
	h->hdr_size = sizeof(*h);
	h->seg_size = l.seg_size;
	h->buf_size = o.buf_size;
	h->bufs = o.bufs;
	h->slot_size = l.slot_size;
	h->ring_slots = o.bufs;
	h->ring_memsize = l.ring_memsize;
	memcpy(h->ring_off, l.ring_off, sizeof(h->ring_off));
	h->buf_off = l.buf_off;
	for (int i = 0; i < SHM_RINGS; i++) {
		char rname[RTE_RING_NAMESIZE];

		snprintf(rname, sizeof(rname), "shm%d", i);
		/* HTS at both ends: each end is shared by one process's threads
		 * only, and a preempted thread cannot convoy the others. */
		rc = rte_ring_init((struct rte_ring *)((char *)map + l.ring_off[i]), rname, o.bufs,
				   RING_F_MP_HTS_ENQ | RING_F_MC_HTS_DEQ | RING_F_EXACT_SZ);
		if (rc) {
			rc = moirai__err(rc < 0 ? rc : -EINVAL, "shm %s: rte_ring_init: %s", name,
					 moirai_strerror(rc));
			goto err_unmap;
		}
	}
	side_claim(&h->side[0]);
	/* Release pairs with the acquire in moirai__shm_side_alive(). */
	atomic_store_explicit(&h->side[0].state, SHM_SIDE_ATTACHED, memory_order_release);
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_EMPTY, memory_order_relaxed);
	rc = handle_init(seg, name, fd, map, l.seg_size, 0, &l, o.bufs, o.buf_size);
	if (rc)
		goto err_unmap;
	/* Release pairs with the acquire in attach: the header is complete. */
	atomic_store_explicit(&h->magic, MOIRAI__SHM_MAGIC, memory_order_release);
	*out = seg;
	return 0;

err_unmap:
	munmap(map, l.seg_size);
err_unlink:
	shm_unlink(path);
	close(fd);
err_free_seg:
	free(seg);
	return rc;
}

/* ---- attach ------------------------------------------------------------ */

/*
 * An rte_ring header in the segment must have exactly the geometry this
 * process would give it: the peer could otherwise make our enqueue or
 * dequeue index far outside the mapping.
 */
static bool ring_hdr_ok(const struct rte_ring *r, uint32_t bufs)
{
	uint32_t size = rte_align32pow2(bufs + 1);

	return r->size == size && r->mask == size - 1 && r->capacity == bufs &&
	       r->prod.sync_type == RTE_RING_SYNC_MT_HTS &&
	       r->cons.sync_type == RTE_RING_SYNC_MT_HTS;
}

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
	if (h->ring_memsize != l->ring_memsize)
		return moirai__err(
			-EPROTO,
			"shm %s: ring size %llu differs from this DPDK's %llu (rte_ring ABI)", name,
			(unsigned long long)h->ring_memsize, (unsigned long long)l->ring_memsize);
	if (h->seg_size != l->seg_size || h->slot_size != l->slot_size ||
	    h->buf_off != l->buf_off || h->ring_slots != nb ||
	    memcmp(h->ring_off, l->ring_off, sizeof(l->ring_off)) != 0)
		return moirai__err(-EBADMSG,
				   "shm %s: sizes or offsets in the header are inconsistent", name);
	if (file_size != l->seg_size)
		return moirai__err(-EBADMSG,
				   "shm %s: file is %zu bytes, header says %llu (truncated?)", name,
				   file_size, (unsigned long long)l->seg_size);
	for (int i = 0; i < SHM_RINGS; i++)
		if (!ring_hdr_ok((const struct rte_ring *)((const char *)h + l->ring_off[i]), nb))
			return moirai__err(-EBADMSG,
					   "shm %s: ring %d header has the wrong geometry or mode",
					   name, i);
	*bufs = nb;
	*buf_size = bs;
	return 0;
}

int moirai_shm_attach(const char *name, struct moirai_shm **out)
{
	char path[MOIRAI_SHM_NAME_MAX + 16];
	struct moirai_shm *seg;
	struct shm_hdr *h;
	struct stat st;
	struct shm_layout l;
	uint32_t empty = SHM_SIDE_EMPTY, nbufs = 0, bsize = 0;
	void *map;
	int fd, rc;

	if (!out)
		return moirai__err(-EINVAL, "shm: NULL output pointer");
	*out = NULL;
	rc = check_name(name);
	if (rc)
		return rc;
	shm_path(name, path, sizeof(path));
	fd = shm_open(path, O_RDWR | O_CLOEXEC, 0);
	if (fd < 0)
		return moirai__err(-errno, "shm %s: cannot open /dev/shm%s: %s", name, path,
				   moirai_strerror(errno));
	if (fstat(fd, &st) != 0) {
		rc = moirai__err(-errno, "shm %s: fstat: %s", name, moirai_strerror(errno));
		goto err_close;
	}
	if ((size_t)st.st_size < sizeof(*h)) {
		rc = moirai__err(-EBADMSG,
				 "shm %s: file is %lld bytes, shorter than the header (truncated)",
				 name, (long long)st.st_size);
		goto err_close;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (map == MAP_FAILED) {
		rc = moirai__err(-ENOMEM, "shm %s: mmap: %s", name, moirai_strerror(errno));
		goto err_close;
	}
	h = map;
	rc = validate_header(name, h, (size_t)st.st_size, &l, &nbufs, &bsize);
	if (rc)
		goto err_unmap;
	if (!moirai__shm_side_alive(&h->side[0])) {
		rc = moirai__err(-ECONNREFUSED, "shm %s: the server is gone", name);
		goto err_unmap;
	}
	/* Claim the client slot as ATTACHING, so that nobody reads our pid
	 * before it is written: a server that saw ATTACHED with the old pid
	 * would take us for dead.  acq_rel pairs with recover's release store
	 * of EMPTY (the rings were reset before the slot reopened). */
	if (!atomic_compare_exchange_strong_explicit(&h->side[1].state, &empty, SHM_SIDE_ATTACHING,
						     memory_order_acq_rel, memory_order_acquire)) {
		rc = moirai__err(
			-EBUSY, "shm %s: %s", name,
			empty == SHM_SIDE_ATTACHING ? "a client is attaching"
			: empty == SHM_SIDE_ATTACHED && moirai__shm_side_alive(&h->side[1])
				? "a client is attached"
				: "the previous client left; the server must recover first");
		goto err_unmap;
	}
	side_claim(&h->side[1]);
	/* Release pairs with the acquire in moirai__shm_side_alive(): the
	 * peer sees our pid and start time once it sees ATTACHED. */
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_ATTACHED, memory_order_release);
	seg = calloc(1, sizeof(*seg));
	if (!seg) {
		rc = moirai__err(-ENOMEM, "shm %s: no memory for the handle", name);
		goto err_release_slot;
	}
	rc = handle_init(seg, name, fd, map, (size_t)st.st_size, 1, &l, nbufs, bsize);
	if (rc) {
		free(seg);
		goto err_release_slot;
	}
	*out = seg;
	return 0;

err_release_slot:
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_DETACHED, memory_order_release);
err_unmap:
	munmap(map, (size_t)st.st_size);
err_close:
	close(fd);
	return rc;
}

/* ---- detach, destroy, recover ------------------------------------------- */

void moirai_shm_detach(struct moirai_shm *seg)
{
	if (!seg)
		return;
	/* Release pairs with the acquire of the state in the peer's
	 * liveness check; the wake-up makes a blocked receive re-check. */
	atomic_store_explicit(&seg->hdr->side[seg->me].state, SHM_SIDE_DETACHED,
			      memory_order_release);
	moirai__shm_wake(seg, seg->peer);
	moirai__shm_local_fini(seg);
	free(seg->state);
	free(seg->peer_len);
	munmap(seg->hdr, seg->map_len);
	close(seg->fd);
	free(seg);
}

void moirai_shm_destroy(struct moirai_shm *seg)
{
	char path[MOIRAI_SHM_NAME_MAX + 16];
	struct stat st;
	int fd;

	if (!seg)
		return;
	shm_path(seg->name, path, sizeof(path));
	/* Unlink only if the name still refers to our segment: a new server
	 * may have reclaimed the name meanwhile. */
	fd = shm_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd >= 0) {
		if (fstat(fd, &st) == 0 && st.st_dev == seg->dev && st.st_ino == seg->ino)
			shm_unlink(path);
		close(fd);
	}
	moirai_shm_detach(seg);
}

int moirai_shm_recover(struct moirai_shm *seg)
{
	struct shm_hdr *h;
	uint32_t own = 0, side;

	if (!seg)
		return moirai__err(-EINVAL, "shm: NULL segment");
	h = seg->hdr;
	if (seg->me != 0)
		return moirai__err(
			-EINVAL,
			"shm %s: only the server recovers; a client tears down with destroy",
			seg->name);
	/* Acquire pairs with the attacher's claim and ATTACHED stores. */
	side = atomic_load_explicit(&h->side[1].state, memory_order_acquire);
	if (side == SHM_SIDE_EMPTY)
		return 0; /* nobody to recover from; a client may be claiming it */
	if (moirai__shm_side_alive(&h->side[1]))
		return moirai__err(-EBUSY, "shm %s: the client is alive", seg->name);
	if (attaching_alive(&h->side[1]))
		return moirai__err(-EBUSY, "shm %s: a client is attaching", seg->name);
	if (atomic_load_explicit(&seg->held_peer, memory_order_relaxed))
		return moirai__err(-EBUSY, "shm %s: %u received messages not freed yet", seg->name,
				   atomic_load_explicit(&seg->held_peer, memory_order_relaxed));
	/*
	 * Take the slot from the exact state judged dead, so no new client can
	 * claim it while the rings are reset under it (attach only claims
	 * EMPTY).  acq_rel pairs with the attacher's CAS.
	 */
	if (!atomic_compare_exchange_strong_explicit(&h->side[1].state, &side, SHM_SIDE_RECOVERING,
						     memory_order_acq_rel, memory_order_acquire))
		return moirai__err(-EBUSY, "shm %s: the client slot changed during recovery",
				   seg->name);
	/* Our own ring pointers, never offsets re-read from the segment. */
	rte_ring_reset(seg->rx);
	rte_ring_reset(seg->tx);
	rte_ring_reset(seg->ret_rx);
	rte_ring_reset(seg->ret_tx);
	/* Our buffers that were with the client, queued or returned, are ours
	 * again; buffers the server holds stay held. */
	for (uint32_t i = 0; i < seg->bufs_per_side; i++) {
		uint8_t st = atomic_load_explicit(&seg->state[own + i], memory_order_relaxed);

		if (st == SHM_BUF_SENT) {
			uint32_t idx = own + i;

			atomic_store_explicit(&seg->state[idx], SHM_BUF_FREE, memory_order_relaxed);
			rte_ring_enqueue_bulk_elem(seg->free_local, &idx, sizeof(idx), 1, NULL);
		}
	}
	for (uint32_t i = 0; i < seg->bufs_per_side; i++)
		atomic_store_explicit(&seg->state[seg->bufs_per_side + i], SHM_BUF_FREE,
				      memory_order_relaxed);
	atomic_store_explicit(&h->side[1].pid, 0, memory_order_relaxed);
	/* Release pairs with the acq_rel claim in attach: a new client sees
	 * empty rings. */
	atomic_store_explicit(&h->side[1].state, SHM_SIDE_EMPTY, memory_order_release);
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
