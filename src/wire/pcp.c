/*
 * pcp.c - PCP wire codec (RFC 6887 7, 8.2, 11, 13).
 */
#include <netinet/in.h>
#include <string.h>

#include "wire/codec.h"
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
			/* Meaningless for a delete (RFC 6887 11.3) or without a port to insist on (13.2); allowed once. */
			if (req->opcode != PCP_OP_MAP || len != 0 || prefer || req->lifetime == 0 || req->suggested_port == 0)
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
	enum pcp_verdict v = pcp_options(buf + need, len - need, req);
	/* RFC 6887 13.1: naming itself as the third party is a malformed request. */
	if (v == PCP_MAP && req->third_party && memcmp(req->third_party_address, source, 16) == 0)
		return pcp_error(req, PCP_MALFORMED_REQUEST);
	return v;
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

/* --- PCP as a codec of the request turn (wire/codec.h) --- */

static const uint8_t v4_mapped[12] = { [10] = 0xff, [11] = 0xff };

/* A peer's address as PCP writes it (RFC 6887 5): IPv4 as ::ffff:a.b.c.d. */
static void pcp_addr_of(const struct sockaddr *peer, uint8_t out[16])
{
	memset(out, 0, 16);
	if (peer->sa_family == AF_INET) {
		memcpy(out, v4_mapped, sizeof(v4_mapped));
		memcpy(out + 12, &((const struct sockaddr_in *)peer)->sin_addr, 4);
	} else if (peer->sa_family == AF_INET6) {
		memcpy(out, &((const struct sockaddr_in6 *)peer)->sin6_addr, 16);
	}
}

static uint8_t pcp_metric_row(const struct pcp_request *r)
{
	if (r->version != PCP_VERSION)
		return CODEC_METRIC_OTHER_VERSION;
	return r->opcode == PCP_OP_ANNOUNCE ? CODEC_METRIC_PCP_ANNOUNCE
	       : r->opcode == PCP_OP_MAP    ? CODEC_METRIC_PCP_MAP
					    : CODEC_METRIC_PCP_OTHER;
}

static enum codec_verdict pcp_codec_decode(const uint8_t *buf, size_t len, const struct sockaddr *peer, uint32_t epoch,
					   struct codec_request *req, uint8_t *out, size_t *out_len)
{
	struct pcp_request r;
	uint8_t source[16];
	enum pcp_verdict v;

	pcp_addr_of(peer, source);
	v = pcp_decode(buf, len, source, &r);
	/*
	 * An option this server does not act on is refused, never accepted and
	 * ignored: FILTER (13.3) would promise a filter that is not there.
	 * THIRD_PARTY (13.1) goes to the turn, which refuses it unless a rule
	 * lets this sender map for that host.
	 */
	if (v == PCP_MAP && r.filters) {
		r.result = PCP_UNSUPP_OPTION;
		v = PCP_ERROR;
	}
	*req = (struct codec_request){
		.opcode = r.opcode,
		.metric_op = pcp_metric_row(&r),
		.protocol = r.protocol,
		.internal_port = r.internal_port,
		.suggested_port = r.suggested_port,
		.lifetime = r.lifetime,
		.pcp = true,
		.prefer_failure = r.prefer_failure,
	};
	memcpy(req->nonce, r.nonce, sizeof(req->nonce));
	memcpy(req->suggested_address, r.suggested_address, sizeof(req->suggested_address));
	req->third_party = r.third_party;
	memcpy(req->third_party_address, r.third_party_address, sizeof(req->third_party_address));
	*out_len = 0;
	switch (v) {
	case PCP_DROP:
		return req->verdict = CODEC_DROP;
	case PCP_ERROR:
		*out_len = pcp_encode_error(out, buf, len, &r, epoch);
		req->result = r.result;
		return req->verdict = CODEC_ANSWERED;
	case PCP_ANNOUNCE:
		return req->verdict = CODEC_ADDRESS;
	case PCP_MAP:
		break;
	}
	return req->verdict = CODEC_MAP;
}

/* The engine's result (engine/table.h, RFC 6886's values) in RFC 6887 7.4's words. */
static uint16_t pcp_result_of(const struct codec_answer *a)
{
	switch (a->result) {
	case 0:
		return PCP_SUCCESS;
	case 2:
		return PCP_NOT_AUTHORIZED;
	case 3:
		return PCP_NETWORK_FAILURE;
	case 4:
		return a->over_quota ? PCP_USER_EX_QUOTA : PCP_NO_RESOURCES;
	case PCP_CANNOT_PROVIDE_EXTERNAL: /* TABLE_RESULT_CANNOT_PROVIDE */
		return PCP_CANNOT_PROVIDE_EXTERNAL;
	case CODEC_RESULT_OPTION_REFUSED:
		return PCP_UNSUPP_OPTION;
	default:
		return PCP_NETWORK_FAILURE;
	}
}

/*
 * A MAP answer echoes the request's nonce, protocol and internal port
 * whatever the result (RFC 6887 11.4; mDNSResponder matches an error only
 * on a full 60-byte answer); an error also echoes the suggested port and
 * address.  THIRD_PARTY and PREFER_FAILURE, processed, are answered (7.3).
 */
static size_t pcp_codec_encode(const struct codec_request *req, const struct codec_answer *a, uint8_t *out)
{
	struct pcp_request r = {
		.opcode = req->opcode,
		.protocol = req->protocol,
		.internal_port = req->internal_port,
	};
	uint8_t result = (uint8_t)pcp_result_of(a), address[16];
	size_t n;

	if (req->verdict == CODEC_ADDRESS)
		return pcp_encode_announce(out, PCP_SUCCESS, a->epoch);
	memcpy(r.nonce, req->nonce, sizeof(r.nonce));
	memcpy(address, v4_mapped, sizeof(v4_mapped));
	memcpy(address + 12, &a->external_address, 4);
	if (a->own_address) /* a pinhole: no NAT66, the client is reached at its own address (RFC 6887 11.1) */
		memcpy(address, a->own_address, 16);
	if (result != PCP_SUCCESS)
		n = pcp_encode_map(out, &r, result, a->error_lifetime ? a->error_lifetime : pcp_error_lifetime(result),
				   a->epoch, req->suggested_port, req->suggested_address);
	else if (!req->lifetime) /* a delete: the mapping is gone, port and address as asked (15) */
		n = pcp_encode_map(out, &r, result, 0, a->epoch, req->suggested_port, req->suggested_address);
	else
		n = pcp_encode_map(out, &r, result, a->lifetime, a->epoch, a->external_port, address);
	if (req->third_party) {
		memset(out + n, 0, 4);
		out[n] = PCP_OPTION_THIRD_PARTY;
		proto_put16(out + n + 2, 16);
		memcpy(out + n + 4, req->third_party_address, 16);
		n += 20;
	}
	if (req->prefer_failure) {
		memset(out + n, 0, 4);
		out[n] = PCP_OPTION_PREFER_FAILURE;
		n += 4;
	}
	return n;
}

/* RFC 6887 14.1.3: an ANNOUNCE response nobody asked for tells clients the epoch after a restart or change. */
static size_t pcp_codec_announce(uint32_t epoch, uint32_t external_address, uint8_t *out)
{
	(void)external_address;
	return pcp_encode_announce(out, PCP_SUCCESS, epoch);
}

const struct codec codec_pcp = {
	.name = "PCP",
	.decode = pcp_codec_decode,
	.encode = pcp_codec_encode,
	.announce = pcp_codec_announce,
	.wire_result = pcp_result_of,
};
