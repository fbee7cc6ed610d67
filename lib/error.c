/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Error codes and messages.  Functions return 0 or a negative errno value;
 * the human detail of the most recent failure is kept per thread so that a
 * caller (or a tool) can print exactly what was wrong without the library
 * ever writing to stderr on its own.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define ERRMSG_MAX 512

static _Thread_local char last_error[ERRMSG_MAX];

const char *moirai_version(void)
{
	return MOIRAI_VERSION;
}

const char *moirai_strerror(int err)
{
	if (err < 0)
		err = -err;
	if (err == 0)
		return "success";
	/* strerror() may use a static buffer; strerrordesc_np() is MT-safe. */
	const char *s = strerrordesc_np(err);

	return s ? s : "unknown error";
}

const char *moirai_last_error(void)
{
	return last_error;
}

void moirai_clear_error(void)
{
	last_error[0] = '\0';
}

int moirai__err(int code, const char *fmt, ...)
{
	char msg[ERRMSG_MAX];
	va_list ap;

	/*
	 * Formatted aside first: callers wrap a lower layer's detail
	 * ("pool x: %s", moirai_last_error()), and vsnprintf into the buffer
	 * it reads from overwrites the detail before copying it.
	 */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	memcpy(last_error, msg, sizeof(last_error));
	moirai__log(MOIRAI_LOG_DEBUG, "%s (%s)", last_error, moirai_strerror(code));
	return code;
}
