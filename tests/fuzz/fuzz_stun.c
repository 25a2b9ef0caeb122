/*
 * fuzz_stun.c - libFuzzer target for the STUN response decoder (wire/stun.c).
 *
 * Each input is one datagram, read as the answer to the transaction id in
 * its own bytes 8-19 (so that the attribute paths are reached) or, when the
 * top bit of its byte 11 is set, to a fixed one.  The verdict is checked against an
 * independent reading of RFC 8489 6.3's header rules, and an answer's
 * addresses against what a response may carry.
 */
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "wire/stun.h"

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void check_address(const struct stun_address *a)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	REQUIRE(a->family == 4 || a->family == 6);
	if (a->family == 4)
		REQUIRE(memcmp(a->addr, mapped, 12) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t fixed[STUN_TXID_LEN] = "natpmp-fuzz";
	const uint8_t *txid = size >= STUN_HEADER_LEN && !(data[11] & 0x80) ? data + 8 : fixed;
	struct stun_response r;
	enum stun_verdict v = stun_decode_response(data, size, txid, &r);
	uint8_t req[STUN_MAX_REQUEST];

	if (size < STUN_HEADER_LEN || (data[0] & 0xc0) || be32(data + 4) != STUN_MAGIC_COOKIE ||
	    memcmp(data + 8, txid, STUN_TXID_LEN) != 0 ||
	    ((data[0] << 8 | data[1]) != STUN_BINDING_SUCCESS && (data[0] << 8 | data[1]) != STUN_BINDING_ERROR)) {
		REQUIRE(v == STUN_NOT_OURS);
		return 0;
	}
	REQUIRE(v != STUN_NOT_OURS);
	if ((size_t)(data[2] << 8 | data[3]) != size - STUN_HEADER_LEN || (size - STUN_HEADER_LEN) % 4)
		REQUIRE(v == STUN_MALFORMED);
	if (v != STUN_ANSWER)
		return 0;
	REQUIRE(r.success == ((data[0] << 8 | data[1]) == STUN_BINDING_SUCCESS));
	if (r.success) {
		REQUIRE(r.has_mapped);
		check_address(&r.mapped);
	} else {
		REQUIRE(r.error_code >= 300 && r.error_code <= 699);
	}
	if (r.has_other)
		check_address(&r.other);
	if (r.has_origin)
		check_address(&r.origin);
	/* A request for this transaction is never read as its own answer. */
	REQUIRE(stun_decode_response(req, stun_encode_binding(req, txid, data[size - 1] & 6), txid, &r) == STUN_NOT_OURS);
	return 0;
}
