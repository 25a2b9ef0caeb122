/*
 * fuzz_pcp.c - libFuzzer target for the PCP request decoder (wire/pcp.c).
 *
 * Each input is one datagram.  Its source address is, for one input in two
 * of 24 bytes or more, the client address the datagram itself carries, so
 * that the paths past ADDRESS_MISMATCH (opcode data, options) are reached.
 * The verdict is checked against an independent reading of RFC 6887 8.2's
 * header rules, and every answer the server would send is encoded into a
 * heap buffer of exactly its documented size (AddressSanitizer catches a
 * write past it) and checked field by field.  The same datagram then goes
 * through PCP's codec for the request turn (wire/codec.h), whose verdict
 * must agree and whose answers must echo the nonce in 60 bytes (64 with
 * PREFER_FAILURE).
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire/codec.h"
#include "wire/pcp.h"

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Whether a MAP request carries a FILTER option, by pcp_decode()'s own reading. */
static bool r_filters(const uint8_t *data, size_t size)
{
	struct pcp_request r;

	/* (Only asked of a MAP that decoded, so the client field is there and is the source.) */
	return pcp_decode(data, size, data + 8, &r) == PCP_MAP && r.filters > 0;
}

/* codec_pcp on the datagram from source, against pcp_decode()'s verdict v. */
static void fuzz_codec(const uint8_t *data, size_t size, const uint8_t source[16], enum pcp_verdict v)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in in = { .sin_family = AF_INET };
	const struct sockaddr *peer = (const struct sockaddr *)&in6;
	struct codec_request req;
	struct codec_answer a = { .epoch = 5, .external_address = 0x0164a8c0, .external_port = 4444, .lifetime = 99 };
	uint8_t *out = malloc(CODEC_MAX_REPLY);
	size_t n = 0;
	enum codec_verdict cv;

	REQUIRE(out != NULL);
	if (memcmp(source, mapped, 12) == 0) {
		memcpy(&in.sin_addr, source + 12, 4);
		peer = (const struct sockaddr *)&in;
	} else {
		memcpy(&in6.sin6_addr, source, 16);
	}
	cv = codec_pcp.decode(data, size, peer, 5, &req, out, &n);
	REQUIRE(cv == CODEC_ANSWERED ? n > 0 && n <= CODEC_MAX_REPLY : n == 0);
	if (v == PCP_DROP)
		REQUIRE(cv == CODEC_DROP);
	if (v == PCP_ANNOUNCE)
		REQUIRE(cv == CODEC_ADDRESS);
	if (v == PCP_ERROR)
		REQUIRE(cv == CODEC_ANSWERED && req.result != PCP_SUCCESS);
	if (cv == CODEC_ANSWERED && v == PCP_MAP) /* an option refused by the codec: FILTER */
		REQUIRE(req.result == PCP_UNSUPP_OPTION && r_filters(data, size));
	if (cv == CODEC_MAP) {
		REQUIRE(v == PCP_MAP && req.pcp && memcmp(req.nonce, data + 24, PCP_NONCE_LEN) == 0);
		for (a.result = 0; a.result <= 11; a.result++) {
			n = codec_pcp.encode(&req, &a, out);
			REQUIRE(n == PCP_MAP_LEN + (req.prefer_failure ? 4u : 0u) + (req.third_party ? 20u : 0u));
			REQUIRE(out[0] == PCP_VERSION && out[1] == (PCP_OP_MAP | PCP_R) && out[3] != 1);
			REQUIRE(memcmp(out + 24, data + 24, PCP_NONCE_LEN) == 0 && out[36] == data[36]);
			REQUIRE(memcmp(out + 40, data + 40, 2) == 0);
			/* A success carries the external address, IPv4-mapped. */
			if (a.result == 0 && req.lifetime)
				REQUIRE(memcmp(out + 44, mapped, 12) == 0 && memcmp(out + 56, &a.external_address, 4) == 0);
		}
	}
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t fixed[16] = { [10] = 0xff, [11] = 0xff, 192, 168, 77, 2 };
	const uint8_t *source = size >= 24 && (size & 4) ? data + 8 : fixed;
	struct pcp_request r;
	enum pcp_verdict v = pcp_decode(data, size, source, &r);
	uint8_t *out;
	size_t n;

	fuzz_codec(data, size, source, v);

	/* RFC 6887 8.2, in its order, for the header. */
	if (size < 2 || (data[1] & PCP_R)) {
		REQUIRE(v == PCP_DROP);
		return 0;
	}
	if (data[0] != PCP_VERSION) {
		REQUIRE(v == PCP_ERROR && r.result == PCP_UNSUPP_VERSION && !r.parsed);
	} else if (size < 24) {
		REQUIRE(v == PCP_DROP);
		return 0;
	} else if (size > PCP_MAX_DATAGRAM || size % 4) {
		REQUIRE(v == PCP_ERROR && r.result == PCP_MALFORMED_REQUEST);
	} else if ((data[1] & 0x7f) > PCP_OP_MAP) {
		REQUIRE(v == PCP_ERROR && r.result == PCP_UNSUPP_OPCODE);
	} else if ((data[1] & 0x7f) == PCP_OP_MAP && size < PCP_MAP_LEN) {
		REQUIRE(v == PCP_ERROR && r.result == PCP_MALFORMED_REQUEST);
	} else if (memcmp(data + 8, source, 16) != 0) {
		REQUIRE(v == PCP_ERROR && r.result == PCP_ADDRESS_MISMATCH);
	}
	REQUIRE(v != PCP_DROP);
	REQUIRE(r.opcode == (data[1] & 0x7f));

	if (v == PCP_ERROR) {
		REQUIRE(r.result != PCP_SUCCESS);
		REQUIRE((out = malloc(PCP_MAX_DATAGRAM)) != NULL);
		n = pcp_encode_error(out, data, size, &r, 12345);
		REQUIRE(n >= PCP_HEADER_LEN && n <= PCP_MAX_DATAGRAM && n % 4 == 0);
		REQUIRE(n == (size < PCP_HEADER_LEN ? PCP_HEADER_LEN : size > PCP_MAX_DATAGRAM ? PCP_MAX_DATAGRAM
											: (size + 3) & ~(size_t)3));
		REQUIRE(out[0] == PCP_VERSION && out[1] == (r.opcode | PCP_R) && out[2] == 0 && out[3] == r.result);
		REQUIRE(be32(out + 4) == pcp_error_lifetime(r.result) && be32(out + 8) == 12345);
		/* The rest of the request comes back as it was sent. */
		if (size > PCP_HEADER_LEN)
			REQUIRE(memcmp(out + PCP_HEADER_LEN, data + PCP_HEADER_LEN,
				       (size < PCP_MAX_DATAGRAM ? size : PCP_MAX_DATAGRAM) - PCP_HEADER_LEN) == 0);
		free(out);
		return 0;
	}
	REQUIRE(r.parsed && r.version == PCP_VERSION && r.lifetime == be32(data + 4));
	REQUIRE(memcmp(r.client, data + 8, 16) == 0);
	if (v == PCP_ANNOUNCE) {
		REQUIRE(r.opcode == PCP_OP_ANNOUNCE);
		REQUIRE((out = malloc(PCP_HEADER_LEN)) != NULL);
		REQUIRE(pcp_encode_announce(out, PCP_SUCCESS, 7) == PCP_HEADER_LEN);
		REQUIRE(out[1] == (PCP_OP_ANNOUNCE | PCP_R) && be32(out + 8) == 7);
		free(out);
		return 0;
	}
	REQUIRE(v == PCP_MAP && r.opcode == PCP_OP_MAP && size >= PCP_MAP_LEN);
	REQUIRE(memcmp(r.nonce, data + 24, PCP_NONCE_LEN) == 0 && r.protocol == data[36]);
	REQUIRE(r.internal_port == be16(data + 40) && r.suggested_port == be16(data + 42));
	REQUIRE(memcmp(r.suggested_address, data + 44, 16) == 0);
	/* What the server serves: TCP or UDP with a port, or any delete. */
	REQUIRE(r.lifetime == 0 || ((r.protocol == IPPROTO_TCP || r.protocol == IPPROTO_UDP) && r.internal_port));
	REQUIRE(!(r.prefer_failure && r.lifetime == 0));
	REQUIRE((out = malloc(PCP_MAP_LEN)) != NULL);
	REQUIRE(pcp_encode_map(out, &r, PCP_SUCCESS, 600, 9, 40000, r.suggested_address) == PCP_MAP_LEN);
	REQUIRE(out[1] == (PCP_OP_MAP | PCP_R) && be32(out + 4) == 600 && be32(out + 8) == 9);
	REQUIRE(memcmp(out + 24, data + 24, PCP_NONCE_LEN) == 0 && out[36] == data[36]);
	REQUIRE(be16(out + 40) == r.internal_port && be16(out + 42) == 40000);
	REQUIRE(memcmp(out + 44, r.suggested_address, 16) == 0);
	free(out);
	return 0;
}
