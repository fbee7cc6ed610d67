/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline: the longest-prefix-match route table.  A table is built
 * once and never changed (a multibit trie, stride 8, with leaf pushing:
 * at most four memory reads per lookup); the control thread replaces the
 * whole table and the runtime's QSBR frees the old one after a grace
 * period, so readers (process tasks) take no lock.
 */
#ifndef PL_ROUTE_H
#define PL_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A next hop. */
struct pl_nexthop {
	uint8_t mac[6]; /* destination MAC written into forwarded frames */
	uint16_t port;	/* output port (0: the TX port) */
	bool drop;	/* blackhole: packets to it are dropped (no_route) */
};

/* One route as parsed. */
struct pl_route {
	uint32_t prefix; /* host order, host bits zero */
	uint8_t len;	 /* 0..32 */
	struct pl_nexthop nh;
};

struct pl_routes;

/* Parse a route file: one route per line, "A.B.C.D/LEN MAC" or
 * "A.B.C.D/LEN drop"; '#' starts a comment, blank lines are skipped.  At
 * most 65536 routes.  Returns the count (>= 1) and a malloc'ed array in
 * @out, or -errno with "FILE:LINE: what" in @err. */
int pl_routes_parse(const char *path, struct pl_route **out, char *err, size_t errlen);

/* The default table: 0.0.0.0/0 to the TX port, next hop @mac. */
void pl_routes_default(struct pl_route *r, const uint8_t mac[6]);

/* Build an immutable table of @n routes (later duplicates of a prefix
 * win), stamped with @version.  NULL on out of memory. */
struct pl_routes *pl_routes_build(const struct pl_route *r, int n, uint64_t version);

/* Longest-prefix match of @dst (host order): the next hop or NULL. */
const struct pl_nexthop *pl_routes_lookup(const struct pl_routes *t, uint32_t dst);

uint64_t pl_routes_version(const struct pl_routes *t);
size_t pl_routes_bytes(const struct pl_routes *t);
void pl_routes_free(struct pl_routes *t);

#endif /* PL_ROUTE_H */
