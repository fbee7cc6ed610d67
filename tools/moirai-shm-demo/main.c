/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-shm-demo: two processes talking through a moirai shared-memory
 * segment (moirai/shm.h).
 *
 *   moirai-shm-demo serve NAME              receive until the client leaves
 *   moirai-shm-demo send NAME N [SIZE]      send N messages of SIZE bytes
 *   moirai-shm-demo run [N] [SIZE] [--json] fork a server and a client
 *   (serve, send and run take --burst K: K messages per call)
 *   moirai-shm-demo pingpong [N] [--json]   fork both, measure round trips
 *
 * Each message carries its sequence number and SIZE - 8 bytes derived from
 * it; both sides fold every payload byte into an FNV-1a checksum, so equal
 * checksums mean every message arrived once, intact and in order.  The
 * server answers every 64th message with an acknowledgement, so both ring
 * directions are used.  Exit status: 0 success, 1 runtime failure
 * (mismatch, peer died), 2 bad usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moirai.h>

#define DEFAULT_N    1000000L
#define DEFAULT_SIZE 64L
#define ACK_EVERY    64
#define SEC	     1000000000LL

static unsigned burst = 1; /* --burst K: messages per send/receive call */

struct stats {
	long msgs;
	long errors; /* out-of-order or corrupted messages */
	uint64_t bytes;
	uint64_t sum; /* FNV-1a over all payloads */
	double secs;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: moirai-shm-demo serve NAME\n"
		"       moirai-shm-demo send NAME N [SIZE]\n"
		"       moirai-shm-demo run [N] [SIZE] [--json] [--burst K]\n"
		"       moirai-shm-demo pingpong [N] [--json]\n"
		"  serve  create segment NAME (/dev/shm/moirai.NAME), receive messages\n"
		"         until the client detaches, print count, rate and checksum\n"
		"  send   attach to NAME and send N messages of SIZE bytes (8..2048,\n"
		"         default 64)\n"
		"  run    fork both sides on a private segment (default N %ld) and\n"
		"         check that their checksums agree\n"
		"  --burst K  serve/send/run move up to K messages per call\n"
		"         (moirai_shm_send_bulk / moirai_shm_recv_burst), default 1\n"
		"  pingpong fork both sides; the client sends a 64-byte message and\n"
		"         waits for the echo, N times (default 100000); prints the\n"
		"         round-trip time percentiles (sides pinned to the first two\n"
		"         allowed CPUs when there are two)\n"
		"  -V, --version  print the version and exit\n"
		"  -h, --help     print this help and exit\n",
		DEFAULT_N);
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void fill(unsigned char *d, uint64_t seq, size_t size)
{
	memcpy(d, &seq, 8);
	for (size_t i = 8; i < size; i++)
		d[i] = (unsigned char)(seq * 131 + i);
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int do_serve(const char *name, bool quiet, struct stats *st)
{
	struct moirai_shm *seg;
	uint64_t t0 = 0, expect = 0;
	int rc;

	*st = (struct stats){ .sum = 1469598103934665603ull };
	rc = moirai_shm_create(name, NULL, &seg);
	if (rc) {
		fprintf(stderr, "moirai-shm-demo: %s\n", moirai_last_error());
		return rc == -EINVAL ? 2 : 1;
	}
	if (!quiet)
		printf("serving /dev/shm/moirai.%s (buffers of %zu bytes)\n", name,
		       moirai_shm_buf_size(seg));
	fflush(stdout);
	for (;;) {
		struct moirai_shm_msg *ms[MOIRAI_SHM_BURST_MAX];
		int k = moirai_shm_recv_burst(seg, ms, burst, MOIRAI_TIMEOUT_FOREVER);

		if (k < 0) {
			rc = k;
			break;
		}
		if (st->msgs == 0)
			t0 = moirai_now_ns();
		for (int j = 0; j < k; j++) {
			const unsigned char *d = moirai_shm_msg_data(ms[j]);
			size_t len = moirai_shm_msg_len(seg, ms[j]);
			uint64_t seq = UINT64_MAX;

			if (len >= 8)
				memcpy(&seq, d, 8);
			if (seq != expect++)
				st->errors++;
			st->sum = fnv(st->sum, d, len);
			st->bytes += len;
			st->msgs++;
			moirai_shm_free(seg, ms[j]);
			if (st->msgs % ACK_EVERY == 0) {
				struct moirai_shm_msg *ack;

				if (moirai_shm_alloc(seg, 8, &ack) == 0) {
					memcpy(moirai_shm_msg_data(ack), &st->msgs, 8);
					if (moirai_shm_send(seg, ack) != 0)
						moirai_shm_free(seg, ack);
				}
			}
		}
	}
	st->secs = st->msgs ? (double)(moirai_now_ns() - t0) / 1e9 : 0;
	moirai_shm_destroy(seg); /* unlinks /dev/shm/moirai.NAME */
	if (rc != -EPIPE) {
		fprintf(stderr, "moirai-shm-demo: receive failed: %s\n", moirai_last_error());
		return 1;
	}
	return 0;
}

static int do_send(const char *name, long n, long size, struct stats *st)
{
	struct moirai_shm *seg;
	struct moirai_shm_msg *m;
	uint64_t t0;
	long acks = 0;
	int rc = 0;

	*st = (struct stats){ .sum = 1469598103934665603ull };
	/* The server may still be starting (no file, not sized, no magic yet):
	 * retry for 5 s. */
	for (int i = 0; i < 500; i++) {
		rc = moirai_shm_attach(name, NULL, &seg);
		if (rc != -ENOENT && rc != -EPROTO && rc != -EBADMSG)
			break;
		usleep(10000);
	}
	if (rc) {
		fprintf(stderr, "moirai-shm-demo: %s\n", moirai_last_error());
		return rc == -EINVAL ? 2 : 1;
	}
	if ((size_t)size > moirai_shm_buf_size(seg)) {
		fprintf(stderr, "moirai-shm-demo: SIZE %ld above the buffer size %zu\n", size,
			moirai_shm_buf_size(seg));
		moirai_shm_detach(seg);
		return 2;
	}
	t0 = moirai_now_ns();
	for (long i = 0; i < n;) {
		struct moirai_shm_msg *ms[MOIRAI_SHM_BURST_MAX];
		unsigned k = 0;

		/* Free acknowledgements as they come, returning the buffers. */
		while (moirai_shm_recv(seg, &m, 0) == 0) {
			acks++;
			moirai_shm_free(seg, m);
		}
		/* Up to `burst` messages per send; at least one. */
		while (k < burst && i + k < n) {
			rc = moirai_shm_alloc(seg, (size_t)size, &ms[k]);
			if (rc == -ENOBUFS && k > 0)
				break;
			if (rc == -ENOBUFS) {
				if (!moirai_shm_peer_alive(seg))
					break;
				sched_yield();
				continue;
			}
			if (rc)
				break;
			fill(moirai_shm_msg_data(ms[k]), (uint64_t)(i + k), (size_t)size);
			st->sum = fnv(st->sum, moirai_shm_msg_data(ms[k]), (size_t)size);
			k++;
		}
		if (k > 0)
			rc = moirai_shm_send_bulk(seg, ms, k);
		if (rc || k == 0) {
			fprintf(stderr, "moirai-shm-demo: send %ld failed: %s\n", i,
				moirai_strerror(rc ? rc : -EPIPE));
			moirai_shm_detach(seg);
			return 1;
		}
		i += k;
		st->msgs += k;
		st->bytes += (uint64_t)size * k;
	}
	st->secs = (double)(moirai_now_ns() - t0) / 1e9;
	(void)acks;
	moirai_shm_detach(seg);
	return 0;
}

static void print_stats(const char *who, const struct stats *st)
{
	printf("%-7s %ld messages, %" PRIu64 " bytes in %.3f s: %.0f msg/s, checksum %016" PRIx64
	       "%s\n",
	       who, st->msgs, st->bytes, st->secs, st->secs > 0 ? (double)st->msgs / st->secs : 0.0,
	       st->sum, st->errors ? " (OUT OF ORDER)" : "");
}

static int do_run(long n, long size, bool json)
{
	struct stats srv, cli;
	char name[64];
	int pfd[2], status;
	pid_t pid;
	int rc;

	snprintf(name, sizeof(name), "demo-%d", (int)getpid());
	if (pipe(pfd) != 0)
		return 1;
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		/* Client process: report its figures through the pipe. */
		close(pfd[0]);
		rc = do_send(name, n, size, &cli);
		if (write(pfd[1], &cli, sizeof(cli)) != (ssize_t)sizeof(cli))
			rc = 1;
		_exit(rc);
	}
	close(pfd[1]);
	rc = do_serve(name, true, &srv);
	if (read(pfd[0], &cli, sizeof(cli)) != (ssize_t)sizeof(cli))
		rc = 1;
	close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rc = 1;
	if (rc)
		return rc;
	bool ok = srv.msgs == cli.msgs && srv.sum == cli.sum && !srv.errors;

	if (json) {
		printf("{ \"messages\": %ld, \"size\": %ld, \"seconds\": %.6f, "
		       "\"msgs_per_sec\": %.0f, \"checksum_sent\": \"%016" PRIx64 "\", "
		       "\"checksum_received\": \"%016" PRIx64 "\", \"match\": %s }\n",
		       srv.msgs, size, srv.secs, srv.secs > 0 ? (double)srv.msgs / srv.secs : 0.0,
		       cli.sum, srv.sum, ok ? "true" : "false");
	} else {
		print_stats("client", &cli);
		print_stats("server", &srv);
		printf("%s\n", ok ? "checksums match" : "CHECKSUM MISMATCH");
	}
	return ok ? 0 : 1;
}

/* The @nth CPU of our affinity mask, or -1 (pingpong pins each side). */
static int nth_cpu(int nth)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return -1;
	for (int c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set) && nth-- == 0)
			return c;
	return -1;
}

/* Server half of pingpong: echo every message until the client leaves. */
static int echo_server(const char *name, int ready_fd)
{
	struct moirai_shm *seg;
	struct moirai_shm_msg *m, *r;
	int rc;

	rc = moirai_shm_create(name, NULL, &seg);
	if (write(ready_fd, rc ? "e" : "r", 1) != 1 || rc)
		return 1;
	while ((rc = moirai_shm_recv(seg, &m, MOIRAI_TIMEOUT_FOREVER)) == 0) {
		if (moirai_shm_alloc(seg, moirai_shm_msg_len(seg, m), &r) == 0) {
			memcpy(moirai_shm_msg_data(r), moirai_shm_msg_data(m),
			       moirai_shm_msg_len(seg, m));
			if (moirai_shm_send(seg, r) != 0)
				moirai_shm_free(seg, r);
		}
		moirai_shm_free(seg, m);
	}
	moirai_shm_destroy(seg);
	return rc == -EPIPE ? 0 : 1;
}

static int do_pingpong(long n, bool json)
{
	static const double qs[] = { 50, 99, 99.9 };
	struct moirai_shm *seg;
	struct moirai_shm_msg *m;
	/* The library's histogram, as every other tool reports latency: the
	 * same nearest-rank percentiles within 1/64, in fixed memory however
	 * many round trips (the samples were sorted with qsort before). */
	struct moirai_hist *rtt;
	uint64_t t0, p[3];
	char name[64], c, fields[256];
	int pfd[2], status, rc = 0;
	pid_t pid;

	rtt = malloc(sizeof(*rtt));
	if (!rtt || pipe(pfd) != 0) {
		free(rtt);
		return 1;
	}
	moirai_hist_init(rtt);
	snprintf(name, sizeof(name), "ping-%d", (int)getpid());
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		close(pfd[0]);
		/* Each side on its own CPU when there are two: polling then
		 * never delays the peer. */
		if (nth_cpu(1) >= 0)
			moirai_numa_pin_thread(nth_cpu(1));
		_exit(echo_server(name, pfd[1]));
	}
	if (nth_cpu(1) >= 0)
		moirai_numa_pin_thread(nth_cpu(0));
	close(pfd[1]);
	if (read(pfd[0], &c, 1) != 1 || c != 'r' || moirai_shm_attach(name, NULL, &seg) != 0) {
		fprintf(stderr, "moirai-shm-demo: %s\n", moirai_last_error());
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		return 1;
	}
	close(pfd[0]);
	for (long i = 0; i < n && !rc; i++) {
		t0 = moirai_now_ns();
		rc = moirai_shm_alloc(seg, 64, &m);
		if (rc == 0) {
			memcpy(moirai_shm_msg_data(m), &i, sizeof(i));
			rc = moirai_shm_send(seg, m);
		}
		if (rc == 0)
			rc = moirai_shm_recv(seg, &m, 5 * SEC);
		if (rc == 0) {
			long echo;

			memcpy(&echo, moirai_shm_msg_data(m), sizeof(echo));
			moirai_hist_record(rtt, moirai_now_ns() - t0);
			if (echo != i)
				rc = -EBADMSG;
			moirai_shm_free(seg, m);
		}
	}
	moirai_shm_detach(seg);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
	    rc) {
		fprintf(stderr, "moirai-shm-demo: pingpong failed: %s\n",
			rc ? moirai_strerror(rc) : "server");
		free(rtt);
		return 1;
	}
	if (json) {
		moirai_hist_format_json(rtt, "_ns", fields, sizeof(fields));
		printf("{ \"round_trips\": %ld, %s }\n", n, fields);
	} else {
		moirai_hist_percentiles(rtt, qs, 3, p);
		printf("%ld round trips of 64 bytes: p50 %" PRIu64 " ns, p99 %" PRIu64
		       " ns, p99.9 %" PRIu64 " ns, max %" PRIu64 " ns\n",
		       n, p[0], p[1], p[2], moirai_hist_max(rtt));
	}
	free(rtt);
	return 0;
}

int main(int argc, char **argv)
{
	struct stats st;
	long n = DEFAULT_N, size = DEFAULT_SIZE;
	bool json = false;
	int pos = 0;
	const char *args[4] = { 0 };

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("moirai-shm-demo %s\n", moirai_version());
			return 0;
		} else if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--burst") && i + 1 < argc) {
			long b;

			if (parse_long(argv[++i], 1, MOIRAI_SHM_BURST_MAX, &b)) {
				fprintf(stderr, "moirai-shm-demo: --burst must be 1..%u\n",
					MOIRAI_SHM_BURST_MAX);
				return 2;
			}
			burst = (unsigned)b;
		} else if (argv[i][0] == '-' || pos == 4) {
			fprintf(stderr, "moirai-shm-demo: unexpected argument '%s' (see --help)\n",
				argv[i]);
			return 2;
		} else {
			args[pos++] = argv[i];
		}
	}
	if (pos == 0) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(args[0], "serve") && pos == 2) {
		int rc = do_serve(args[1], false, &st);

		if (rc == 0)
			print_stats("server", &st);
		return rc;
	}
	if (!strcmp(args[0], "send") && (pos == 3 || pos == 4)) {
		if (parse_long(args[2], 1, 1L << 40, &n) ||
		    (pos == 4 && parse_long(args[3], 8, 2048, &size))) {
			fprintf(stderr, "moirai-shm-demo: N must be >= 1 and SIZE 8..2048\n");
			return 2;
		}
		int rc = do_send(args[1], n, size, &st);

		if (rc == 0)
			print_stats("client", &st);
		return rc;
	}
	if (!strcmp(args[0], "run") && pos <= 3) {
		if ((pos >= 2 && parse_long(args[1], 1, 1L << 40, &n)) ||
		    (pos == 3 && parse_long(args[2], 8, 2048, &size))) {
			fprintf(stderr, "moirai-shm-demo: N must be >= 1 and SIZE 8..2048\n");
			return 2;
		}
		return do_run(n, size, json);
	}
	if (!strcmp(args[0], "pingpong") && pos <= 2) {
		n = 100000;
		if (pos == 2 && parse_long(args[1], 1, 100000000L, &n)) {
			fprintf(stderr, "moirai-shm-demo: N must be 1..100000000\n");
			return 2;
		}
		return do_pingpong(n, json);
	}
	fprintf(stderr, "moirai-shm-demo: bad command (see --help)\n");
	return 2;
}
