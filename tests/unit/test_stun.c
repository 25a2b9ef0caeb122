/*
 * test_stun.c - the STUN Binding codec against RFC 8489's rules, with RFC
 * 5769's sample responses (their XOR-MAPPED-ADDRESS values, transaction id
 * and attribute layout; their HMAC and CRC are not checked by this client).
 */
#include <arpa/inet.h>
#include <string.h>

#include "check.h"
#include "wire/proto.h"
#include "wire/stun.h"

/* RFC 5769 2.2 and 2.3: the samples' transaction id. */
static const uint8_t TXID[STUN_TXID_LEN] = { 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae };

/* Appends one attribute (value padded to 4 with zeros); returns the new length. */
static size_t attr(uint8_t *b, size_t len, uint16_t type, const void *v, uint16_t vlen)
{
	proto_put16(b + len, type);
	proto_put16(b + len + 2, vlen);
	memcpy(b + len + 4, v, vlen);
	len += 4 + vlen;
	while (len % 4)
		b[len++] = 0;
	return len;
}

/* A response header of type for TXID over a body of len - 20 bytes. */
static void header(uint8_t *b, uint16_t type, size_t len)
{
	proto_put16(b, type);
	proto_put16(b + 2, (uint16_t)(len - STUN_HEADER_LEN));
	proto_put32(b + 4, STUN_MAGIC_COOKIE);
	memcpy(b + 8, TXID, STUN_TXID_LEN);
}

/*
 * RFC 5769's sample response, IPv4 (2.2) or IPv6 (2.3): SOFTWARE "test
 * vector", XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY, FINGERPRINT.
 */
static size_t rfc5769_response(uint8_t *b, bool v6)
{
	static const uint8_t x4[8] = { 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 };
	static const uint8_t x6[20] = { 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3,
					0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9 };
	static const uint8_t hmac[20] = { 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74,
					  0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7 };
	static const uint8_t crc[4] = { 0xc0, 0x7d, 0x4c, 0x96 };
	size_t len = STUN_HEADER_LEN;

	len = attr(b, len, STUN_ATTR_SOFTWARE, "test vector", 11);
	len = v6 ? attr(b, len, STUN_ATTR_XOR_MAPPED_ADDRESS, x6, sizeof(x6))
		 : attr(b, len, STUN_ATTR_XOR_MAPPED_ADDRESS, x4, sizeof(x4));
	len = attr(b, len, STUN_ATTR_MESSAGE_INTEGRITY, hmac, sizeof(hmac));
	len = attr(b, len, STUN_ATTR_FINGERPRINT, crc, sizeof(crc));
	header(b, STUN_BINDING_SUCCESS, len);
	return len;
}

static void test_rfc5769_samples(void)
{
	uint8_t b[256], want6[16];
	struct stun_response r;
	size_t len = rfc5769_response(b, false);

	/* The sample's length field: 0x3c, as printed in RFC 5769 2.2. */
	CHECK_EQ(proto_get16(b + 2), 0x3c);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	CHECK(r.success && r.has_mapped && r.mapped.family == 4);
	CHECK(r.mapped.addr[10] == 0xff && r.mapped.addr[11] == 0xff);
	CHECK(r.mapped.addr[12] == 192 && r.mapped.addr[13] == 0 && r.mapped.addr[14] == 2 && r.mapped.addr[15] == 1);
	CHECK_EQ(r.mapped.port, 32853);

	len = rfc5769_response(b, true);
	CHECK_EQ(proto_get16(b + 2), 0x48);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	inet_pton(AF_INET6, "2001:db8:1234:5678:11:2233:4455:6677", want6);
	CHECK(r.mapped.family == 6 && memcmp(r.mapped.addr, want6, 16) == 0);
	CHECK_EQ(r.mapped.port, 32853);
}

static void test_request(void)
{
	uint8_t b[STUN_MAX_REQUEST];

	CHECK_EQ(stun_encode_binding(b, TXID, 0), STUN_HEADER_LEN);
	CHECK(proto_get16(b) == STUN_BINDING_REQUEST && proto_get16(b + 2) == 0);
	CHECK(proto_get32(b + 4) == STUN_MAGIC_COOKIE && memcmp(b + 8, TXID, 12) == 0);
	/* RFC 5780 7.2: CHANGE-REQUEST, flags in the value's last byte. */
	CHECK_EQ(stun_encode_binding(b, TXID, STUN_CHANGE_IP | STUN_CHANGE_PORT), 28);
	CHECK(proto_get16(b + 2) == 8 && proto_get16(b + 20) == STUN_ATTR_CHANGE_REQUEST && proto_get16(b + 22) == 4);
	CHECK_EQ(proto_get32(b + 24), 6);
	/* A request is never taken for the answer to itself. */
	struct stun_response r;
	CHECK_EQ(stun_decode_response(b, 28, TXID, &r), STUN_NOT_OURS);
}

static void test_rules(void)
{
	uint8_t b[256], other[STUN_TXID_LEN];
	struct stun_response r;
	size_t len = rfc5769_response(b, false);

	/* Another transaction, a bad cookie, the top bits set, too short: not ours. */
	memcpy(other, TXID, sizeof(other));
	other[11] ^= 1;
	CHECK_EQ(stun_decode_response(b, len, other, &r), STUN_NOT_OURS);
	b[4] ^= 1;
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_NOT_OURS);
	b[4] ^= 1;
	b[0] |= 0x40;
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_NOT_OURS);
	b[0] &= 0x3f;
	CHECK_EQ(stun_decode_response(b, 19, TXID, &r), STUN_NOT_OURS);
	/* Ours but unreadable: a length that is not the datagram's, an attribute running past the end. */
	CHECK_EQ(stun_decode_response(b, len - 4, TXID, &r), STUN_MALFORMED);
	proto_put16(b + 22, 200);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_MALFORMED);

	/* An unknown comprehension-required attribute makes it unreadable (RFC 8489 6.3.1); an optional one does not. */
	len = attr(b, STUN_HEADER_LEN, 0x7001, "abcd", 4);
	len = attr(b, len, STUN_ATTR_XOR_MAPPED_ADDRESS, (const uint8_t[]){ 0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 }, 8);
	header(b, STUN_BINDING_SUCCESS, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_MALFORMED);
	proto_put16(b + 20, 0xc001);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);

	/* An address of the wrong length for its family; a success with no address. */
	len = attr(b, STUN_HEADER_LEN, STUN_ATTR_XOR_MAPPED_ADDRESS, (const uint8_t[]){ 0, 2, 0xa1, 0x47, 1, 2, 3, 4 }, 8);
	header(b, STUN_BINDING_SUCCESS, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_MALFORMED);
	header(b, STUN_BINDING_SUCCESS, STUN_HEADER_LEN);
	CHECK_EQ(stun_decode_response(b, STUN_HEADER_LEN, TXID, &r), STUN_MALFORMED);

	/* MAPPED-ADDRESS alone (RFC 3489 servers); XOR-MAPPED-ADDRESS wins when both come. */
	len = attr(b, STUN_HEADER_LEN, STUN_ATTR_MAPPED_ADDRESS, (const uint8_t[]){ 0, 1, 0x13, 0x88, 203, 0, 113, 7 }, 8);
	header(b, STUN_BINDING_SUCCESS, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	CHECK(r.mapped.addr[12] == 203 && r.mapped.addr[15] == 7 && r.mapped.port == 5000);
	len = attr(b, len, STUN_ATTR_XOR_MAPPED_ADDRESS, (const uint8_t[]){ 0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 }, 8);
	header(b, STUN_BINDING_SUCCESS, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	CHECK(r.mapped.addr[12] == 192 && r.mapped.port == 32853);

	/* RFC 5780: OTHER-ADDRESS over CHANGED-ADDRESS, and RESPONSE-ORIGIN. */
	len = attr(b, STUN_HEADER_LEN, STUN_ATTR_XOR_MAPPED_ADDRESS, (const uint8_t[]){ 0, 1, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43 }, 8);
	len = attr(b, len, STUN_ATTR_CHANGED_ADDRESS, (const uint8_t[]){ 0, 1, 0x0d, 0x97, 203, 0, 113, 9 }, 8);
	len = attr(b, len, STUN_ATTR_OTHER_ADDRESS, (const uint8_t[]){ 0, 1, 0x0d, 0x97, 203, 0, 113, 2 }, 8);
	len = attr(b, len, STUN_ATTR_RESPONSE_ORIGIN, (const uint8_t[]){ 0, 1, 0x0d, 0x96, 203, 0, 113, 1 }, 8);
	header(b, STUN_BINDING_SUCCESS, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	CHECK(r.has_other && r.other.addr[15] == 2 && r.other.port == 3479);
	CHECK(r.has_origin && r.origin.addr[15] == 1 && r.origin.port == 3478);

	/* An error response: its code, or unreadable without a valid one. */
	len = attr(b, STUN_HEADER_LEN, STUN_ATTR_ERROR_CODE, (const uint8_t[]){ 0, 0, 4, 20, 'x' }, 5);
	header(b, STUN_BINDING_ERROR, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_ANSWER);
	CHECK(!r.success && r.error_code == 420);
	len = attr(b, STUN_HEADER_LEN, STUN_ATTR_ERROR_CODE, (const uint8_t[]){ 0, 0, 7, 20 }, 4);
	header(b, STUN_BINDING_ERROR, len);
	CHECK_EQ(stun_decode_response(b, len, TXID, &r), STUN_MALFORMED);
}

int main(void)
{
	test_rfc5769_samples();
	test_request();
	test_rules();
	return check_exit();
}
