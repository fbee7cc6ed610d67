/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Helper of tests/alloc/test_malloc_dropin.sh: a library that allocates in
 * its constructor, frees in its destructor, and hands out a block that its
 * caller frees after dlclose.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *dropin_lib_make(int i);

static char *table;

__attribute__((constructor)) static void lib_init(void)
{
	table = malloc(4096);
	if (table)
		memset(table, 'L', 4096);
}

__attribute__((destructor)) static void lib_fini(void)
{
	free(table);
}

char *dropin_lib_make(int i)
{
	char *s = malloc(64);

	if (s)
		snprintf(s, 64, "lib %d %c", i, table ? table[i] : '?');
	return s;
}
