/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The route table (route.h): a stride-8 multibit trie with controlled
 * prefix expansion.  A node is 256 entries; an entry is 0 (no route), a
 * next-hop index + 1, or a child node index with CHILD set.  Inserting a
 * prefix of length L writes the 2^(8k - L) entries it covers at its level
 * wherever no longer prefix was written, and pushes into child nodes
 * below them; a new child starts as a copy of the entry it replaces (leaf
 * pushing), so a lookup stops at the first entry that is not a child.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <moirai.h>

#include "route.h"

#define CHILD	   0x80000000u
#define MAX_ROUTES 65536

struct node {
	uint32_t e[256];
	uint8_t len[256]; /* prefix length behind e[i] (build only) */
};

struct pl_routes {
	uint64_t version;
	struct node *nodes;
	unsigned nnodes, cap;
	struct pl_nexthop *nh;
	unsigned nnh;
};

const struct pl_nexthop *pl_routes_lookup(const struct pl_routes *t, uint32_t dst)
{
	uint32_t idx = 0;

	for (int level = 0; level < 4; level++) {
		uint32_t e = t->nodes[idx].e[(dst >> (24 - 8 * level)) & 0xffu];

		if (!(e & CHILD))
			return e ? &t->nh[e - 1] : NULL;
		idx = e & ~CHILD;
	}
	return NULL; /* unreachable: level 3 holds no children */
}

static int new_node(struct pl_routes *t, uint32_t fill, uint8_t len)
{
	if (t->nnodes == t->cap) {
		unsigned cap = t->cap ? t->cap * 2 : 16;
		struct node *n = realloc(t->nodes, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		t->nodes = n;
		t->cap = cap;
	}
	for (int i = 0; i < 256; i++) {
		t->nodes[t->nnodes].e[i] = fill;
		t->nodes[t->nnodes].len[i] = len;
	}
	return (int)t->nnodes++;
}

/* Write next hop @v (index + 1) of a length-@len prefix over entry @i of
 * node @n, and everything below it that no longer prefix owns. */
static void set_entry(struct pl_routes *t, unsigned n, unsigned i, uint32_t v, uint8_t len)
{
	uint32_t e = t->nodes[n].e[i];

	if (e & CHILD) {
		for (unsigned j = 0; j < 256; j++)
			set_entry(t, e & ~CHILD, j, v, len);
		return;
	}
	if (t->nodes[n].len[i] <= len) {
		t->nodes[n].e[i] = v;
		t->nodes[n].len[i] = len;
	}
}

static int insert(struct pl_routes *t, uint32_t prefix, uint8_t len, uint32_t v)
{
	int level = len == 0 ? 0 : (len - 1) / 8;
	unsigned n = 0;

	for (int l = 0; l < level; l++) {
		unsigned i = (prefix >> (24 - 8 * l)) & 0xffu;
		uint32_t e = t->nodes[n].e[i];

		if (!(e & CHILD)) {
			int c = new_node(t, e, t->nodes[n].len[i]);

			if (c < 0)
				return c;
			t->nodes[n].e[i] = CHILD | (uint32_t)c;
			e = t->nodes[n].e[i];
		}
		n = e & ~CHILD;
	}
	unsigned span = 1u << (8 * (level + 1) - len);
	unsigned start = ((prefix >> (24 - 8 * level)) & 0xffu) & ~(span - 1);

	for (unsigned i = start; i < start + span; i++)
		set_entry(t, n, i, v, len);
	return 0;
}

struct pl_routes *pl_routes_build(const struct pl_route *r, int n, uint64_t version)
{
	struct pl_routes *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->version = version;
	t->nh = calloc(n > 0 ? (size_t)n : 1, sizeof(*t->nh));
	if (!t->nh || new_node(t, 0, 0) < 0)
		goto err;
	for (int i = 0; i < n; i++) {
		t->nh[t->nnh++] = r[i].nh;
		/* Equal lengths: the later route wins (len <= len). */
		if (insert(t, r[i].prefix, r[i].len, t->nnh) < 0)
			goto err;
	}
	return t;
err:
	pl_routes_free(t);
	return NULL;
}

uint64_t pl_routes_version(const struct pl_routes *t)
{
	return t->version;
}

size_t pl_routes_bytes(const struct pl_routes *t)
{
	return sizeof(*t) + t->cap * sizeof(struct node) + t->nnh * sizeof(struct pl_nexthop);
}

void pl_routes_free(struct pl_routes *t)
{
	if (!t)
		return;
	free(t->nodes);
	free(t->nh);
	free(t);
}

void pl_routes_default(struct pl_route *r, const uint8_t mac[6])
{
	*r = (struct pl_route){ .prefix = 0, .len = 0 };
	memcpy(r->nh.mac, mac, 6);
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5],
		   &tail) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

static int parse_prefix(const char *s, uint32_t *prefix, uint8_t *len)
{
	unsigned a, b, c, d, l;
	char tail;

	if (sscanf(s, "%3u.%3u.%3u.%3u/%2u%c", &a, &b, &c, &d, &l, &tail) != 5 || a > 255 ||
	    b > 255 || c > 255 || d > 255 || l > 32)
		return -EINVAL;
	*prefix = a << 24 | b << 16 | c << 8 | d;
	*len = (uint8_t)l;
	if (l < 32 && (*prefix & (0xffffffffu >> l)))
		return -ERANGE; /* host bits set */
	return 0;
}

int pl_routes_parse(const char *path, struct pl_route **out, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	struct pl_route *r = NULL;
	int n = 0, cap = 0, lineno = 0, rc;
	char line[512];

	if (!f) {
		rc = -errno;
		snprintf(err, errlen, "cannot open route file '%s': %s", path, strerror(errno));
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		char pfx[64], nh[64], extra[8];
		char *hash = strchr(line, '#');
		int k;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(err, errlen, "%s:%d: line longer than %zu bytes", path, lineno,
				 sizeof(line) - 2);
			goto bad;
		}
		if (hash)
			*hash = '\0';
		k = sscanf(line, "%63s %63s %7s", pfx, nh, extra);
		if (k <= 0)
			continue;
		if (k != 2) {
			snprintf(err, errlen, "%s:%d: want 'A.B.C.D/LEN MAC' or 'A.B.C.D/LEN drop'",
				 path, lineno);
			goto bad;
		}
		if (n == MAX_ROUTES) {
			snprintf(err, errlen, "%s:%d: more than %d routes", path, lineno,
				 MAX_ROUTES);
			goto bad;
		}
		if (n == cap) {
			int ncap = cap ? cap * 2 : 16;
			struct pl_route *nr = realloc(r, (size_t)ncap * sizeof(*nr));

			if (!nr) {
				snprintf(err, errlen, "%s: out of memory", path);
				fclose(f);
				free(r);
				return -ENOMEM;
			}
			r = nr;
			cap = ncap;
		}
		memset(&r[n], 0, sizeof(r[n]));
		rc = parse_prefix(pfx, &r[n].prefix, &r[n].len);
		if (rc) {
			snprintf(err, errlen, "%s:%d: bad prefix '%s' (%s)", path, lineno, pfx,
				 rc == -ERANGE ? "host bits set" : "want A.B.C.D/LEN, LEN 0..32");
			goto bad;
		}
		if (strcmp(nh, "drop") == 0)
			r[n].nh.drop = true;
		else if (parse_mac(nh, r[n].nh.mac)) {
			snprintf(err, errlen, "%s:%d: bad next hop '%s' (want a MAC or 'drop')",
				 path, lineno, nh);
			goto bad;
		}
		n++;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "%s: read error", path);
		goto bad;
	}
	fclose(f);
	if (n == 0) {
		snprintf(err, errlen, "%s: no routes", path);
		free(r);
		return -EINVAL;
	}
	*out = r;
	return n;
bad:
	fclose(f);
	free(r);
	return -EINVAL;
}
