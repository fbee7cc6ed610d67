/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * What the tools share for their --json output (header only: tools/ holds
 * one directory per tool, and a .c here would be taken for one).
 */
#ifndef MOIRAI_TOOL_JSON_H
#define MOIRAI_TOOL_JSON_H

#include <stdio.h>

/* @s as a JSON string on @f: quotes, backslashes and control bytes escaped
 * (bytes >= 0x80 pass through: the tools print UTF-8 or ASCII names). */
static inline void tool_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

#endif /* MOIRAI_TOOL_JSON_H */
