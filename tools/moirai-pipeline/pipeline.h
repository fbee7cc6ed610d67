/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * moirai-pipeline: one run of the pipeline on a moirai runtime
 * (pipeline.c) and what it measured.
 *
 *   source --RX poller--> classify --ring per class--> process tasks
 *          --TX ring--> TX poller --> sink
 *
 * The RX poller runs on worker 0, the TX poller on the last worker; every
 * worker processes (--io-worker: worker 0 runs both pollers and nothing
 * else, and tasks go to the other workers in turn).  The RX poller takes bursts from the source port, classifies
 * each packet (critical by DSCP or by the flow table), puts it on its
 * class's ring and spawns one process task for it at the class's priority
 * (--sched priority), or at one priority for every packet (--sched fifo:
 * one ring, every task normal; same workers, same work).  A process task
 * takes up to --batch packets, oldest first, from its ring, so packets of
 * one class are processed in arrival order whichever task runs first, and
 * yields between packets when more urgent work waits.  The TX poller
 * (last worker) sends to the sink, records arrival -> TX latency per
 * class and frees the buffers to their pools.
 */
#ifndef PL_PIPELINE_H
#define PL_PIPELINE_H

#include <stdbool.h>
#include <stdint.h>

#include <moirai.h>

#include "fwd.h"
#include "port.h"
#include "route.h"

enum pl_sched {
	PL_SCHED_PRIORITY = 0, /* critical packets on the critical level */
	PL_SCHED_FIFO = 1,     /* every packet on the normal level, one FIFO ring */
};

#define PL_MAX_CRIT_FLOWS 64
#define PL_MAX_WORKERS	  256
#define PL_MAX_NODES	  64
#define PL_MAX_FLOWS	  4096 /* per-flow table of the TX stage */

struct pl_flowmatch {
	uint32_t dst;	/* destination address, host order */
	uint16_t dport; /* UDP destination port; 0 = any */
};

struct pl_config {
	const struct pl_port_ops *src_ops, *sink_ops;
	struct pl_port_conf src, sink;
	struct moirai_plan_opts plan; /* workers (0: one per usable core), policy, ... */
	enum pl_sched sched;
	uint64_t crit_dscp; /* bit d set: DSCP d is critical */
	struct pl_flowmatch crit_flows[PL_MAX_CRIT_FLOWS];
	int ncrit_flows;
	const struct pl_route *routes;
	int nroutes;
	uint8_t port_mac[6];	  /* source MAC of forwarded frames */
	uint64_t route_period_ns; /* control thread replaces the table this often; 0 never */
	unsigned slow_iters;	  /* CRC32C rounds of the slow path */
	unsigned fast_iters;	  /* CRC32C rounds every packet takes (--fast-ns) */
	unsigned pool_size;	  /* buffers per node */
	unsigned ring_size;	  /* slots of each classify -> process ring */
	unsigned batch;		  /* packets per process task, at most */
	double drain_s;		  /* wait this long for in-flight packets after the source ends */
	bool progress;		  /* live line on stderr */
	bool per_flow;		  /* count per flow at TX */
	bool io_worker;		  /* worker 0 only polls (RX and TX); tasks go to the others */
	const char *label;	  /* for the progress line */
	/* --forward ADDR: after classify, packets go to the receiver at ADDR
	 * (fwd.h) instead of the process stage.  The receiver (--listen) is
	 * the source pl_net_in_ops with src.path its address. */
	const char *forward;
	/* Publish the runtime's stats for moirai-top (MOIRAI_RT_F_STATS: the
	 * segment is named after the pid, and each run's runtime takes the
	 * name again).  stats_required: a failure to publish fails the run;
	 * otherwise the run goes on without, and says why in the result. */
	bool stats, stats_required;
};

struct pl_flow_count {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint64_t packets, bytes;
};

struct pl_worker_result {
	int worker, pu, node;
	int plan_pu, plan_node; /* the plan's (another topology's under virtual placement) */
	double load;		/* share of the run in tasks and busy pollers */
	uint64_t tasks, steals, stolen_from, parks;
	uint64_t mailbox_full; /* submissions to it refused, retried later */
	uint64_t processed;    /* packets this worker's process tasks handled */
};

struct pl_mem_result {
	int node;
	unsigned pool_buffers;
	uint64_t pool_bytes;
	unsigned pool_peak_in_use;  /* sampled */
	uint64_t committed, in_use; /* allocator, whole node */
};

struct pl_result {
	enum pl_sched sched;
	uint64_t packets_in, bytes_in, packets_out, bytes_out;
	uint64_t drops[PL_DROP_REASONS];
	int64_t lost; /* in - out - drops (0 unless the drain timed out) */
	uint64_t checksum_in, checksum_out;
	uint64_t critical_in, slow_packets;
	uint64_t yields;	 /* process tasks that yielded to more urgent work */
	uint64_t buffers_leaked; /* pool objects not back at the end */
	double active_s;	 /* first arrival to source end */
	double elapsed_s;	 /* whole run */
	double pps;		 /* packets_in / active_s */
	struct moirai_hist lat[MOIRAI_PRIO_LEVELS]; /* arrival -> TX, by class */
	struct moirai_hist rx_lag;		    /* arrival -> taken by the RX poller */
	int nworkers;
	struct pl_worker_result w[PL_MAX_WORKERS];
	int nnodes;
	struct pl_mem_result mem[PL_MAX_NODES];
	uint64_t route_updates, routes_freed, route_bytes;
	int nflows;
	bool flows_truncated;
	struct pl_flow_count *flows; /* malloc'ed, sorted; free with pl_result_fini() */
	bool interrupted, drain_timeout;
	char src_error[256];
	int src_errno;
	/* --forward / --listen */
	bool fwd_send, fwd_listen;
	struct pl_fwd_stats fwd;
	uint64_t rx_paused; /* sender: RX polls skipped because a class's park queue was full */
	struct moirai_hist fwd_lat[MOIRAI_PRIO_LEVELS]; /* receiver: sender arrival -> TX */
	char net_error[256];				/* the peer failed (exit 1); "" none */
	char stats_name[MOIRAI_RT_STATS_NAME_MAX + 1];	/* segment published; "" none */
	char stats_error[256]; /* why not, when asked for and not required */
};

/* Run the pipeline once.  0, or -errno with a one-line message in @err
 * (setup failures: ports, runtime).  A source error during the run is in
 * @out->src_error (the run still reports what it did). */
int pl_run(const struct pl_config *cfg, struct pl_result *out, char *err, size_t errlen);
void pl_result_fini(struct pl_result *r);

/* Ask a running pl_run() to end its source now (signal handlers). */
void pl_interrupt(void);

/* Calibrate: mean fast-path processing time per packet (ns) over
 * generated traffic (with cfg->fast_iters rounds of inspection), and the
 * time of one CRC round over it. */
void pl_calibrate(const struct pl_config *cfg, double *fast_ns, double *iter_ns);

#endif /* PL_PIPELINE_H */
