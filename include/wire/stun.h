/*
 * stun.h - STUN (RFC 8489) Binding, as a client needs it: pure functions,
 * no I/O.  The first piece of issue 17 (the public address behind a
 * carrier-grade NAT); nothing in the daemon sends STUN yet.
 *
 * stun_encode_binding() writes a Binding request, with RFC 5780's
 * CHANGE-REQUEST when asked; stun_decode_response() reads the answer to
 * one: the mapped address (XOR-MAPPED-ADDRESS, else MAPPED-ADDRESS), and,
 * for RFC 5780's behaviour discovery, OTHER-ADDRESS (or RFC 3489's
 * CHANGED-ADDRESS) and RESPONSE-ORIGIN.  Multi-byte fields on the wire are
 * big-endian; ports in the structs are host order, addresses 16 bytes with
 * IPv4 as ::ffff:a.b.c.d.  MESSAGE-INTEGRITY and FINGERPRINT are known but
 * not checked: a Binding request without credentials gets neither checked
 * by anyone.
 */
#ifndef NATPMP_WIRE_STUN_H
#define NATPMP_WIRE_STUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STUN_HEADER_LEN 20
#define STUN_MAGIC_COOKIE 0x2112A442u
#define STUN_TXID_LEN 12
/* The longest request stun_encode_binding() writes: the header and CHANGE-REQUEST. */
#define STUN_MAX_REQUEST (STUN_HEADER_LEN + 8)

/* Message types (RFC 8489 5, 18.2): method Binding in each class. */
#define STUN_BINDING_REQUEST 0x0001
#define STUN_BINDING_SUCCESS 0x0101
#define STUN_BINDING_ERROR 0x0111

/* Attributes (RFC 8489 14, 18.3; RFC 5780 7; RFC 3489 11.2). */
#define STUN_ATTR_MAPPED_ADDRESS 0x0001
#define STUN_ATTR_CHANGE_REQUEST 0x0003
#define STUN_ATTR_SOURCE_ADDRESS 0x0004  /* RFC 3489 */
#define STUN_ATTR_CHANGED_ADDRESS 0x0005 /* RFC 3489: OTHER-ADDRESS's forerunner */
#define STUN_ATTR_USERNAME 0x0006
#define STUN_ATTR_MESSAGE_INTEGRITY 0x0008
#define STUN_ATTR_ERROR_CODE 0x0009
#define STUN_ATTR_UNKNOWN_ATTRIBUTES 0x000A
#define STUN_ATTR_REALM 0x0014
#define STUN_ATTR_NONCE 0x0015
#define STUN_ATTR_MESSAGE_INTEGRITY_SHA256 0x001C
#define STUN_ATTR_USERHASH 0x001E
#define STUN_ATTR_XOR_MAPPED_ADDRESS 0x0020
#define STUN_ATTR_PADDING 0x0026
#define STUN_ATTR_RESPONSE_PORT 0x0027
#define STUN_ATTR_SOFTWARE 0x8022
#define STUN_ATTR_FINGERPRINT 0x8028
#define STUN_ATTR_RESPONSE_ORIGIN 0x802B
#define STUN_ATTR_OTHER_ADDRESS 0x802C

/* CHANGE-REQUEST's flags (RFC 5780 7.2): answer from the other address, the other port. */
#define STUN_CHANGE_IP 0x04
#define STUN_CHANGE_PORT 0x02

struct stun_address {
	uint8_t family;	  /* 4 or 6 */
	uint8_t addr[16]; /* IPv4 as ::ffff:a.b.c.d */
	uint16_t port;
};

struct stun_response {
	bool success;	     /* a Binding success response; else an error response */
	uint16_t error_code; /* error response: ERROR-CODE (300-699), 0 when it carried none */
	bool has_mapped;     /* success: the reflexive address the server saw */
	struct stun_address mapped;
	bool has_other; /* OTHER-ADDRESS (or CHANGED-ADDRESS): the server's second address, RFC 5780 */
	struct stun_address other;
	bool has_origin; /* RESPONSE-ORIGIN: where the response was sent from */
	struct stun_address origin;
};

enum stun_verdict {
	STUN_NOT_OURS,	/* not a STUN response to this transaction: ignore it */
	STUN_MALFORMED, /* the answer to this transaction, but unreadable (RFC 8489 6.3: discard) */
	STUN_ANSWER,	/* *r holds it */
};

/*
 * A Binding request with transaction id txid (12 bytes) into out
 * (STUN_MAX_REQUEST bytes), with CHANGE-REQUEST carrying change
 * (STUN_CHANGE_*) when change is not 0.  Returns its length.
 */
size_t stun_encode_binding(uint8_t out[STUN_MAX_REQUEST], const uint8_t txid[STUN_TXID_LEN], uint8_t change);
/*
 * Reads len bytes as the response to the Binding request of txid (RFC 8489
 * 6.3: header, magic cookie, length, transaction, class; every attribute
 * within the message; an unknown comprehension-required attribute makes a
 * response unreadable).  Never fails otherwise: see enum stun_verdict.
 */
enum stun_verdict stun_decode_response(const uint8_t *buf, size_t len, const uint8_t txid[STUN_TXID_LEN],
				       struct stun_response *r);

#endif
