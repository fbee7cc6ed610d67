/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Private to rt/: the stats segment moirai-top reads (layout version 1),
 * the writer's hooks into the runtime (rt_pub.c), and what writer and
 * reader (rt_monitor.c) share: name rules, process identity and liveness,
 * header checks, and removal of a stale file.  docs/top.md describes the
 * format for people; the static_asserts below freeze it.
 *
 * The file is DIR/moirai-stats.NAME, DIR from rt_pub_dir():
 *
 *   [struct rt_pub_hdr, 4096 bytes: layout, identity, seq, runtime body]
 *   [struct rt_pub_worker x nworkers, 384 bytes each]
 *   [struct moirai_hist x 8: wait then run, per level, merged over workers]
 *
 * Everything before @c seq is written once, before the magic (last, with
 * release).  Everything after it is rewritten by each publish under the
 * seqlock: seq odd (relaxed store + release fence), the body (relaxed
 * stores), seq even (release store).  Native byte order: the reader runs on
 * the same machine.
 */
#ifndef MOIRAI_RT_PUB_H
#define MOIRAI_RT_PUB_H

#include <assert.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "moirai/hist.h"
#include "moirai/rt.h"

#define RT_PUB_MAGIC	   0x5453494152494f4dull /* "MOIRAIST" little-endian */
#define RT_PUB_VERSION	   1u
#define RT_PUB_HDR_SIZE	   4096u
#define RT_PUB_WORKER_SIZE 384u
#define RT_PUB_LEVELS	   MOIRAI_PRIO_LEVELS
#define RT_PUB_HISTS	   (2u * RT_PUB_LEVELS)
#define RT_PUB_MAX_WORKERS 1024u /* RT_MAX_WORKERS */
#define RT_PUB_BOOT_ID_LEN 40u	 /* a UUID (36 characters) and its NUL, padded */
#define RT_PUB_COMM_LEN	   16u
#define RT_PUB_NAME_LEN	   72u /* MOIRAI_RT_STATS_NAME_MAX + 1, padded */
/* A file being removed is renamed to this prefix first (rt_pub_reap()). */
#define RT_PUB_REAP_PREFIX "moirai-stats-reap."

/* Runtime-wide flags (rt_pub_hdr.flags). */
#define RT_PUB_F_VIRTUAL  0x1u /* virtual placement */
#define RT_PUB_F_STOPPING 0x2u /* moirai_rt_stop() was called */
#define RT_PUB_F_IDLE	  0x4u /* every worker parked: no publish until one wakes */

/* Worker flags (rt_pub_worker.flags). */
#define RT_PUB_WF_CRITICAL 0x1u /* part of the critical lane */

/* Precomputed latency figures of one level and kind (for readers without
 * the histogram code; moirai's reader recomputes them from the histogram). */
struct rt_pub_lat {
	uint64_t count, p50, p99, p999, max;
};

struct rt_pub_hdr {
	/* ---- layout and identity: written once, before the magic ---- */
	uint64_t magic;
	uint32_t version;
	uint32_t hdr_size;    /* RT_PUB_HDR_SIZE */
	uint32_t worker_size; /* RT_PUB_WORKER_SIZE */
	uint32_t hist_size;   /* sizeof(struct moirai_hist) */
	uint32_t levels;      /* RT_PUB_LEVELS */
	uint32_t nworkers;    /* 1..RT_PUB_MAX_WORKERS */
	uint64_t workers_off; /* hdr_size */
	uint64_t hists_off;   /* workers_off + nworkers * worker_size */
	uint64_t seg_size;    /* hists_off + RT_PUB_HISTS * hist_size: the file's size */
	int32_t pid;	      /* the writer */
	uint32_t uid;	      /* its effective uid (the file's owner) */
	uint64_t start_time;  /* its start, clock ticks after boot (/proc/PID/stat 22) */
	uint64_t pidns;	      /* inode of its pid namespace (/proc/self/ns/pid) */
	char boot_id[RT_PUB_BOOT_ID_LEN]; /* /proc/sys/kernel/random/boot_id */
	char comm[RT_PUB_COMM_LEN];	  /* /proc/self/comm */
	char name[RT_PUB_NAME_LEN];	  /* the segment name */
	uint32_t period_ms;		  /* publish period */
	uint32_t rt_id;			  /* the runtime's id in its process */
	uint64_t created_ns;		  /* CLOCK_REALTIME at create */

	/* ---- the seqlock word: odd while a publish writes the body ---- */
	alignas(64) uint64_t seq;

	/* ---- body, rewritten by every publish ---- */
	alignas(64) uint64_t time_ns; /* CLOCK_MONOTONIC when the counters were read */
	uint64_t publishes;
	uint64_t publish_ns;	 /* duration of this publish (up to this word) */
	uint64_t publish_max_ns; /* the longest so far */
	uint32_t flags;		 /* RT_PUB_F_* */
	uint32_t workers;	 /* == nworkers */
	uint64_t spawned, refused, deferred_pending, deferred_freed, overflow_spills;
	struct rt_pub_lat lat[2][RT_PUB_LEVELS]; /* [kind][level] */
	uint8_t reserved[RT_PUB_HDR_SIZE - 720];
};

struct rt_pub_worker {
	int32_t worker, pu, node, plan_pu, plan_node, node_idx, l3;
	uint32_t flags; /* RT_PUB_WF_* */
	uint32_t state; /* enum moirai_rt_worker_state */
	int32_t level;	/* level index of the running task, -1 none */
	uint64_t running_ns;
	uint64_t tasks_run[RT_PUB_LEVELS];
	uint64_t continuations[RT_PUB_LEVELS];
	uint64_t aged[RT_PUB_LEVELS];
	uint64_t queue_depth[RT_PUB_LEVELS];
	uint64_t steals[MOIRAI_RT_STEAL_CLASSES];
	uint64_t steal_attempts, stolen_from, mailbox_full, parks, wakeups;
	uint64_t polls_busy, polls_idle, poll_busy_ns, poll_idle_ns, timers_fired;
	uint64_t busy_ns, stuck_reports, cancelled;
	uint8_t reserved[RT_PUB_WORKER_SIZE - 312];
};

/* The format is what these say; a change is a new RT_PUB_VERSION. */
static_assert(sizeof(struct rt_pub_hdr) == RT_PUB_HDR_SIZE, "header is 4096 bytes");
static_assert(offsetof(struct rt_pub_hdr, seq) == 256, "seq at 256");
static_assert(offsetof(struct rt_pub_hdr, time_ns) == 320, "body at 320");
static_assert(offsetof(struct rt_pub_hdr, lat) == 400, "latency figures at 400");
static_assert(offsetof(struct rt_pub_hdr, reserved) == 720, "header body ends at 720");
static_assert(sizeof(struct rt_pub_worker) == RT_PUB_WORKER_SIZE, "worker record is 384 bytes");
static_assert(offsetof(struct rt_pub_worker, reserved) == 312, "worker fields end at 312");
static_assert(sizeof(struct moirai_hist) == 15392, "histogram layout as moirai/hist.h");

/*
 * W1's release fence (rt_pub.c).  GCC rejects atomic_thread_fence under
 * -fsanitize=thread (-Wtsan: TSan does not model fences); the loads this
 * fence orders against are another process's, which TSan cannot see
 * anyway, so only that warning is silenced, only here (as lib/waitq.h).
 */
#if defined(__SANITIZE_THREAD__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wtsan"
static inline void rt_pub_release_fence(void)
{
	atomic_thread_fence(memory_order_release);
}
#pragma GCC diagnostic pop
#else
static inline void rt_pub_release_fence(void)
{
	atomic_thread_fence(memory_order_release);
}
#endif

/* Offsets and size of a segment of @nworkers workers. */
static inline uint64_t rt_pub_hists_off(uint32_t nworkers)
{
	return RT_PUB_HDR_SIZE + (uint64_t)nworkers * RT_PUB_WORKER_SIZE;
}

static inline uint64_t rt_pub_seg_size(uint32_t nworkers)
{
	return rt_pub_hists_off(nworkers) + RT_PUB_HISTS * (uint64_t)sizeof(struct moirai_hist);
}

/* ---- writer hooks (rt_pub.c), called from rt_worker.c ------------------ */

struct moirai_rt;
struct rt_pub;

/* At create, after the runtime is built and before its threads start:
 * create the segment if publishing is asked for (config or option).
 * 0, or the error moirai_rt_create() returns. */
int rt_pub_init(struct moirai_rt *rt);
/* On the housekeeping thread, before it sleeps: publish if due (or, when
 * @until is 0, i.e. it sleeps until a worker wakes, publish the idle state
 * once).  Returns the deadline to sleep to: @until, or earlier when the
 * next publish is due first. */
uint64_t rt_pub_tick(struct moirai_rt *rt, uint64_t until);
/* At destroy (rt_free): unlink and unmap.  NULL-safe, idempotent. */
void rt_pub_fini(struct moirai_rt *rt);

/* ---- shared by writer and reader (rt_monitor.c) ----------------------- */

/* Whether @name is 1..MOIRAI_RT_STATS_NAME_MAX of [A-Za-z0-9._-], not
 * starting with '.'. */
bool rt_pub_name_ok(const char *name);
/* Longest path of a segment file this code builds. */
#define RT_PUB_PATH_MAX 512
/* The directory: the MOIRAI_RT_STATS_DIR option, or the default. */
const char *rt_pub_dir(void);
/* rt_pub_dir() "/" MOIRAI_RT_STATS_PREFIX @name into @buf: 0 or -ENAMETOOLONG. */
int rt_pub_path(const char *name, char *buf, size_t len);

/* Who a process is, so that a reused pid or another boot is told apart. */
struct rt_proc_id {
	int pid;
	uint64_t start_time;
	uint64_t pidns;
	char boot_id[RT_PUB_BOOT_ID_LEN];
};
/* The calling process (read once; pid re-read after a fork).  0 or -errno. */
int rt_proc_self(struct rt_proc_id *out);

/* Check the layout fields of a header read from a file of @file_size bytes.
 * 0, or -EPROTO / -EBADMSG with a reason in @why. */
int rt_pub_check_layout(const struct rt_pub_hdr *h, uint64_t file_size, char *why, size_t len);
/* Whether the writer named in a (layout-checked) header still lives:
 * LIVE, STALE or UNKNOWN, with a reason in @why for people. */
enum moirai_rt_segment_state rt_pub_liveness(const struct rt_pub_hdr *h, char *why, size_t len);

/* Open @path as a reader must (O_RDONLY|O_NOFOLLOW|O_NONBLOCK|O_CLOEXEC),
 * fstat it into @st and read and check its header.  With @uid >= 0 the
 * owner must be @uid; with @name the header must name that segment.
 * Returns the fd (>= 0) or -errno, with the reason in @why. */
int rt_pub_open_checked(const char *path, const char *name, long uid, struct stat *st,
			struct rt_pub_hdr *h, char *why, size_t len);

/* Remove @path if it still is the file (@dev, @ino) that was checked:
 * renamed aside first, compared, then unlinked (or renamed back).  0, or
 * -errno (-ESTALE: the name now holds another file, left in place). */
int rt_pub_reap(const char *path, dev_t dev, ino_t ino);

/* Make a fixed-size string from the segment safe to print: NUL-terminated
 * within @len, anything but printable ASCII replaced with '?'. */
void rt_pub_sanitize(char *s, size_t len);

#endif /* MOIRAI_RT_PUB_H */
