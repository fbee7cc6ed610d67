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
 * take.  The planner turns a snapshot into a deterministic worker -> PU plan
 * with a steal order per worker.  The binding calls act on the live machine
 * only.  A topology or plan is read-only after creation and may be shared by
 * any number of threads.
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
	int node;      /**< logical index of its NUMA node, -1 if none */
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
	int node;	  /**< logical index of its NUMA node, -1 if unknown */
};

/**
 * Load a topology: the file or synthetic description in the
 * MOIRAI_TOPOLOGY option if set (a path that exists loads as XML, anything
 * else as synthetic), else the live machine.
 * @param[out] out the new topology.
 * @return 0; -EINVAL bad description or file; -ENOENT missing file;
 *         -ENOMEM; -EIO hwloc failure. Thread-safe.
 */
MOIRAI_API int moirai_topo_load(struct moirai_topo **out);

/**
 * Load the live machine, ignoring MOIRAI_TOPOLOGY.
 * @param[out] out the new topology.
 * @return 0; -ENOMEM; -EIO hwloc failure. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_live(struct moirai_topo **out);

/**
 * Load an hwloc XML export.
 * @param path the file.
 * @param[out] out the new topology.
 * @return 0; -EINVAL NULL argument or unparsable XML; -ENOENT no such file;
 *         -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_xml(const char *path, struct moirai_topo **out);

/**
 * Load an hwloc synthetic description such as "pack:2 numa:2 core:4 pu:2".
 * @param desc the description.
 * @param[out] out the new topology.
 * @return 0; -EINVAL NULL or invalid description; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_topo_load_synthetic(const char *desc, struct moirai_topo **out);

/**
 * Free a topology. NULL is a no-op. Not safe while other threads use it.
 * @param topo the topology.
 */
MOIRAI_API void moirai_topo_destroy(struct moirai_topo *topo);

/** @return where @p topo came from. Thread-safe. */
MOIRAI_API enum moirai_topo_source moirai_topo_source(const struct moirai_topo *topo);

/** @return number of packages (0 when the topology has no Package level). */
MOIRAI_API int moirai_topo_package_count(const struct moirai_topo *topo);
/** @return number of NUMA nodes (at least 1). */
MOIRAI_API int moirai_topo_node_count(const struct moirai_topo *topo);
/** @return number of L3 domains (0 when the topology has no L3 cache). */
MOIRAI_API int moirai_topo_l3_count(const struct moirai_topo *topo);
/**
 * @return number of cores; a topology without Core objects counts each PU
 * as its own core.
 */
MOIRAI_API int moirai_topo_core_count(const struct moirai_topo *topo);
/** @return number of PUs, online or not. */
MOIRAI_API int moirai_topo_pu_count(const struct moirai_topo *topo);
/** @return number of PUs that are online and allowed (usable). */
MOIRAI_API int moirai_topo_allowed_pu_count(const struct moirai_topo *topo);

/**
 * Describe PU number @p idx (logical, 0..pu_count-1, topology order).
 * @return 0; -EINVAL bad arguments; -ERANGE idx out of range. Thread-safe.
 */
MOIRAI_API int moirai_topo_pu(const struct moirai_topo *topo, int idx, struct moirai_topo_pu *out);

/**
 * Describe NUMA node number @p idx (logical, 0..node_count-1).
 * @return 0; -EINVAL bad arguments; -ERANGE idx out of range. Thread-safe.
 */
MOIRAI_API int moirai_topo_node(const struct moirai_topo *topo, int idx,
				struct moirai_topo_node *out);

/**
 * OS indexes of the PUs of node @p idx, in topology order.
 * @param topo the topology.
 * @param idx logical node index.
 * @param[out] pus array to fill (may be NULL when @p max is 0).
 * @param max capacity of @p pus.
 * @return the number of PUs of the node (which may exceed @p max: only
 *         @p max are written); -EINVAL; -ERANGE bad idx. Thread-safe.
 */
MOIRAI_API int moirai_topo_node_pus(const struct moirai_topo *topo, int idx, int *pus, int max);

/**
 * Logical index of the node whose OS index is @p os_index.
 * @return the index; -ENODEV when no node has that OS index. Thread-safe.
 */
MOIRAI_API int moirai_topo_node_by_os(const struct moirai_topo *topo, int os_index);

/**
 * Logical index of the PU whose OS index is @p os_index.
 * @return the index; -ENODEV when no PU has that OS index. Thread-safe.
 */
MOIRAI_API int moirai_topo_pu_by_os(const struct moirai_topo *topo, int os_index);

/** @return true when the topology carries a NUMA distance matrix. */
MOIRAI_API bool moirai_topo_has_distances(const struct moirai_topo *topo);

/**
 * Relative distance between two nodes (logical indexes), 10 = local, as in
 * the ACPI SLIT.  Without a matrix, 10 for a == b and 20 otherwise.
 * @return the distance; -ERANGE bad index; -EINVAL NULL topo. Thread-safe.
 */
MOIRAI_API int moirai_topo_distance(const struct moirai_topo *topo, int a, int b);

/** @return number of network/OpenFabrics devices found. */
MOIRAI_API int moirai_topo_device_count(const struct moirai_topo *topo);

/**
 * Describe device number @p idx.
 * @return 0; -EINVAL; -ERANGE. Thread-safe.
 */
MOIRAI_API int moirai_topo_device(const struct moirai_topo *topo, int idx,
				  struct moirai_topo_device *out);

/**
 * Logical NUMA node index of the device named @p name.
 * @return the node (>= 0); -ENODEV no such device; -ENODATA the device has
 *         no NUMA locality. Thread-safe.
 */
MOIRAI_API int moirai_topo_device_node(const struct moirai_topo *topo, const char *name);

/**
 * CPU bandwidth quota of the process's cgroup, in thousandths of a CPU
 * (cpu.max in v2, cfs_quota_us/cfs_period_us in v1), live machine only.
 * @return the quota; -ENODATA when none is set or the topology is foreign.
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
 * Plan worker placement.
 * @param topo the topology.
 * @param opts options; NULL means defaults.
 * @param[out] out the plan.
 * @return 0; -EINVAL bad options; -ERANGE more workers than usable cores
 *         (the message says how many are usable); -ENODEV unknown
 *         near_device; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_plan_create(const struct moirai_topo *topo,
				  const struct moirai_plan_opts *opts, struct moirai_plan **out);

/** Free a plan; NULL is a no-op. Not safe while others use it. */
MOIRAI_API void moirai_plan_destroy(struct moirai_plan *plan);

/** @return number of workers in the plan. Thread-safe. */
MOIRAI_API int moirai_plan_worker_count(const struct moirai_plan *plan);

/**
 * Describe worker @p idx.
 * @return 0; -EINVAL; -ERANGE. Thread-safe.
 */
MOIRAI_API int moirai_plan_worker(const struct moirai_plan *plan, int idx,
				  struct moirai_plan_worker *out);

/** @return the policy name ("compact" or "spread"), NULL if unknown. */
MOIRAI_API const char *moirai_plan_policy_name(enum moirai_plan_policy p);

/**
 * Parse a policy name.
 * @return 0 and *out set; -EINVAL unknown name. Thread-safe.
 */
MOIRAI_API int moirai_plan_policy_parse(const char *name, enum moirai_plan_policy *out);

/* ---- Binding on the live machine ------------------------------------ */

/**
 * Highest NUMA node OS index + 1 on the live machine (>= 1).
 * Thread-safe.
 */
MOIRAI_API int moirai_numa_node_count(void);

/**
 * Whether memory can be bound to live node @p node: the node exists, has
 * memory and is in the cgroup's MemsAllowed.
 * Thread-safe.
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
 * Pin the calling thread to one PU.
 * @param pu OS CPU index.
 * @return 0; -EINVAL pu out of range or not allowed for this process.
 *         Thread-safe (affects the caller only).
 */
MOIRAI_API int moirai_numa_pin_thread(int pu);

/**
 * Bind a page-aligned range to one node with MPOL_BIND, before first touch
 * (pages already present are migrated with MPOL_MF_MOVE).
 * @param addr page-aligned start.
 * @param len length in bytes (> 0).
 * @param node OS node index.
 * @return 0; -EINVAL unaligned/empty range or node not allowed; -ENOMEM;
 *         -EIO pages could not be moved. Thread-safe.
 */
MOIRAI_API int moirai_numa_bind_range(void *addr, size_t len, int node);

/**
 * Bind a range to a node with MPOL_PREFERRED: the kernel falls back to
 * other nodes when @p node is full.
 * @return 0; -EINVAL. Thread-safe.
 */
MOIRAI_API int moirai_numa_prefer_range(void *addr, size_t len, int node);

/**
 * Node of the page holding @p addr (move_pages with NULL nodes).  The page
 * must be touched first.
 * @return the OS node index; -ENOENT page not present yet (never touched;
 *         kernels before 6.x may say -EFAULT); -EFAULT address not mapped;
 *         -EINVAL NULL; other -errno from move_pages. Thread-safe.
 */
MOIRAI_API int moirai_numa_page_node(const void *addr);

/**
 * Map @p len bytes (rounded up to pages) bound to @p node before first
 * touch; MOIRAI_NODE_ANY uses the caller's node.  For long-lived, large
 * buffers (rings, arenas); not an allocator.
 * @param[out] out the mapping.
 * @return 0; -EINVAL bad size or node; -ENOMEM. Thread-safe.
 */
MOIRAI_API int moirai_numa_map(size_t len, int node, void **out);

/**
 * Unmap what moirai_numa_map() returned (same @p len). NULL is a no-op.
 * @return 0; -EINVAL. Thread-safe.
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

#ifdef __cplusplus
}
#endif

#endif /* MOIRAI_NUMA_H */
