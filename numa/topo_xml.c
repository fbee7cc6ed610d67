/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * The gate in front of hwloc's XML importer.  hwloc 2.9 trusts its input:
 * an object without complete_cpuset, a duplicated attribute, a NULL set
 * dereferenced while checking sibling order, an unsigned overflow in a
 * distance matrix size all crash it inside hwloc_topology_load, with the
 * minimal parser and with libxml2 alike (its own FIXME says it never checks
 * that sets nest).  So moirai reads the file once, checks it here, and hands
 * hwloc the same bytes (never the path: the file cannot change in between).
 *
 * What is accepted is the format hwloc's own v2 exporter writes, and no
 * more, so that both of hwloc's parsers read it the same way:
 *   - syntax: an optional <?xml?> line and <!DOCTYPE topology SYSTEM "..">
 *     line, then <topology version="2.N">; elements only (no comments,
 *     CDATA, processing instructions or stray text); attributes name="value"
 *     separated by spaces, each at most once; only the seven escapes the
 *     minimal parser knows; valid UTF-8; no raw '<', '>' or control
 *     characters in values;
 *   - schema: the elements and attributes of hwloc2.dtd in their places,
 *     typed values (decimal numbers without sign or leading zeros, cpuset
 *     strings without the infinite prefix, PCI ids), the type attribute
 *     first;
 *   - structure: one Machine root; every CPU-side and memory object has
 *     all four sets, I/O and Misc objects none; sets nest in their parent's,
 *     complete sets contain the plain ones, CPU siblings are disjoint and in
 *     cpuset order; no Core in a Core (and likewise for every level that
 *     cannot nest); a PU's set is its own os_index, a NUMA node's nodeset is
 *     its own os_index, both unique; gp_index unique;
 *   - size: file, depth, objects, children per object, PUs, NUMA nodes and
 *     distance matrices are capped (numa_int.h), so hwloc's superlinear
 *     insertion cannot turn a small file into a long hang.
 * Every rejection names the line and what is wrong.  The checker itself is
 * bounded: one pass, recursion at most MOIRAI__XML_MAX_DEPTH deep, no
 * allocation proportional to anything but the object count.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"
#include "numa_int.h"

#define CPU_WORDS  (MOIRAI__TOPO_MAX_CPU_INDEX / 64)
#define NODE_WORDS (MOIRAI_TOPO_MAX_NODES / 64)
#define MAX_ATTRS  48

enum kind { K_NORMAL, K_MEMORY, K_IO, K_MISC };

struct type_info {
	const char *name;
	enum kind kind;
	bool nests; /* may contain an object of its own type */
};

/* hwloc 2.9's canonical type names, as its exporter writes them. */
static const struct type_info types[] = {
	{ "Machine", K_NORMAL, false },	 { "Package", K_NORMAL, false },
	{ "Die", K_NORMAL, false },	 { "Core", K_NORMAL, false },
	{ "PU", K_NORMAL, false },	 { "Group", K_NORMAL, true },
	{ "L1Cache", K_NORMAL, false },	 { "L2Cache", K_NORMAL, false },
	{ "L3Cache", K_NORMAL, false },	 { "L4Cache", K_NORMAL, false },
	{ "L5Cache", K_NORMAL, false },	 { "L1iCache", K_NORMAL, false },
	{ "L2iCache", K_NORMAL, false }, { "L3iCache", K_NORMAL, false },
	{ "NUMANode", K_MEMORY, false }, { "MemCache", K_MEMORY, true },
	{ "Bridge", K_IO, true },	 { "PCIDev", K_IO, false },
	{ "OSDev", K_IO, false },	 { "Misc", K_MISC, true },
};

enum { T_MACHINE = 0, T_PU = 4, T_NUMANODE = 14, T_MEMCACHE = 15 };

struct span {
	const char *s;
	size_t n;
};

struct attr {
	struct span name, val;
};

struct tag {
	struct span name;
	struct attr a[MAX_ATTRS];
	int na;
	bool empty; /* <x/> */
	int line;
};

struct frame {
	int type;
	bool has_sets;
	uint64_t cpuset[CPU_WORDS], complete[CPU_WORDS], kids[CPU_WORDS];
	uint64_t nodeset[NODE_WORDS], cnodeset[NODE_WORDS];
	int last_first; /* first bit of the previous CPU-side child, -1 none */
	int normal_kids;
};

struct xv {
	const char *path;
	const char *p, *end;
	int line;
	int depth;
	int objects, pus, nodes, dist_objs_max;
	struct frame *stack;
	uint64_t pu_seen[CPU_WORDS], node_seen[NODE_WORDS];
	uint64_t *gp;
	int ngp;
	char msg[200];
	int msg_line;
};

/* Record the first problem; every caller then unwinds with -1. */
__attribute__((format(printf, 3, 4))) static int fail(struct xv *v, int line, const char *fmt, ...)
{
	va_list ap;

	if (v->msg[0])
		return -1;
	va_start(ap, fmt);
	vsnprintf(v->msg, sizeof(v->msg), fmt, ap);
	va_end(ap);
	v->msg_line = line;
	return -1;
}

static bool span_is(struct span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.n == n && !memcmp(s.s, lit, n);
}

/* Names and values in messages: printable, and short. */
static const char *shown(struct span s, char *buf, size_t len)
{
	size_t k = 0;

	for (size_t i = 0; i < s.n && k + 4 < len; i++)
		buf[k++] = (s.s[i] >= 0x20 && s.s[i] < 0x7f) ? s.s[i] : '?';
	if (s.n > len - 4 && k + 3 < len) {
		buf[k++] = '.';
		buf[k++] = '.';
	}
	buf[k] = '\0';
	return buf;
}

/* ---- bitmaps ------------------------------------------------------- */

static void bm_set(uint64_t *w, int bit)
{
	w[bit / 64] |= 1ULL << (bit % 64);
}

static bool bm_test(const uint64_t *w, int bit)
{
	return (w[bit / 64] >> (bit % 64)) & 1;
}

static bool bm_subset(const uint64_t *a, const uint64_t *b, int words)
{
	for (int i = 0; i < words; i++)
		if (a[i] & ~b[i])
			return false;
	return true;
}

static bool bm_intersects(const uint64_t *a, const uint64_t *b, int words)
{
	for (int i = 0; i < words; i++)
		if (a[i] & b[i])
			return true;
	return false;
}

static int bm_first(const uint64_t *w, int words)
{
	for (int i = 0; i < words; i++)
		if (w[i])
			return i * 64 + __builtin_ctzll(w[i]);
	return -1;
}

/* Exactly one bit, and it is @bit. */
static bool bm_is_single(const uint64_t *w, int words, int bit)
{
	for (int i = 0; i < words; i++) {
		uint64_t want = (i == bit / 64) ? 1ULL << (bit % 64) : 0;

		if (w[i] != want)
			return false;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * hwloc's bitmap string: 32-bit words "0x%08x" most significant first,
 * separated by commas ("0x00000003,0xffffffff"); a zero word inside may be
 * left empty ("0x00000011,,0x0").  The infinite form
 * ("0xf...f,") is refused: moirai counts bits, and an infinite set has none
 * to count.  Bits at or above @bits are refused too.
 */
static bool parse_bitmap(struct span s, uint64_t *w, int bits)
{
	size_t segs = 1, seg = 0, i = 0;

	memset(w, 0, (size_t)bits / 8);
	for (size_t k = 0; k < s.n; k++)
		segs += s.s[k] == ',';
	if (s.n == 0 || segs > 4096)
		return false;
	while (i < s.n) {
		uint32_t val = 0;
		size_t digits = 0;
		size_t base;

		if (s.s[i] == ',' && seg > 0) {
			/* An empty word between two commas is zero. */
			seg++;
			i++;
			if (i == s.n)
				return false;
			continue;
		}
		if (i + 2 > s.n || s.s[i] != '0' || s.s[i + 1] != 'x')
			return false;
		for (i += 2; i < s.n && s.s[i] != ','; i++, digits++) {
			int h = hexval(s.s[i]);

			if (h < 0 || digits >= 8)
				return false;
			val = val << 4 | (uint32_t)h;
		}
		if (digits == 0)
			return false;
		base = (segs - 1 - seg) * 32;
		for (int b = 0; b < 32; b++) {
			if (!(val >> b & 1))
				continue;
			if (base + (size_t)b >= (size_t)bits)
				return false;
			bm_set(w, (int)(base + (size_t)b));
		}
		seg++;
		if (i < s.n) {
			i++; /* the comma */
			if (i == s.n)
				return false;
		}
	}
	return true;
}

/* ---- scalar values -------------------------------------------------- */

/* Decimal, no sign, no leading zero, fits in 64 bits. */
static bool parse_u64(struct span s, uint64_t *out)
{
	uint64_t v = 0;

	if (s.n == 0 || s.n > 20 || (s.n > 1 && s.s[0] == '0'))
		return false;
	for (size_t i = 0; i < s.n; i++) {
		unsigned d = (unsigned)(s.s[i] - '0');

		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*out = v;
	return true;
}

static bool parse_u32(struct span s, uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (!parse_u64(s, &v) || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool hex_exact(const char *s, int n)
{
	for (int i = 0; i < n; i++)
		if (hexval(s[i]) < 0)
			return false;
	return true;
}

/* A pattern of literal characters and 'h' for one hex digit. */
static bool match_hex_pattern(struct span s, const char *pat)
{
	size_t n = strlen(pat);

	if (s.n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (pat[i] == 'h' ? !hex_exact(s.s + i, 1) : s.s[i] != pat[i])
			return false;
	}
	return true;
}

static bool parse_float(struct span s)
{
	size_t i = 0, d = 0;

	while (i < s.n && s.s[i] >= '0' && s.s[i] <= '9')
		i++, d++;
	if (i < s.n && s.s[i] == '.')
		for (i++; i < s.n && s.s[i] >= '0' && s.s[i] <= '9'; i++)
			d++;
	return d > 0 && d < 40 && i == s.n;
}

/* ---- lexical layer --------------------------------------------------- */

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static void skip_ws(struct xv *v)
{
	while (v->p < v->end && (*v->p == ' ' || *v->p == '\t' || *v->p == '\n' || *v->p == '\r')) {
		if (*v->p == '\n')
			v->line++;
		v->p++;
	}
}

/* Length of a valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static int utf8_len(const unsigned char *s, size_t n)
{
	int len;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if ((size_t)len > n)
		return 0;
	for (int i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* The escapes hwloc's minimal parser decodes; libxml2 decodes them alike. */
static const char *const escapes[] = {
	"&quot;", "&lt;", "&gt;", "&amp;", "&#10;", "&#13;", "&#9;"
};

static int check_text(struct xv *v, struct span s, bool allow_escapes, const char *what)
{
	for (size_t i = 0; i < s.n;) {
		unsigned char c = (unsigned char)s.s[i];

		if (c == '&' && allow_escapes) {
			size_t k;

			for (k = 0; k < MOIRAI_ARRAY_SIZE(escapes); k++) {
				size_t el = strlen(escapes[k]);

				if (s.n - i >= el && !memcmp(s.s + i, escapes[k], el)) {
					i += el;
					break;
				}
			}
			if (k == MOIRAI_ARRAY_SIZE(escapes))
				return fail(v, v->line, "unsupported '&' escape in %s", what);
			continue;
		}
		if (c == '&' || c == '<' || c == '>' || c == '"' || c < 0x20 || c == 0x7f)
			return fail(v, v->line, "character 0x%02x not allowed in %s", c, what);
		if (c >= 0x80) {
			int n = utf8_len((const unsigned char *)s.s + i, s.n - i);

			if (!n)
				return fail(v, v->line, "invalid UTF-8 in %s", what);
			i += (size_t)n;
			continue;
		}
		i++;
	}
	return 0;
}

/*
 * One start tag: '<' name, then ' '+ name="value" pairs, then '>' or '/>'.
 * Only spaces separate attributes: the minimal parser would stop reading
 * attributes at a tab or an '\r' (and silently drop the rest).
 */
static int read_tag(struct xv *v, struct tag *t)
{
	const char *p = v->p;

	t->line = v->line;
	t->na = 0;
	t->empty = false;
	if (p >= v->end || *p != '<')
		return fail(v, v->line, "expected an element");
	p++;
	if (p < v->end && (*p == '!' || *p == '?'))
		return fail(v, v->line,
			    "comments, CDATA and processing instructions are not allowed");
	t->name.s = p;
	while (p < v->end && is_name_char(*p))
		p++;
	t->name.n = (size_t)(p - t->name.s);
	if (!t->name.n)
		return fail(v, v->line, "malformed element name");
	for (;;) {
		struct attr *a;
		const char *q;

		if (p >= v->end)
			return fail(v, v->line, "unterminated element");
		if (*p == '>' || (*p == '/' && p + 1 < v->end && p[1] == '>'))
			break;
		if (*p != ' ')
			return fail(v, v->line, "malformed element <%.*s>", (int)t->name.n,
				    t->name.s);
		while (p < v->end && *p == ' ')
			p++;
		if (p < v->end && (*p == '>' || *p == '/'))
			continue;
		if (t->na == MAX_ATTRS)
			return fail(v, v->line, "too many attributes");
		a = &t->a[t->na];
		a->name.s = p;
		while (p < v->end && ((*p >= 'a' && *p <= 'z') || *p == '_'))
			p++;
		a->name.n = (size_t)(p - a->name.s);
		if (!a->name.n || p + 1 >= v->end || p[0] != '=' || p[1] != '"')
			return fail(v, v->line, "malformed attribute in <%.*s>", (int)t->name.n,
				    t->name.s);
		p += 2;
		q = memchr(p, '"', (size_t)(v->end - p));
		if (!q)
			return fail(v, v->line, "unterminated attribute value");
		a->val.s = p;
		a->val.n = (size_t)(q - p);
		if (a->val.n > MOIRAI__XML_MAX_VALUE)
			return fail(v, v->line, "attribute value longer than %d bytes",
				    MOIRAI__XML_MAX_VALUE);
		for (int k = 0; k < t->na; k++)
			if (t->a[k].name.n == a->name.n &&
			    !memcmp(t->a[k].name.s, a->name.s, a->name.n))
				return fail(v, v->line, "attribute '%.*s' given twice",
					    (int)a->name.n, a->name.s);
		if (check_text(v, a->val, true, "an attribute value"))
			return -1;
		t->na++;
		p = q + 1;
	}
	if (*p == '/') {
		t->empty = true;
		p++;
	}
	v->p = p + 1;
	return 0;
}

/* After a non-empty element's children: exactly "</name>". */
static int read_close(struct xv *v, const struct tag *t)
{
	const char *p = v->p;

	if ((size_t)(v->end - p) < t->name.n + 3 || p[0] != '<' || p[1] != '/' ||
	    memcmp(p + 2, t->name.s, t->name.n) || p[2 + t->name.n] != '>')
		return fail(v, v->line, "expected </%.*s> (element opened on line %d)",
			    (int)t->name.n, t->name.s, t->line);
	v->p = p + t->name.n + 3;
	return 0;
}

/* Text content up to the next '<' (indexes, u64values, userdata). */
static int read_content(struct xv *v, struct span *out)
{
	const char *q = memchr(v->p, '<', (size_t)(v->end - v->p));

	if (!q)
		return fail(v, v->line, "unterminated element content");
	out->s = v->p;
	out->n = (size_t)(q - v->p);
	for (size_t i = 0; i < out->n; i++)
		if (out->s[i] == '\n')
			v->line++;
	v->p = q;
	return 0;
}

static const struct span *get_attr(const struct tag *t, const char *name)
{
	for (int i = 0; i < t->na; i++)
		if (span_is(t->a[i].name, name))
			return &t->a[i].val;
	return NULL;
}

/* Every attribute of @t must be one of @names (NULL-terminated). */
static int only_attrs(struct xv *v, const struct tag *t, const char *const *names)
{
	for (int i = 0; i < t->na; i++) {
		const char *const *n;
		char b[40];

		for (n = names; *n && !span_is(t->a[i].name, *n); n++)
			;
		if (!*n)
			return fail(v, t->line, "unexpected attribute '%s' in <%.*s>",
				    shown(t->a[i].name, b, sizeof(b)), (int)t->name.n, t->name.s);
	}
	return 0;
}

static int need_u64(struct xv *v, const struct tag *t, const char *name, uint64_t *out)
{
	const struct span *s = get_attr(t, name);
	char b[40];

	if (!s)
		return fail(v, t->line, "<%.*s> lacks %s", (int)t->name.n, t->name.s, name);
	if (!parse_u64(*s, out))
		return fail(v, t->line, "%s=\"%s\" is not a decimal number", name,
			    shown(*s, b, sizeof(b)));
	return 0;
}

static int type_of(struct span s)
{
	for (size_t i = 0; i < MOIRAI_ARRAY_SIZE(types); i++)
		if (span_is(s, types[i].name))
			return (int)i;
	return -1;
}

/* An element we do not descend into: no children, no text. */
static int leaf(struct xv *v, const struct tag *t)
{
	if (t->empty)
		return 0;
	skip_ws(v);
	return read_close(v, t);
}

/* ---- <info>, <page_type>, <userdata> --------------------------------- */

static int do_info(struct xv *v, const struct tag *t)
{
	static const char *const ok[] = { "name", "value", NULL };

	if (only_attrs(v, t, ok))
		return -1;
	if (!get_attr(t, "name"))
		return fail(v, t->line, "<info> lacks a name");
	return leaf(v, t);
}

static int do_page_type(struct xv *v, const struct tag *t, int parent_type, bool root)
{
	static const char *const ok[] = { "size", "count", NULL };
	uint64_t x;

	if (parent_type != T_NUMANODE && !root)
		return fail(v, t->line, "<page_type> outside a NUMANode");
	if (only_attrs(v, t, ok) || need_u64(v, t, "size", &x) || need_u64(v, t, "count", &x))
		return -1;
	return leaf(v, t);
}

static bool is_base64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

static int do_userdata(struct xv *v, const struct tag *t)
{
	static const char *const ok[] = { "name", "length", "encoding", NULL };
	const struct span *enc = get_attr(t, "encoding");
	uint64_t len, want;
	struct span c = { "", 0 };

	if (only_attrs(v, t, ok) || need_u64(v, t, "length", &len))
		return -1;
	if (enc && !span_is(*enc, "base64"))
		return fail(v, t->line, "<userdata> encoding must be base64");
	if (len > MOIRAI__XML_MAX_BYTES)
		return fail(v, t->line, "<userdata> length too large");
	want = enc ? 4 * ((len + 2) / 3) : len;
	if (!t->empty) {
		if (read_content(v, &c))
			return -1;
		if (read_close(v, t))
			return -1;
	}
	if (c.n != want)
		return fail(v, t->line, "<userdata> holds %zu bytes, its length says %llu", c.n,
			    (unsigned long long)want);
	for (size_t i = 0; i < c.n; i++)
		if (enc ? !is_base64(c.s[i]) : (c.s[i] == '&' || c.s[i] == '>'))
			return fail(v, t->line, "<userdata> content has a bad character");
	return enc ? 0 : check_text(v, c, false, "<userdata>");
}

/* ---- <object> -------------------------------------------------------- */

static int object_attrs(struct xv *v, const struct tag *t, int type, bool root)
{
	enum kind k = types[type].kind;
	uint64_t bits[CPU_WORDS];
	char b[40];

	for (int i = 1; i < t->na; i++) {
		const struct attr *a = &t->a[i];
		uint64_t x;
		uint32_t u;

		if (span_is(a->name, "type"))
			return fail(v, t->line, "type given twice");
		if (span_is(a->name, "os_index")) {
			if (!parse_u32(a->val, UINT32_MAX - 1, &u))
				goto bad;
		} else if (span_is(a->name, "gp_index")) {
			if (!parse_u64(a->val, &x) || x == 0)
				goto bad;
			if (v->ngp < MOIRAI__XML_MAX_OBJECTS)
				v->gp[v->ngp++] = x;
		} else if (span_is(a->name, "cpuset") || span_is(a->name, "complete_cpuset") ||
			   span_is(a->name, "allowed_cpuset") || span_is(a->name, "nodeset") ||
			   span_is(a->name, "complete_nodeset") ||
			   span_is(a->name, "allowed_nodeset")) {
			if (k == K_IO || k == K_MISC)
				return fail(v, t->line, "%s object with a %.*s", types[type].name,
					    (int)a->name.n, a->name.s);
			if (!root && a->name.s[0] == 'a')
				return fail(v, t->line, "%.*s below the root", (int)a->name.n,
					    a->name.s);
			/* The four object sets are parsed with the frame (object_sets). */
			if (a->name.s[0] == 'a' &&
			    !parse_bitmap(a->val, bits,
					  a->name.s[8] == 'c' ? MOIRAI__TOPO_MAX_CPU_INDEX
							      : MOIRAI_TOPO_MAX_NODES))
				goto bad;
		} else if (span_is(a->name, "cache_size") || span_is(a->name, "local_memory")) {
			if (!parse_u64(a->val, &x))
				goto bad;
		} else if (span_is(a->name, "kind") || span_is(a->name, "subkind") ||
			   span_is(a->name, "cache_linesize") || span_is(a->name, "depth")) {
			if (!parse_u32(a->val, UINT32_MAX, &u))
				goto bad;
		} else if (span_is(a->name, "cache_associativity")) {
			struct span m = a->val;

			if (m.n && m.s[0] == '-') {
				m.s++;
				m.n--;
				if (!parse_u32(m, 1, &u) || u != 1)
					goto bad;
			} else if (!parse_u32(m, INT32_MAX, &u)) {
				goto bad;
			}
		} else if (span_is(a->name, "cache_type")) {
			if (!parse_u32(a->val, 2, &u))
				goto bad;
		} else if (span_is(a->name, "dont_merge")) {
			if (!parse_u32(a->val, 1, &u))
				goto bad;
		} else if (span_is(a->name, "osdev_type")) {
			if (!parse_u32(a->val, 5, &u))
				goto bad;
		} else if (span_is(a->name, "pci_busid")) {
			if (!match_hex_pattern(a->val, "hhhh:hh:hh.h"))
				goto bad;
		} else if (span_is(a->name, "pci_type")) {
			if (!match_hex_pattern(a->val, "hhhh [hhhh:hhhh] [hhhh:hhhh] hh"))
				goto bad;
		} else if (span_is(a->name, "pci_link_speed")) {
			if (!parse_float(a->val))
				goto bad;
		} else if (span_is(a->name, "bridge_type")) {
			if (!span_is(a->val, "0-1") && !span_is(a->val, "1-1"))
				goto bad;
		} else if (span_is(a->name, "bridge_pci")) {
			if (!match_hex_pattern(a->val, "hhhh:[hh-hh]"))
				goto bad;
		}
		/*
		 * name, subtype and attributes this hwloc does not know are
		 * strings it stores or ignores: check_text has vetted them.
		 */
		continue;
	bad:
		return fail(v, t->line, "%s object: bad %.*s=\"%s\"", types[type].name,
			    (int)a->name.n, a->name.s, shown(a->val, b, sizeof(b)));
	}
	return 0;
}

/* Parse the four sets into @f and check them against the parent @up. */
static int object_sets(struct xv *v, const struct tag *t, struct frame *f, const struct frame *up)
{
	static const char *const names[] = { "cpuset", "complete_cpuset", "nodeset",
					     "complete_nodeset" };
	const struct span *s[4];
	int have = 0;
	char b[40];

	for (int i = 0; i < 4; i++)
		have += (s[i] = get_attr(t, names[i])) != NULL;
	f->has_sets = types[f->type].kind == K_NORMAL || types[f->type].kind == K_MEMORY;
	if (!f->has_sets)
		return 0;
	if (have != 4)
		return fail(v, t->line,
			    "%s object lacks one of cpuset, complete_cpuset, nodeset, "
			    "complete_nodeset",
			    types[f->type].name);
	if (!parse_bitmap(*s[0], f->cpuset, MOIRAI__TOPO_MAX_CPU_INDEX) ||
	    !parse_bitmap(*s[1], f->complete, MOIRAI__TOPO_MAX_CPU_INDEX))
		return fail(v, t->line, "%s object: bad cpuset \"%s\" (bits 0..%d)",
			    types[f->type].name, shown(*s[0], b, sizeof(b)),
			    MOIRAI__TOPO_MAX_CPU_INDEX - 1);
	if (!parse_bitmap(*s[2], f->nodeset, MOIRAI_TOPO_MAX_NODES) ||
	    !parse_bitmap(*s[3], f->cnodeset, MOIRAI_TOPO_MAX_NODES))
		return fail(v, t->line, "%s object: bad nodeset \"%s\" (nodes 0..%d)",
			    types[f->type].name, shown(*s[2], b, sizeof(b)),
			    MOIRAI_TOPO_MAX_NODES - 1);
	if (!bm_subset(f->cpuset, f->complete, CPU_WORDS) ||
	    !bm_subset(f->nodeset, f->cnodeset, NODE_WORDS))
		return fail(v, t->line, "%s object: a set is not inside its complete set",
			    types[f->type].name);
	if (up && (!bm_subset(f->complete, up->complete, CPU_WORDS) ||
		   !bm_subset(f->cpuset, up->cpuset, CPU_WORDS) ||
		   !bm_subset(f->cnodeset, up->cnodeset, NODE_WORDS) ||
		   !bm_subset(f->nodeset, up->nodeset, NODE_WORDS)))
		return fail(v, t->line, "%s object: its sets are not inside its parent's %s",
			    types[f->type].name, types[up->type].name);
	return 0;
}

/* PU and NUMA node identities: the set is the os_index, never reused. */
static int object_identity(struct xv *v, const struct tag *t, const struct frame *f)
{
	const struct span *os = get_attr(t, "os_index");
	uint32_t idx;

	if (f->type == T_PU) {
		if (!os || !parse_u32(*os, MOIRAI__TOPO_MAX_CPU_INDEX - 1, &idx))
			return fail(v, t->line, "PU without an os_index below %d",
				    MOIRAI__TOPO_MAX_CPU_INDEX);
		if (!bm_is_single(f->complete, CPU_WORDS, (int)idx) ||
		    !bm_is_single(f->cpuset, CPU_WORDS, (int)idx))
			return fail(v, t->line, "PU P#%u: its cpuset is not {%u}", idx, idx);
		if (bm_test(v->pu_seen, (int)idx))
			return fail(v, t->line, "PU P#%u appears twice", idx);
		bm_set(v->pu_seen, (int)idx);
		if (++v->pus > MOIRAI_TOPO_MAX_PUS)
			return fail(v, t->line, "more than %d PUs", MOIRAI_TOPO_MAX_PUS);
	} else if (f->type == T_NUMANODE) {
		if (!os || !parse_u32(*os, MOIRAI_TOPO_MAX_NODES - 1, &idx))
			return fail(v, t->line, "NUMANode without an os_index below %d",
				    MOIRAI_TOPO_MAX_NODES);
		if (!bm_is_single(f->nodeset, NODE_WORDS, (int)idx) ||
		    !bm_is_single(f->cnodeset, NODE_WORDS, (int)idx))
			return fail(v, t->line, "NUMANode P#%u: its nodeset is not {%u}", idx, idx);
		if (bm_test(v->node_seen, (int)idx))
			return fail(v, t->line, "NUMANode P#%u appears twice", idx);
		bm_set(v->node_seen, (int)idx);
		v->nodes++;
	}
	return 0;
}

/* Where a type may sit: hwloc 2's parent/child rules, plus no self-nesting. */
static int object_place(struct xv *v, const struct tag *t, int type)
{
	const struct frame *up = v->depth ? &v->stack[v->depth - 1] : NULL;
	enum kind k = types[type].kind;

	if (!up)
		return type == T_MACHINE
			       ? 0
			       : fail(v, t->line, "the root object is a %s, not a Machine",
				      types[type].name);
	if (type == T_MACHINE)
		return fail(v, t->line, "Machine object below the root");
	switch (types[up->type].kind) {
	case K_NORMAL:
		if (up->type == T_PU && k != K_MISC)
			return fail(v, t->line, "%s object inside a PU", types[type].name);
		break;
	case K_MEMORY:
		if (k == K_NORMAL || k == K_IO || (up->type == T_NUMANODE && k != K_MISC))
			return fail(v, t->line, "%s object inside a %s", types[type].name,
				    types[up->type].name);
		break;
	case K_IO:
		if (k == K_NORMAL || k == K_MEMORY)
			return fail(v, t->line, "%s object inside an I/O object", types[type].name);
		break;
	case K_MISC:
		if (k != K_MISC)
			return fail(v, t->line, "%s object inside a Misc object", types[type].name);
		break;
	}
	if (!types[type].nests)
		for (int d = 0; d < v->depth; d++)
			if (v->stack[d].type == type)
				return fail(v, t->line, "%s object inside another %s (line %d)",
					    types[type].name, types[type].name, t->line);
	return 0;
}

static int do_object(struct xv *v, const struct tag *t);

static int object_children(struct xv *v, const struct tag *t, struct frame *f)
{
	bool seen_object = false;
	struct tag c;

	if (t->empty)
		return 0;
	for (;;) {
		int rc;

		skip_ws(v);
		if (v->end - v->p >= 2 && v->p[0] == '<' && v->p[1] == '/')
			return read_close(v, t);
		if (read_tag(v, &c))
			return -1;
		if (span_is(c.name, "object")) {
			seen_object = true;
			rc = do_object(v, &c);
		} else if (seen_object) {
			rc = fail(v, c.line, "<%.*s> after a child object", (int)c.name.n,
				  c.name.s);
		} else if (span_is(c.name, "info")) {
			rc = do_info(v, &c);
		} else if (span_is(c.name, "page_type")) {
			rc = do_page_type(v, &c, f->type, v->depth == 1);
		} else if (span_is(c.name, "userdata")) {
			rc = do_userdata(v, &c);
		} else {
			char b[40];

			rc = fail(v, c.line, "unexpected element <%s> in an object",
				  shown(c.name, b, sizeof(b)));
		}
		if (rc)
			return rc;
	}
}

static int do_object(struct xv *v, const struct tag *t)
{
	struct frame *up = v->depth ? &v->stack[v->depth - 1] : NULL;
	struct frame *f;
	char b[40];
	int type, rc;

	if (v->depth >= MOIRAI__XML_MAX_DEPTH)
		return fail(v, t->line, "objects nested more than %d deep", MOIRAI__XML_MAX_DEPTH);
	if (++v->objects > MOIRAI__XML_MAX_OBJECTS)
		return fail(v, t->line, "more than %d objects", MOIRAI__XML_MAX_OBJECTS);
	/* hwloc reads the type first and refuses any attribute before it. */
	if (!t->na || !span_is(t->a[0].name, "type"))
		return fail(v, t->line, "object whose first attribute is not its type");
	type = type_of(t->a[0].val);
	if (type < 0)
		return fail(v, t->line, "unknown object type \"%s\"",
			    shown(t->a[0].val, b, sizeof(b)));
	if (object_place(v, t, type) || object_attrs(v, t, type, !up))
		return -1;
	f = &v->stack[v->depth];
	memset(f, 0, sizeof(*f));
	f->type = type;
	f->last_first = -1;
	if (object_sets(v, t, f, up && up->has_sets ? up : NULL) || object_identity(v, t, f))
		return -1;
	if (up && types[type].kind == K_NORMAL) {
		/* hwloc sorts an empty set after every other (memory-only Groups). */
		int first = bm_first(f->complete, CPU_WORDS);

		if (first < 0)
			first = INT32_MAX;
		if (bm_intersects(f->complete, up->kids, CPU_WORDS))
			return fail(v, t->line, "%s object overlaps a sibling's cpuset",
				    types[type].name);
		if (first < up->last_first)
			return fail(v, t->line, "%s object out of cpuset order among its siblings",
				    types[type].name);
		if (++up->normal_kids > MOIRAI__TOPO_MAX_ARITY)
			return fail(v, t->line, "more than %d children in one object",
				    MOIRAI__TOPO_MAX_ARITY);
		up->last_first = first;
		for (int i = 0; i < CPU_WORDS; i++)
			up->kids[i] |= f->complete[i];
	}
	v->depth++;
	rc = object_children(v, t, f);
	v->depth--;
	return rc;
}

/* ---- topology-level elements ------------------------------------------ */

/*
 * Whitespace-separated tokens as hwloc reads them: one space between
 * tokens, an optional trailing space.  @hetero: "Type:gp_index" tokens.
 */
static int count_tokens(struct xv *v, struct span c, bool hetero, uint64_t *count)
{
	size_t i = 0;

	while (i < c.n) {
		struct span tok = { c.s + i, 0 };
		uint64_t x;

		while (i < c.n && c.s[i] != ' ')
			i++, tok.n++;
		if (hetero) {
			const char *colon = memchr(tok.s, ':', tok.n);
			struct span ty = { tok.s, colon ? (size_t)(colon - tok.s) : 0 };

			if (!colon || type_of(ty) < 0)
				return fail(v, v->line, "bad distance index \"%.*s\"",
					    (int)(tok.n < 30 ? tok.n : 30), tok.s);
			tok.n -= ty.n + 1;
			tok.s = colon + 1;
		}
		if (!parse_u64(tok, &x))
			return fail(v, v->line, "bad number in a distance matrix");
		(*count)++;
		if (i < c.n)
			i++; /* the space */
	}
	return 0;
}

static int do_distances(struct xv *v, const struct tag *t, bool hetero)
{
	static const char *const ok[] = { "type", "nbobjs", "kind", "name", "indexing", NULL };
	static const char *const ok_child[] = { "length", NULL };
	const struct span *ty = get_attr(t, "type"), *ix = get_attr(t, "indexing");
	uint64_t nb, kind, nidx = 0, nval = 0;
	struct tag c;

	if (only_attrs(v, t, ok) || need_u64(v, t, "nbobjs", &nb) || need_u64(v, t, "kind", &kind))
		return -1;
	if (nb == 0 || nb > MOIRAI__TOPO_MAX_DIST_OBJS)
		return fail(v, t->line, "distance matrix over %llu objects (1..%d)",
			    (unsigned long long)nb, MOIRAI__TOPO_MAX_DIST_OBJS);
	if (kind == 0 || kind > UINT32_MAX)
		return fail(v, t->line, "distance matrix with a bad kind");
	if (hetero ? ty != NULL : (!ty || type_of(*ty) < 0))
		return fail(v, t->line, "distance matrix with a missing or bad type");
	if (!hetero && (!ix || (!span_is(*ix, "os") && !span_is(*ix, "gp"))))
		return fail(v, t->line, "distance matrix indexing must be os or gp");
	if (hetero && ix && !span_is(*ix, "gp"))
		return fail(v, t->line, "heterogeneous distance matrix indexing must be gp");
	if (t->empty)
		return fail(v, t->line, "empty distance matrix");
	for (;;) {
		uint64_t len, *counter;
		struct span content;

		skip_ws(v);
		if (v->end - v->p >= 2 && v->p[0] == '<' && v->p[1] == '/')
			break;
		if (read_tag(v, &c))
			return -1;
		if (span_is(c.name, "indexes"))
			counter = &nidx;
		else if (span_is(c.name, "u64values"))
			counter = &nval;
		else
			return fail(v, c.line, "unexpected element in a distance matrix");
		if (only_attrs(v, &c, ok_child) || need_u64(v, &c, "length", &len))
			return -1;
		if (c.empty || read_content(v, &content) || read_close(v, &c))
			return fail(v, c.line, "distance matrix row without content");
		if (content.n != len)
			return fail(v, c.line,
				    "distance matrix row of %zu bytes, its length says %llu",
				    content.n, (unsigned long long)len);
		if (count_tokens(v, content, hetero && counter == &nidx, counter))
			return -1;
		if (nidx > nb || nval > nb * nb)
			return fail(v, c.line, "distance matrix with more entries than nbobjs");
	}
	if (nidx != nb || nval != nb * nb)
		return fail(v, t->line,
			    "distance matrix over %llu objects with %llu indexes and "
			    "%llu values",
			    (unsigned long long)nb, (unsigned long long)nidx,
			    (unsigned long long)nval);
	return read_close(v, t);
}

static int do_support(struct xv *v, const struct tag *t)
{
	static const char *const ok[] = { "name", "value", NULL };
	const struct span *val = get_attr(t, "value");
	uint32_t u;

	if (only_attrs(v, t, ok))
		return -1;
	if (!get_attr(t, "name") || (val && !parse_u32(*val, INT32_MAX, &u)))
		return fail(v, t->line, "bad <support>");
	return leaf(v, t);
}

static int do_memattr(struct xv *v, const struct tag *t)
{
	static const char *const ok[] = { "name", "flags", NULL };
	static const char *const ok_value[] = {
		"target_obj_type",    "target_obj_gp_index",	"value", "initiator_cpuset",
		"initiator_obj_type", "initiator_obj_gp_index", NULL
	};
	uint64_t x;
	struct tag c;

	if (only_attrs(v, t, ok) || need_u64(v, t, "flags", &x))
		return -1;
	if (!get_attr(t, "name"))
		return fail(v, t->line, "<memattr> without a name");
	if (t->empty)
		return 0;
	for (;;) {
		const struct span *s;
		uint64_t bits[CPU_WORDS];

		skip_ws(v);
		if (v->end - v->p >= 2 && v->p[0] == '<' && v->p[1] == '/')
			return read_close(v, t);
		if (read_tag(v, &c))
			return -1;
		if (!span_is(c.name, "memattr_value"))
			return fail(v, c.line, "unexpected element in a <memattr>");
		if (only_attrs(v, &c, ok_value) || need_u64(v, &c, "target_obj_gp_index", &x) ||
		    need_u64(v, &c, "value", &x))
			return -1;
		s = get_attr(&c, "target_obj_type");
		if (!s || type_of(*s) < 0)
			return fail(v, c.line, "<memattr_value> with a bad target type");
		s = get_attr(&c, "initiator_cpuset");
		if (s && !parse_bitmap(*s, bits, MOIRAI__TOPO_MAX_CPU_INDEX))
			return fail(v, c.line, "<memattr_value> with a bad initiator cpuset");
		s = get_attr(&c, "initiator_obj_type");
		if (s && (type_of(*s) < 0 || need_u64(v, &c, "initiator_obj_gp_index", &x)))
			return fail(v, c.line, "<memattr_value> with a bad initiator object");
		if (leaf(v, &c))
			return -1;
	}
}

static int do_cpukind(struct xv *v, const struct tag *t)
{
	static const char *const ok[] = { "cpuset", "forced_efficiency", NULL };
	const struct span *s = get_attr(t, "cpuset"), *e = get_attr(t, "forced_efficiency");
	uint64_t bits[CPU_WORDS];
	uint32_t u;
	struct tag c;

	if (only_attrs(v, t, ok))
		return -1;
	if (!s || !parse_bitmap(*s, bits, MOIRAI__TOPO_MAX_CPU_INDEX))
		return fail(v, t->line, "<cpukind> without a valid cpuset");
	if (e && !(span_is(*e, "-1") || parse_u32(*e, INT32_MAX, &u)))
		return fail(v, t->line, "<cpukind> with a bad forced_efficiency");
	if (t->empty)
		return 0;
	for (;;) {
		skip_ws(v);
		if (v->end - v->p >= 2 && v->p[0] == '<' && v->p[1] == '/')
			return read_close(v, t);
		if (read_tag(v, &c))
			return -1;
		if (!span_is(c.name, "info"))
			return fail(v, c.line, "unexpected element in a <cpukind>");
		if (do_info(v, &c))
			return -1;
	}
}

/* ---- document ------------------------------------------------------- */

/* "<?xml ...?>" or "<!DOCTYPE topology SYSTEM "...">", then a newline. */
static int prolog_line(struct xv *v, const char *start, const char *stop, bool doctype)
{
	size_t sl = strlen(start);
	const char *nl, *q;

	if ((size_t)(v->end - v->p) < sl || memcmp(v->p, start, sl))
		return 0;
	nl = memchr(v->p, '\n', (size_t)(v->end - v->p));
	if (!nl)
		return fail(v, v->line, "the XML header line does not end");
	/* The minimal parser skips the whole line; libxml2 parses it: agree. */
	q = nl;
	if (q > v->p && q[-1] == '\r')
		q--;
	if ((size_t)(q - v->p) < sl + strlen(stop) || memcmp(q - strlen(stop), stop, strlen(stop)))
		return fail(v, v->line, "malformed %s line",
			    doctype ? "DOCTYPE" : "XML declaration");
	for (const char *c = v->p; c < q; c++)
		if ((unsigned char)*c < 0x20 || *c == '[' || (doctype && *c == '<' && c != v->p) ||
		    (*c == '>' && c != q - 1))
			return fail(v, v->line, "malformed %s line",
				    doctype ? "DOCTYPE" : "XML declaration");
	if (!doctype) {
		/* Only UTF-8: libxml2 would transcode other encodings, hwloc's own would not. */
		const char *enc = memmem(v->p, (size_t)(q - v->p), "encoding=", 9);

		if (enc && strncmp(enc + 9, "\"UTF-8\"", 7) && strncmp(enc + 9, "\"utf-8\"", 7))
			return fail(v, v->line, "XML encoding other than UTF-8");
	}
	v->p = nl + 1;
	v->line++;
	return 1;
}

static int document(struct xv *v)
{
	static const char root[] = "<topology version=\"";
	const char *p;
	struct tag t;
	int rc;

	rc = prolog_line(v, "<?xml ", "?>", false);
	if (rc < 0 || (rc = prolog_line(v, "<!DOCTYPE topology SYSTEM \"", "\">", true)) < 0)
		return -1;
	if ((size_t)(v->end - v->p) >= 10 && !memcmp(v->p, "<topology>", 10))
		return fail(v, v->line,
			    "hwloc 1.x XML; convert it with hwloc 2's lstopo-no-graphics -i FILE "
			    "--of xml NEW.xml");
	if ((size_t)(v->end - v->p) < sizeof(root) - 1 || memcmp(v->p, root, sizeof(root) - 1))
		return fail(v, v->line, "not an hwloc XML export (no <topology version=\"2.x\">)");
	p = v->p + sizeof(root) - 1;
	if (v->end - p < 4 || p[0] != '2' || p[1] != '.' || p[2] < '0' || p[2] > '9')
		return fail(v, v->line, "hwloc XML format other than 2.x");
	for (p += 2; p < v->end && *p >= '0' && *p <= '9' && p - v->p < 40; p++)
		;
	if (v->end - p < 2 || p[0] != '"' || p[1] != '>')
		return fail(v, v->line, "malformed <topology> element");
	v->p = p + 2;
	skip_ws(v);
	if (read_tag(v, &t))
		return -1;
	if (!span_is(t.name, "object"))
		return fail(v, t.line, "the first element in <topology> is not the root object");
	if (do_object(v, &t))
		return -1;
	for (;;) {
		skip_ws(v);
		if (v->end - v->p >= 11 && !memcmp(v->p, "</topology>", 11))
			break;
		if (read_tag(v, &t))
			return -1;
		if (span_is(t.name, "distances2"))
			rc = do_distances(v, &t, false);
		else if (span_is(t.name, "distances2hetero"))
			rc = do_distances(v, &t, true);
		else if (span_is(t.name, "support"))
			rc = do_support(v, &t);
		else if (span_is(t.name, "memattr"))
			rc = do_memattr(v, &t);
		else if (span_is(t.name, "cpukind"))
			rc = do_cpukind(v, &t);
		else if (span_is(t.name, "object"))
			rc = fail(v, t.line, "a second root object");
		else {
			char b[40];

			rc = fail(v, t.line, "unexpected element <%s> in <topology>",
				  shown(t.name, b, sizeof(b)));
		}
		if (rc)
			return rc;
	}
	v->p += 11;
	skip_ws(v);
	if (v->p != v->end)
		return fail(v, v->line, "data after </topology>");
	if (!v->nodes)
		return fail(v, 0, "no NUMANode object");
	if (!v->pus)
		return fail(v, 0, "no PU object");
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int moirai__xml_validate(const char *path, const char *buf, size_t len)
{
	struct xv *v = calloc(1, sizeof(*v));
	int rc = -ENOMEM;

	if (!v)
		return moirai__err(-ENOMEM, "topology: out of memory checking '%s'", path);
	v->stack = calloc(MOIRAI__XML_MAX_DEPTH, sizeof(*v->stack));
	v->gp = calloc(MOIRAI__XML_MAX_OBJECTS, sizeof(*v->gp));
	if (!v->stack || !v->gp)
		goto out;
	v->path = path;
	v->p = buf;
	v->end = buf + len;
	v->line = 1;
	rc = 0;
	if (memchr(buf, '\0', len))
		rc = fail(v, 0, "NUL byte in the file");
	if (!rc)
		rc = document(v);
	if (!rc) {
		qsort(v->gp, (size_t)v->ngp, sizeof(*v->gp), cmp_u64);
		for (int i = 1; i < v->ngp && !rc; i++)
			if (v->gp[i] == v->gp[i - 1])
				rc = fail(v, 0, "gp_index %llu used twice",
					  (unsigned long long)v->gp[i]);
	}
	if (rc) {
		if (v->msg_line > 0)
			rc = moirai__err(-EINVAL, "topology: '%s' line %d: %s", path, v->msg_line,
					 v->msg);
		else
			rc = moirai__err(-EINVAL, "topology: '%s': %s", path, v->msg);
	}
out:
	if (rc == -ENOMEM)
		moirai__err(-ENOMEM, "topology: out of memory checking '%s'", path);
	free(v->gp);
	free(v->stack);
	free(v);
	return rc;
}

int moirai__xml_read(const char *path, char **bufp, size_t *lenp)
{
	/* O_NONBLOCK: a FIFO must be refused, not waited on. */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	struct stat st;
	size_t len = 0, cap;
	char *buf;
	int rc;

	if (fd < 0) {
		int e = errno;

		return moirai__err(e == ENOENT ? -ENOENT : -EINVAL,
				   "topology: cannot open XML file '%s': %s", path,
				   moirai_strerror(e));
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = moirai__err(-EINVAL, "topology: '%s' is not a regular file", path);
		goto err_close;
	}
	if (st.st_size > MOIRAI__XML_MAX_BYTES) {
		rc = moirai__err(-EINVAL, "topology: '%s' is larger than %d MiB", path,
				 MOIRAI__XML_MAX_BYTES >> 20);
		goto err_close;
	}
	cap = (size_t)st.st_size;
	/* One byte more than the size: a file that grows while read is caught. */
	buf = malloc(cap + 2);
	if (!buf) {
		rc = moirai__err(-ENOMEM, "topology: out of memory reading '%s'", path);
		goto err_close;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap + 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = moirai__err(-EIO, "topology: cannot read '%s': %s", path,
					 moirai_strerror(errno));
			goto err_free;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len > cap) {
			rc = moirai__err(-EINVAL, "topology: '%s' changed while being read", path);
			goto err_free;
		}
	}
	close(fd);
	if (len == 0) {
		free(buf);
		return moirai__err(-EINVAL, "topology: '%s' is empty", path);
	}
	buf[len] = '\0';
	*bufp = buf;
	*lenp = len;
	return 0;

err_free:
	free(buf);
err_close:
	close(fd);
	return rc;
}
