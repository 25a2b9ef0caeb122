/*
 * stun.c - STUN Binding requests and responses (RFC 8489 5, 6, 14; RFC 5780 7).
 */
#include <string.h>

#include "wire/proto.h"
#include "wire/stun.h"

static void stun_header(uint8_t *out, uint16_t type, uint16_t length, const uint8_t txid[STUN_TXID_LEN])
{
	proto_put16(out, type);
	proto_put16(out + 2, length);
	proto_put32(out + 4, STUN_MAGIC_COOKIE);
	memcpy(out + 8, txid, STUN_TXID_LEN);
}

size_t stun_encode_binding(uint8_t out[STUN_MAX_REQUEST], const uint8_t txid[STUN_TXID_LEN], uint8_t change)
{
	if (!change) {
		stun_header(out, STUN_BINDING_REQUEST, 0, txid);
		return STUN_HEADER_LEN;
	}
	stun_header(out, STUN_BINDING_REQUEST, 8, txid);
	proto_put16(out + 20, STUN_ATTR_CHANGE_REQUEST);
	proto_put16(out + 22, 4);
	proto_put32(out + 24, change & (STUN_CHANGE_IP | STUN_CHANGE_PORT));
	return STUN_MAX_REQUEST;
}

/*
 * An address attribute's value (RFC 8489 14.1, 14.2): 0, family (1 IPv4,
 * 2 IPv6), port, address; XOR'd with the magic cookie (and, for IPv6, the
 * transaction id) when xor.  False when its length does not fit its family.
 */
static bool stun_address_of(const uint8_t *v, size_t len, bool xor, const uint8_t *header, struct stun_address *a)
{
	uint8_t mask[16];

	if (len < 4)
		return false;
	memcpy(mask, header + 4, 16); /* magic cookie, then the transaction id */
	memset(a, 0, sizeof(*a));
	a->port = proto_get16(v + 2) ^ (xor ? (uint16_t)(STUN_MAGIC_COOKIE >> 16) : 0);
	if (v[1] == 0x01 && len == 8) {
		a->family = 4;
		a->addr[10] = a->addr[11] = 0xff;
		for (int i = 0; i < 4; i++)
			a->addr[12 + i] = v[4 + i] ^ (xor ? mask[i] : 0);
		return true;
	}
	if (v[1] == 0x02 && len == 20) {
		a->family = 6;
		for (int i = 0; i < 16; i++)
			a->addr[i] = v[4 + i] ^ (xor ? mask[i] : 0);
		return true;
	}
	return false;
}

/* Comprehension-required attributes (below 0x8000) this client knows, read or not. */
static bool stun_known_required(uint16_t type)
{
	switch (type) {
	case STUN_ATTR_MAPPED_ADDRESS:
	case STUN_ATTR_CHANGE_REQUEST:
	case STUN_ATTR_SOURCE_ADDRESS:
	case STUN_ATTR_CHANGED_ADDRESS:
	case STUN_ATTR_USERNAME:
	case STUN_ATTR_MESSAGE_INTEGRITY:
	case STUN_ATTR_ERROR_CODE:
	case STUN_ATTR_UNKNOWN_ATTRIBUTES:
	case STUN_ATTR_REALM:
	case STUN_ATTR_NONCE:
	case STUN_ATTR_MESSAGE_INTEGRITY_SHA256:
	case STUN_ATTR_USERHASH:
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
	case STUN_ATTR_PADDING:
	case STUN_ATTR_RESPONSE_PORT:
		return true;
	default:
		return false;
	}
}

/* One attribute of a response into r; false when it makes the response unreadable. */
static bool stun_attribute(uint16_t type, const uint8_t *v, size_t len, const uint8_t *header, struct stun_response *r,
			   bool *have_xor, bool *have_changed)
{
	struct stun_address a;

	switch (type) {
	case STUN_ATTR_XOR_MAPPED_ADDRESS:
		/* The first of each kind counts (RFC 8489 14); the XOR'd form beats the plain one. */
		if (*have_xor)
			return true;
		if (!stun_address_of(v, len, true, header, &r->mapped))
			return false;
		r->has_mapped = *have_xor = true;
		return true;
	case STUN_ATTR_MAPPED_ADDRESS:
		if (!stun_address_of(v, len, false, header, &a))
			return false;
		if (!r->has_mapped) {
			r->mapped = a;
			r->has_mapped = true;
		}
		return true;
	case STUN_ATTR_OTHER_ADDRESS:
	case STUN_ATTR_CHANGED_ADDRESS:
		if (!stun_address_of(v, len, false, header, &a))
			return false;
		/* RFC 5780's OTHER-ADDRESS over RFC 3489's CHANGED-ADDRESS, whichever came first. */
		if (!r->has_other || (type == STUN_ATTR_OTHER_ADDRESS && *have_changed)) {
			r->other = a;
			r->has_other = true;
			*have_changed = type == STUN_ATTR_CHANGED_ADDRESS;
		}
		return true;
	case STUN_ATTR_RESPONSE_ORIGIN:
		if (!stun_address_of(v, len, false, header, &a))
			return false;
		if (!r->has_origin) {
			r->origin = a;
			r->has_origin = true;
		}
		return true;
	case STUN_ATTR_ERROR_CODE:
		/* Class 3 to 6, number 0 to 99 (RFC 8489 14.8). */
		if (len < 4 || (v[2] & 7) < 3 || (v[2] & 7) > 6 || v[3] > 99)
			return false;
		if (!r->error_code)
			r->error_code = (uint16_t)((v[2] & 7) * 100 + v[3]);
		return true;
	default:
		return type >= 0x8000 || stun_known_required(type);
	}
}

enum stun_verdict stun_decode_response(const uint8_t *buf, size_t len, const uint8_t txid[STUN_TXID_LEN],
				       struct stun_response *r)
{
	bool have_xor = false, have_changed = false;
	uint16_t type, length;
	size_t at;

	memset(r, 0, sizeof(*r));
	/* Not STUN at all, or not the answer to this transaction: someone else's datagram. */
	if (len < STUN_HEADER_LEN || (buf[0] & 0xc0) || proto_get32(buf + 4) != STUN_MAGIC_COOKIE ||
	    memcmp(buf + 8, txid, STUN_TXID_LEN) != 0)
		return STUN_NOT_OURS;
	type = proto_get16(buf);
	if (type != STUN_BINDING_SUCCESS && type != STUN_BINDING_ERROR)
		return STUN_NOT_OURS;
	length = proto_get16(buf + 2);
	if (length % 4 || (size_t)length != len - STUN_HEADER_LEN)
		return STUN_MALFORMED;
	r->success = type == STUN_BINDING_SUCCESS;
	for (at = STUN_HEADER_LEN; at < len;) {
		uint16_t atype, alen;
		size_t padded;

		if (len - at < 4)
			return STUN_MALFORMED;
		atype = proto_get16(buf + at);
		alen = proto_get16(buf + at + 2);
		padded = ((size_t)alen + 3) & ~(size_t)3;
		if (padded > len - at - 4)
			return STUN_MALFORMED;
		if (!stun_attribute(atype, buf + at + 4, alen, buf, r, &have_xor, &have_changed))
			return STUN_MALFORMED;
		at += 4 + padded;
	}
	/* A success without the address it exists to give is of no use; an error needs its code. */
	if (r->success ? !r->has_mapped : !r->error_code)
		return STUN_MALFORMED;
	return STUN_ANSWER;
}
