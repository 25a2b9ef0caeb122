/*
 * proto.c - NAT-PMP wire codec (RFC 6886 section 3).
 */
#include <netinet/in.h>
#include <string.h>

#include "wire/codec.h"
#include "wire/proto.h"

enum proto_verdict proto_decode(const uint8_t *buf, size_t len, struct proto_request *req)
{
	memset(req, 0, sizeof(*req));
	if (len < 2)
		return PROTO_DROP;
	req->version = buf[0];
	req->opcode = buf[1];

	/*
	 * RFC 6886 3.5: anything with the reply bit is a response (ours, or
	 * another server's announcement) and must be ignored, whatever its
	 * version, so that two servers can never answer each other in a loop.
	 */
	if (req->opcode & NATPMP_OP_REPLY)
		return PROTO_DROP;
	/* RFC 6886 3.5 and 1.1: PCP clients fall back to NAT-PMP on this answer. */
	if (req->version != NATPMP_VERSION)
		return PROTO_BAD_VERSION;

	switch (req->opcode) {
	case NATPMP_OP_ADDRESS:
		return PROTO_ADDRESS;
	case NATPMP_OP_MAP_UDP:
	case NATPMP_OP_MAP_TCP:
		if (len < PROTO_MAP_REQUEST_LEN)
			return PROTO_DROP;
		/* Bytes 2-3 are reserved; bytes past 12 are ignored (RFC 6886 3.3). */
		req->protocol = proto_opcode_to_protocol(req->opcode);
		req->internal_port = proto_get16(buf + 4);
		req->suggested_port = proto_get16(buf + 6);
		req->lifetime = proto_get32(buf + 8);
		return PROTO_MAP;
	default:
		return PROTO_UNSUPPORTED_OPCODE;
	}
}

static void put_header(uint8_t *out, uint8_t opcode, uint16_t result, uint32_t epoch)
{
	out[0] = NATPMP_VERSION;
	out[1] = opcode | NATPMP_OP_REPLY;
	proto_put16(out + 2, result);
	proto_put32(out + 4, epoch);
}

size_t proto_encode_address(uint8_t out[PROTO_ADDRESS_REPLY_LEN], uint16_t result, uint32_t epoch,
			    uint32_t addr_be)
{
	put_header(out, NATPMP_OP_ADDRESS, result, epoch);
	memcpy(out + 8, &addr_be, 4);
	return PROTO_ADDRESS_REPLY_LEN;
}

size_t proto_encode_map(uint8_t out[PROTO_MAP_REPLY_LEN], uint8_t opcode, uint16_t result, uint32_t epoch,
			uint16_t internal_port, uint16_t external_port, uint32_t lifetime)
{
	put_header(out, opcode, result, epoch);
	proto_put16(out + 8, internal_port);
	proto_put16(out + 10, external_port);
	proto_put32(out + 12, lifetime);
	return PROTO_MAP_REPLY_LEN;
}

size_t proto_encode_bad_version(uint8_t out[PROTO_ERROR_REPLY_LEN], uint8_t request_opcode, uint32_t epoch)
{
	/*
	 * The RFC's figure shows OP = 0; erratum 3618 corrects it to 128, and
	 * libtorrent matches the reply to its request by opcode, so answer a
	 * known opcode with its own reply opcode.
	 */
	uint8_t op = request_opcode <= NATPMP_OP_MAP_TCP ? request_opcode : NATPMP_OP_ADDRESS;

	put_header(out, op, NATPMP_RESULT_UNSUPPORTED_VERSION, epoch);
	return PROTO_ERROR_REPLY_LEN;
}

size_t proto_encode_unsupported_opcode(uint8_t *out, const uint8_t *req, size_t len)
{
	/* RFC 6886 3.5: the entire request comes back, reply bit set, result 5. */
	if (len > PROTO_MAX_DATAGRAM)
		len = PROTO_MAX_DATAGRAM;
	memcpy(out, req, len);
	if (len < 4) {
		memset(out + len, 0, 4 - len);
		len = 4;
	}
	out[1] |= NATPMP_OP_REPLY;
	proto_put16(out + 2, NATPMP_RESULT_UNSUPPORTED_OPCODE);
	return len;
}

size_t proto_encode_map_request(uint8_t out[PROTO_MAP_REQUEST_LEN], uint8_t protocol, uint16_t internal_port,
				uint16_t suggested_port, uint32_t lifetime)
{
	out[0] = NATPMP_VERSION;
	out[1] = proto_protocol_to_opcode(protocol);
	proto_put16(out + 2, 0); /* reserved (RFC 6886 3.3) */
	proto_put16(out + 4, internal_port);
	proto_put16(out + 6, suggested_port);
	proto_put32(out + 8, lifetime);
	return PROTO_MAP_REQUEST_LEN;
}

int proto_decode_reply(const uint8_t *buf, size_t len, struct proto_reply *r)
{
	size_t want;

	if (len < PROTO_ERROR_REPLY_LEN || buf[0] != NATPMP_VERSION || !(buf[1] & NATPMP_OP_REPLY))
		return -1;
	*r = (struct proto_reply){
		.opcode = buf[1] & ~NATPMP_OP_REPLY,
		.result = proto_get16(buf + 2),
		.epoch = proto_get32(buf + 4),
	};
	if (r->opcode > NATPMP_OP_MAP_TCP)
		return -1;
	want = r->opcode == NATPMP_OP_ADDRESS ? PROTO_ADDRESS_REPLY_LEN : PROTO_MAP_REPLY_LEN;
	if (len < want)
		return r->result != NATPMP_RESULT_SUCCESS ? 0 : -1;
	if (r->opcode == NATPMP_OP_ADDRESS) {
		memcpy(&r->address, buf + 8, 4);
	} else {
		r->internal_port = proto_get16(buf + 8);
		r->external_port = proto_get16(buf + 10);
		r->lifetime = proto_get32(buf + 12);
	}
	return 0;
}

int proto_epoch_lost(uint32_t previous, int64_t elapsed_ms, uint32_t epoch)
{
	/* In milliseconds: whole seconds would round 7/8 of the time down. */
	int64_t expected_ms = (int64_t)previous * 1000 + (elapsed_ms > 0 ? elapsed_ms : 0) * 7 / 8;

	return (int64_t)epoch * 1000 + 2000 < expected_ms;
}

uint8_t proto_opcode_to_protocol(uint8_t opcode)
{
	switch (opcode & ~NATPMP_OP_REPLY) {
	case NATPMP_OP_MAP_UDP:
		return IPPROTO_UDP;
	case NATPMP_OP_MAP_TCP:
		return IPPROTO_TCP;
	default:
		return 0;
	}
}

uint8_t proto_protocol_to_opcode(uint8_t protocol)
{
	return protocol == IPPROTO_UDP ? NATPMP_OP_MAP_UDP : NATPMP_OP_MAP_TCP;
}

const char *proto_protocol_name(uint8_t protocol)
{
	switch (protocol) {
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_TCP:
		return "tcp";
	default:
		return "?";
	}
}

/* --- NAT-PMP as a codec of the request turn (wire/codec.h) --- */

static enum codec_verdict natpmp_decode(const uint8_t *buf, size_t len, const struct sockaddr *peer, uint32_t epoch,
					struct codec_request *req, uint8_t *out, size_t *out_len)
{
	struct proto_request r;
	enum proto_verdict v = proto_decode(buf, len, &r);

	(void)peer;
	*req = (struct codec_request){
		.opcode = r.opcode,
		.metric_op = v == PROTO_BAD_VERSION			  ? CODEC_METRIC_OTHER_VERSION
			     : r.opcode <= NATPMP_OP_MAP_TCP && v != PROTO_UNSUPPORTED_OPCODE ? r.opcode
											 : CODEC_METRIC_OTHER_OPCODE,
		.protocol = r.protocol,
		.internal_port = r.internal_port,
		.suggested_port = r.suggested_port,
		.lifetime = r.lifetime,
	};
	*out_len = 0;
	switch (v) {
	case PROTO_ADDRESS:
		return req->verdict = CODEC_ADDRESS;
	case PROTO_MAP:
		return req->verdict = CODEC_MAP;
	case PROTO_BAD_VERSION:
		*out_len = proto_encode_bad_version(out, r.opcode, epoch);
		req->result = NATPMP_RESULT_UNSUPPORTED_VERSION;
		return req->verdict = CODEC_ANSWERED;
	case PROTO_UNSUPPORTED_OPCODE:
		*out_len = proto_encode_unsupported_opcode(out, buf, len);
		req->result = NATPMP_RESULT_UNSUPPORTED_OPCODE;
		return req->verdict = CODEC_ANSWERED;
	case PROTO_DROP:
		break;
	}
	return req->verdict = CODEC_DROP;
}

/* The engine's results are RFC 6886's codes (engine/table.h): they go on the wire as they are. */
static size_t natpmp_encode(const struct codec_request *req, const struct codec_answer *a, uint8_t *out)
{
	if (req->verdict == CODEC_ADDRESS)
		return proto_encode_address(out, a->result, a->epoch, a->external_address);
	return proto_encode_map(out, req->opcode, a->result, a->epoch, req->internal_port, a->external_port,
				a->lifetime);
}

/* RFC 6886 3.2.1: an announcement is an opcode 0 reply nobody asked for. */
static size_t natpmp_announce(uint32_t epoch, uint32_t external_address, uint8_t *out)
{
	return proto_encode_address(out, NATPMP_RESULT_SUCCESS, epoch, external_address);
}

static uint16_t natpmp_wire_result(const struct codec_answer *a)
{
	return a->result;
}

const struct codec codec_natpmp = {
	.name = "NAT-PMP",
	.decode = natpmp_decode,
	.encode = natpmp_encode,
	.announce = natpmp_announce,
	.wire_result = natpmp_wire_result,
};
