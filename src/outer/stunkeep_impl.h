/*
 * stunkeep_impl.h - what stunkeep.c (the bindings) and stunkeep_http.c
 * (the keep-alive connections to an HTTP server) share: STUN mode's own
 * structures.  Private to src/outer/; outer/stunkeep.h is the interface.
 */
#ifndef NATPMP_OUTER_STUNKEEP_IMPL_H
#define NATPMP_OUTER_STUNKEEP_IMPL_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "outer/stunkeep.h"
#include "stun_io.h"
#include "stunprobe.h"

/* The keep-alive server's port when none is given. */
#define SBIND_HTTP_PORT 80

struct sbind {
	struct stunkeep *k;
	TAILQ_ENTRY(sbind) all;
	uint8_t protocol;
	uint16_t local_port;
	uint16_t port;	 /* the public port last learnt; 0: none yet */
	int granted;	 /* port was reported */
	int waiting;	 /* not started: for the first probe, or for the outer NAT to forward again */
	int failing;	 /* a failure to report from the timer */
	int told;	 /* a failure was reported: the server kept the mapping (one it had granted before) */
	int wanted;	 /* since then, a client asked for it again: the next failure is reported too */
	int silent;	 /* keep-alives unanswered in a row (the first is logged, and the recovery) */
	const char *why; /* ... and why */
	int fd;		 /* UDP: the bound socket; TCP: the connection to the STUN server; -1: none */
	struct event *io;
	struct event *timer;
	struct stun_tx tx; /* UDP */
	/* TCP */
	int connecting, asking;
	int64_t deadline_ms; /* the connection or answer is due by then; 0: none is awaited */
	uint8_t txid[STUN_TXID_LEN];
	uint8_t in[576];
	size_t in_len;
	int http_fd;
	struct event *http_io;
	int http_connecting;
};

struct stunkeep {
	struct event_base *base;
	const struct outer_events *ev;
	char ifname[16];
	uint32_t keepalive_ms;
	bool allow_filtered;
	struct sockaddr_in http; /* the keep-alive server; sin_port 0: none (yet) */
	char http_host[256];
	uint16_t http_port;
	struct event *http_lookup_ev; /* the next lookup of its name, after one failed */
	struct stunprobe *probe;
	int probed; /* a probe has ended: bindings need not wait */
	uint32_t address;
	enum stunprobe_kind mapping, filtering;
	bool forwarding;
	char why_not[200];
	TAILQ_HEAD(, sbind) all;
	struct sbind *index[2][65536]; /* [0] UDP, [1] TCP, by local port */
	struct outer_stats stats;
};

/* Learns a TCP binding's public port over a new connection to the STUN server (stunkeep.c). */
void sbind_tcp_learn(struct sbind *b);
/* The keep-alive connection from b's port (stunkeep_http.c): closed (with a reset); made, or sent a HEAD. */
void sbind_http_close(struct sbind *b);
void sbind_http_keepalive(struct sbind *b);
/* Timer callback (arg: the stunkeep): resolves the keep-alive server's name, again a minute after a failure. */
void stunkeep_http_lookup(evutil_socket_t fd, short what, void *arg);

#endif
