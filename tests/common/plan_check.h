/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Plan invariants shared by the topology and planner tests: every worker on
 * a distinct usable PU, no SMT siblings without smt, spread visits every
 * node before reusing one, compact never returns to a node it left, steal
 * orders hold every other worker once, sorted nearest first.
 */
#ifndef MOIRAI_TEST_PLAN_CHECK_H
#define MOIRAI_TEST_PLAN_CHECK_H

#include <moirai/numa.h>

/* Plans @opts on @t, checks every invariant, returns the worker count. */
int check_plan(const struct moirai_topo *t, const struct moirai_plan_opts *opts);

/* Usable physical cores (or PUs with smt) of @t, honouring isolation. */
int usable_slots(const struct moirai_topo *t, bool smt, bool use_isolated);

#endif
