/*
 * client_print.c - natpmp-client's lines: one per datagram that arrives,
 * NAT-PMP's fields or PCP's, so that people and scripts read the same thing.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "client_impl.h"
#include "tools/cli.h"
#include "wire/pcp.h"
#include "wire/proto.h"

/* ADDR:PORT, or [ADDR]:PORT for IPv6. */
const char *sin_str(const union sockname *a, char buf[INET6_ADDRSTRLEN + 8])
{
	char addr[INET6_ADDRSTRLEN];

	if (a->sa.sa_family == AF_INET6) {
		inet_ntop(AF_INET6, &a->v6.sin6_addr, addr, sizeof(addr));
		snprintf(buf, INET6_ADDRSTRLEN + 8, "[%s]:%u", addr, sockname_port(a));
	} else {
		inet_ntop(AF_INET, &a->v4.sin_addr, addr, sizeof(addr));
		snprintf(buf, INET6_ADDRSTRLEN + 8, "%s:%u", addr, sockname_port(a));
	}
	return buf;
}

/* A PCP response's fields (RFC 6887 7.2, 11.1); returns the length its opcode implies, 0 for none. */
static size_t print_pcp(const uint8_t *p, size_t len, int *result)
{
	char addr[INET6_ADDRSTRLEN];
	uint8_t op = p[1] & (uint8_t)~PCP_R;

	if (len < PCP_HEADER_LEN)
		return 0;
	*result = p[3];
	printf(" result=%d lifetime=%u epoch=%u", *result, proto_get32(p + 4), proto_get32(p + 8));
	if (op == PCP_OP_ANNOUNCE)
		return PCP_HEADER_LEN;
	if (op != PCP_OP_MAP || len < PCP_MAP_LEN)
		return 0;
	fputs(" nonce=", stdout);
	for (size_t i = 0; i < PCP_NONCE_LEN; i++)
		printf("%02x", p[PCP_HEADER_LEN + i]);
	printf(" protocol=%u internal=%u external=%u", p[36], proto_get16(p + 40), proto_get16(p + 42));
	/* An IPv4-mapped address prints as IPv4, the form scripts compare with. */
	if (memcmp(p + 44, "\0\0\0\0\0\0\0\0\0\0\xff\xff", 12) == 0)
		inet_ntop(AF_INET, p + 56, addr, sizeof(addr));
	else
		inet_ntop(AF_INET6, p + 44, addr, sizeof(addr));
	printf(" address=%s", addr);
	return PCP_MAP_LEN;
}

/*
 * One line per datagram.  Scripts parse these lines: keys are never renamed
 * or reordered, and a field is printed only when its bytes arrived.  Only a
 * version 0 reply has a known layout past the opcode; the rest of anything
 * else (PCP, a request, an unknown opcode) is shown in hex.  Returns the
 * result code, or -1 when the datagram carries none.
 */
int print_datagram(const char *label, const union sockname *from, const uint8_t *p, size_t len,
			  bool hex, int64_t rtt_us)
{
	char src[INET6_ADDRSTRLEN + 8], addr[INET_ADDRSTRLEN];
	struct in_addr a;
	size_t want = 0; /* the length the opcode implies; 0 when it implies none */
	int result = -1;

	errno = 0;
	printf("%s from=%s len=%zu", label, sin_str(from, src), len);
	if (len >= 1)
		printf(" version=%u", p[0]);
	if (len >= 2)
		printf(" opcode=%u", p[1]);
	if (len >= 2 && p[0] == NATPMP_VERSION && (p[1] & NATPMP_OP_REPLY)) {
		if (len >= 4) {
			result = proto_get16(p + 2);
			printf(" result=%d", result);
		}
		if (p[1] == (NATPMP_OP_REPLY | NATPMP_OP_ADDRESS))
			want = PROTO_ADDRESS_REPLY_LEN;
		else if (p[1] == (NATPMP_OP_REPLY | NATPMP_OP_MAP_UDP) || p[1] == (NATPMP_OP_REPLY | NATPMP_OP_MAP_TCP))
			want = PROTO_MAP_REPLY_LEN;
		/* An unknown opcode's answer echoes the request (RFC 6886 3.5): bytes 4-7 are no epoch. */
		if (want && len >= 8)
			printf(" epoch=%u", proto_get32(p + 4));
		if (want == PROTO_ADDRESS_REPLY_LEN && len >= 12) {
			memcpy(&a, p + 8, 4);
			printf(" address=%s", inet_ntop(AF_INET, &a, addr, sizeof(addr)));
		}
		if (want == PROTO_MAP_REPLY_LEN) {
			if (len >= 10)
				printf(" internal=%u", proto_get16(p + 8));
			if (len >= 12)
				printf(" external=%u", proto_get16(p + 10));
			if (len >= 16)
				printf(" lifetime=%u", proto_get32(p + 12));
		}
		/* RFC 6886 3.5: with a non-zero result the reply may end after the epoch. */
		if (want && len == PROTO_ERROR_REPLY_LEN && result > 0)
			want = len;
	}
	if (len >= 2 && p[0] == PCP_VERSION && (p[1] & PCP_R))
		want = print_pcp(p, len, &result);
	if (hex || want == 0 || len != want) {
		fputs(" hex=", stdout);
		for (size_t i = 0; i < len; i++)
			printf("%02x", p[i]);
	}
	/* Microseconds since the last send: the server's answer time, as a client sees it. */
	if (rtt_us >= 0)
		printf(" rtt_us=%lld", (long long)rtt_us);
	cli_end_line();
	return result;
}
