/*
 * stunprobe.h - the STUN servers (--stun-server), the public address they
 * see, and what kind of NAT stands in the way (RFC 5780 behaviour
 * discovery), for stunkeep.c.
 *
 * Servers are "HOST[:PORT]" (port 3478 when none), tried in turn: a name
 * is resolved by libevent's evdns, never blocking the event loop.  A probe
 * runs at start, when recheck is asked (the interface's address changed)
 * and when the public address seen changes; in between, the public
 * address is asked for every STUNPROBE_REFRESH_MS.  When no server
 * answers, the probe is run again after STUNPROBE_RETRY_MS, doubling up to
 * STUNPROBE_REFRESH_MS.
 *
 * Discovery (RFC 5780 4.3, 4.4) needs a server that names its second
 * address (OTHER-ADDRESS): mapping is told from Binding requests to the
 * other address from one socket, filtering from answers sent, on request,
 * from the other address and port to a second socket that talked to the
 * primary address alone.  Without OTHER-ADDRESS both stay unknown.
 */
#ifndef NATPMP_OUTER_STUNPROBE_H
#define NATPMP_OUTER_STUNPROBE_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#define STUNPROBE_REFRESH_MS 60000
#define STUNPROBE_RETRY_MS 5000
#define STUNPROBE_DEFAULT_PORT 3478

/* RFC 4787's words for how a NAT maps and filters (RFC 5780 4.3, 4.4). */
enum stunprobe_kind {
	STUNPROBE_UNKNOWN,
	STUNPROBE_INDEPENDENT, /* endpoint-independent */
	STUNPROBE_ADDRESS,     /* address-dependent */
	STUNPROBE_ADDRESS_PORT, /* address-and-port-dependent */
};

struct stunprobe_result {
	uint32_t address; /* the public address (network order); 0: no server answered */
	bool nat;	  /* the address is not one of the interface's own */
	enum stunprobe_kind mapping, filtering;
	bool discovered;  /* a full discovery (not a refresh) ended with this result */
};

struct stunprobe;
typedef void (*stunprobe_done)(void *arg, const struct stunprobe_result *r);

/*
 * Probes through ifname with servers[0..n) ("HOST[:PORT]", checked by the
 * configuration); done is called after each probe and refresh, from the
 * event loop.  NULL after logging why.
 */
struct stunprobe *stunprobe_open(struct event_base *base, const char *ifname, const char *const *servers, size_t n,
				 stunprobe_done done, void *arg);
void stunprobe_close(struct stunprobe *p);
/* Runs a full probe now (the external interface's address changed). */
void stunprobe_recheck(struct stunprobe *p);
/* The server bindings ask: the one that answered last; 0 (and *to untouched) while none has. */
int stunprobe_server(const struct stunprobe *p, struct sockaddr_in *to);
/* A binding found the server silent: the next probe starts from the next server. */
void stunprobe_server_failed(struct stunprobe *p);
/*
 * Resolves host (a name or an IPv4 address) by the probe's evdns, without
 * blocking; done gets its first IPv4 address (port 0), or NULL and why it
 * has none: from the event loop, or, for a name evdns answers at once (from
 * /etc/hosts, or a failure of its own), within this call.  The servers'
 * names are resolved the same way.
 */
void stunprobe_lookup(struct stunprobe *p, const char *host,
		      void (*done)(void *arg, const struct sockaddr_in *a, const char *why), void *arg);
/* "endpoint-independent", "address-dependent", "address-and-port-dependent", "unknown". */
const char *stunprobe_kind_name(enum stunprobe_kind k);

#endif
