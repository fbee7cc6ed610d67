/* SPDX-License-Identifier: BSD-3-Clause */
/*
 * Addresses of network channels: "tcp://HOST:PORT", HOST an IPv4 address,
 * "[IPv6]" or a name (getaddrinfo), PORT decimal.
 */
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>

#include "net_int.h"

int net_parse_addr(const char *addr, bool listen, struct sockaddr_storage *ss, socklen_t *len)
{
	static const char scheme[] = "tcp://";
	char host[MOIRAI_NET_ADDR_MAX + 1];
	const char *h, *colon, *end;
	struct addrinfo hints, *res = NULL;
	size_t hl;
	char *pend;
	long port;
	int rc;

	if (!addr)
		return moirai__err(-EINVAL, "net: NULL address");
	if (strnlen(addr, MOIRAI_NET_ADDR_MAX + 1) > MOIRAI_NET_ADDR_MAX)
		return moirai__err(-EINVAL, "net: address longer than %d characters",
				   MOIRAI_NET_ADDR_MAX);
	if (strncmp(addr, scheme, sizeof(scheme) - 1) != 0)
		return moirai__err(
			-EINVAL, "net: cannot parse address '%s': expected tcp://HOST:PORT", addr);
	h = addr + sizeof(scheme) - 1;
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return moirai__err(
				-EINVAL,
				"net: cannot parse address '%s': expected tcp://[IPv6]:PORT", addr);
		colon = end + 1;
		h++;
		hl = (size_t)(end - h);
	} else {
		colon = strrchr(h, ':');
		if (!colon)
			return moirai__err(-EINVAL, "net: cannot parse address '%s': no :PORT",
					   addr);
		hl = (size_t)(colon - h);
		if (memchr(h, ':', hl))
			return moirai__err(
				-EINVAL, "net: cannot parse address '%s': an IPv6 host goes in []",
				addr);
	}
	if (hl == 0)
		return moirai__err(-EINVAL, "net: cannot parse address '%s': empty host", addr);
	memcpy(host, h, hl);
	host[hl] = '\0';
	errno = 0;
	port = strtol(colon + 1, &pend, 10);
	if (colon[1] < '0' || colon[1] > '9' || *pend || errno || port < (listen ? 0 : 1) ||
	    port > 65535)
		return moirai__err(-EINVAL, "net: cannot parse address '%s': port '%s' is not %s",
				   addr, colon + 1, listen ? "0..65535" : "1..65535");
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (listen ? AI_PASSIVE : 0);
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc || !res)
		return moirai__err(-EADDRNOTAVAIL, "net: host '%s' of '%s' does not resolve: %s",
				   host, addr, gai_strerror(rc));
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
