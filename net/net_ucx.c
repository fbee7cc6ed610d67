/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * UCX is loaded on the first moirai_net_create(), not linked: libucp
 * brings libucm, which interposes mmap, munmap and madvise in every
 * process that links it (a moirai program that never opens a network
 * channel would pay for it, and under ThreadSanitizer a thread exit then
 * crashes inside ucm_madvise).  The functions net.c calls are resolved
 * once into net_ucx (net_int.h redirects their names there).
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#define NET_UCX_NO_REDIRECT
#include "net_int.h"

struct net_ucx net_ucx;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int load_rc;
static char load_err[256];

#define NET_UCX_SYM(lib, name)                                                       \
	do {                                                                         \
		*(void **)&net_ucx.name = dlsym(lib, #name);                         \
		if (!net_ucx.name) {                                                 \
			snprintf(load_err, sizeof(load_err), "no %s in UCX", #name); \
			return -ENODEV;                                              \
		}                                                                    \
	} while (0)

static int load_all(void)
{
	void *ucp = dlopen("libucp.so.0", RTLD_NOW | RTLD_LOCAL);
	void *ucs = ucp ? dlopen("libucs.so.0", RTLD_NOW | RTLD_LOCAL) : NULL;

	if (!ucp || !ucs) {
		snprintf(load_err, sizeof(load_err), "%s (install libucx0)", dlerror());
		return -ENODEV;
	}
	NET_UCX_SYM(ucs, ucs_status_string);
	NET_UCX_SYM(ucp, ucp_config_read);
	NET_UCX_SYM(ucp, ucp_config_modify);
	NET_UCX_SYM(ucp, ucp_config_release);
	NET_UCX_SYM(ucp, ucp_init_version);
	NET_UCX_SYM(ucp, ucp_cleanup);
	NET_UCX_SYM(ucp, ucp_worker_create);
	NET_UCX_SYM(ucp, ucp_worker_destroy);
	NET_UCX_SYM(ucp, ucp_worker_get_efd);
	NET_UCX_SYM(ucp, ucp_worker_arm);
	NET_UCX_SYM(ucp, ucp_worker_progress);
	NET_UCX_SYM(ucp, ucp_worker_set_am_recv_handler);
	NET_UCX_SYM(ucp, ucp_am_send_nbx);
	NET_UCX_SYM(ucp, ucp_am_data_release);
	NET_UCX_SYM(ucp, ucp_request_check_status);
	NET_UCX_SYM(ucp, ucp_request_free);
	NET_UCX_SYM(ucp, ucp_ep_create);
	NET_UCX_SYM(ucp, ucp_ep_close_nbx);
	NET_UCX_SYM(ucp, ucp_listener_create);
	NET_UCX_SYM(ucp, ucp_listener_destroy);
	NET_UCX_SYM(ucp, ucp_listener_query);
	NET_UCX_SYM(ucp, ucp_listener_reject);
	/* Both stay loaded for the life of the process. */
	return 0;
}

static void load_once(void)
{
	load_rc = load_all();
}

int net_ucx_load(void)
{
	pthread_once(&once, load_once);
	if (load_rc)
		return moirai__err(load_rc, "net: cannot load UCX: %s", load_err);
	return 0;
}
