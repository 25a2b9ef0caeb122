/*
 * client_impl.h - what natpmp-client's request side (client.c) and its
 * printing of answers (client_print.c) share.  Private to src/tools/.
 */
#ifndef NATPMP_TOOLS_CLIENT_IMPL_H
#define NATPMP_TOOLS_CLIENT_IMPL_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4 or IPv6 socket address (IPv6 speaks PCP only). */
union sockname {
	struct sockaddr sa;
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
};

static inline socklen_t sockname_len(const union sockname *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4);
}

/* The port of a, either family, host order. */
static inline uint16_t sockname_port(const union sockname *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port : a->v4.sin_port);
}

static inline void sockname_set_port(union sockname *a, uint16_t port)
{
	if (a->sa.sa_family == AF_INET6)
		a->v6.sin6_port = htons(port);
	else
		a->v4.sin_port = htons(port);
}

/* ADDR:PORT, or [ADDR]:PORT for IPv6, into buf; returns buf. */
const char *sin_str(const union sockname *a, char buf[INET6_ADDRSTRLEN + 8]);
/*
 * Prints one datagram as one line of key=value pairs (client_usage() lists
 * them); hex adds all its bytes; rtt_us < 0 leaves rtt_us= out.  Returns
 * its result code, or -1 when it carries none.
 */
int print_datagram(const char *label, const union sockname *from, const uint8_t *p, size_t len, bool hex,
		   int64_t rtt_us);

#endif
