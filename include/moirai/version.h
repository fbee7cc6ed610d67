/* SPDX-License-Identifier: BSD-3-Clause */
/**
 * @file moirai/version.h
 * @brief The moirai version the program was compiled against.
 *
 * These macros describe the headers; moirai_version() (moirai/base.h)
 * describes the library the program runs with.  The two differ when an
 * application built against one release runs with another libmoirai.so.0
 * (docs/abi.md says which combinations work).  tests/pkg/test_version.sh
 * keeps these numbers equal to the Makefile's VERSION.
 *
 * Compile-time checks use MOIRAI_VERSION_NUMBER:
 * @code
 * #if MOIRAI_VERSION_NUMBER >= MOIRAI_VERSION_ENCODE(0, 2, 0)
 * @endcode
 */
#ifndef MOIRAI_VERSION_H
#define MOIRAI_VERSION_H

/* moirai_version(), the run-time counterpart of these macros. */
#include "moirai/base.h"

/** Major version: an ABI break after 1.0 (docs/abi.md). */
#define MOIRAI_VERSION_MAJOR 0
/** Minor version: new API, compatible. */
#define MOIRAI_VERSION_MINOR 1
/** Patch version: fixes only. */
#define MOIRAI_VERSION_PATCH 0
/** The version as text, "MAJOR.MINOR.PATCH", as moirai_version() returns it. */
#define MOIRAI_VERSION_STRING "0.1.0"

/** One comparable number for MAJOR.MINOR.PATCH (each part below 256). */
#define MOIRAI_VERSION_ENCODE(major, minor, patch) (((major) << 16) | ((minor) << 8) | (patch))
/** The headers' version as one number: MOIRAI_VERSION_ENCODE(MAJOR, MINOR, PATCH). */
#define MOIRAI_VERSION_NUMBER \
	MOIRAI_VERSION_ENCODE(MOIRAI_VERSION_MAJOR, MOIRAI_VERSION_MINOR, MOIRAI_VERSION_PATCH)

#endif /* MOIRAI_VERSION_H */
