/*
 * codec.h - what the request turn needs from a wire protocol, so that a
 * protocol is one codec and one line of dispatch on the version byte.
 *
 * NAT-PMP (RFC 6886) and PCP (RFC 6887) share the server's port: a
 * request's first byte is its version (RFC 6887 9).  codec_for() picks the
 * codec; its decode() turns the datagram into a protocol-neutral struct
 * codec_request, answers it at once (a version or an opcode it does not
 * serve), or drops it; the turn decides in the mapping engine and passes
 * the outcome to the same codec's encode(), which words it for the client.
 * Pure functions, no I/O, and nothing fails: a datagram a codec cannot read
 * is CODEC_DROP or an answer, never an error.
 *
 * Ports and lifetimes (seconds) are in host order; IPv4 addresses in
 * network byte order.  Result codes in struct codec_answer are the engine's
 * (TABLE_RESULT_*: RFC 6886's values, and 11 for a suggestion PREFER_FAILURE
 * could not have), which each codec words for its clients.
 */
#ifndef NATPMP_WIRE_CODEC_H
#define NATPMP_WIRE_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "wire/pcp.h"
#include "wire/proto.h"

/* The largest reply a codec writes: an echoed request (RFC 6886 3.5, RFC 6887 7.2, 8.2). */
#define CODEC_MAX_REPLY PCP_MAX_DATAGRAM
/* The largest request read: more than PCP's 1100 bytes, so that an oversize one is seen as oversize. */
#define CODEC_MAX_REQUEST (PCP_MAX_DATAGRAM + 4)

/* The rows of /metrics' requests: NAT-PMP opcodes 0-2, then these. */
#define CODEC_METRIC_OTHER_OPCODE 3
#define CODEC_METRIC_OTHER_VERSION 4 /* a version neither NAT-PMP's 0 nor PCP's 2 */
#define CODEC_METRIC_PCP_ANNOUNCE 5
#define CODEC_METRIC_PCP_MAP 6
#define CODEC_METRIC_PCP_OTHER 7 /* PEER, and opcodes PCP does not define */
#define CODEC_METRIC_ROWS 8

enum codec_verdict {
	CODEC_DROP,	/* not for a server (a response, too short): ignore, no answer */
	CODEC_ANSWERED, /* answered by decode() itself (unsupported version or opcode) */
	CODEC_ADDRESS,	/* asks for the external address (NAT-PMP opcode 0; PCP ANNOUNCE) */
	CODEC_MAP,	/* create, renew (lifetime > 0) or delete (0) a mapping */
};

struct codec_request {
	enum codec_verdict verdict;
	uint8_t opcode;	   /* as on the wire, for the answer */
	uint8_t metric_op; /* the row of /metrics it is counted in: CODEC_METRIC_* */
	uint16_t result;   /* CODEC_ANSWERED: the result code its reply carries, for /metrics */
	uint8_t protocol;  /* CODEC_MAP: IPPROTO_UDP or IPPROTO_TCP */
	uint16_t internal_port;
	uint16_t suggested_port; /* 0: no wish */
	uint32_t lifetime;	 /* requested, seconds; 0 deletes */
	/* PCP's MAP (RFC 6887 11.1, 13.2); zeros for NAT-PMP. */
	bool pcp;
	bool prefer_failure;			 /* the suggested port and address, or nothing */
	uint8_t nonce[PCP_NONCE_LEN];		 /* owns the mapping */
	uint8_t suggested_address[16];	 /* a hint: ::ffff:0.0.0.0 or :: for none */
	bool third_party;			 /* THIRD_PARTY (RFC 6887 13.1): the mapping is for this host */
	uint8_t third_party_address[16];
};

/* A result beside TABLE_RESULT_*: an option the server will not act on for this sender (PCP's UNSUPP_OPTION). */
#define CODEC_RESULT_OPTION_REFUSED 0x100

struct codec_answer {
	uint16_t result;	   /* TABLE_RESULT_* */
	uint32_t epoch;		   /* seconds since the mapping state began (RFC 6886 3.6, RFC 6887 8.5) */
	uint32_t external_address; /* network byte order; 0 when there is none yet */
	uint16_t external_port;	   /* CODEC_MAP: the port granted, 0 on failure */
	uint32_t lifetime;	   /* CODEC_MAP: seconds granted, 0 on failure or delete */
	bool over_quota;	   /* TABLE_RESULT_OUT_OF_RESOURCES for the client's own limit (PCP's USER_EX_QUOTA) */
	const uint8_t *own_address; /* an IPv6 client's pinhole: its own address (16 bytes), answered as external */
	uint32_t error_lifetime;    /* seconds an error holds (RFC 6887 11.3: what is left of another owner's mapping); 0: the codec's */
};

struct codec {
	const char *name;
	/*
	 * Decodes len bytes from peer (AF_INET or AF_INET6) into req.  For
	 * CODEC_ANSWERED, the reply is in out (at most CODEC_MAX_REPLY bytes)
	 * and *out_len says its length; epoch is what such a reply carries.
	 */
	enum codec_verdict (*decode)(const uint8_t *buf, size_t len, const struct sockaddr *peer, uint32_t epoch,
				     struct codec_request *req, uint8_t *out, size_t *out_len);
	/* The answer to req (CODEC_ADDRESS or CODEC_MAP) into out; returns its length. */
	size_t (*encode)(const struct codec_request *req, const struct codec_answer *a, uint8_t *out);
	/*
	 * An unsolicited announcement of the external address (network byte
	 * order) and epoch into out (RFC 6886 3.2.1); returns its length.
	 */
	size_t (*announce)(uint32_t epoch, uint32_t external_address, uint8_t *out);
	/* The result code the answer to a carries on the wire, as /metrics counts it. */
	uint16_t (*wire_result)(const struct codec_answer *a);
};

/* NAT-PMP's codec (proto.c) and PCP's (pcp.c). */
extern const struct codec codec_natpmp;
extern const struct codec codec_pcp;

/*
 * The codec for a datagram, by its version byte (RFC 6887 9): NAT-PMP's
 * for version 0, PCP's for every other (it serves 2 and answers the rest
 * UNSUPP_VERSION naming 2).  Never NULL.
 */
const struct codec *codec_for(const uint8_t *buf, size_t len);

#endif
