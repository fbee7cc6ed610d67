/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * SIGBUS guard of the shared-memory transport: a process-wide handler that
 * survives the truncation of a segment file under our mapping.
 *
 * Why: the segment is a file the peer can ftruncate (or punch holes in on
 * a full tmpfs); touching a page past the new end raises SIGBUS, which by
 * default kills the process.  A peer is input, so a truncation must become
 * an error, not a death.  Preventing it outright takes a sealed memfd
 * (F_SEAL_SHRINK), which cannot be opened by name: every client would need
 * a rendezvous socket and a server thread to hand out descriptors.  The
 * guard keeps attach-by-name instead, and works the way Wayland
 * compositors survive clients that shrink their shm pools: on a SIGBUS
 * whose address lies inside a registered mapping, the handler maps
 * anonymous zero pages over the whole mapping (MAP_FIXED, one system call),
 * marks the segment faulted and returns; the faulting instruction is
 * restarted and reads zeros.  Every later call on the handle sees the flag
 * and fails with -EFAULT; payload pointers the application still holds
 * read zeros instead of killing it.  Zeros are harmless to the library
 * because it already treats every word of the segment as hostile input.
 *
 * The dangers, and what is done about each:
 *  - Other handlers: the previous SIGBUS action is kept and called for any
 *    fault outside our mappings (or re-raised with the default action), so
 *    the program's own handler, a sanitizer's or the default core dump
 *    still see their faults.  A handler installed after ours must chain
 *    the same way, or truncation becomes fatal again (documented; a warning
 *    is logged when a new segment finds our handler replaced).  If SIGBUS
 *    was merely reset to the default, the next create or attach puts our
 *    handler back.
 *  - Async-signal-safety: the handler reads the table with atomics, makes
 *    raw mmap/sigaction system calls and touches nothing else (no locks,
 *    no allocation, no logging); errno is saved and restored.
 *  - Other threads: the replacement is one mmap over the whole range, so
 *    every thread sees the zero pages at once; the flag is per segment.
 *  - Unmapping: a detach removes the entry and then waits until no handler
 *    is looking at it (users == 0) before munmap, so a handler never maps
 *    over an address range that was meanwhile given to someone else.
 *  - Signals sent with kill() (si_code <= 0) are not faults: chained.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shm_int.h"

/* Segments one process can map at a time (each entry is 32 bytes). */
#define GUARD_MAX 256

static struct shm_guard guards[GUARD_MAX];
static struct sigaction prev_action; /* written only while our handler is not installed */
static pthread_mutex_t guard_lock = PTHREAD_MUTEX_INITIALIZER;
static bool installed;
static bool warned;

static void chain(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl;

	if (prev_action.sa_handler == SIG_DFL || prev_action.sa_handler == SIG_IGN) {
		/* Default action (an ignored SIGBUS fault is no better than a
		 * default one: the instruction would fault forever). */
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		sigaction(sig, &dfl, NULL);
		/* A fault restarts and dies; a sent signal must be re-sent. */
		if (si->si_code <= 0)
			raise(sig);
		return;
	}
	if (prev_action.sa_flags & SA_SIGINFO)
		prev_action.sa_sigaction(sig, si, uc);
	else
		prev_action.sa_handler(sig);
}

static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	int saved = errno;
	uintptr_t addr = (uintptr_t)si->si_addr;

	if (si->si_code > 0) {
		for (int i = 0; i < GUARD_MAX; i++) {
			struct shm_guard *g = &guards[i];
			uintptr_t base;
			size_t len;

			if (!atomic_load_explicit(&g->base, memory_order_relaxed))
				continue;
			/*
			 * Pin, then re-read (seq_cst, both here and in
			 * moirai__shm_guard_del: store base = 0, load users).
			 * Either del sees our pin and waits, or we see base 0.
			 */
			atomic_fetch_add(&g->users, 1);
			base = atomic_load(&g->base);
			len = atomic_load(&g->len);
			if (base && addr - base < len) {
				long p = syscall(
					SYS_mmap, (void *)base, len, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1,
					0L);

				if (p != -1)
					atomic_store(&g->faulted, true);
				atomic_fetch_sub(&g->users, 1);
				if (p != -1) {
					errno = saved;
					return;
				}
				break; /* could not replace it: not survivable */
			}
			atomic_fetch_sub(&g->users, 1);
		}
	}
	chain(sig, si, uc);
	errno = saved;
}

static bool handler_is_ours(const struct sigaction *sa)
{
	return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

/*
 * Install the handler, or put it back if the program reset SIGBUS to the
 * default (or ignored it) since.  A handler of the program's own that
 * replaced ours is left alone: it may chain to ours, and installing ours
 * over it again would make the two call each other for every fault that
 * neither handles.  Called with guard_lock held, so prev_action is written
 * only while our handler is not installed.
 */
static int install(void)
{
	struct sigaction sa, cur;

	if (sigaction(SIGBUS, NULL, &cur) != 0)
		return moirai__err(-errno, "shm: cannot read the SIGBUS action: %s",
				   moirai_strerror(errno));
	if (handler_is_ours(&cur))
		return 0;
	if (installed && cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN) {
		if (!warned)
			moirai__log(
				MOIRAI_LOG_WARN,
				"shm: another SIGBUS handler replaced moirai's: unless it chains "
				"to the one it replaced, a peer that truncates a segment can kill "
				"this process");
		warned = true;
		return 0;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sigemptyset(&sa.sa_mask);
	/* SA_ONSTACK: a thread with an alternate stack (e.g. for overflow
	 * handlers) keeps using it; SA_RESTART: interrupted calls resume. */
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	prev_action = cur;
	if (sigaction(SIGBUS, &sa, NULL) != 0)
		return moirai__err(-errno, "shm: cannot install the SIGBUS guard: %s",
				   moirai_strerror(errno));
	installed = true;
	return 0;
}

int moirai__shm_guard_add(void *base, size_t len, struct shm_guard **out)
{
	int rc;

	pthread_mutex_lock(&guard_lock);
	rc = install();
	if (rc)
		goto out_unlock;
	for (int i = 0; i < GUARD_MAX; i++) {
		struct shm_guard *g = &guards[i];

		if (atomic_load_explicit(&g->claimed, memory_order_relaxed))
			continue;
		atomic_store_explicit(&g->claimed, true, memory_order_relaxed);
		atomic_store(&g->faulted, false);
		atomic_store(&g->len, len);
		/* Seq_cst, after len: a handler that sees base sees len. */
		atomic_store(&g->base, (uintptr_t)base);
		*out = g;
		goto out_unlock;
	}
	rc = moirai__err(-EMFILE, "shm: this process already maps %d segments", GUARD_MAX);
out_unlock:
	pthread_mutex_unlock(&guard_lock);
	return rc;
}

void moirai__shm_guard_del(struct shm_guard *g)
{
	if (!g)
		return;
	/* Seq_cst pair with the handler's pin (see on_sigbus). */
	atomic_store(&g->base, 0);
	/* A handler in flight holds users for one mmap: a short wait, and
	 * only on threads of this process. */
	while (atomic_load(&g->users))
		sched_yield();
	pthread_mutex_lock(&guard_lock);
	atomic_store_explicit(&g->claimed, false, memory_order_relaxed);
	pthread_mutex_unlock(&guard_lock);
}
