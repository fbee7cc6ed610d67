/* SPDX-License-Identifier: BSD-3-Clause */
/* moirai-pipeline: the generator's state, shared with the calibration and
 * the tests (gen.c). */
#ifndef PL_GEN_H
#define PL_GEN_H

#include <stdbool.h>
#include <stdint.h>

#include "port.h"

#define PL_GEN_BLOCK 4096 /* bytes of seeded payload material */

struct pl_gen {
	uint64_t seed, arrival_rng;
	double rate, critical_share, slow_share;
	unsigned flows, critical_flows;
	uint64_t duration_ns, start_ns;
	uint64_t next_ns; /* offset of the next arrival from start */
	uint64_t seq;	  /* index of the next packet */
	uint8_t block[PL_GEN_BLOCK];
	uint64_t prefix[PL_GEN_BLOCK / 2 + 1]; /* sums of its first k 16-bit words */
};

void pl_gen_init(struct pl_gen *g, const struct pl_port_conf *c);
/* Build packet @i into @f (PL_PKT_DATA bytes); returns its length and
 * its flow index (critical flows first) and class. */
uint32_t pl_gen_frame(const struct pl_gen *g, uint64_t i, uint8_t *f, uint32_t *flow, bool *crit);

#endif /* PL_GEN_H */
