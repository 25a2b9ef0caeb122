/* test_pcp.c - the PCP codec against RFC 6887's server rules (8.2, 11.3, 13). */
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "wire/pcp.h"
#include "wire/proto.h"

/* 192.168.77.2 as PCP writes it: ::ffff:192.168.77.2. */
static const uint8_t CLIENT[16] = { [10] = 0xff, [11] = 0xff, 192, 168, 77, 2 };

/* A MAP request as libtorrent sends it: 60 bytes. */
static size_t map_request(uint8_t *b, uint8_t protocol, uint16_t internal, uint16_t suggested, uint32_t lifetime)
{
	memset(b, 0, PCP_MAP_LEN);
	b[0] = PCP_VERSION;
	b[1] = PCP_OP_MAP;
	proto_put32(b + 4, lifetime);
	memcpy(b + 8, CLIENT, 16);
	for (int i = 0; i < PCP_NONCE_LEN; i++)
		b[24 + i] = (uint8_t)(0xa0 + i);
	b[36] = protocol;
	proto_put16(b + 40, internal);
	proto_put16(b + 42, suggested);
	b[54] = b[55] = 0xff; /* suggested ::ffff:0.0.0.0, "any IPv4" */
	return PCP_MAP_LEN;
}

static size_t add_option(uint8_t *b, size_t len, uint8_t code, uint16_t optlen)
{
	b[len] = code;
	b[len + 1] = 0;
	proto_put16(b + len + 2, optlen);
	memset(b + len + 4, 0, (optlen + 3u) & ~3u);
	return len + 4 + ((optlen + 3u) & ~3u);
}

static void test_map(void)
{
	uint8_t b[PCP_MAX_DATAGRAM + 8], out[PCP_MAX_DATAGRAM], ext[16] = { [10] = 0xff, [11] = 0xff, 198, 51, 100, 1 };
	struct pcp_request r;
	size_t len = map_request(b, IPPROTO_TCP, 6881, 6881, 7200);

	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	CHECK_EQ(r.protocol, IPPROTO_TCP);
	CHECK_EQ(r.internal_port, 6881);
	CHECK_EQ(r.suggested_port, 6881);
	CHECK_EQ(r.lifetime, 7200);
	CHECK(memcmp(r.nonce, b + 24, PCP_NONCE_LEN) == 0);
	/* A success answer is exactly 60 bytes (libtorrent drops any other length) with the nonce echoed. */
	CHECK_EQ(pcp_encode_map(out, &r, PCP_SUCCESS, 3600, 42, 40000, ext), PCP_MAP_LEN);
	CHECK_EQ(out[0], PCP_VERSION);
	CHECK_EQ(out[1], PCP_OP_MAP | PCP_R);
	CHECK_EQ(out[3], PCP_SUCCESS);
	CHECK_EQ(proto_get32(out + 4), 3600);
	CHECK_EQ(proto_get32(out + 8), 42);
	CHECK(memcmp(out + 24, b + 24, PCP_NONCE_LEN) == 0);
	CHECK_EQ(out[36], IPPROTO_TCP);
	CHECK_EQ(proto_get16(out + 40), 6881);
	CHECK_EQ(proto_get16(out + 42), 40000);
	CHECK(memcmp(out + 44, ext, 16) == 0);
	/* A delete: lifetime 0 is a MAP too. */
	len = map_request(b, IPPROTO_UDP, 6881, 0, 0);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	CHECK_EQ(r.lifetime, 0);
}

static void test_drops_and_errors(void)
{
	uint8_t b[PCP_MAX_DATAGRAM + 8], out[PCP_MAX_DATAGRAM];
	uint8_t other[16] = { [10] = 0xff, [11] = 0xff, 192, 168, 77, 3 };
	struct pcp_request r;
	size_t len = map_request(b, IPPROTO_TCP, 6881, 0, 600), n;

	CHECK_EQ(pcp_decode(b, 1, CLIENT, &r), PCP_DROP);
	b[1] |= PCP_R; /* a response */
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_DROP);
	b[1] = PCP_OP_MAP;
	CHECK_EQ(pcp_decode(b, 20, CLIENT, &r), PCP_DROP); /* version 2, under 24 bytes */
	/* Another version: UNSUPP_VERSION, answered as version 2, a long error. */
	b[0] = 3;
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_UNSUPP_VERSION);
	n = pcp_encode_error(out, b, len, &r, 7);
	CHECK_EQ(n, len);
	CHECK_EQ(out[0], PCP_VERSION);
	CHECK_EQ(proto_get32(out + 4), PCP_LONG_ERROR_LIFETIME);
	b[0] = PCP_VERSION;
	/* Odd length, oversize, too short for MAP: MALFORMED_REQUEST. */
	CHECK_EQ(pcp_decode(b, len - 2, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_REQUEST);
	CHECK_EQ(pcp_decode(b, 1104, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_REQUEST);
	CHECK_EQ(pcp_decode(b, 56, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_REQUEST);
	/* An unparsed request's answer keeps the last 96 bits of the client address in the reserved field. */
	n = pcp_encode_error(out, b, 56, &r, 7);
	CHECK_EQ(n, 56);
	CHECK(memcmp(out + 12, CLIENT + 4, 12) == 0);
	/* PEER and unknown opcodes: UNSUPP_OPCODE, the whole request echoed. */
	b[1] = PCP_OP_PEER;
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_UNSUPP_OPCODE);
	b[1] = PCP_OP_MAP;
	/* ADDRESS_MISMATCH: the client field is not the packet's source; the answer is a full 60-byte echo. */
	CHECK_EQ(pcp_decode(b, len, other, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_ADDRESS_MISMATCH);
	n = pcp_encode_error(out, b, len, &r, 7);
	CHECK_EQ(n, PCP_MAP_LEN);
	CHECK(memcmp(out + 24, b + 24, PCP_MAP_DATA_LEN) == 0);
	CHECK(memcmp(out + 12, "\0\0\0\0\0\0\0\0\0\0\0\0", 12) == 0); /* parsed: reserved is 0 */
	/* Protocols: 0 with a port is malformed; others, and wildcards, are not served. */
	len = map_request(b, 0, 6881, 0, 600);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_REQUEST);
	len = map_request(b, 132 /* SCTP */, 6881, 0, 600);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_UNSUPP_PROTOCOL);
	len = map_request(b, IPPROTO_TCP, 0, 0, 600);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_UNSUPP_PROTOCOL);
	CHECK_EQ(pcp_error_lifetime(PCP_NO_RESOURCES), PCP_SHORT_ERROR_LIFETIME);
	CHECK_EQ(pcp_error_lifetime(PCP_NOT_AUTHORIZED), PCP_LONG_ERROR_LIFETIME);
}

static void test_options(void)
{
	uint8_t b[PCP_MAX_DATAGRAM + 8];
	struct pcp_request r;
	size_t len;

	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 6881, 600), PCP_OPTION_PREFER_FAILURE, 0);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	CHECK(r.prefer_failure);
	/* Twice: MALFORMED_OPTION. */
	len = add_option(b, len, PCP_OPTION_PREFER_FAILURE, 0);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_OPTION);
	/* On a delete it makes no sense: MALFORMED_OPTION (RFC 6887 11.3). */
	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 0, 0), PCP_OPTION_PREFER_FAILURE, 0);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_OPTION);
	/* THIRD_PARTY is recorded (the server decides whether to allow it). */
	len = add_option(b, map_request(b, IPPROTO_UDP, 6881, 0, 600), PCP_OPTION_THIRD_PARTY, 16);
	b[len - 16 + 10] = b[len - 16 + 11] = 0xff;
	b[len - 4] = 192, b[len - 3] = 168, b[len - 2] = 77, b[len - 1] = 9;
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	CHECK(r.third_party && r.third_party_address[15] == 9);
	/* FILTER counted; a bad prefix length is malformed. */
	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 0, 600), PCP_OPTION_FILTER, 20);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	CHECK_EQ(r.filters, 1);
	b[len - 20 + 1] = 129;
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_OPTION);
	/* Unknown mandatory (< 128): UNSUPP_OPTION; unknown optional: ignored. */
	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 0, 600), 99, 4);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_UNSUPP_OPTION);
	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 0, 600), 200, 4);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_MAP);
	/* An option longer than the datagram: MALFORMED_OPTION. */
	len = add_option(b, map_request(b, IPPROTO_TCP, 6881, 0, 600), 200, 4);
	proto_put16(b + len - 6, 400);
	CHECK_EQ(pcp_decode(b, len, CLIENT, &r), PCP_ERROR);
	CHECK_EQ(r.result, PCP_MALFORMED_OPTION);
}

static void test_announce(void)
{
	uint8_t b[PCP_HEADER_LEN] = { PCP_VERSION, PCP_OP_ANNOUNCE }, out[PCP_HEADER_LEN];
	struct pcp_request r;

	memcpy(b + 8, CLIENT, 16);
	CHECK_EQ(pcp_decode(b, sizeof(b), CLIENT, &r), PCP_ANNOUNCE);
	CHECK_EQ(pcp_encode_announce(out, PCP_SUCCESS, 99), PCP_HEADER_LEN);
	CHECK_EQ(out[1], PCP_OP_ANNOUNCE | PCP_R);
	CHECK_EQ(proto_get32(out + 4), 0);
	CHECK_EQ(proto_get32(out + 8), 99);
}

int main(void)
{
	test_map();
	test_drops_and_errors();
	test_options();
	test_announce();
	return check_exit();
}
