/*
 * pcp.h - PCP (RFC 6887) wire codec: pure functions, no I/O.
 *
 * pcp_decode() applies the server's checks of RFC 6887 8.2 and 11.3 in
 * their order and says what the server must do with a datagram: drop it,
 * answer an error (the result code is in the request), or serve ANNOUNCE
 * or MAP.  The encoders write an answer into a caller buffer and return
 * its length.  Multi-byte fields on the wire are big-endian; the structs
 * hold host order.  Addresses are 16 bytes, IPv4 as ::ffff:a.b.c.d
 * (RFC 6887 5), as on the wire.
 *
 * codec_pcp (wire/codec.h) is this codec as the request turn sees it.
 */
#ifndef NATPMP_WIRE_PCP_H
#define NATPMP_WIRE_PCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PCP_VERSION 2
#define PCP_MAX_DATAGRAM 1100
#define PCP_HEADER_LEN 24
#define PCP_MAP_DATA_LEN 36
#define PCP_MAP_LEN (PCP_HEADER_LEN + PCP_MAP_DATA_LEN)
#define PCP_NONCE_LEN 12
#define PCP_R 0x80

#define PCP_OP_ANNOUNCE 0
#define PCP_OP_MAP 1
#define PCP_OP_PEER 2

/* RFC 6887 7.4. */
#define PCP_SUCCESS 0
#define PCP_UNSUPP_VERSION 1
#define PCP_NOT_AUTHORIZED 2
#define PCP_MALFORMED_REQUEST 3
#define PCP_UNSUPP_OPCODE 4
#define PCP_UNSUPP_OPTION 5
#define PCP_MALFORMED_OPTION 6
#define PCP_NETWORK_FAILURE 7
#define PCP_NO_RESOURCES 8
#define PCP_UNSUPP_PROTOCOL 9
#define PCP_USER_EX_QUOTA 10
#define PCP_CANNOT_PROVIDE_EXTERNAL 11
#define PCP_ADDRESS_MISMATCH 12
#define PCP_EXCESSIVE_REMOTE_PEERS 13

/* RFC 6887 13. */
#define PCP_OPTION_THIRD_PARTY 1
#define PCP_OPTION_PREFER_FAILURE 2
#define PCP_OPTION_FILTER 3

/* RFC 6887 7.4's recommended lifetimes of an error answer, in seconds. */
#define PCP_SHORT_ERROR_LIFETIME 30
#define PCP_LONG_ERROR_LIFETIME 1800

enum pcp_verdict {
	PCP_DROP,     /* too short, or a response: ignore silently (RFC 6887 8.2) */
	PCP_ERROR,    /* answer with pcp_encode_error() and req->result */
	PCP_ANNOUNCE, /* opcode 0 */
	PCP_MAP,      /* opcode 1: the MAP fields are set */
};

struct pcp_request {
	uint8_t version;
	uint8_t opcode;
	uint8_t result;	   /* PCP_ERROR: the result code to answer */
	bool parsed;	   /* the header was understood (for the error answer's reserved field) */
	uint32_t lifetime; /* requested, seconds; 0 deletes */
	uint8_t client[16];
	/* MAP */
	uint8_t nonce[PCP_NONCE_LEN];
	uint8_t protocol;
	uint16_t internal_port;
	uint16_t suggested_port;
	uint8_t suggested_address[16];
	bool prefer_failure;
	bool third_party; /* the THIRD_PARTY option, for third_party_address */
	uint8_t third_party_address[16];
	size_t filters; /* how many FILTER options */
};

/*
 * Reads len bytes that arrived from source (16 bytes).  Never fails: a
 * datagram it cannot serve is PCP_DROP or PCP_ERROR with req->result.
 * Protocols other than TCP and UDP, and wildcard mappings, are
 * PCP_UNSUPP_PROTOCOL; PEER and unknown opcodes PCP_UNSUPP_OPCODE.
 */
enum pcp_verdict pcp_decode(const uint8_t *buf, size_t len, const uint8_t source[16], struct pcp_request *req);
/*
 * An error answer (RFC 6887 8.2): the request copied (at most 1100 bytes,
 * zero-padded to a multiple of 4), the R bit, result, its lifetime
 * (pcp_error_lifetime()) and epoch; for a request that was not parsed, the
 * reserved field keeps the last 96 bits of the client's address.  A
 * version other than 2 is answered as version 2 (RFC 6887 9).  out must
 * hold PCP_MAX_DATAGRAM bytes; returns the length.
 */
size_t pcp_encode_error(uint8_t *out, const uint8_t *req, size_t len, const struct pcp_request *r, uint32_t epoch);
/*
 * A MAP answer of exactly PCP_MAP_LEN bytes: the request's opcode data
 * (nonce, protocol, internal port) with the assigned external port and
 * address (16 bytes), result and lifetime (for an error:
 * pcp_error_lifetime(), unless the caller knows better).
 */
size_t pcp_encode_map(uint8_t out[PCP_MAP_LEN], const struct pcp_request *req, uint8_t result, uint32_t lifetime,
		      uint32_t epoch, uint16_t external_port, const uint8_t external_address[16]);
/* An ANNOUNCE answer, solicited or not (RFC 6887 14.1.3): PCP_HEADER_LEN bytes, lifetime 0. */
size_t pcp_encode_announce(uint8_t out[PCP_HEADER_LEN], uint8_t result, uint32_t epoch);
/* RFC 6887 7.4: how long a client should expect the same error, in seconds. */
uint32_t pcp_error_lifetime(uint8_t result);

#endif
