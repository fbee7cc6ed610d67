/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline's packet parser and route table under fuzzing.
 *
 * Parser: for many seeds, frames from the pipeline's own generator are
 * mutated (byte flips, interesting values, the length fields, truncation,
 * extension, with the checksums repaired half of the time so the deeper
 * checks are reached) and parsed from a buffer of exactly their length
 * (ASan catches any read past it).  Every result must be PL_PARSE_OK or a
 * parser drop reason; an accepted frame must have consistent offsets and
 * valid checksums, and after the forwarding rewrite it must parse again
 * with TTL - 1 (which checks the incremental checksum update); parsing is
 * deterministic.  A failing input is saved under $MOIRAI_BUILD/fuzz-fail/
 * with its seed, and belongs in tests/pipeline/corpus/ (named
 * EXPECTED-*.bin, EXPECTED "ok" or the drop reason), which every run
 * replays.
 *
 * Routes: random route sets against a linear longest-prefix scan.
 *
 * Knobs: MOIRAI_FUZZ_SEED (first seed, default 1), MOIRAI_FUZZ_COUNT
 * (seeds, default 1000 x MOIRAI_TEST_SCALE).
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

#include "../../tools/moirai-pipeline/gen.c"
#include "../../tools/moirai-pipeline/packet.c"
#include "../../tools/moirai-pipeline/route.c"

/* What gen.c's RX side needs from the pipeline; the fuzz test uses only
 * pl_gen_frame(). */
struct pl_pkt *pl_pkt_alloc(struct pl_bufs *bufs)
{
	(void)bufs;
	return NULL;
}

void pl_port_drop(struct pl_port *port, enum pl_drop reason, uint64_t n, uint64_t bytes)
{
	(void)port;
	(void)reason;
	(void)n;
	(void)bytes;
}

static const char *const reason_names[PL_DROP_REASONS] = {
	"no_buffer",	    "oversize",	     "queue_full",    "truncated",
	"not_ipv4",	    "bad_ip_header", "bad_ip_length", "bad_ip_checksum",
	"bad_ip_options",   "fragment",	     "not_udp",	      "bad_udp_length",
	"bad_udp_checksum", "ttl_expired",   "no_route",      "tx_full",
};

static uint64_t rng_state;

static uint64_t rnd(void)
{
	return splitmix(&rng_state);
}

static bool parser_reason(int r)
{
	switch (r) {
	case PL_DROP_TRUNCATED:
	case PL_DROP_NOT_IPV4:
	case PL_DROP_BAD_IP_HEADER:
	case PL_DROP_BAD_IP_LENGTH:
	case PL_DROP_BAD_IP_CHECKSUM:
	case PL_DROP_BAD_IP_OPTIONS:
	case PL_DROP_FRAGMENT:
	case PL_DROP_NOT_UDP:
	case PL_DROP_BAD_UDP_LENGTH:
	case PL_DROP_BAD_UDP_CHECKSUM: return true;
	default: return false;
	}
}

static const char *result_name(int r)
{
	return r == PL_PARSE_OK ? "ok" : (unsigned)r < PL_DROP_REASONS ? reason_names[r] : "?";
}

/* Check one input; NULL when it behaves, else what is wrong. */
static const char *check_frame(const uint8_t *in, uint32_t len, int *result)
{
	uint8_t *f = malloc(len ? len : 1); /* exactly len: ASan sees overreads */
	struct pl_hdrs h, h2;
	uint8_t dscp;
	uint32_t dst;
	uint16_t dport;
	const char *why = NULL;
	int r, r2;

	if (!f)
		return "out of memory";
	memcpy(f, in, len);
	r = pl_parse(f, len, &h);
	*result = r;
	(void)pl_peek(f, len, &dscp, &dst, &dport);
	r2 = pl_parse(f, len, &h2);
	if (r2 != r) {
		why = "not deterministic";
		goto out;
	}
	if (r != PL_PARSE_OK) {
		if (!parser_reason(r))
			why = "result is neither ok nor a parser drop reason";
		goto out;
	}
	if (h.ihl < 20 || h.ihl > 60 || h.l3 != PL_ETH_HLEN || h.l4 != PL_ETH_HLEN + h.ihl ||
	    PL_ETH_HLEN + h.ip_len > len || h.ip_len < h.ihl + 8 || h.udp_len < 8 ||
	    h.ihl + h.udp_len > h.ip_len || h.options != (h.ihl > 20)) {
		why = "accepted with inconsistent offsets";
		goto out;
	}
	if (pl_csum_fold(pl_csum_add(0, f + h.l3, h.ihl)) != 0xffff) {
		why = "accepted with a bad IPv4 checksum";
		goto out;
	}
	if (h.ttl > 1) {
		static const uint8_t mac1[6] = { 2, 0, 0, 0, 0, 1 }, mac2[6] = { 2, 0, 0, 0, 0, 2 };

		pl_rewrite(f, &h, mac1, mac2);
		if (pl_parse(f, len, &h2) != PL_PARSE_OK) {
			why = "the rewritten frame does not parse (incremental checksum?)";
			goto out;
		}
		if (h2.ttl != h.ttl - 1 || h2.src != h.src || h2.dst != h.dst ||
		    h2.sport != h.sport || h2.dport != h.dport || memcmp(f, mac1, 6) ||
		    memcmp(f + 6, mac2, 6)) {
			why = "the rewrite changed the wrong fields";
			goto out;
		}
	}
out:
	free(f);
	return why;
}

static int save_failure(const uint8_t *f, uint32_t len, long seed, int k, const char *why)
{
	const char *b = getenv("MOIRAI_BUILD");
	char dir[300], path[400];
	FILE *out;

	snprintf(dir, sizeof(dir), "%s/fuzz-fail", b && *b ? b : "build");
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/pl-seed%ld-%d.bin", dir, seed, k);
	out = fopen(path, "wb");
	if (out) {
		fwrite(f, 1, len, out);
		fclose(out);
	}
	print_message("FUZZ FAILURE: seed %ld input %d: %s; kept as %s (reproduce: "
		      "MOIRAI_FUZZ_SEED=%ld MOIRAI_FUZZ_COUNT=1; add it to tests/pipeline/corpus/ "
		      "as EXPECTED-NAME.bin)\n",
		      seed, k, why, path, seed);
	return 1;
}

static void fix_checksums(uint8_t *f, uint32_t len)
{
	uint32_t ihl, ip_len, udp_len;

	if (len < PL_ETH_HLEN + 20)
		return;
	ihl = (f[PL_ETH_HLEN] & 0xfu) * 4;
	if (ihl < 20 || PL_ETH_HLEN + ihl > len)
		return;
	f[PL_ETH_HLEN + 10] = f[PL_ETH_HLEN + 11] = 0;
	wr16(f + PL_ETH_HLEN + 10, pl_ip_csum(f + PL_ETH_HLEN, ihl));
	ip_len = rd16(f + PL_ETH_HLEN + 2);
	if (ip_len < ihl + 8 || PL_ETH_HLEN + ip_len > len)
		return;
	udp_len = rd16(f + PL_ETH_HLEN + ihl + 4);
	if (udp_len < 8 || udp_len > ip_len - ihl || (rnd() & 3) == 0)
		return;
	wr16(f + PL_ETH_HLEN + ihl + 6, 0);
	wr16(f + PL_ETH_HLEN + ihl + 6,
	     pl_udp_csum(rd32(f + PL_ETH_HLEN + 12), rd32(f + PL_ETH_HLEN + 16),
			 f + PL_ETH_HLEN + ihl, udp_len));
}

static uint32_t mutate(uint8_t *f, uint32_t len)
{
	static const uint8_t interesting[] = { 0,    1,	   2,	 4,    5,    6,	   0x0f, 0x40,
					       0x44, 0x45, 0x46, 0x4f, 0x7f, 0x80, 0x94, 0xff };
	int rounds = 1 + (int)(rnd() % 4);
	static const uint32_t fields[] = { 12, 14, 16, 17, 20, 21, 22, 23, 34, 35, 36, 38, 39 };

	for (int i = 0; i < rounds; i++) {
		uint64_t r = rnd();
		uint32_t at = len ? (uint32_t)(r >> 8) % len : 0;

		switch (r % 8) {
		case 0: /* flip a bit */
			if (len)
				f[at] ^= (uint8_t)(1u << (r >> 40) % 8);
			break;
		case 1: /* an interesting byte */
			if (len)
				f[at] = interesting[(r >> 40) % sizeof(interesting)];
			break;
		case 2: { /* a header field: EtherType, IHL, lengths, flags, ports */
			uint32_t fa = fields[(r >> 8) % (sizeof(fields) / sizeof(fields[0]))];

			if (fa + 1 < len) {
				uint16_t v = (r >> 32) & 1 ? (uint16_t)(r >> 40)
							   : (uint16_t)(rd16(f + fa) +
									(int)((r >> 40) % 9) - 4);
				wr16(f + fa, v);
			}
			break;
		}
		case 3: /* truncate */ len = len ? (uint32_t)(r >> 8) % (len + 1) : 0; break;
		case 4: /* extend with garbage */
			for (uint32_t n = (uint32_t)(r >> 8) % 64; n && len < PL_PKT_DATA; n--)
				f[len++] = (uint8_t)rnd();
			break;
		case 5: /* the IHL nibble */
			if (len > PL_ETH_HLEN)
				f[PL_ETH_HLEN] = (uint8_t)(0x40 | ((r >> 8) & 0xf));
			break;
		case 6: /* random option bytes */
			for (uint32_t k = 34; k < 38 && k < len; k++)
				f[k] = (uint8_t)(r >> (8 * (k - 30)));
			break;
		default: /* all random */
			if ((r >> 8) % 16 == 0)
				for (uint32_t k = 0; k < len; k++)
					f[k] = (uint8_t)rnd();
			break;
		}
	}
	if (rnd() & 1)
		fix_checksums(f, len);
	return len;
}

static long env_long(const char *name, long def)
{
	const char *s = getenv(name);

	return s && *s ? strtol(s, NULL, 10) : def;
}

static void test_generated_frames_parse(void **state)
{
	struct pl_port_conf c = { .seed = 3,
				  .rate_pps = 1,
				  .critical_share = 0.2,
				  .slow_share = 0.3,
				  .flows = 16,
				  .critical_flows = 4 };
	struct pl_gen g;
	uint8_t f[PL_PKT_DATA];
	int slow = 0;

	(void)state;
	pl_gen_init(&g, &c);
	for (uint64_t i = 0; i < 2000; i++) {
		uint32_t flow;
		bool crit;
		uint32_t len = pl_gen_frame(&g, i, f, &flow, &crit);
		struct pl_hdrs h;
		int r;

		assert_int_equal(pl_parse(f, len, &h), PL_PARSE_OK);
		assert_int_equal(h.ttl, 64);
		assert_int_equal(h.dscp == PL_DSCP_EF, crit);
		slow += h.options;
		assert_null(check_frame(f, len, &r));
	}
	assert_true(slow > 400 && slow < 800); /* 30% of 2000 */
}

static void test_fuzz_parser(void **state)
{
	long first = env_long("MOIRAI_FUZZ_SEED", 1);
	long count = env_long("MOIRAI_FUZZ_COUNT", 1000 * test_scale());
	long failures = 0, inputs = 0, seen[PL_DROP_REASONS + 1] = { 0 };

	(void)state;
	for (long seed = first; seed < first + count; seed++) {
		struct pl_port_conf c = { .seed = (uint64_t)seed,
					  .rate_pps = 1,
					  .critical_share = 0.1,
					  .slow_share = 0.3,
					  .flows = 64,
					  .critical_flows = 4 };
		struct pl_gen g;

		pl_gen_init(&g, &c);
		rng_state = (uint64_t)seed * 0x2545f4914f6cdd1dull;
		for (int k = 0; k < 64; k++) {
			uint8_t f[PL_PKT_DATA];
			uint32_t flow, len;
			bool crit;
			const char *why;
			int r;

			len = pl_gen_frame(&g, (uint64_t)k, f, &flow, &crit);
			len = mutate(f, len);
			why = check_frame(f, len, &r);
			inputs++;
			seen[r == PL_PARSE_OK ? PL_DROP_REASONS : r]++;
			if (why)
				failures += save_failure(f, len, seed, k, why);
		}
	}
	print_message("fuzz: %ld seeds, %ld inputs, %ld failures; accepted %ld\n", count, inputs,
		      failures, seen[PL_DROP_REASONS]);
	assert_int_equal(failures, 0);
	/* The mutations reach every check of the parser (at this count). */
	if (count >= 200)
		for (int r = 0; r < PL_DROP_REASONS; r++)
			if (parser_reason(r) && !seen[r])
				fail_msg("no fuzz input was rejected as %s", reason_names[r]);
}

/* Every input kept in the corpus, checked and compared with its name. */
static void test_corpus(void **state)
{
	const char *dirs[] = { "tests/pipeline/corpus", "../tests/pipeline/corpus" };
	const char *dir = NULL;
	DIR *d = NULL;
	struct dirent *e;
	int n = 0, failures = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !d; i++)
		if ((d = opendir(dirs[i])))
			dir = dirs[i];
	assert_non_null(d);
	while ((e = readdir(d))) {
		char path[1024];
		uint8_t f[PL_PKT_DATA];
		size_t len, name_len;
		const char *dash = strchr(e->d_name, '-'), *why;
		FILE *in;
		int r;

		if (!strstr(e->d_name, ".bin") || !dash)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		in = fopen(path, "rb");
		assert_non_null(in);
		len = fread(f, 1, sizeof(f), in);
		fclose(in);
		why = check_frame(f, (uint32_t)len, &r);
		name_len = (size_t)(dash - e->d_name);
		if (!why && (strlen(result_name(r)) != name_len ||
			     strncmp(result_name(r), e->d_name, name_len)))
			why = "result differs from the one in its name";
		if (why) {
			print_message("corpus %s: %s (parser says %s)\n", e->d_name, why,
				      result_name(r));
			failures++;
		}
		n++;
	}
	closedir(d);
	print_message("corpus: %d inputs replayed, %d failures\n", n, failures);
	assert_true(n >= 10);
	assert_int_equal(failures, 0);
}

/* Route table against a linear scan for the longest matching prefix. */
static void test_routes_fuzz(void **state)
{
	long count = env_long("MOIRAI_FUZZ_COUNT", 1000 * test_scale()) / 4;

	(void)state;
	for (long seed = 1; seed <= count; seed++) {
		struct pl_route r[64];
		int n = 1 + (int)(splitmix(&(uint64_t){ (uint64_t)seed }) % 64);
		struct pl_routes *t;

		rng_state = (uint64_t)seed;
		for (int i = 0; i < n; i++) {
			uint8_t len = (uint8_t)(rnd() % 33);
			uint32_t p = (uint32_t)rnd() & 0xff00ffffu; /* share some prefixes */

			if (rnd() & 1)
				p = (p & 0x00ffffffu) | 0x0a000000u;
			r[i] = (struct pl_route){ .prefix =
							  len ? p & (0xffffffffu << (32 - len)) : 0,
						  .len = len };
			r[i].nh.mac[5] = (uint8_t)i;
			r[i].nh.drop = rnd() % 8 == 0;
		}
		t = pl_routes_build(r, n, (uint64_t)seed);
		assert_non_null(t);
		for (int q = 0; q < 256; q++) {
			uint32_t dst =
				q < 64 ? r[q % n].prefix | ((uint32_t)rnd() >> r[q % n].len % 32)
				       : (uint32_t)rnd();
			int best = -1;
			const struct pl_nexthop *nh;

			if (q % 4 == 0)
				dst = (dst & 0x00ffffffu) | 0x0a000000u;
			for (int i = 0; i < n; i++) {
				uint32_t mask = r[i].len ? 0xffffffffu << (32 - r[i].len) : 0;

				if ((dst & mask) == r[i].prefix &&
				    (best < 0 || r[i].len >= r[best].len))
					best = i;
			}
			nh = pl_routes_lookup(t, dst);
			if (best < 0) {
				if (nh)
					fail_msg("seed %ld: %08x routed, want no route", seed, dst);
			} else if (!nh || nh->mac[5] != (uint8_t)best ||
				   nh->drop != r[best].nh.drop) {
				fail_msg("seed %ld: %08x -> route %d, want %d", seed, dst,
					 nh ? nh->mac[5] : -1, best);
			}
		}
		pl_routes_free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generated_frames_parse),
		cmocka_unit_test(test_corpus),
		cmocka_unit_test(test_fuzz_parser),
		cmocka_unit_test(test_routes_fuzz),
	};

	return cmocka_run_group_tests_name("pl_fuzz", tests, NULL, NULL);
}
