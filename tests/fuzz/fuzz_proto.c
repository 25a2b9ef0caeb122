/*
 * fuzz_proto.c - libFuzzer target for the NAT-PMP request decoder.
 *
 * Each input is one datagram.  proto_decode() classifies it; the verdict is
 * checked against an independent reading of RFC 6886, and the encoder the
 * server would use for that verdict writes its answer into a heap buffer of
 * exactly the documented size, so that AddressSanitizer catches any write
 * past it.  The same datagram is also read as a gateway's answer, as
 * upstream mode reads them, and checked field by field.  Last, the datagram
 * goes through the request turn's codec interface (codec_for, decode,
 * encode), which must agree with the decoder and encoders underneath.  A violated
 * invariant calls abort(), which libFuzzer reports as a crash with the input
 * that caused it.
 */
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wire/codec.h"
#include "wire/proto.h"


static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Bytes of the input reused as field values for the encoders, zero past its end. */
static uint32_t pick32(const uint8_t *data, size_t size, size_t at)
{
	uint8_t b[4] = { 0 };

	for (size_t i = 0; i < 4 && at + i < size; i++)
		b[i] = data[at + i];
	return be32(b);
}

/* RFC 6886 sections 3.1-3.5 as the server applies them, written independently of proto.c. */
static enum proto_verdict expected_verdict(const uint8_t *data, size_t size)
{
	if (size < 2 || (data[1] & 0x80))
		return PROTO_DROP;
	if (data[0] != 0)
		return PROTO_BAD_VERSION;
	if (data[1] == 0)
		return PROTO_ADDRESS;
	if (data[1] == 1 || data[1] == 2)
		return size >= 12 ? PROTO_MAP : PROTO_DROP;
	return PROTO_UNSUPPORTED_OPCODE;
}

static void check_header(const uint8_t *out, uint8_t opcode, uint16_t result, uint32_t epoch)
{
	REQUIRE(out[0] == NATPMP_VERSION);
	REQUIRE(out[1] == (opcode | NATPMP_OP_REPLY));
	REQUIRE(be16(out + 2) == result);
	REQUIRE(be32(out + 4) == epoch);
}

static void check_address(const uint8_t *data, size_t size)
{
	uint16_t result = (uint16_t)pick32(data, size, 2);
	uint32_t epoch = pick32(data, size, 4), addr = pick32(data, size, 8);
	uint8_t *out = malloc(PROTO_ADDRESS_REPLY_LEN);

	REQUIRE(out);
	REQUIRE(proto_encode_address(out, result, epoch, addr) == PROTO_ADDRESS_REPLY_LEN);
	check_header(out, NATPMP_OP_ADDRESS, result, epoch);
	REQUIRE(memcmp(out + 8, &addr, 4) == 0);
	free(out);
}

static void check_map(const uint8_t *data, size_t size, const struct proto_request *req)
{
	uint16_t result = (uint16_t)pick32(data, size, 12);
	uint16_t external = (uint16_t)pick32(data, size, 14);
	uint32_t epoch = pick32(data, size, 16);
	uint8_t *out = malloc(PROTO_MAP_REPLY_LEN);

	REQUIRE(size >= PROTO_MAP_REQUEST_LEN);
	REQUIRE(data[0] == NATPMP_VERSION);
	REQUIRE(data[1] == NATPMP_OP_MAP_UDP || data[1] == NATPMP_OP_MAP_TCP);
	REQUIRE(req->version == data[0] && req->opcode == data[1]);
	REQUIRE(req->protocol == (data[1] == NATPMP_OP_MAP_UDP ? IPPROTO_UDP : IPPROTO_TCP));
	REQUIRE(proto_protocol_to_opcode(req->protocol) == req->opcode);
	REQUIRE(strcmp(proto_protocol_name(req->protocol), data[1] == NATPMP_OP_MAP_UDP ? "udp" : "tcp") == 0);
	REQUIRE(req->internal_port == be16(data + 4));
	REQUIRE(req->suggested_port == be16(data + 6));
	REQUIRE(req->lifetime == be32(data + 8));

	REQUIRE(out);
	REQUIRE(proto_encode_map(out, req->opcode, result, epoch, req->internal_port, external, req->lifetime) ==
		PROTO_MAP_REPLY_LEN);
	check_header(out, req->opcode, result, epoch);
	REQUIRE(be16(out + 8) == req->internal_port);
	REQUIRE(be16(out + 10) == external);
	REQUIRE(be32(out + 12) == req->lifetime);
	free(out);
}

static void check_bad_version(const uint8_t *data, size_t size, const struct proto_request *req)
{
	uint32_t epoch = pick32(data, size, 4);
	uint8_t *out = malloc(PROTO_ERROR_REPLY_LEN);

	REQUIRE(data[0] != NATPMP_VERSION && !(data[1] & NATPMP_OP_REPLY));
	REQUIRE(out);
	REQUIRE(proto_encode_bad_version(out, req->opcode, epoch) == PROTO_ERROR_REPLY_LEN);
	check_header(out, req->opcode <= NATPMP_OP_MAP_TCP ? req->opcode : NATPMP_OP_ADDRESS,
		     NATPMP_RESULT_UNSUPPORTED_VERSION, epoch);
	free(out);
}

static void check_unsupported_opcode(const uint8_t *data, size_t size)
{
	size_t copied = size < PROTO_MAX_DATAGRAM ? size : PROTO_MAX_DATAGRAM;
	size_t want = copied < 4 ? 4 : copied;
	/* Exactly the buffer the server reads datagrams into: a write past it is an ASan report. */
	uint8_t *out = malloc(PROTO_MAX_DATAGRAM);
	size_t n;

	REQUIRE(data[0] == NATPMP_VERSION && data[1] > NATPMP_OP_MAP_TCP && !(data[1] & NATPMP_OP_REPLY));
	REQUIRE(out);
	n = proto_encode_unsupported_opcode(out, data, size);
	REQUIRE(n == want && n <= PROTO_MAX_DATAGRAM);
	REQUIRE(out[0] == data[0]);
	REQUIRE(out[1] == (data[1] | NATPMP_OP_REPLY));
	REQUIRE(be16(out + 2) == NATPMP_RESULT_UNSUPPORTED_OPCODE);
	if (copied > 4)
		REQUIRE(memcmp(out + 4, data + 4, copied - 4) == 0);
	free(out);
}

/* proto_decode_reply(): accepted exactly when RFC 6886 makes it a gateway's answer, fields where they are. */
static void check_reply(const uint8_t *data, size_t size)
{
	struct proto_reply r;
	int ok = proto_decode_reply(data, size, &r);
	uint8_t op = size >= 2 ? data[1] & 0x7f : 0;
	size_t full = op == 0 ? 12 : 16;
	int want = size >= 8 && data[0] == 0 && (data[1] & 0x80) && op <= 2 &&
		   (size >= full || be16(data + 2) != 0);

	REQUIRE((ok == 0) == want);
	if (ok < 0)
		return;
	REQUIRE(r.opcode == op && r.result == be16(data + 2) && r.epoch == be32(data + 4));
	if (size >= full && op != 0)
		REQUIRE(r.internal_port == be16(data + 8) && r.external_port == be16(data + 10) &&
			r.lifetime == be32(data + 12));
	if (size >= full && op == 0)
		REQUIRE(memcmp(&r.address, data + 8, 4) == 0);
}

/* The request turn's view (wire/codec.h): the same verdict, the same replies, each in a buffer of its exact size. */
static void check_codec(const uint8_t *data, size_t size, enum proto_verdict v, const struct proto_request *req)
{
	/* Version 0 is NAT-PMP's, every other PCP's (fuzz_pcp.c); NAT-PMP's codec still answers those as it must. */
	const struct codec *c = &codec_natpmp;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct codec_request cr;
	struct codec_answer a = { .result = (uint16_t)pick32(data, size, 2), .epoch = pick32(data, size, 4),
				  .external_address = pick32(data, size, 8), .external_port = (uint16_t)pick32(data, size, 14),
				  .lifetime = pick32(data, size, 16) };
	uint8_t *out = malloc(CODEC_MAX_REPLY), *want = malloc(CODEC_MAX_REPLY), *small;
	size_t n = 12345, wn;
	enum codec_verdict cv;

	REQUIRE(out && want);
	REQUIRE(codec_for(data, size) == (size && data[0] != NATPMP_VERSION ? &codec_pcp : &codec_natpmp));
	cv = c->decode(data, size, (const struct sockaddr *)&peer, a.epoch, &cr, out, &n);
	REQUIRE(cv == cr.verdict);
	REQUIRE(cv == (v == PROTO_DROP ? CODEC_DROP : v == PROTO_ADDRESS ? CODEC_ADDRESS : v == PROTO_MAP ? CODEC_MAP
											    : CODEC_ANSWERED));
	REQUIRE(cr.metric_op <= CODEC_METRIC_OTHER_VERSION);
	REQUIRE((cr.metric_op == CODEC_METRIC_OTHER_VERSION) == (v == PROTO_BAD_VERSION));
	REQUIRE(cv == CODEC_ANSWERED ? n > 0 && n <= CODEC_MAX_REPLY : n == 0);
	if (cv == CODEC_ANSWERED) {
		wn = v == PROTO_BAD_VERSION ? proto_encode_bad_version(want, req->opcode, a.epoch)
					    : proto_encode_unsupported_opcode(want, data, size);
		REQUIRE(n == wn && memcmp(out, want, n) == 0);
		REQUIRE(cr.result == (v == PROTO_BAD_VERSION ? NATPMP_RESULT_UNSUPPORTED_VERSION
							     : NATPMP_RESULT_UNSUPPORTED_OPCODE));
	}
	if (cv == CODEC_MAP) {
		REQUIRE(cr.protocol == req->protocol && cr.internal_port == req->internal_port &&
			cr.suggested_port == req->suggested_port && cr.lifetime == req->lifetime && cr.opcode == req->opcode);
		REQUIRE((small = malloc(PROTO_MAP_REPLY_LEN)) != NULL);
		REQUIRE(c->encode(&cr, &a, small) == PROTO_MAP_REPLY_LEN);
		proto_encode_map(want, req->opcode, a.result, a.epoch, req->internal_port, a.external_port, a.lifetime);
		REQUIRE(memcmp(small, want, PROTO_MAP_REPLY_LEN) == 0);
		free(small);
	}
	if (cv == CODEC_ADDRESS) {
		REQUIRE((small = malloc(PROTO_ADDRESS_REPLY_LEN)) != NULL);
		REQUIRE(c->encode(&cr, &a, small) == PROTO_ADDRESS_REPLY_LEN);
		proto_encode_address(want, a.result, a.epoch, a.external_address);
		REQUIRE(memcmp(small, want, PROTO_ADDRESS_REPLY_LEN) == 0);
		REQUIRE(c->announce(a.epoch, a.external_address, small) == PROTO_ADDRESS_REPLY_LEN);
		proto_encode_address(want, NATPMP_RESULT_SUCCESS, a.epoch, a.external_address);
		REQUIRE(memcmp(small, want, PROTO_ADDRESS_REPLY_LEN) == 0);
		free(small);
	}
	free(out);
	free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proto_request req;
	enum proto_verdict v;
	uint8_t base;

	check_reply(data, size);
	memset(&req, 0xa5, sizeof(req));
	v = proto_decode(data, size, &req);
	REQUIRE(v == expected_verdict(data, size));
	if (v != PROTO_MAP)
		REQUIRE(req.protocol == 0 && req.internal_port == 0 && req.suggested_port == 0 && req.lifetime == 0);
	/* The reply bit does not change which protocol an opcode stands for. */
	base = req.opcode & (uint8_t)~NATPMP_OP_REPLY;
	REQUIRE(proto_opcode_to_protocol(req.opcode) ==
		(base == NATPMP_OP_MAP_UDP ? IPPROTO_UDP : base == NATPMP_OP_MAP_TCP ? IPPROTO_TCP : 0));

	switch (v) {
	case PROTO_DROP:
		break;
	case PROTO_ADDRESS:
		REQUIRE(size >= PROTO_ADDRESS_REQUEST_LEN && req.version == 0 && req.opcode == NATPMP_OP_ADDRESS);
		check_address(data, size);
		break;
	case PROTO_MAP:
		check_map(data, size, &req);
		break;
	case PROTO_BAD_VERSION:
		check_bad_version(data, size, &req);
		break;
	case PROTO_UNSUPPORTED_OPCODE:
		check_unsupported_opcode(data, size);
		break;
	default:
		REQUIRE(!"unknown verdict");
	}
	check_codec(data, size, v, &req);
	return 0;
}
