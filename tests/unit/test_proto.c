/* test_proto.c - the wire codec: every request shape and every reply. */
#include <netinet/in.h>
#include <string.h>

#include "check.h"
#include "wire/proto.h"

static void test_address_request(void)
{
	struct proto_request r;
	uint8_t req[] = { 0, 0 }, out[PROTO_ADDRESS_REPLY_LEN];
	uint32_t addr;

	CHECK_EQ(proto_decode(req, sizeof(req), &r), PROTO_ADDRESS);
	/* Trailing bytes do not matter (RFC 6886 3.2). */
	uint8_t longer[] = { 0, 0, 9, 9, 9, 9 };
	CHECK_EQ(proto_decode(longer, sizeof(longer), &r), PROTO_ADDRESS);
	CHECK_EQ(proto_decode(req, 1, &r), PROTO_DROP);
	CHECK_EQ(proto_decode(req, 0, &r), PROTO_DROP);

	addr = htonl(0xc6336401); /* 198.51.100.1 */
	CHECK_EQ(proto_encode_address(out, 0, 0x01020304, addr), 12);
	const uint8_t want[] = { 0, 128, 0, 0, 1, 2, 3, 4, 198, 51, 100, 1 };
	CHECK(memcmp(out, want, sizeof(want)) == 0);
	proto_encode_address(out, NATPMP_RESULT_NETWORK_FAILURE, 7, 0);
	CHECK_EQ(out[3], 3);
	CHECK(out[8] == 0 && out[9] == 0 && out[10] == 0 && out[11] == 0);
}

static void test_map_request(void)
{
	struct proto_request r;
	uint8_t req[20] = { 0, 2, 0xab, 0xcd, 0xc8, 0xd5, 0x1f, 0x90, 0x00, 0x36, 0xee, 0x80 };
	uint8_t out[PROTO_MAP_REPLY_LEN];

	/* The reserved field (0xabcd here) and 8 trailing bytes are ignored. */
	CHECK_EQ(proto_decode(req, sizeof(req), &r), PROTO_MAP);
	CHECK_EQ(r.protocol, IPPROTO_TCP);
	CHECK_EQ(r.internal_port, 51413);
	CHECK_EQ(r.suggested_port, 8080);
	CHECK_EQ(r.lifetime, 3600000);
	req[1] = 1;
	CHECK_EQ(proto_decode(req, 12, &r), PROTO_MAP);
	CHECK_EQ(r.protocol, IPPROTO_UDP);
	CHECK_EQ(proto_decode(req, 11, &r), PROTO_DROP);
	CHECK_EQ(proto_decode(req, 4, &r), PROTO_DROP);

	CHECK_EQ(proto_encode_map(out, 2, 0, 99, 51413, 40000, 7200), 16);
	const uint8_t want[] = { 0, 130, 0, 0, 0, 0, 0, 99, 0xc8, 0xd5, 0x9c, 0x40, 0, 0, 0x1c, 0x20 };
	CHECK(memcmp(out, want, sizeof(want)) == 0);
	proto_encode_map(out, 1, NATPMP_RESULT_OUT_OF_RESOURCES, 1, 80, 0, 0);
	CHECK_EQ(out[1], 129);
	CHECK_EQ(out[3], 4);
}

static void test_versions_and_opcodes(void)
{
	struct proto_request r;
	uint8_t pcp[60] = { 2, 1 }, out[PROTO_MAX_DATAGRAM];

	/* qBittorrent's PCP MAP: 8-byte "unsupported version" with the map opcode. */
	CHECK_EQ(proto_decode(pcp, sizeof(pcp), &r), PROTO_BAD_VERSION);
	CHECK_EQ(proto_encode_bad_version(out, r.opcode, 5), 8);
	const uint8_t want[] = { 0, 129, 0, 1, 0, 0, 0, 5 };
	CHECK(memcmp(out, want, sizeof(want)) == 0);
	uint8_t v1[] = { 1, 77 };
	CHECK_EQ(proto_decode(v1, 2, &r), PROTO_BAD_VERSION);
	proto_encode_bad_version(out, r.opcode, 5);
	CHECK_EQ(out[1], 128);
	CHECK_EQ(proto_decode(v1, 1, &r), PROTO_DROP);

	/* Responses (ours or another server's) are never answered. */
	for (int op = 128; op < 256; op++) {
		uint8_t resp[16] = { 0, (uint8_t)op };
		CHECK_EQ(proto_decode(resp, sizeof(resp), &r), PROTO_DROP);
		resp[0] = 2;
		CHECK_EQ(proto_decode(resp, sizeof(resp), &r), PROTO_DROP);
	}

	/* Unknown opcodes come back whole, reply bit set, result 5. */
	uint8_t unk[10] = { 0, 3, 0, 0, 1, 2, 3, 4, 5, 6 };
	for (int op = 3; op < 128; op++) {
		unk[1] = (uint8_t)op;
		CHECK_EQ(proto_decode(unk, sizeof(unk), &r), PROTO_UNSUPPORTED_OPCODE);
	}
	unk[1] = 3;
	CHECK_EQ(proto_encode_unsupported_opcode(out, unk, sizeof(unk)), 10);
	const uint8_t echo[] = { 0, 131, 0, 5, 1, 2, 3, 4, 5, 6 };
	CHECK(memcmp(out, echo, sizeof(echo)) == 0);
	CHECK_EQ(proto_encode_unsupported_opcode(out, unk, 2), 4);
	CHECK(out[1] == 131 && out[3] == 5);
}

/* Every possible 1-3 byte datagram and random longer ones: no crash, sane verdicts. */
static void test_all_short_inputs(void)
{
	struct proto_request r;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	unsigned int seed = 1;

	for (unsigned int v = 0; v < 65536; v++) {
		buf[0] = v >> 8;
		buf[1] = v & 0xff;
		enum proto_verdict d = proto_decode(buf, 2, &r);
		CHECK(d != PROTO_MAP);
		if (buf[1] >= 128)
			CHECK_EQ(d, PROTO_DROP);
	}
	for (int i = 0; i < 100000; i++) {
		size_t len = (size_t)rand_r(&seed) % sizeof(buf);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		enum proto_verdict d = proto_decode(buf, len, &r);
		if (d == PROTO_MAP)
			CHECK(len >= 12 && (r.protocol == IPPROTO_UDP || r.protocol == IPPROTO_TCP));
	}
}

/* Upstream mode's side: what the daemon sends a gateway and how it reads the answers. */
static void test_client_side(void)
{
	uint8_t req[PROTO_MAP_REQUEST_LEN], out[PROTO_MAP_REPLY_LEN];
	struct proto_reply r;
	struct proto_request back;

	CHECK_EQ(proto_encode_map_request(req, IPPROTO_TCP, 40000, 51413, 3600), 12);
	const uint8_t want[] = { 0, 2, 0, 0, 0x9c, 0x40, 0xc8, 0xd5, 0, 0, 0x0e, 0x10 };
	CHECK(memcmp(req, want, sizeof(want)) == 0);
	/* The server's own decoder reads it back as sent. */
	CHECK_EQ(proto_decode(req, sizeof(req), &back), PROTO_MAP);
	CHECK(back.protocol == IPPROTO_TCP && back.internal_port == 40000 && back.suggested_port == 51413 &&
	      back.lifetime == 3600);

	/* The server's own replies, read back. */
	proto_encode_map(out, NATPMP_OP_MAP_UDP, 0, 77, 5000, 61000, 60);
	CHECK_EQ(proto_decode_reply(out, PROTO_MAP_REPLY_LEN, &r), 0);
	CHECK(r.opcode == 1 && r.result == 0 && r.epoch == 77 && r.internal_port == 5000 && r.external_port == 61000 &&
	      r.lifetime == 60);
	proto_encode_address(out, 0, 5, htonl(0xc6336401));
	CHECK_EQ(proto_decode_reply(out, PROTO_ADDRESS_REPLY_LEN, &r), 0);
	CHECK(r.opcode == 0 && r.epoch == 5 && r.address == htonl(0xc6336401));
	/* A success cut short is no answer; an error may stop after the epoch (RFC 6886 3.5). */
	proto_encode_map(out, NATPMP_OP_MAP_TCP, 0, 1, 1, 1, 1);
	CHECK_EQ(proto_decode_reply(out, 15, &r), -1);
	proto_encode_map(out, NATPMP_OP_MAP_TCP, NATPMP_RESULT_OUT_OF_RESOURCES, 1, 1, 0, 0);
	CHECK_EQ(proto_decode_reply(out, 8, &r), 0);
	CHECK(r.result == 4 && r.internal_port == 0);
	CHECK_EQ(proto_decode_reply(out, 7, &r), -1);
	/* A request, another version, an opcode the daemon never sends. */
	CHECK_EQ(proto_decode_reply(req, sizeof(req), &r), -1);
	proto_encode_map(out, NATPMP_OP_MAP_TCP, 0, 1, 1, 1, 1);
	out[0] = 2;
	CHECK_EQ(proto_decode_reply(out, 16, &r), -1);
	out[0] = 0;
	out[1] = 0x83;
	CHECK_EQ(proto_decode_reply(out, 16, &r), -1);

	/* RFC 6886 3.6: at least 7/8 of the elapsed time, less 2 s, or the gateway lost its state. */
	CHECK(!proto_epoch_lost(100, 10000, 110));
	CHECK(!proto_epoch_lost(100, 10000, 107)); /* 100 + 8.75 - 2 = 106.75 */
	CHECK(proto_epoch_lost(100, 10000, 106));
	CHECK(proto_epoch_lost(100, 0, 0));	   /* a restart */
	CHECK(!proto_epoch_lost(100, 0, 98));	   /* 2 s of slack */
	CHECK(proto_epoch_lost(100, 0, 97));
	CHECK(!proto_epoch_lost(0, 0, 0));
	CHECK(!proto_epoch_lost(UINT32_MAX, -5000, UINT32_MAX)); /* a clock step back counts as no time */
}

int main(void)
{
	test_client_side();
	test_address_request();
	test_map_request();
	test_versions_and_opcodes();
	test_all_short_inputs();
	return check_exit();
}
