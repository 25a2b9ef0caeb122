/*
 * pcp.c - PCP wire codec (RFC 6887 7, 8.2, 11, 13).
 */
#include <netinet/in.h>
#include <string.h>

#include "wire/pcp.h"
#include "wire/proto.h"

static enum pcp_verdict pcp_error(struct pcp_request *req, uint8_t result)
{
	req->result = result;
	return PCP_ERROR;
}

/*
 * The options after the opcode data, in order (RFC 6887 7.3, 13): known
 * ones checked and recorded, unknown mandatory ones (code < 128) refused,
 * unknown optional ones skipped.
 */
static enum pcp_verdict pcp_options(const uint8_t *p, size_t left, struct pcp_request *req)
{
	bool prefer = false;

	while (left > 0) {
		uint8_t code;
		size_t len, padded;

		if (left < 4)
			return pcp_error(req, PCP_MALFORMED_OPTION);
		code = p[0];
		len = proto_get16(p + 2);
		padded = (len + 3) & ~(size_t)3;
		if (padded > left - 4)
			return pcp_error(req, PCP_MALFORMED_OPTION);
		switch (code) {
		case PCP_OPTION_THIRD_PARTY:
			if (req->opcode != PCP_OP_MAP || len != 16 || req->third_party)
				return pcp_error(req, PCP_MALFORMED_OPTION);
			req->third_party = true;
			memcpy(req->third_party_address, p + 4, 16);
			break;
		case PCP_OPTION_PREFER_FAILURE:
			/* Meaningless for a delete (RFC 6887 11.3), and allowed once. */
			if (req->opcode != PCP_OP_MAP || len != 0 || prefer || req->lifetime == 0)
				return pcp_error(req, PCP_MALFORMED_OPTION);
			prefer = true;
			break;
		case PCP_OPTION_FILTER:
			/* Prefix length 0 to 128 (IPv4 as 96 + 0-32), RFC 6887 13.3. */
			if (req->opcode != PCP_OP_MAP || len != 20 || p[5] > 128)
				return pcp_error(req, PCP_MALFORMED_OPTION);
			req->filters++;
			break;
		default:
			if (code < 128)
				return pcp_error(req, PCP_UNSUPP_OPTION);
			break;
		}
		p += 4 + padded;
		left -= 4 + padded;
	}
	req->prefer_failure = prefer;
	return req->opcode == PCP_OP_MAP ? PCP_MAP : PCP_ANNOUNCE;
}

enum pcp_verdict pcp_decode(const uint8_t *buf, size_t len, const uint8_t source[16], struct pcp_request *req)
{
	size_t need;

	memset(req, 0, sizeof(*req));
	if (len < 2)
		return PCP_DROP;
	req->version = buf[0];
	req->opcode = buf[1] & (uint8_t)~PCP_R;
	/* A response (ours, another server's announcement) is never answered: no loops. */
	if (buf[1] & PCP_R)
		return PCP_DROP;
	if (req->version != PCP_VERSION)
		return pcp_error(req, PCP_UNSUPP_VERSION);
	if (len < PCP_HEADER_LEN)
		return PCP_DROP;
	if (len > PCP_MAX_DATAGRAM || len % 4)
		return pcp_error(req, PCP_MALFORMED_REQUEST);
	req->lifetime = proto_get32(buf + 4);
	memcpy(req->client, buf + 8, 16);
	if (req->opcode != PCP_OP_ANNOUNCE && req->opcode != PCP_OP_MAP)
		return pcp_error(req, PCP_UNSUPP_OPCODE);
	need = req->opcode == PCP_OP_MAP ? PCP_MAP_LEN : PCP_HEADER_LEN;
	if (len < need)
		return pcp_error(req, PCP_MALFORMED_REQUEST);
	req->parsed = true;
	if (req->opcode == PCP_OP_MAP) {
		const uint8_t *d = buf + PCP_HEADER_LEN;
		memcpy(req->nonce, d, PCP_NONCE_LEN);
		req->protocol = d[12];
		req->internal_port = proto_get16(d + 16);
		req->suggested_port = proto_get16(d + 18);
		memcpy(req->suggested_address, d + 20, 16);
	}
	/* RFC 6887 8.2: a NAT (not this one) between client and server is found out here. */
	if (memcmp(req->client, source, 16) != 0)
		return pcp_error(req, PCP_ADDRESS_MISMATCH);
	if (req->opcode == PCP_OP_MAP) {
		/* RFC 6887 11.3: protocol 0 with a port is nonsense; wildcards are not served. */
		if (req->protocol == 0 && req->internal_port != 0)
			return pcp_error(req, PCP_MALFORMED_REQUEST);
		if (req->lifetime && ((req->protocol != IPPROTO_TCP && req->protocol != IPPROTO_UDP) ||
				      req->internal_port == 0))
			return pcp_error(req, PCP_UNSUPP_PROTOCOL);
	}
	return pcp_options(buf + need, len - need, req);
}

uint32_t pcp_error_lifetime(uint8_t result)
{
	switch (result) {
	case PCP_NETWORK_FAILURE:
	case PCP_NO_RESOURCES:
	case PCP_USER_EX_QUOTA:
	case PCP_CANNOT_PROVIDE_EXTERNAL:
		return PCP_SHORT_ERROR_LIFETIME;
	default:
		return PCP_LONG_ERROR_LIFETIME;
	}
}

/* The common response header over out's first 24 bytes (RFC 6887 7.2). */
static void pcp_header(uint8_t *out, uint8_t opcode, uint8_t result, uint32_t lifetime, uint32_t epoch)
{
	out[0] = PCP_VERSION;
	out[1] = opcode | PCP_R;
	out[2] = 0;
	out[3] = result;
	proto_put32(out + 4, lifetime);
	proto_put32(out + 8, epoch);
}

size_t pcp_encode_error(uint8_t *out, const uint8_t *req, size_t len, const struct pcp_request *r, uint32_t epoch)
{
	size_t n = len < PCP_MAX_DATAGRAM ? len : PCP_MAX_DATAGRAM;

	memset(out, 0, PCP_HEADER_LEN);
	memcpy(out, req, n);
	if (n < PCP_HEADER_LEN)
		n = PCP_HEADER_LEN;
	while (n % 4)
		out[n++] = 0;
	pcp_header(out, r->opcode, r->result, pcp_error_lifetime(r->result), epoch);
	/* Bytes 12-23 now hold the last 96 bits of the client's address: kept for an unparsed request only. */
	if (r->parsed)
		memset(out + 12, 0, 12);
	return n;
}

size_t pcp_encode_map(uint8_t out[PCP_MAP_LEN], const struct pcp_request *req, uint8_t result, uint32_t lifetime,
		      uint32_t epoch, uint16_t external_port, const uint8_t external_address[16])
{
	uint8_t *d = out + PCP_HEADER_LEN;

	memset(out, 0, PCP_MAP_LEN);
	pcp_header(out, PCP_OP_MAP, result, lifetime, epoch);
	memcpy(d, req->nonce, PCP_NONCE_LEN);
	d[12] = req->protocol;
	proto_put16(d + 16, req->internal_port);
	proto_put16(d + 18, external_port);
	memcpy(d + 20, external_address, 16);
	return PCP_MAP_LEN;
}

size_t pcp_encode_announce(uint8_t out[PCP_HEADER_LEN], uint8_t result, uint32_t epoch)
{
	memset(out, 0, PCP_HEADER_LEN);
	pcp_header(out, PCP_OP_ANNOUNCE, result, 0, epoch);
	return PCP_HEADER_LEN;
}
