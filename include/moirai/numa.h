/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/numa.h
 * @brief Machine topology, the pinning planner, and CPU/memory binding.
 *
 * Design: a struct moirai_topo is an immutable snapshot of a machine —
 * the live one through hwloc, or a foreign one from an hwloc XML file or a
 * synthetic description — flattened into arrays of PUs, cores, L3 domains
 * and NUMA nodes so that queries never touch hwloc again.  Indexes into
 * those arrays are logical (0..count-1 in topology order); every struct also
 * carries the OS index, which is what taskset, numactl and the binding calls
 * take.  Vocabulary (as in moirai/base.h): a field or parameter called
 * @c node or @c pu is an OS number; a logical NUMA node index is called
 * @c node_idx (@c core, @c l3 and @c package are always logical).  The
 * planner turns a snapshot into a deterministic worker -> PU plan with a
 * steal order per worker.  The binding calls act on the live machine
 * only.  A topology or plan is read-only after creation and may be shared by
 * any number of threads.
 *
 * Foreign topologies (XML files, synthetic descriptions, MOIRAI_TOPOLOGY)
 * are input from outside the program, and loading one never crashes or
 * hangs the process, whatever the bytes:
 * - An XML file is read once (at most 32 MiB, a regular file) and checked
 *   by moirai before hwloc parses the same bytes: only what hwloc 2's own
 *   exporter writes is accepted (syntax, elements, typed attribute values,
 *   every CPU-side and memory object with its four sets, sets nested in
 *   their parent's, siblings disjoint and in order, one PU per CPU number,
 *   one NUMA node per node number; see numa/topo_xml.c).  hwloc 2.9 itself
 *   crashes on files that break these rules, with either of its parsers.
 * - hwloc must read XML with libxml2 (package libhwloc-plugins): when it
 *   would use its minimal built-in parser instead (plugin missing, or
 *   HWLOC_LIBXML=0 / HWLOC_LIBXML_IMPORT=0), XML loads fail with -ENOTSUP
 *   and a message naming the package.  The minimal parser crashes on
 *   corrupt files that libxml2 rejects cleanly; the check above is the
 *   first defence and libxml2 the second.
 * - Size: at most MOIRAI_TOPO_MAX_PUS PUs, MOIRAI_TOPO_MAX_NODES NUMA
 *   nodes and 1024 children per object, checked before hwloc builds
 *   anything, so an oversized description fails at once.  The live
 *   machine is not capped.
 * - What hwloc returns is checked again (dense indexes, distinct OS
 *   numbers, no Core inside a Core, every PU of a core on one node, sane
 *   distances); an inconsistent topology is refused with -EINVAL.
 * - hwloc's own multi-line stderr messages are switched off: the first
 *   load sets HWLOC_HIDE_ERRORS=2 for hwloc (unless the environment sets
 *   it already) and removes it from the environment again.  hwloc reads
 *   that variable once per process, so a process that made hwloc report
 *   an error before its first moirai load keeps hwloc's choice.
 * The detail of every refusal is in moirai_last_error(), one line.
 */
#ifndef MOIRAI_NUMA_H
#define MOIRAI_NUMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "moirai/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * Most PUs a foreign topology may have.  The largest single-image machines
 * Linux runs have a few thousand hardware threads (SGI UV 2000: 4096;
 * HPE Superdome Flex: 1792; IBM Power E1080: 1920).
 */
#define MOIRAI_TOPO_MAX_PUS 4096
/** Most NUMA nodes a foreign topology may have (Linux's MAX_NUMNODES). */
#define MOIRAI_TOPO_MAX_NODES 1024

/** Opaque topology snapshot. */
struct moirai_topo;
/** Opaque pinning plan. */
struct moirai_plan;

/** Where a topology came from. */
enum moirai_topo_source {
	MOIRAI_TOPO_LIVE,      /**< this machine, through hwloc */
	MOIRAI_TOPO_XML,       /**< an hwloc XML export */
	MOIRAI_TOPO_SYNTHETIC, /**< an hwloc synthetic description */
};

/** One processing unit (hardware thread). */
struct moirai_topo_pu {
	int os_index;  /**< OS CPU number (taskset) */
	int core;      /**< logical index of its core */
	int l3;	       /**< logical index of its L3 domain, -1 if none */
	int node_idx;  /**< logical index of its NUMA node, -1 if none */
	int node;      /**< OS index of its NUMA node (numactl), -1 if none */
	int package;   /**< logical index of its package, -1 if none */
	int smt_rank;  /**< 0 for the first PU of its core, 1 for its sibling, ... */
	bool online;   /**< the OS runs it */
	bool allowed;  /**< in the cgroup cpuset and the process affinity mask */
	bool isolated; /**< listed in isolcpus= or nohz_full= (live machine) */
};

/** One NUMA node. */
struct moirai_topo_node {
	int os_index;		   /**< OS node number (numactl -m) */
	int package;		   /**< logical package index, -1 if none */
	uint64_t memory_bytes;	   /**< local memory */
	int pu_count;		   /**< PUs whose nearest node this is */
	bool mem_allowed;	   /**< cgroup MemsAllowed lets us allocate here */
	int64_t hugepages_2m_free; /**< free 2 MiB pages, -1 when unknown */
	int64_t hugepages_1g_free; /**< free 1 GiB pages, -1 when unknown */
};

/** One I/O device hwloc reports (network and OpenFabrics). */
struct moirai_topo_device {
	const char *name; /**< "eth0", "mlx5_0", ... (owned by the topology) */
	const char *kind; /**< "network" or "openfabrics" */
	int node_idx;	  /**< logical index of its NUMA node, -1 if unknown */
	int node;	  /**< OS index of its NUMA node, -1 if unknown */
};

/**
 * Load a topology: the file or synthetic description in the
 * MOIRAI_TOPOLOGY option if set (a path that exists, or a value containing
 * '/' or ".xml", loads as XML, anything else as synthetic), else the live
 * machine.
 * @param[out] out the new topology.
 * @return 0; the codes of moirai_topo_load_xml(),
 *         moirai_topo_load_synthetic() or moirai_topo_load_live().
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_load(struct moirai_topo **out);

/**
 * Load the live machine, ignoring MOIRAI_TOPOLOGY.
 * @param[out] out the new topology.
 * @return 0; -EINVAL NULL @p out; -ENOMEM; -EIO hwloc failed or reported
 *         an inconsistent machine. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_live(struct moirai_topo **out);

/**
 * Load an hwloc XML export (lstopo-no-graphics --of xml FILE), checked as
 * the file comment above says.
 * @param path the file.
 * @param[out] out the new topology.
 * @return 0; -EINVAL NULL argument, not a regular file, larger than
 *         32 MiB, not an hwloc 2 export, corrupt, inconsistent, or larger
 *         than the caps (the message gives the line and the reason);
 *         -ENOENT no such file; -ENOTSUP hwloc would parse it with its
 *         minimal parser (install libhwloc-plugins); -EIO read error;
 *         -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_xml(const char *path, struct moirai_topo **out);

/**
 * Load an hwloc synthetic description such as "pack:2 numa:2 core:4 pu:2".
 * @param desc the description.
 * @param[out] out the new topology.
 * @return 0; -EINVAL NULL or invalid description, or one larger than the
 *         caps (MOIRAI_TOPO_MAX_PUS PUs, MOIRAI_TOPO_MAX_NODES nodes, 1024
 *         per level, OS indexes below 8192); -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_synthetic(const char *desc, struct moirai_topo **out);

/**
 * Free a topology. NULL is a no-op. Not safe while other threads use it.
 * @param topo the topology.
 */
MOIRAI_API void moirai_topo_destroy(struct moirai_topo *topo);

/**
 * Where a topology came from.
 * @param topo the topology.
 * @return its source; MOIRAI_TOPO_LIVE for NULL. Thread-safe.
 */
MOIRAI_API enum moirai_topo_source moirai_topo_source(const struct moirai_topo *topo);

/**
 * Packages (sockets) of a topology.
 * @param topo the topology.
 * @return the count; 0 when the topology has no Package level, or for NULL.
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_package_count(const struct moirai_topo *topo);

/**
 * NUMA nodes of a topology.
 * @param topo the topology.
 * @return the count (at least 1); 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_topo_node_count(const struct moirai_topo *topo);

/**
 * L3 domains of a topology.
 * @param topo the topology.
 * @return the count; 0 when the topology has no L3 cache, or for NULL.
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_l3_count(const struct moirai_topo *topo);

/**
 * Cores of a topology; one without Core objects counts each PU as its own
 * core.
 * @param topo the topology.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_topo_core_count(const struct moirai_topo *topo);

/**
 * PUs of a topology: the PUs in hwloc's tree, which are the online ones
 * (an offline CPU has no PU, so it has no index either).
 * @param topo the topology.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_topo_pu_count(const struct moirai_topo *topo);

/**
 * PUs that are online and allowed (usable): in the cgroup cpuset and, for
 * the live machine, in the process affinity mask.
 * @param topo the topology.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_topo_allowed_pu_count(const struct moirai_topo *topo);

/**
 * Describe PU number @p idx (logical, 0..pu_count-1, topology order).
 * @param topo the topology.
 * @param idx logical PU index.
 * @param[out] out the description.
 * @return 0; -EINVAL NULL @p topo or @p out; -ERANGE @p idx out of range.
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_pu(const struct moirai_topo *topo, int idx, struct moirai_topo_pu *out);

/**
 * Describe NUMA node number @p node_idx (logical, 0..node_count-1).
 * @param topo the topology.
 * @param node_idx logical node index.
 * @param[out] out the description.
 * @return 0; -EINVAL NULL @p topo or @p out; -ERANGE @p node_idx out of
 *         range.  Thread-safe.
 */
MOIRAI_API int moirai_topo_node(const struct moirai_topo *topo, int node_idx,
				struct moirai_topo_node *out);

/**
 * OS indexes of the PUs of node @p node_idx, in topology order.
 * @param topo the topology.
 * @param node_idx logical node index.
 * @param[out] pus array to fill (may be NULL when @p max is 0).
 * @param max capacity of @p pus.
 * @return the number of PUs of the node (which may exceed @p max: only
 *         @p max are written); -EINVAL; -ERANGE bad node_idx. Thread-safe.
 */
MOIRAI_API int moirai_topo_node_pus(const struct moirai_topo *topo, int node_idx, int *pus,
				    int max);

/**
 * Logical index of the node whose OS index is @p node.
 * @param topo the topology.
 * @param node OS node number.
 * @return the node_idx; -EINVAL NULL topo; -ENODEV when no node has that
 *         OS index. Thread-safe.
 */
MOIRAI_API int moirai_topo_node_by_os(const struct moirai_topo *topo, int node);

/**
 * Logical index of the PU whose OS index is @p pu.
 * @param topo the topology.
 * @param pu OS CPU number.
 * @return the index; -EINVAL NULL topo; -ENODEV when no PU has that OS
 *         index. Thread-safe.
 */
MOIRAI_API int moirai_topo_pu_by_os(const struct moirai_topo *topo, int pu);

/**
 * Whether the topology carries a NUMA distance matrix (without one,
 * moirai_topo_distance() answers 10 or 20).
 * @param topo the topology.
 * @return true when it has one; false for NULL. Thread-safe.
 */
MOIRAI_API bool moirai_topo_has_distances(const struct moirai_topo *topo);

/**
 * Relative distance between two nodes given by logical index, 10 = local,
 * as in the ACPI SLIT.  Without a matrix, 10 for a == b and 20 otherwise.
 * (moirai_numa_distance() takes OS node numbers on the live machine.)
 * @param topo the topology.
 * @param a_node_idx logical index of one node.
 * @param b_node_idx logical index of the other.
 * @return the distance (> 0); -ERANGE bad index; -EINVAL NULL topo.
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_distance(const struct moirai_topo *topo, int a_node_idx, int b_node_idx);

/**
 * Network and OpenFabrics devices hwloc found.
 * @param topo the topology.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_topo_device_count(const struct moirai_topo *topo);

/**
 * Describe device number @p idx (0..device_count-1).
 * @param topo the topology.
 * @param idx device index.
 * @param[out] out the description; its strings belong to @p topo.
 * @return 0; -EINVAL NULL @p topo or @p out; -ERANGE @p idx out of range.
 *         Thread-safe.
 */
MOIRAI_API int moirai_topo_device(const struct moirai_topo *topo, int idx,
				  struct moirai_topo_device *out);

/**
 * Logical NUMA node index of the device named @p name.
 * @param topo the topology.
 * @param name the device name ("eth0", "mlx5_0").
 * @return the node_idx (>= 0); -EINVAL NULL argument; -ENODEV no such
 *         device; -ENODATA the device has no NUMA locality. Thread-safe.
 */
MOIRAI_API int moirai_topo_device_node_idx(const struct moirai_topo *topo, const char *name);

/**
 * OS NUMA node number of the device named @p name (what numactl takes).
 * @param topo the topology.
 * @param name the device name ("eth0", "mlx5_0").
 * @return the node (>= 0); -EINVAL NULL argument; -ENODEV no such device;
 *         -ENODATA the device has no NUMA locality. Thread-safe.
 */
MOIRAI_API int moirai_topo_device_node(const struct moirai_topo *topo, const char *name);

/**
 * CPU bandwidth quota of the process's cgroup, in thousandths of a CPU
 * (cpu.max in v2, cfs_quota_us/cfs_period_us in v1), live machine only;
 * read when the topology was loaded.
 * @param topo the topology.
 * @return the quota; -ENODATA when none is set, the topology is foreign,
 *         or @p topo is NULL.  Thread-safe.
 */
MOIRAI_API long moirai_topo_cpu_quota_milli(const struct moirai_topo *topo);

/** Placement policies of the planner. */
enum moirai_plan_policy {
	MOIRAI_PLAN_COMPACT, /**< fill one L3, then one node, before the next */
	MOIRAI_PLAN_SPREAD,  /**< round-robin across nodes, then across L3s */
};

/** Planner input beyond the topology.  Zero-initialised = defaults. */
struct moirai_plan_opts {
	int workers;			/**< worker count; 0 = every usable core (or PU with smt) */
	enum moirai_plan_policy policy; /**< default compact */
	bool smt;			/**< allow SMT siblings (one worker per PU) */
	int reserve;			/**< keep the first N usable cores free for housekeeping */
	bool reserve_per_node;		/**< keep the first usable core of every node free */
	bool use_isolated;		/**< plan isolated CPUs (isolcpus/nohz_full) too */
	const char *near_device;	/**< place workers on this device's node first */
};

/** One worker of a plan. */
struct moirai_plan_worker {
	int worker;		/**< worker id, 0..count-1 */
	int pu;			/**< OS index of its PU */
	int core;		/**< logical core index */
	int node;		/**< OS index of its NUMA node */
	int node_idx;		/**< logical index of its NUMA node */
	int l3;			/**< logical L3 index, -1 if none */
	int steal_count;	/**< entries in steal_order (count - 1) */
	const int *steal_order; /**< other workers, nearest first (owned by the plan) */
};

/**
 * Plan worker placement.  The plan's invariants (every worker on its own
 * usable PU, every steal order a permutation of the other workers) are
 * checked before it is returned, in release builds too.  Steal orders take
 * O(workers^2) time and memory: 4096 workers, the most a foreign topology
 * allows, take 64 MiB and well under a second.
 * @param topo the topology.
 * @param opts options; NULL means defaults.
 * @param[out] out the plan.
 * @return 0; -EINVAL bad options (or a plan that breaks its invariants,
 *         which a checked topology cannot produce); -ERANGE more workers
 *         than usable cores (the message says how many are usable);
 *         -ENODEV unknown near_device; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_plan_create(const struct moirai_topo *topo,
				  const struct moirai_plan_opts *opts, struct moirai_plan **out);

/**
 * Free a plan. Not safe while others use it.
 * @param plan the plan; NULL is a no-op.
 */
MOIRAI_API void moirai_plan_destroy(struct moirai_plan *plan);

/**
 * Workers in a plan.
 * @param plan the plan.
 * @return the count; 0 for NULL. Thread-safe.
 */
MOIRAI_API int moirai_plan_worker_count(const struct moirai_plan *plan);

/**
 * Describe worker @p idx.
 * @param plan the plan.
 * @param idx worker id, 0..worker_count-1.
 * @param[out] out the worker; its steal_order belongs to @p plan.
 * @return 0; -EINVAL NULL @p plan or @p out; -ERANGE @p idx out of range.
 *         Thread-safe.
 */
MOIRAI_API int moirai_plan_worker(const struct moirai_plan *plan, int idx,
				  struct moirai_plan_worker *out);

/**
 * Name of a placement policy.
 * @param p the policy.
 * @return a static string ("compact" or "spread"); NULL for an unknown
 *         value.  Thread-safe.
 */
MOIRAI_API const char *moirai_plan_policy_name(enum moirai_plan_policy p);

/**
 * Parse a policy name, as moirai_plan_policy_name() spells it.
 * @param name "compact" or "spread".
 * @param[out] out the policy, set only on success.
 * @return 0; -EINVAL unknown or NULL @p name, or NULL @p out. Thread-safe.
 */
MOIRAI_API int moirai_plan_policy_parse(const char *name, enum moirai_plan_policy *out);

/* ---- The live machine ------------------------------------------------ */

/*
 * These calls act on (or read) the machine the process runs on, never a
 * foreign topology; node numbers are OS numbers.  Node errors are the same
 * in every module: -ENODEV the node does not exist (or has no memory),
 * -EPERM it exists but the cgroup's cpuset.mems does not allow it, -EINVAL
 * a negative number other than MOIRAI_NODE_ANY.  Queries (hugepages,
 * distances) answer for every existing node, allowed or not.  While a
 * foreign topology is alive in the process, the first pin or bind logs a
 * warning: its CPU and node numbers are another machine's.
 */

/**
 * Highest NUMA node OS index + 1 on the live machine, read once per
 * process; node numbers below it may still be absent (numbering can have
 * holes).
 * @return the count (>= 1; 1 without NUMA support). Thread-safe.
 */
MOIRAI_API int moirai_numa_node_count(void);

/**
 * Whether memory can be bound to live node @p node: the node exists, has
 * memory and is in the cgroup's MemsAllowed.  Each node's state is read
 * once per process.
 * @param node OS node number (MOIRAI_NODE_ANY is not a node: false).
 * @return true when it can; false otherwise, without recording an error.
 *         Thread-safe.
 */
MOIRAI_API bool moirai_numa_node_is_allowed(int node);

/**
 * Check a node argument the way every moirai module does, and resolve
 * MOIRAI_NODE_ANY to the caller's node (or, when the caller's node has no
 * memory this process may use, the first node that has).
 * @param node OS node index or MOIRAI_NODE_ANY.
 * @return the OS node (>= 0); -EINVAL a negative value other than
 *         MOIRAI_NODE_ANY; -ENODEV no such node, or it has no memory (or,
 *         for MOIRAI_NODE_ANY, no node is usable); -EPERM the node exists
 *         but the cgroup's cpuset.mems does not allow it.  Each failure
 *         records a message.  Thread-safe.
 */
MOIRAI_API int moirai_numa_node_resolve(int node);

/**
 * Pin the calling thread to one PU.  Usable PUs are those in the affinity
 * mask the process had when libmoirai was loaded (what taskset gave it;
 * threads may narrow their own masks later without shrinking this set),
 * online and in the cgroup's cpuset.
 * @param pu OS CPU index.
 * @return 0; -EINVAL @p pu negative or beyond the CPU numbers the kernel
 *         supports, or not usable by this process (outside the start-up
 *         affinity mask, offline, or outside the cgroup cpuset; the message
 *         says which).  Thread-safe (affects the caller only).
 */
MOIRAI_API int moirai_numa_pin_thread(int pu);

/**
 * Bind a page-aligned range to one node with MPOL_BIND, before first touch
 * (pages already present are migrated with MPOL_MF_MOVE).
 * @param addr page-aligned start.
 * @param len length in bytes (> 0).
 * @param node OS node index.
 * @return 0; -EINVAL unaligned/empty range, or a negative @p node;
 *         -ENODEV no such node or no memory on it; -EPERM the cgroup does
 *         not allow the node; -EFAULT part of the range is not mapped;
 *         -ENOMEM; -EIO pages could not be moved.  Thread-safe.
 */
MOIRAI_API int moirai_numa_bind_range(void *addr, size_t len, int node);

/**
 * Bind a fresh range (mapped and never touched, so no page is present) to
 * one node with MPOL_BIND, without MPOL_MF_MOVE: there is nothing to
 * migrate, and the move flag makes the kernel drain every CPU's page
 * lists and wait for it (milliseconds on a busy machine, per call).  A
 * page that is present anyway stays where it is.
 * @param addr page-aligned start.
 * @param len length in bytes (> 0).
 * @param node OS node index.
 * @return 0; the errors of moirai_numa_bind_range() except -EIO.
 *         Thread-safe.
 */
MOIRAI_API int moirai_numa_bind_fresh(void *addr, size_t len, int node);

/**
 * Bind a range to a node with MPOL_PREFERRED: the kernel falls back to
 * other nodes when @p node is full.  Pages already present are not moved.
 * @param addr page-aligned start.
 * @param len length in bytes (> 0).
 * @param node OS node index.
 * @return 0; the errors of moirai_numa_bind_range() except -EIO.
 *         Thread-safe.
 */
MOIRAI_API int moirai_numa_prefer_range(void *addr, size_t len, int node);

/**
 * Node of the page holding @p addr (move_pages with NULL nodes).  The page
 * must be touched first.
 * @param addr any address in the page.
 * @return the OS node index; -ENOENT page not present yet (never touched;
 *         kernels before 6.x may say -EFAULT); -EFAULT address not mapped;
 *         -EINVAL NULL; other -errno from move_pages. Thread-safe.
 */
MOIRAI_API int moirai_numa_page_node(const void *addr);

/**
 * Map @p len bytes (rounded up to pages) bound to @p node before first
 * touch; MOIRAI_NODE_ANY uses the caller's node (or the first usable one,
 * as moirai_numa_node_resolve() does).  For long-lived, large buffers
 * (rings, arenas); not an allocator.
 * @param len size in bytes (> 0).
 * @param node OS node index or MOIRAI_NODE_ANY.
 * @param[out] out the mapping.
 * @return 0; -EINVAL bad size, NULL @p out or negative @p node; -ENODEV no
 *         such node or no memory on it; -EPERM the cgroup does not allow
 *         the node; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_numa_map(size_t len, int node, void **out);

/**
 * Unmap what moirai_numa_map() returned.
 * @param addr the mapping; NULL is a no-op (returns 0).
 * @param len the length given to moirai_numa_map().
 * @return 0; -EINVAL @p len 0 or too large, or @p addr not page-aligned
 *         (munmap's answer). Thread-safe.
 */
MOIRAI_API int moirai_numa_unmap(void *addr, size_t len);

/**
 * OS CPU index the caller is running on (getcpu).
 * @return the CPU; -errno on failure. Thread-safe.
 */
MOIRAI_API int moirai_numa_current_cpu(void);

/**
 * OS NUMA node the caller is running on (getcpu).
 * @return the node; -errno on failure. Thread-safe.
 */
MOIRAI_API int moirai_numa_current_node(void);

/**
 * Free hugepages of one size on one live node
 * (/sys/devices/system/node/nodeN/hugepages/hugepages-SkB/free_hugepages).
 * @param page_size page size in bytes, e.g. 2 MiB or 1 GiB.
 * @param node OS node index.
 * @return the count (>= 0); -EINVAL @p page_size not a power of two of at
 *         least 4 KiB, or a negative @p node; -ENODEV no such node;
 *         -EOPNOTSUPP the kernel has no hugepages of that size; -EIO the
 *         file could not be read or parsed.  Reads sysfs on every call.
 *         Thread-safe.
 */
MOIRAI_API long moirai_numa_hugepages_free(size_t page_size, int node);

/**
 * Hugepages of one size reserved on one live node (nr_hugepages), free or
 * in use.
 * @param page_size the hugepage size in bytes (2 MiB, 1 GiB).
 * @param node OS node index.
 * @return the count (>= 0); the errors of moirai_numa_hugepages_free().
 *         Thread-safe.
 */
MOIRAI_API long moirai_numa_hugepages_total(size_t page_size, int node);

/** Transparent hugepage modes (/sys/kernel/mm/transparent_hugepage/enabled). */
enum moirai_numa_thp {
	MOIRAI_NUMA_THP_NEVER,	 /**< "[never]": no THP */
	MOIRAI_NUMA_THP_MADVISE, /**< "[madvise]": THP for MADV_HUGEPAGE ranges */
	MOIRAI_NUMA_THP_ALWAYS,	 /**< "[always]": THP everywhere */
};

/**
 * The kernel's transparent hugepage mode.
 * @return an enum moirai_numa_thp value (>= 0); -EOPNOTSUPP the kernel has
 *         no THP (no sysfs file); -EIO unreadable or unknown contents.
 *         Reads sysfs on every call.  Thread-safe.
 */
MOIRAI_API int moirai_numa_thp_mode(void);

/**
 * Distance between two live nodes as the kernel reports it
 * (/sys/devices/system/node/nodeN/distance, the ACPI SLIT: 10 = local).
 * Read once per process and cached.  Without distance information, 10 for
 * a node to itself and 20 otherwise (as moirai_topo_distance()).
 * @param node_a OS index of one node.
 * @param node_b OS index of the other.
 * @return the distance (> 0); -EINVAL a negative node; -ENODEV either node
 *         does not exist. Thread-safe.
 */
MOIRAI_API int moirai_numa_distance(int node_a, int node_b);

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_NUMA_H */
