# SPDX-License-Identifier: BSD-3-Clause
# moirai — GNU make build.
#
#   make                 libmoirai.a, libmoirai.so and the tools in build/
#   make check           build and run every test (bounded, a few minutes)
#   make stress          every moirai-stress scenario (also with faults) and the
#                        topology fuzz at thousands of inputs
#   make stress-tests    every test scaled up (MOIRAI_TEST_SCALE=20)
#   make check-numa      tests under a 4-node NUMA VM (qemu)
#   make run             the main job: moirai-topo, then moirai-pipeline --compare
#   make bench           moirai-bench all --quick, tables and plots in build/bench
#   make SAN=address     everything with -fsanitize=address (or thread, undefined),
#                        with the DEBUG invariant walkers on (also: make DEBUG=1)
#   make install PREFIX=/usr/local DESTDIR=...   (also the man pages, MANDIR)
#   make doc             the API reference in build/doc (doxygen)
#   make check-fresh     README's commands on an empty Debian 12 root (root)
#
# Sources are found by directory, so adding a module file, a test or a tool
# never needs a Makefile edit:
#   lib/*.c numa/*.c alloc/*.c ring/*.c rt/*.c net/*.c -> libmoirai
#   tests/<mod>/test_*.c                      -> build/tests/<mod>/test_*
#   tools/<name>/*.c                          -> build/bin/<name>

VERSION     := 0.1.0
SOVERSION   := 0

PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
MANDIR      ?= $(PREFIX)/share/man

CC          ?= cc
SAN         ?=
BUILD       ?= build$(if $(SAN),-$(SAN))

DPDK_INC    := -I/usr/include/dpdk -I/usr/include/x86_64-linux-gnu/dpdk

WARN        := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
               -Wmissing-prototypes -Wno-unused-parameter
OPT         ?= -O2 -g
CPPFLAGS    += -Iinclude -Ilib $(DPDK_INC) -D_GNU_SOURCE -DMOIRAI_VERSION='"$(VERSION)"'
CFLAGS      += -std=c11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -pthread \
               -msse4.2
# Of DPDK the library calls librte_ring (ring/) and librte_rcu (rt/, QSBR)
# and nothing of the EAL (nm -u build/libmoirai.so.*): both bring
# librte_eal.so themselves, so no -lrte_eal.
# UCX (net/) is not linked: net/net_ucx.c loads it on first use (-ldl).
LDLIBS_DEPS := -lhwloc -lnuma -lrte_ring -lrte_rcu -ldl -lpthread -lm

# Inside the library the ring fast paths are inlined (ring/ring_fast.c
# compiles the exported out-of-line copies that applications call by
# default; moirai/ring.h explains the opt-in).
LIB_CPPFLAGS := -DMOIRAI_RING_INLINE

# Under TSan, DPDK's C11 memory-model ring bodies: the x86 default
# (rte_ring_generic_pvt.h) synchronises with volatile accesses and compiler
# barriers that TSan cannot see.  Both bodies are correct on x86.
ifeq ($(SAN),thread)
  CPPFLAGS += -DRTE_USE_C11_MEM_MODEL=1
endif

# Sanitizer builds and DEBUG=1 also evaluate the internal invariant
# walkers (moirai_assert_internal, <mod>_is_valid).
ifneq ($(SAN)$(DEBUG),)
  CFLAGS += -DDEBUG
endif

ifneq ($(SAN),)
  ifeq ($(SAN),address)
    SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
  else
    SANFLAGS := -fsanitize=$(SAN) -fno-omit-frame-pointer
    ifeq ($(SAN),undefined)
      SANFLAGS += -fno-sanitize-recover=undefined
    endif
  endif
  CFLAGS  += $(SANFLAGS) -DMOIRAI_SAN_$(SAN)=1
  LDFLAGS += $(SANFLAGS)
endif

# Tests always carry the internal invariant walkers (STYLE 14).
TEST_CFLAGS := -DDEBUG -Itests/common -Ilib -Inuma -Ialloc -Iring -Irt -Inet

LIB_SRCS    := $(sort $(wildcard lib/*.c numa/*.c alloc/*.c ring/*.c rt/*.c net/*.c))
LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
STATIC_LIB  := $(BUILD)/libmoirai.a
SHARED_LIB  := $(BUILD)/libmoirai.so.$(VERSION)
SONAME      := libmoirai.so.$(SOVERSION)

# The malloc drop-in (alloc/override/, docs/alloc.md): the allocator plus
# malloc/free/new/delete in one preloadable .so, and the override object
# alone as a static archive to link whole in front of libmoirai.a.
DROPIN_SRCS := $(sort $(wildcard alloc/override/*.c))
DROPIN_OBJS := $(DROPIN_SRCS:%.c=$(BUILD)/obj/%.o)
DROPIN_SO   := $(BUILD)/libmoirai-malloc.so.$(VERSION)
DROPIN_SONAME := libmoirai-malloc.so.$(SOVERSION)
DROPIN_A    := $(BUILD)/libmoirai-malloc.a

TOOL_DIRS   := $(sort $(dir $(wildcard tools/*/*.c)))
TOOLS       := $(patsubst tools/%/,$(BUILD)/bin/%,$(TOOL_DIRS))

TEST_COMMON := $(sort $(wildcard tests/common/*.c))
TEST_COMMON_OBJS := $(TEST_COMMON:%.c=$(BUILD)/obj/%.o)
TEST_SRCS   := $(sort $(wildcard tests/*/test_*.c))
TESTS       := $(TEST_SRCS:%.c=$(BUILD)/%)
SCRIPT_TESTS := $(sort $(wildcard tests/*/test_*.sh))
HEADERS     := $(sort $(wildcard include/moirai/*.h)) include/moirai.h

DEPS_OK     := $(BUILD)/.deps-ok
DEPS_TEST_OK := $(BUILD)/.deps-test-ok

.PHONY: all check stress stress-tests check-numa run bench install uninstall clean deps \
        format format-check
.DEFAULT_GOAL := all
.SECONDARY:

all: $(STATIC_LIB) $(SHARED_LIB) $(DROPIN_SO) $(DROPIN_A) $(TOOLS)

# The dependency script is the one list of packages; it runs only when a
# package is missing, so a fresh Debian 12 machine needs no other step.
# Building (make, make run) takes the runtime and build classes; the tests
# and benchmarks add the test class (tools/install-deps --list shows them).
$(DEPS_OK): tools/install-deps
	@tools/install-deps --check runtime build 2>/dev/null || tools/install-deps runtime build
	@mkdir -p $(@D) && touch $@

$(DEPS_TEST_OK): tools/install-deps | $(DEPS_OK)
	@tools/install-deps --check test 2>/dev/null || tools/install-deps test
	@mkdir -p $(@D) && touch $@

check stress stress-tests check-numa bench doc: | $(DEPS_TEST_OK)

deps:
	tools/install-deps

$(BUILD)/obj/%.o: %.c $(HEADERS) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(LIB_OBJS): CPPFLAGS += $(LIB_CPPFLAGS)

$(BUILD)/obj/tests/%.o: tests/%.c $(HEADERS) | $(DEPS_TEST_OK)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(TEST_CFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(STATIC_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

$(SHARED_LIB): $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined $(LDFLAGS) -o $@ $^ $(LDLIBS_DEPS)
	ln -sf libmoirai.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf libmoirai.so.$(VERSION) $(BUILD)/libmoirai.so

# C++ exceptions (std::bad_alloc from operator new) unwind through it.
$(DROPIN_OBJS): CPPFLAGS += $(LIB_CPPFLAGS) -Ialloc
$(DROPIN_OBJS): CFLAGS += -fexceptions

# Lean: the plumbing, the node binding and the allocator only (libc and
# libnuma, no hwloc or DPDK loaded into every preloaded process: each
# costs RSS and start-up), and only the allocation API exported (the map).
# -Bsymbolic-functions: its own calls stay inside it even in a program that
# links libmoirai.a itself (two copies then, see docs/alloc.md).
DROPIN_LIB_OBJS := $(filter $(BUILD)/obj/lib/% $(BUILD)/obj/alloc/%,$(LIB_OBJS)) \
	$(addprefix $(BUILD)/obj/numa/,bind.o resolve.o sysfs.o)
DROPIN_MAP  := alloc/override/libmoirai-malloc.map
$(DROPIN_SO): $(DROPIN_LIB_OBJS) $(DROPIN_OBJS) $(DROPIN_MAP)
	@mkdir -p $(@D)
	$(CC) -shared -Wl,-soname,$(DROPIN_SONAME) -Wl,--no-undefined -Wl,-Bsymbolic-functions \
		-Wl,--version-script=$(DROPIN_MAP) $(LDFLAGS) -o $@ $(filter %.o,$^) -lnuma -lpthread
	ln -sf libmoirai-malloc.so.$(VERSION) $(BUILD)/$(DROPIN_SONAME)
	ln -sf libmoirai-malloc.so.$(VERSION) $(BUILD)/libmoirai-malloc.so

$(DROPIN_A): $(DROPIN_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	ar rcs $@ $^

# moirai-bench records the commit it was built from (docs/bench.md).
MOIRAI_COMMIT := $(shell git rev-parse --short=12 HEAD 2>/dev/null)$(shell git diff --quiet HEAD -- 2>/dev/null; [ $$? -eq 1 ] && echo -dirty)
$(BUILD)/obj/tools/moirai-bench/machine.o: CPPFLAGS += -DMOIRAI_COMMIT='"$(MOIRAI_COMMIT)"'
$(BUILD)/obj/tools/moirai-bench/machine.o: $(BUILD)/commit.stamp
$(BUILD)/commit.stamp: FORCE
	@mkdir -p $(@D); echo '$(MOIRAI_COMMIT)' | cmp -s - $@ || echo '$(MOIRAI_COMMIT)' > $@
.PHONY: FORCE

# moirai-bench's sched suite has two peers that need more than C: OpenMP
# (bench_sched_omp.c, the only file built with -fopenmp; libgomp with gcc,
# libomp-dev with clang) and oneTBB (bench_sched_tbb.cpp, C++17 with the C++
# compiler that matches CC, linked with -ltbb; libtbb-dev is in the build
# class, like libck-dev, because make builds moirai-bench).
ifneq ($(findstring clang,$(CC)),)
  CXX := $(subst clang,clang++,$(CC))
endif
CXXFLAGS_ALL = -std=c++17 $(filter-out -std=c11 -Wstrict-prototypes -Wmissing-prototypes,$(CFLAGS))
$(BUILD)/obj/%.o: %.cpp $(HEADERS) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CXX) $(CPPFLAGS) $(CXXFLAGS_ALL) $(CXXFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/obj/tools/moirai-bench/bench_sched_omp.o: CFLAGS += -fopenmp
TOOL_OBJS_EXTRA_moirai-bench := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(wildcard tools/moirai-bench/*.cpp))

# Tools use the public API only; they link the static library so that they
# run from the build tree and install as single files.
TOOL_LIBS_moirai-bench := -lck -ldl -ltbb -fopenmp -lstdc++
# AF_XDP (tools/moirai-pipeline/xsk.c): libxdp and the libbpf it loads with.
XDP_LIBS    := -lxdp -lbpf
TOOL_LIBS_moirai-pipeline := -lpcap $(XDP_LIBS)
.SECONDEXPANSION:
$(BUILD)/bin/%: $$(addprefix $(BUILD)/obj/,$$(subst .c,.o,$$(wildcard tools/$$*/*.c))) $$(TOOL_OBJS_EXTRA_$$*) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC_LIB) $(TOOL_LIBS_$*) $(LDLIBS_DEPS)

# test_malloc_numa's malloc is the drop-in's (linked whole, as a static
# user would); not under a sanitizer, which owns malloc itself.
ifeq ($(SAN),)
$(BUILD)/tests/alloc/test_malloc_numa: $(DROPIN_A)
TEST_LINK_alloc/test_malloc_numa := -Wl,--whole-archive $(DROPIN_A) -Wl,--no-whole-archive
endif

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(TEST_COMMON_OBJS) $(STATIC_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(TEST_LINK_$*) $(STATIC_LIB) -lcmocka -lck $(TEST_LIBS) $(LDLIBS_DEPS)

# The AF_XDP wrapper of moirai-pipeline, tested on its own.
$(BUILD)/tests/xdp/test_xsk: $(BUILD)/obj/tools/moirai-pipeline/xsk.o
$(BUILD)/tests/xdp/test_xsk: TEST_LIBS := $(XDP_LIBS)

check: all $(TESTS)
	@MOIRAI_BUILD=$(BUILD) CC=$(CC) SAN=$(SAN) SANFLAGS="$(SANFLAGS)" tests/run-tests.sh $(TESTS) $(SCRIPT_TESTS)

# Every moirai-stress scenario for STRESS_SECS seconds, once clean and
# once with faults injected at every site (STRESS_FAULT), then the
# corrupt-topology fuzz at STRESS_FUZZ_COUNT seeds per source and parser:
# thousands of inputs where make check runs hundreds (docs/stress.md).
STRESS_SECS ?= 3
STRESS_FAULT_SECS ?= 1
STRESS_FAULT ?= arena_commit=7,pool_get=13,ring_enqueue=11
STRESS_FUZZ_COUNT ?= 200
stress: all $(BUILD)/tests/numa/test_topo_fuzz
	$(BUILD)/bin/moirai-stress all --duration $(STRESS_SECS)
	$(BUILD)/bin/moirai-stress all --duration $(STRESS_FAULT_SECS) --fault $(STRESS_FAULT)
	@MOIRAI_BUILD=$(BUILD) MOIRAI_FUZZ_COUNT=$(STRESS_FUZZ_COUNT) \
		tests/run-tests.sh $(BUILD)/tests/numa/test_topo_fuzz

# Every test with its loop counts x20.
stress-tests: all $(TESTS)
	@MOIRAI_BUILD=$(BUILD) CC=$(CC) MOIRAI_TEST_SCALE=20 tests/run-tests.sh $(TESTS)

check-numa: all $(TESTS)
	@tests/vm/check-numa.sh $(BUILD)

run: all
	@tools/run-demo.sh $(BUILD)

bench: all
	$(BUILD)/bin/moirai-bench all --quick --out $(BUILD)/bench --plot $(BUILD)/bench

install: all
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) \
		$(DESTDIR)$(INCLUDEDIR)/moirai $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/moirai.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 644 include/moirai/*.h $(DESTDIR)$(INCLUDEDIR)/moirai/
	install -m 644 $(STATIC_LIB) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(SHARED_LIB) $(DESTDIR)$(LIBDIR)/
	ln -sf libmoirai.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libmoirai.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmoirai.so
	install -m 644 $(DROPIN_A) $(DESTDIR)$(LIBDIR)/
	install -m 755 $(DROPIN_SO) $(DESTDIR)$(LIBDIR)/
	ln -sf libmoirai-malloc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(DROPIN_SONAME)
	ln -sf libmoirai-malloc.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libmoirai-malloc.so
	install -m 755 $(TOOLS) $(DESTDIR)$(BINDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    moirai.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/moirai.pc

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/moirai.h
	rm -rf $(DESTDIR)$(INCLUDEDIR)/moirai
	rm -f $(DESTDIR)$(LIBDIR)/libmoirai.a $(DESTDIR)$(LIBDIR)/libmoirai.so*
	rm -f $(DESTDIR)$(LIBDIR)/libmoirai-malloc.a $(DESTDIR)$(LIBDIR)/libmoirai-malloc.so*
	rm -f $(DESTDIR)$(PKGCONFIGDIR)/moirai.pc
	rm -f $(patsubst $(BUILD)/bin/%,$(DESTDIR)$(BINDIR)/%,$(TOOLS))

# Man pages (man/man1, written by hand): installed with the tools, the
# version filled in.
MANPAGES    := $(sort $(wildcard man/man1/*.1))
.PHONY: install-man uninstall-man doc check-fresh
install: install-man
uninstall: uninstall-man
install-man:
	install -d $(DESTDIR)$(MANDIR)/man1
	for m in $(MANPAGES); do \
		sed 's|@VERSION@|$(VERSION)|g' $$m > $(DESTDIR)$(MANDIR)/man1/$${m##*/} || exit 1; \
		chmod 644 $(DESTDIR)$(MANDIR)/man1/$${m##*/}; \
	done
uninstall-man:
	rm -f $(patsubst man/man1/%,$(DESTDIR)$(MANDIR)/man1/%,$(MANPAGES))

# The API reference from include/ (Doxyfile) into build/doc, failing on
# any doxygen warning not in tools/doxygen-known-warnings.txt.
doc:
	@tools/doc-check.sh build/doc

# README's commands on an empty Debian 12 root (debootstrap; root, ~8 min).
check-fresh:
	tests/fresh/fresh-root.sh

format:
	clang-format -i $$(git ls-files "*.c" "*.h" "*.cpp")

format-check:
	@tools/format-check.sh

clean:
	rm -rf build build-*

-include $(LIB_OBJS:.o=.d) $(DROPIN_OBJS:.o=.d) $(TEST_COMMON_OBJS:.o=.d) $(wildcard $(BUILD)/obj/tools/*/*.d) $(wildcard $(BUILD)/obj/tests/*/*.d)
