/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-bench net: the network channel (moirai/net.h) over UCX's TCP
 * transport on 127.0.0.1, against raw UCX (ucx_perftest, the UCP active
 * message tests, same transport) and a plain TCP socket pair, 64-byte
 * messages:
 *   lat_b1    one-way latency: half the round trip of a ping-pong of one
 *             message (p50/p99 from moirai/hist.h; ucx_perftest reports
 *             its own one-way median and no p99);
 *   tput_b1   messages/s streamed one message per send call;
 *   tput_b32  the same in bursts of 32 (moirai: one active message per
 *             burst; ucx_perftest: 32 outstanding sends, -O 32; socket: one
 *             write of 32 messages).
 * ns_per_op is ns per message (one-way for lat_b1).  Both sides of
 * moirai and the socket are threads of this process pinned to cpu_a and
 * cpu_b; ucx_perftest runs as two processes pinned the same way (-c).
 * moirai's endpoints coalesce consecutive sends (opts.coalesce, 16 KiB: a
 * quarter of the default window of 64-byte messages), as the kernel does
 * for the socket; moirai_nocoalesce is the same without it (every send
 * call one active message).  A socket read waits as a moirai receive
 * does: it spins for MOIRAI_SPIN_NS, then sleeps in poll(), so neither
 * side pays a wake-up the other avoids by spinning.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <moirai.h>

#include "bench.h"

#define MSG	   64
#define COALESCE   16384
#define LAT_ROUNDS 20000
#define TPUT_MSGS  400000
#define SEC	   (1000ll * 1000 * 1000)

extern char **environ;

enum mode { M_LAT, M_TPUT };

struct job {
	enum mode mode;
	unsigned burst;
	unsigned coalesce; /* moirai: opts.coalesce */
	long n;
	int cpu;
	_Atomic int port; /* moirai: the listener's port, once listening */
	int fd;		  /* socket: the accepted side */
	int rc;
	char err[96];
};

static uint64_t lat_finish(struct moirai_hist *h, uint64_t sum, long n, struct bench_result *out)
{
	static const double qs[3] = { 50, 99, 99.9 };
	uint64_t pc[3];

	moirai_hist_percentiles(h, qs, 3, pc);
	out->ns_per_op = (double)sum / (double)n / 2;
	out->p50_ns = (double)pc[0] / 2;
	out->p99_ns = (double)pc[1] / 2;
	out->p999_ns = (double)pc[2] / 2;
	out->ops = n;
	return 0;
}

/* ---- moirai ---------------------------------------------------------------- */

static void *m_server(void *arg)
{
	struct job *j = arg;
	struct moirai_net_config c = { .transports = "tcp" };
	struct moirai_net_chan_opts o = { .elem_size = MSG, .coalesce = j->coalesce };
	struct moirai_net *net = NULL;
	struct moirai_net_listener *l = NULL;
	struct moirai_net_chan *ch = NULL;
	unsigned char buf[32][MSG];
	long got = 0;
	int rc;

	bench_pin(j->cpu);
	if ((rc = moirai_net_create(&c, &net)) ||
	    (rc = moirai_net_listen(net, "tcp://127.0.0.1:0", &o, &l))) {
		j->rc = rc;
		snprintf(j->err, sizeof(j->err), "%s", moirai_last_error());
		atomic_store(&j->port, -1);
		goto out;
	}
	atomic_store(&j->port, moirai_net_listener_port(l));
	if ((rc = moirai_net_accept(l, 30 * SEC, &ch))) {
		j->rc = rc;
		goto out;
	}
	while (got < j->n) {
		rc = moirai_net_recv(ch, buf, 32, 30 * SEC);
		if (rc <= 0) {
			j->rc = rc ? rc : -EIO;
			goto out;
		}
		got += rc;
		if (j->mode == M_LAT && moirai_net_send(ch, buf, 1, 30 * SEC) != 1) {
			j->rc = -EIO;
			goto out;
		}
	}
	if (j->mode == M_TPUT && moirai_net_send(ch, buf, 1, 30 * SEC) != 1)
		j->rc = -EIO;
	/* Wait for the client's close (end of stream). */
	moirai_net_recv(ch, buf, 32, 30 * SEC);
out:
	moirai_net_chan_destroy(ch);
	moirai_net_listener_destroy(l);
	moirai_net_destroy(net);
	return NULL;
}

static int run_moirai(const struct bench_ctx *ctx, struct bench_result *out, enum mode mode,
		      unsigned burst, unsigned coalesce)
{
	struct job j = { .mode = mode, .burst = burst, .cpu = ctx->cpu_b, .coalesce = coalesce };
	struct moirai_net_config c = { .transports = "tcp" };
	struct moirai_net_chan_opts o = { .elem_size = MSG, .coalesce = coalesce };
	struct moirai_net *net = NULL;
	struct moirai_net_chan *ch = NULL;
	struct moirai_hist *h = NULL;
	unsigned char buf[32][MSG];
	char addr[64];
	pthread_t t;
	uint64_t sum = 0, t0;
	int rc;

	j.n = bench_iters(ctx, mode == M_LAT ? LAT_ROUNDS : TPUT_MSGS);
	memset(buf, 0x5a, sizeof(buf));
	bench_pin(ctx->cpu_a);
	if ((rc = moirai_net_create(&c, &net))) {
		snprintf(out->note, sizeof(out->note), "%s", moirai_last_error());
		return rc == -ENODEV ? -ENOTSUP : rc;
	}
	if (pthread_create(&t, NULL, m_server, &j)) {
		moirai_net_destroy(net);
		return -EAGAIN;
	}
	while (atomic_load(&j.port) == 0)
		usleep(100);
	if (atomic_load(&j.port) < 0) {
		rc = j.rc;
		snprintf(out->note, sizeof(out->note), "%s", j.err);
		goto out;
	}
	snprintf(addr, sizeof(addr), "tcp://127.0.0.1:%d", atomic_load(&j.port));
	if ((rc = moirai_net_connect(net, addr, &o, 30 * SEC, &ch))) {
		snprintf(out->note, sizeof(out->note), "%s", moirai_last_error());
		goto out;
	}
	if (mode == M_LAT) {
		h = calloc(1, sizeof(*h));
		if (!h) {
			rc = -ENOMEM;
			goto out;
		}
		for (long i = 0; i < j.n; i++) {
			t0 = moirai_now_ns();
			if (moirai_net_send(ch, buf, 1, 30 * SEC) != 1 ||
			    moirai_net_recv(ch, buf, 1, 30 * SEC) != 1) {
				rc = -EIO;
				goto out;
			}
			uint64_t dt = moirai_now_ns() - t0;

			moirai_hist_record(h, dt);
			sum += dt;
		}
		lat_finish(h, sum, j.n, out);
	} else {
		t0 = moirai_now_ns();
		for (long sent = 0; sent < j.n;) {
			unsigned b = j.n - sent < burst ? (unsigned)(j.n - sent) : burst;

			rc = moirai_net_send(ch, buf, b, 30 * SEC);
			if (rc <= 0) {
				rc = rc ? rc : -EIO;
				goto out;
			}
			sent += rc;
		}
		if (moirai_net_recv(ch, buf, 1, 30 * SEC) != 1) {
			rc = -EIO;
			goto out;
		}
		out->ns_per_op = (double)(moirai_now_ns() - t0) / (double)j.n;
		out->ops = j.n;
	}
	rc = 0;
out:
	moirai_net_chan_destroy(ch); /* closes: the server ends */
	pthread_join(t, NULL);
	moirai_net_destroy(net);
	free(h);
	if (!rc && j.rc) {
		snprintf(out->note, sizeof(out->note), "server side: %d", j.rc);
		rc = -EIO;
	}
	return rc;
}

/* ---- a TCP socket pair ------------------------------------------------ */

/* A read that waits as a moirai receive does: spin for MOIRAI_SPIN_NS,
 * then sleep in poll(). */
static ssize_t spin_read(int fd, void *p, size_t len)
{
	uint64_t start = moirai_now_ns(), spin = (uint64_t)moirai_option_get(MOIRAI_OPT_SPIN_NS);

	for (;;) {
		ssize_t k = recv(fd, p, len, MSG_DONTWAIT);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (k >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return k;
		if (moirai_now_ns() - start < spin)
			continue;
		if (poll(&pfd, 1, 30000) <= 0)
			return -1;
	}
}

static int full_io(int fd, void *p, size_t len, bool wr)
{
	unsigned char *b = p;

	while (len) {
		ssize_t k = wr ? write(fd, b, len) : spin_read(fd, b, len);

		if (k <= 0)
			return -EIO;
		b += k;
		len -= (size_t)k;
	}
	return 0;
}

static void *s_server(void *arg)
{
	struct job *j = arg;
	unsigned char buf[32 * MSG];
	long got = 0;

	bench_pin(j->cpu);
	if (j->mode == M_LAT) {
		for (; got < j->n; got++)
			if (full_io(j->fd, buf, MSG, false) || full_io(j->fd, buf, MSG, true)) {
				j->rc = -EIO;
				return NULL;
			}
	} else {
		size_t want = (size_t)j->n * MSG, have = 0;

		while (have < want) {
			ssize_t k = spin_read(j->fd, buf, sizeof(buf));

			if (k <= 0) {
				j->rc = -EIO;
				return NULL;
			}
			have += (size_t)k;
		}
		if (full_io(j->fd, buf, MSG, true))
			j->rc = -EIO;
	}
	return NULL;
}

static int tcp_pair(int *a, int *b)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	*a = *b = -1;
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &len))
		goto fail;
	*a = socket(AF_INET, SOCK_STREAM, 0);
	if (*a < 0 || connect(*a, (struct sockaddr *)&sa, sizeof(sa)))
		goto fail;
	*b = accept(l, NULL, NULL);
	if (*b < 0)
		goto fail;
	setsockopt(*a, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(*b, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	close(l);
	return 0;
fail:
	if (l >= 0)
		close(l);
	if (*a >= 0)
		close(*a);
	return -errno;
}

static int run_socket(const struct bench_ctx *ctx, struct bench_result *out, enum mode mode,
		      unsigned burst)
{
	struct job j = { .mode = mode, .burst = burst, .cpu = ctx->cpu_b };
	unsigned char buf[32 * MSG];
	struct moirai_hist *h = NULL;
	uint64_t sum = 0, t0;
	pthread_t t;
	int a, rc;

	j.n = bench_iters(ctx, mode == M_LAT ? LAT_ROUNDS : TPUT_MSGS);
	memset(buf, 0x5a, sizeof(buf));
	if ((rc = tcp_pair(&a, &j.fd)))
		return rc;
	bench_pin(ctx->cpu_a);
	if (pthread_create(&t, NULL, s_server, &j)) {
		close(a);
		close(j.fd);
		return -EAGAIN;
	}
	if (mode == M_LAT) {
		h = calloc(1, sizeof(*h));
		for (long i = 0; h && i < j.n; i++) {
			t0 = moirai_now_ns();
			if (full_io(a, buf, MSG, true) || full_io(a, buf, MSG, false)) {
				rc = -EIO;
				break;
			}
			uint64_t dt = moirai_now_ns() - t0;

			moirai_hist_record(h, dt);
			sum += dt;
		}
		if (!h)
			rc = -ENOMEM;
		else if (!rc)
			lat_finish(h, sum, j.n, out);
	} else {
		t0 = moirai_now_ns();
		for (long sent = 0; !rc && sent < j.n;) {
			unsigned b = j.n - sent < burst ? (unsigned)(j.n - sent) : burst;

			rc = full_io(a, buf, (size_t)b * MSG, true);
			sent += b;
		}
		if (!rc)
			rc = full_io(a, buf, MSG, false);
		out->ns_per_op = (double)(moirai_now_ns() - t0) / (double)j.n;
		out->ops = j.n;
	}
	shutdown(a, SHUT_RDWR);
	pthread_join(t, NULL);
	close(a);
	close(j.fd);
	free(h);
	return rc ? rc : j.rc;
}

/* ---- ucx_perftest ------------------------------------------------------ */

static const char *perftest_path(void)
{
	static const char *const dirs[] = { "/usr/bin/ucx_perftest",
					    "/usr/local/bin/ucx_perftest" };

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		if (access(dirs[i], X_OK) == 0)
			return dirs[i];
	return NULL;
}

static int free_port(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sa, sizeof(sa)) &&
	    !getsockname(fd, (struct sockaddr *)&sa, &len))
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Spawn ucx_perftest with @argv, UCX_TLS=tcp; stdout to @out_fd (or null). */
static pid_t spawn(char *const argv[], int out_fd)
{
	posix_spawn_file_actions_t fa;
	static char tls[] = "UCX_TLS=tcp";
	char *env[256];
	int n = 0;
	pid_t pid;

	for (char **e = environ; *e && n < 254; e++)
		if (strncmp(*e, "UCX_TLS=", 8))
			env[n++] = *e;
	env[n++] = tls;
	env[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	if (out_fd >= 0)
		posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	else
		posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	if (posix_spawn(&pid, argv[0], &fa, NULL, argv, env))
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	return pid;
}

static int run_perftest(const struct bench_ctx *ctx, struct bench_result *out, enum mode mode,
			unsigned burst)
{
	const char *bin = perftest_path();
	char port[16], n[24], ca[16], cb[16], outst[16], line[512];
	long iters = bench_iters(ctx, mode == M_LAT ? LAT_ROUNDS : TPUT_MSGS);
	double f[8];
	int p[2], st, rc = -EIO;

	if (!bin) {
		snprintf(out->note, sizeof(out->note), "ucx_perftest not installed (ucx-utils)");
		return -ENOTSUP;
	}
	for (int attempt = 0; attempt < 3 && rc; attempt++) {
		snprintf(port, sizeof(port), "%d", free_port());
		snprintf(n, sizeof(n), "%ld", iters);
		snprintf(ca, sizeof(ca), "%d", ctx->cpu_a);
		snprintf(cb, sizeof(cb), "%d", ctx->cpu_b);
		snprintf(outst, sizeof(outst), "%u", burst);
		char *srv[] = { (char *)bin, "-p", port, "-c", cb, NULL };
		char *cli[] = { (char *)bin,
				"127.0.0.1",
				"-p",
				port,
				"-c",
				ca,
				"-t",
				mode == M_LAT ? "ucp_am_lat" : "ucp_am_bw",
				"-s",
				"64",
				"-n",
				n,
				mode == M_LAT ? NULL : "-O",
				outst,
				NULL };
		pid_t sp = spawn(srv, -1), cp;
		FILE *fp;

		if (sp < 0 || pipe(p))
			return -EIO;
		usleep(300000); /* the server's listener */
		cp = spawn(cli, p[1]);
		close(p[1]);
		fp = fdopen(p[0], "r");
		while (fp && fgets(line, sizeof(line), fp))
			if (!strncmp(line, "Final:", 6) &&
			    sscanf(line + 6, "%lf %lf %lf %lf %lf %lf %lf %lf", &f[0], &f[1], &f[2],
				   &f[3], &f[4], &f[5], &f[6], &f[7]) == 8)
				rc = 0;
		if (fp)
			fclose(fp);
		if (cp > 0)
			waitpid(cp, &st, 0);
		kill(sp, SIGKILL);
		waitpid(sp, &st, 0);
	}
	if (rc) {
		snprintf(out->note, sizeof(out->note), "ucx_perftest gave no result");
		return rc;
	}
	/* Final: iterations, latency 50%ile / average / overall (us), bandwidth
	 * average / overall (MB/s), message rate average / overall (msg/s). */
	if (mode == M_LAT) {
		out->p50_ns = f[1] * 1000;
		out->ns_per_op = f[3] * 1000;
	} else {
		out->ns_per_op = 1e9 / f[7];
	}
	out->ops = iters;
	return 0;
}

/* ---- registry ----------------------------------------------------------- */

BENCH_SUITE(net, "network channels (UCX, TCP) against ucx_perftest and a TCP socket pair")

#define NET_CASE(CASE, MODE, B)                                                           \
	static int moirai_##CASE(const struct bench_ctx *ctx, struct bench_result *out)   \
	{                                                                                 \
		return run_moirai(ctx, out, MODE, B, COALESCE);                           \
	}                                                                                 \
	BENCH_CASE("net", #CASE, "moirai", moirai_##CASE)                                 \
	static int nocoal_##CASE(const struct bench_ctx *ctx, struct bench_result *out)   \
	{                                                                                 \
		return run_moirai(ctx, out, MODE, B, 0);                                  \
	}                                                                                 \
	BENCH_CASE("net", #CASE, "moirai_nocoalesce", nocoal_##CASE)                      \
	static int perftest_##CASE(const struct bench_ctx *ctx, struct bench_result *out) \
	{                                                                                 \
		return run_perftest(ctx, out, MODE, B);                                   \
	}                                                                                 \
	BENCH_CASE("net", #CASE, "ucx_perftest", perftest_##CASE)                         \
	static int socket_##CASE(const struct bench_ctx *ctx, struct bench_result *out)   \
	{                                                                                 \
		return run_socket(ctx, out, MODE, B);                                     \
	}                                                                                 \
	BENCH_CASE("net", #CASE, "tcp_socket", socket_##CASE)

NET_CASE(lat_b1, M_LAT, 1)
NET_CASE(tput_b1, M_TPUT, 1)
NET_CASE(tput_b32, M_TPUT, 32)
