/*
 * proto.h - NAT-PMP (RFC 6886) wire codec: pure functions, no I/O.
 *
 * proto_decode() classifies a datagram and returns what the server must do
 * with it; the encoders write a reply into a caller buffer and return its
 * length.  All multi-byte fields on the wire are big-endian; the structs hold
 * host byte order, except IPv4 addresses, which stay in network byte order
 * (struct in_addr convention) throughout the project.
 */
#ifndef NATPMP_PROTO_H
#define NATPMP_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define NATPMP_SERVER_PORT 5351
#define NATPMP_CLIENT_PORT 5350
#define NATPMP_VERSION 0

#define NATPMP_OP_ADDRESS 0
#define NATPMP_OP_MAP_UDP 1
#define NATPMP_OP_MAP_TCP 2
#define NATPMP_OP_REPLY 0x80

#define NATPMP_RESULT_SUCCESS 0
#define NATPMP_RESULT_UNSUPPORTED_VERSION 1
#define NATPMP_RESULT_NOT_AUTHORIZED 2
#define NATPMP_RESULT_NETWORK_FAILURE 3
#define NATPMP_RESULT_OUT_OF_RESOURCES 4
#define NATPMP_RESULT_UNSUPPORTED_OPCODE 5

#define PROTO_ADDRESS_REQUEST_LEN 2
#define PROTO_MAP_REQUEST_LEN 12
#define PROTO_ADDRESS_REPLY_LEN 12
#define PROTO_MAP_REPLY_LEN 16
#define PROTO_ERROR_REPLY_LEN 8
/* Largest datagram the server reads; PCP requests are at most 1100 bytes. */
#define PROTO_MAX_DATAGRAM 1100

enum proto_verdict {
	PROTO_DROP,		  /* too short, or a response: ignore silently */
	PROTO_ADDRESS,		  /* opcode 0 */
	PROTO_MAP,		  /* opcodes 1 and 2: req->protocol is set */
	PROTO_BAD_VERSION,	  /* answer with proto_encode_bad_version() */
	PROTO_UNSUPPORTED_OPCODE, /* answer with proto_encode_unsupported_opcode() */
};

struct proto_request {
	uint8_t version;
	uint8_t opcode;
	uint8_t protocol; /* IPPROTO_UDP or IPPROTO_TCP for PROTO_MAP, else 0 */
	uint16_t internal_port;
	uint16_t suggested_port;
	uint32_t lifetime;
};

enum proto_verdict proto_decode(const uint8_t *buf, size_t len, struct proto_request *req);

/* Each encoder returns the number of bytes written; out must hold them. */
size_t proto_encode_address(uint8_t out[PROTO_ADDRESS_REPLY_LEN], uint16_t result, uint32_t epoch,
			    uint32_t addr_be);
size_t proto_encode_map(uint8_t out[PROTO_MAP_REPLY_LEN], uint8_t opcode, uint16_t result, uint32_t epoch,
			uint16_t internal_port, uint16_t external_port, uint32_t lifetime);
size_t proto_encode_bad_version(uint8_t out[PROTO_ERROR_REPLY_LEN], uint8_t request_opcode, uint32_t epoch);
/* Echoes the request (len bytes, at most PROTO_MAX_DATAGRAM) with the reply bit and result 5. */
size_t proto_encode_unsupported_opcode(uint8_t *out, const uint8_t *req, size_t len);

/* --- the client side, for upstream mode --- */

/* A gateway's answer: opcode is the request's (0, 1 or 2), without the reply bit. */
struct proto_reply {
	uint8_t opcode;
	uint16_t result;
	uint32_t epoch;
	uint32_t address;	/* opcode 0: network byte order */
	uint16_t internal_port; /* opcodes 1 and 2 */
	uint16_t external_port;
	uint32_t lifetime;
};

/* A map request (opcode 1 or 2 from protocol); lifetime 0 deletes.  Returns PROTO_MAP_REQUEST_LEN. */
size_t proto_encode_map_request(uint8_t out[PROTO_MAP_REQUEST_LEN], uint8_t protocol, uint16_t internal_port,
				uint16_t suggested_port, uint32_t lifetime);
/*
 * Reads a gateway's reply to opcode 0, 1 or 2; -1 for anything else (a
 * request, another version, too short for its opcode).  A reply with a
 * non-zero result may stop after the epoch (RFC 6886 3.5).
 */
int proto_decode_reply(const uint8_t *buf, size_t len, struct proto_reply *r);
/*
 * RFC 6886 3.6: whether a gateway lost its mappings, seeing epoch now when
 * it said previous elapsed_ms ago: the epoch must have advanced by at least
 * 7/8 of the time elapsed, less 2 seconds.
 */
int proto_epoch_lost(uint32_t previous, int64_t elapsed_ms, uint32_t epoch);

/* Big-endian fields on the wire, for the codec and for clients. */
static inline uint16_t proto_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t proto_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void proto_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void proto_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

uint8_t proto_opcode_to_protocol(uint8_t opcode);
uint8_t proto_protocol_to_opcode(uint8_t protocol);
const char *proto_protocol_name(uint8_t protocol);

#endif
