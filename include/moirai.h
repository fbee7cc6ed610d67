/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai.h
 * @brief Umbrella header: includes every public moirai module.
 */
#ifndef MOIRAI_H
#define MOIRAI_H

#include "moirai/version.h"
#include "moirai/base.h"
#include "moirai/numa.h"
#include "moirai/alloc.h"
#include "moirai/ring.h"
#include "moirai/channel.h"
#include "moirai/pool.h"
#include "moirai/shm.h"
#include "moirai/hist.h"
#include "moirai/rt.h"
#include "moirai/net.h"

#endif /* MOIRAI_H */
