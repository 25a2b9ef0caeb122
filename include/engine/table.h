/*
 * table.h - the mapping table: decides, never acts.
 *
 * The table holds every mapping the daemon has granted and applies RFC 6886's
 * rules (port choice, renewal, lifetimes, per-client limits).  It does no I/O:
 * each change it makes is also appended to a change log, which the caller
 * turns into one nftables transaction and one state write, and then either
 * commits (table_commit) or undoes (table_rollback) when the kernel refused.
 *
 * Time is whatever clock the caller passes as "now", in whole seconds; the
 * daemon passes CLOCK_MONOTONIC, the tests a fake clock.  A client is a
 * struct table_addr, IPv4 or IPv6 (IPv4 in network byte order); ports are in
 * host order, protocols IPPROTO_UDP/TCP.  Functions that answer a client
 * return a TABLE_RESULT_* code; the others return 0 or -errno.
 *
 * The table knows no wire format: NAT-PMP, PCP and the HTTP API all ask it
 * the same way, and each front end words the result for its own clients.
 */
#ifndef NATPMP_TABLE_H
#define NATPMP_TABLE_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * What a request came to.  The values are RFC 6886's result codes, so that
 * NAT-PMP's codec passes them through; PCP's (RFC 6887 7.4) translates them.
 */
#define TABLE_RESULT_SUCCESS 0
#define TABLE_RESULT_NOT_AUTHORIZED 2	 /* internal port 0 with a lifetime */
#define TABLE_RESULT_NETWORK_FAILURE 3	 /* the change could not be made durable or real */
#define TABLE_RESULT_OUT_OF_RESOURCES 4 /* a limit, or no free port */
/*
 * Not an RFC 6886 code, and never the answer to a NAT-PMP request: a
 * request that asked for its suggested port or nothing (struct
 * table_asker.exact, PCP's PREFER_FAILURE) and could not have it.
 */
#define TABLE_RESULT_CANNOT_PROVIDE 11

/* UDP ports the table never hands out: the server's and the announcements' (RFC 6886 3, RFC 6887 19). */
#define TABLE_SERVER_PORT 5351
#define TABLE_CLIENT_PORT 5350

/*
 * A client's address, the first part of a mapping's key: 16 bytes, an IPv4
 * address as ::ffff:a.b.c.d (RFC 4291 2.5.5.2), the form PCP carries
 * (RFC 6887 5).  Only IPv4 is served today; IPv6 is here so that PCP's IPv6
 * clients and pinholes key the same table.  v4 is the last four bytes, in
 * network byte order, and means an IPv4 address only when
 * table_addr_is_v4().
 */
struct table_addr {
	union {
		uint8_t v6[16];
		struct {
			uint8_t v4_prefix[12];
			uint32_t v4;
		};
	};
};

static inline struct table_addr table_addr_v4(uint32_t v4)
{
	struct table_addr a = { .v4_prefix = { [10] = 0xff, [11] = 0xff } };

	a.v4 = v4;
	return a;
}

static inline bool table_addr_is_v4(const struct table_addr *a)
{
	static const uint8_t prefix[12] = { [10] = 0xff, [11] = 0xff };

	return memcmp(a->v4_prefix, prefix, sizeof(prefix)) == 0;
}

static inline bool table_addr_equal(const struct table_addr *a, const struct table_addr *b)
{
	return memcmp(a->v6, b->v6, sizeof(a->v6)) == 0;
}

#define TABLE_ADDR_STRLEN 46 /* INET6_ADDRSTRLEN */

/* a as text into buf: dotted IPv4 for an IPv4 client, IPv6 otherwise; returns buf. */
const char *table_addr_str(const struct table_addr *a, char buf[TABLE_ADDR_STRLEN]);

struct port_range {
	uint16_t from;
	uint16_t to;
};

/*
 * Who owns a mapping: a NAT-PMP client, the HTTP API on a host's behalf
 * (the administrator), or a PCP client, with the nonce it asked with
 * (RFC 6887 11.1).  The values are the state file's.
 */
enum table_origin { TABLE_ORIGIN_NATPMP, TABLE_ORIGIN_HTTP, TABLE_ORIGIN_PCP };

#define TABLE_NONCE_LEN 12

/* An origin as the API, --list-mappings and the state file name it: "natpmp", "http" or "pcp". */
static inline const char *table_origin_name(uint8_t origin)
{
	return origin == TABLE_ORIGIN_HTTP ? "http" : origin == TABLE_ORIGIN_PCP ? "pcp" : "natpmp";
}

/* Who is asking, for the ownership rule of table_request_by(). */
struct table_asker {
	enum table_origin origin;
	bool exact; /* the suggested port or nothing: TABLE_RESULT_CANNOT_PROVIDE (RFC 6887 13.2) */
	uint8_t nonce[TABLE_NONCE_LEN]; /* TABLE_ORIGIN_PCP: the request's mapping nonce */
};

/*
 * A per-client rule, miniupnpd's "allow|deny EXT CLIENT/PREFIX INT": which
 * LAN addresses may map which external ports to which internal ports.  The
 * first rule matching a mapping decides; once any rule is given, a mapping
 * none matches is refused.  IPv4 clients only (an IPv6 one matches none).
 */
struct table_rule {
	bool allow;
	struct port_range external;
	uint32_t net, mask; /* network byte order */
	struct port_range internal;
};

struct table_mapping {
	struct table_addr client; /* internal address: always the request's source */
	uint8_t protocol;
	uint8_t origin; /* enum table_origin */
	uint16_t internal_port;
	uint16_t external_port;
	/*
	 * Upstream mode: the port the gateway forwards to external_port, which
	 * is what the client is told; 0 until the gateway first granted one.
	 */
	uint16_t upstream_port;
	uint32_t lifetime; /* seconds granted by the last request */
	int64_t expires; /* table clock */
	/*
	 * Who asked at the link layer, for the per-host limit that a claimed
	 * source address cannot escape: TABLE_LINK_HOST(mac) for a sender the
	 * kernel has a neighbour entry for, TABLE_LINK_UNKNOWN for one it has
	 * none for (all of those share one limit), TABLE_LINK_NONE for a
	 * mapping no sender is counted for (made by the HTTP API's token
	 * holder, or restored from the state file).
	 */
	uint64_t link;
	/* TABLE_ORIGIN_PCP: the nonce that owns the mapping; zeros otherwise. */
	uint8_t nonce[TABLE_NONCE_LEN];
};

/* Who owns m, to ask on its owner's behalf (the daemon moving or withdrawing it): origin and nonce. */
static inline struct table_asker table_owner_of(const struct table_mapping *m)
{
	struct table_asker a = { .origin = (enum table_origin)m->origin };

	memcpy(a.nonce, m->nonce, TABLE_NONCE_LEN);
	return a;
}

#define TABLE_LINK_UNKNOWN 0
#define TABLE_LINK_NONE UINT64_MAX
#define TABLE_LINK_HOST(mac) ((uint64_t)1 << 48 | ((mac) & 0xffffffffffffULL))

struct table_config {
	const struct port_range *allowed; /* ports that may be handed out */
	size_t n_allowed;
	const struct port_range *reserved; /* ... except these */
	size_t n_reserved;
	/*
	 * Asked last, for a port that is otherwise free: non-zero when the
	 * router itself uses it (a listening socket), so that it is not
	 * handed out.  NULL: never.
	 */
	int (*port_busy)(uint8_t protocol, uint16_t port, void *arg);
	void *port_busy_arg;
	const struct table_rule *rules; /* in order; none: every client may map every allowed port */
	size_t n_rules;
	uint32_t max_per_client; /* per client address, and per link (table_mapping.link) */
	uint32_t max_lifetime;
	/* Returns a uniformly random number below bound; NULL means arc4random_uniform. */
	uint32_t (*random)(uint32_t bound, void *arg);
	void *random_arg;
};

enum table_op { TABLE_ADD, TABLE_RENEW, TABLE_DEL };

struct table_change {
	enum table_op op;
	struct table_mapping mapping;  /* the mapping after the change (before it, for TABLE_DEL) */
	int64_t previous_expires;      /* TABLE_RENEW: for rollback */
	uint32_t previous_lifetime;    /* TABLE_RENEW: for rollback */
	uint8_t previous_origin;       /* TABLE_RENEW: for rollback of a PCP client's take-over */
	uint8_t previous_nonce[TABLE_NONCE_LEN];
};

struct table_grant {
	uint16_t external_port;
	uint32_t lifetime;
};

struct table;

/* Copies cfg (including the ranges); returns NULL with errno set. */
struct table *table_new(const struct table_config *cfg);
void table_free(struct table *t);
/*
 * Takes new ranges and limits (SIGHUP).  Mappings already granted stay as
 * they are until they end, even outside the new ranges or limits: they
 * were acknowledged.  0 or -ENOMEM, leaving the old configuration.
 */
int table_configure(struct table *t, const struct table_config *cfg);

/*
 * A map request (RFC 6886 3.3).  lifetime 0 deletes: the mapping of
 * (client, protocol, internal_port), or with internal_port 0 all of the
 * client's mappings of that protocol; deleting nothing succeeds.
 * One ownership rule for every front end: a mapping the HTTP API made is
 * the administrator's, and a client's own request (NAT-PMP or PCP) may
 * renew it but never shorten it (a shorter renewal is answered with what is
 * left) nor delete it (TABLE_RESULT_NOT_AUTHORIZED, RFC 6886 3.4; a
 * delete-all deletes the rest and answers that).  A PCP mapping belongs to
 * its nonce: a renewal or delete with another nonce, or by NAT-PMP, is
 * TABLE_RESULT_NOT_AUTHORIZED and changes nothing (RFC 6887 11.3); a PCP
 * request takes a NAT-PMP mapping over.  origin is recorded in a new
 * mapping; a renewal keeps the mapping's own.  A renewal of a mapping whose
 * port is no longer allowed (table_configure) is logged as TABLE_DEL then
 * TABLE_ADD of the same mapping on a new port.
 * An IPv6 client's mapping is a pinhole (RFC 6887 11.1, no NAT66): its
 * external port is its internal port, whatever was suggested, outside the
 * router's port ranges and port index (table_find_external() never finds
 * it); PREFER_FAILURE with another suggested port is
 * TABLE_RESULT_CANNOT_PROVIDE.
 * A new mapping no allow rule permits (table_config.rules) is
 * TABLE_RESULT_NOT_AUTHORIZED; its port is one the rules allow, and a
 * renewal of one they no longer allow moves, as for a port no longer allowed.
 * link (TABLE_LINK_*) is who sent the request at the link layer: a new
 * mapping is refused (TABLE_RESULT_OUT_OF_RESOURCES) once that link holds
 * max_per_client, whatever source addresses it claims.
 */
uint16_t table_request(struct table *t, struct table_addr client, enum table_origin origin, uint8_t protocol,
		       uint16_t internal_port, uint16_t suggested_port, uint32_t lifetime, int64_t now,
		       struct table_grant *grant, uint64_t link);
/*
 * table_request() for an asker with more to say: a PCP client's nonce, or
 * its PREFER_FAILURE (who->exact: a new mapping gets suggested_port or
 * TABLE_RESULT_CANNOT_PROVIDE; a renewal of one on another port too).
 */
uint16_t table_request_by(struct table *t, struct table_addr client, const struct table_asker *who, uint8_t protocol,
			  uint16_t internal_port, uint16_t suggested_port, uint32_t lifetime, int64_t now,
			  struct table_grant *grant, uint64_t link);

/*
 * Puts back a mapping read from the state file; -ERANGE if its port is no
 * longer allowed, -EACCES if the rules no longer allow it, -EADDRINUSE if the router itself now uses it, -EEXIST if
 * it conflicts with another mapping, -ENOSPC over a limit.
 */
int table_restore(struct table *t, const struct table_mapping *m);

/* Removes every mapping whose lifetime has ended; returns how many. */
size_t table_expire(struct table *t, int64_t now);
/* Earliest expiry in the table, or INT64_MAX when it is empty. */
int64_t table_next_expiry(const struct table *t);

size_t table_count(const struct table *t);
size_t table_client_count(const struct table *t, struct table_addr client);
/* How many mappings one link (TABLE_LINK_*, table_mapping.link) holds; 0 for TABLE_LINK_NONE. */
size_t table_link_count(struct table *t, uint64_t link);
/*
 * The lookups copy the mapping into *m (m may be NULL: only whether there
 * is one) and return whether there is one.  The table keeps its mappings
 * in its own compact form, so there is no pointer into it to hold.
 */
/* The mapping of (client, protocol, internal_port). */
bool table_find(const struct table *t, struct table_addr client, uint8_t protocol, uint16_t internal_port,
		struct table_mapping *m);
/* The IPv4 mapping on (protocol, external_port); never a pinhole. */
bool table_find_external(const struct table *t, uint8_t protocol, uint16_t external_port, struct table_mapping *m);
/*
 * Records the gateway's port for the mapping on external_port (upstream
 * mode) and copies the mapping as it now is.  Not a change of the kind
 * table_changes() lists: nothing in the kernel changes, and the caller
 * journals it itself.  false when there is no such mapping.
 */
bool table_set_upstream(struct table *t, uint8_t protocol, uint16_t external_port, uint16_t upstream_port,
			struct table_mapping *m);
/*
 * Calls fn for each mapping, in no particular order, with a copy valid
 * during the call; stops early when fn returns non-zero, and returns that.
 */
int table_foreach(const struct table *t, int (*fn)(const struct table_mapping *m, void *arg), void *arg);

/* The change log since the last commit or rollback. */
size_t table_changes(const struct table *t, const struct table_change **changes);
void table_commit(struct table *t);
void table_rollback(struct table *t);

#endif
