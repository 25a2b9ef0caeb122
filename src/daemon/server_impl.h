/*
 * server_impl.h - what the daemon's own files share, and nothing outside
 * src/daemon/ sees: struct server (every handle and timer the daemon owns),
 * its clocks, and the limits of its queues.
 *
 * The daemon's files split struct server by concern, one file each (see
 * docs/architecture.md): server.c starts and stops, turn.c answers
 * requests, persist.c writes the state file, install.c keeps the kernel's
 * copy, expiry.c ends mappings, external.c follows the external address,
 * ports.c the router's own ports, waiting.c the outer NAT's answers, api.c
 * serves the HTTP API, reload.c a SIGHUP.  Their functions take the server
 * first and return 0 or -errno, or nothing when they log what failed
 * themselves (event callbacks).
 *
 * Times: the table runs on CLOCK_MONOTONIC seconds (server_mono_s), the
 * state file on the wall clock and CLOCK_BOOTTIME; all in seconds unless a
 * name says _ms or _us.
 */
#ifndef NATPMP_DAEMON_SERVER_IMPL_H
#define NATPMP_DAEMON_SERVER_IMPL_H

#include <event2/event.h>
#include <limits.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/types.h>
#include <time.h>

#include "daemon/announce.h"
#include "daemon/config.h"
#include "daemon/hook.h"
#include "daemon/lock.h"
#include "daemon/http.h"
#include "base/log.h"
#include "daemon/metrics.h"
#include "daemon/notify.h"
#include "daemon/server.h"
#include "daemon/udp.h"
#include "outer/outer.h"
#include "engine/ratelimit.h"
#include "engine/table.h"
#include "kernel/conntrack.h"
#include "kernel/netif.h"
#include "kernel/nft.h"
#include "kernel/nftmon.h"
#include "kernel/sockdiag.h"
#include "store/state.h"
#include "wire/codec.h"
#include "wire/proto.h"

/* Rounds of recvmmsg per readable event before other sockets get a turn. */
#define SERVER_ROUNDS 8
/*
 * The most requests one turn decides, makes durable (one journal sync) and
 * real (one nftables transaction) together: what up to four rounds
 * brought.  More would cost each turn's buffers (2.3 kB a request) for a
 * sync that is already a few percent of the time.
 */
#define SERVER_TURN_MAX (4 * UDP_BATCH)
/* How long a burst of foreign nftables changes (a ruleset reload) may take before the repair. */
#define SERVER_REPAIR_DELAY_MS 100
#define SERVER_MAX_EXTERNAL 16
/* How often the router's own ports are compared with the mappings (a service started since). */
#define SERVER_PORTS_CHECK_S 10
/* Mappings that end within this share one conntrack dump. */
#define SERVER_FLOWS_DELAY_MS 100
/* A journal smaller than this is never worth compacting early. */
#define SERVER_JOURNAL_MIN (1024 * 1024)
/*
 * Upstream mode: requests waiting for the gateway, in all and from one
 * client address; more are dropped (their clients send again).  A client
 * has one per mapping it waits for, its retransmissions coalesced.
 */
#define SERVER_MAX_PENDING 4096
#define SERVER_MAX_PENDING_PER_CLIENT 32

/*
 * A listen socket: two per listen interface, IPv4 (NAT-PMP and PCP) and IPv6
 * (PCP), at 2i and 2i + 1.  family says which it is even while it waits for
 * its interface; unavailable: IPv6 is off in this kernel, never retried.
 */
struct server_listener {
	struct server *server;
	struct udp_socket sock;
	struct event *ev;
	int family;
	bool unavailable;
};
#define SERVER_MAX_LISTENERS (2 * CONFIG_MAX_LISTEN)

/* One datagram of a turn: what its codec decoded, and what the table granted. */
struct server_request {
	const struct codec *codec;
	struct codec_request req;
	uint16_t result; /* CODEC_MAP, CODEC_ADDRESS: TABLE_RESULT_* */
	bool over_quota; /* TABLE_RESULT_OUT_OF_RESOURCES: the client's own limit */
	struct table_addr client; /* CODEC_MAP: whose mapping, the sender's or (THIRD_PARTY) another host's */
	uint64_t link;		  /* CODEC_MAP: who sent it at the link layer (table_mapping.link) */
	struct table_grant grant;
};

/*
 * Upstream mode: a request answered once the gateway has answered for the
 * mapping on (protocol, local_port), from a NAT-PMP client or the HTTP API.
 */
struct server_pending {
	TAILQ_ENTRY(server_pending) link;
	uint8_t protocol;
	uint16_t local_port;
	struct server_listener *l; /* NULL: http */
	uint32_t client;	   /* http: the host the mapping is for */
	struct sockaddr_in peer;
	struct in_addr local;
	const struct codec *codec; /* a client's: what its answer is encoded with */
	struct codec_request req;
	struct http_pending *http;
};

/* What a client suggested for the mapping a turn granted on local port: the gateway is asked for it too. */
struct waiting_wish {
	uint8_t protocol;
	uint16_t local_port;
	uint16_t suggested;
};

struct server {
	struct lock lock; /* this daemon's state directory and nftables table: no other daemon's */
	struct event *lock_ev; /* the table lock's socket: who asked is accepted and let go */
	struct config cfg; /* replaced by a SIGHUP reload */
	int argc;	   /* the command line, parsed again at a reload */
	char **argv;
	struct event_base *base;
	struct server_listener listeners[SERVER_MAX_LISTENERS];
	size_t n_listeners;
	struct event *expiry_ev;
	struct event *signal_ev[3];
	struct table *table;
	struct nft *nft;
	char state_path[PATH_MAX];
	char journal_path[PATH_MAX];
	int journal_fd;		/* -1: none, each turn saves a snapshot */
	off_t journal_end;	/* the journal's length in bytes: a failed turn is cut back to it */
	uint64_t generation;	/* of the snapshot on disk and its journal */
	size_t journal_bytes;	/* appended since the last compaction */
	size_t snapshot_bytes;	/* about what the last snapshot took */
	struct event *compact_ev;
	int restored;	     /* the state file has been read: saving may replace it */
	char boot_id[STATE_BOOT_ID_LEN + 1];
	int64_t epoch_start; /* monotonic seconds when the mapping table began */
	struct udp_packet pkts[SERVER_TURN_MAX];
	struct server_request reqs[SERVER_TURN_MAX];

	/* The external interface's addresses, kept current by the rtnetlink watcher. */
	uint32_t external[SERVER_MAX_EXTERNAL];
	size_t n_external;
	int external_missing; /* the external interface does not exist (yet) */
	struct netif_watch *netwatch;
	struct event *netwatch_ev;
	struct announce *announce;

	/* Someone else's changes to our table, and their repair. */
	struct nftmon *nftmon;
	struct event *nftmon_ev;
	struct event *repair_ev;
	int table_broken; /* the last install failed: a repair is pending */
	int serving;	  /* start-up finished */

	struct metrics metrics;
	/* Refusals logged at most once a second (turn_log_refusal): when, and how many since went unlogged. */
	int64_t refusal_logged_at;
	uint64_t refusals_unlogged;
	struct http *http;
	struct hook *hook;

	struct ratelimit *ratelimit;
	struct sockdiag *sockdiag;
	int sockdiag_failed; /* logged once */
	struct netif_neigh *neigh; /* who sent a request, at the link layer */
	int neigh_failed;	   /* logged once */
	/* The router's own ports, [0] UDP and [1] TCP, from one dump at most a second old. */
	uint8_t busy[2][SOCKDIAG_BITMAP_BYTES];
	int64_t busy_at_ms;
	int busy_valid;

	/* Mappings removed from the kernel whose conntrack entries are still to go. */
	struct ct *ct;
	struct table_mapping *ended;
	size_t n_ended, ended_cap;
	struct event *flows_ev;
	struct event *ports_ev; /* SERVER_PORTS_CHECK_S: mappings onto ports the router now uses */

	/* Upstream mode (--upstream-gateway), NULL otherwise. */
	struct outer *outer;
	struct outer_events outer_ev;
	TAILQ_HEAD(, server_pending) pending;
	size_t n_pending;
	struct waiting_wish wishes[SERVER_TURN_MAX];
	size_t n_wishes;
};

/* Watches the table lock's socket (again, after a reload moved the lock to another table). */
void server_watch_lock(struct server *s);
/* The table's rules (ranges, limits, the router's ports) as the configuration of the moment gives them. */
struct table_config server_table_config(struct server *s);

/* --- clocks --- */

static inline int64_t server_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t server_mono_ms(void)
{
	return server_mono_us() / 1000;
}

static inline int64_t server_mono_s(void)
{
	return server_mono_ms() / 1000;
}

static inline int64_t server_wall_s(void)
{
	return (int64_t)time(NULL);
}

/* CLOCK_BOOTTIME seconds: counts suspend, never stepped by NTP; what the state file's *_boot times are on. */
static inline int64_t server_boot_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec;
}

static inline uint32_t server_epoch(const struct server *s, int64_t now)
{
	int64_t e = now - s->epoch_start;

	return e < 0 ? 0 : e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

#endif
