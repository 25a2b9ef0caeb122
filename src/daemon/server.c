/*
 * server.c - the request path and the mapping lifecycle.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/announce.h"
#include "kernel/conntrack.h"
#include "daemon/hook.h"
#include "daemon/http.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "kernel/netif.h"
#include "kernel/nft.h"
#include "kernel/nftmon.h"
#include "daemon/notify.h"
#include "wire/proto.h"
#include "engine/ratelimit.h"
#include "daemon/server.h"
#include "kernel/sockdiag.h"
#include "store/state.h"
#include "engine/table.h"
#include "daemon/udp.h"
#include "daemon/upstream.h"

/* Rounds of recvmmsg per readable event before other sockets get a turn. */
#define SERVER_ROUNDS 8
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

struct server_listener {
	struct server *server;
	struct udp_socket sock;
	struct event *ev;
};

struct server_request {
	struct proto_request req;
	enum proto_verdict verdict;
	uint16_t result;
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
	uint8_t opcode;
	uint16_t internal_port;
	struct http_pending *http;
};

/* What a client suggested for the mapping a turn granted on local port: the gateway is asked for it too. */
struct server_wish {
	uint8_t protocol;
	uint16_t local_port;
	uint16_t suggested;
};

struct server {
	struct config cfg; /* replaced by a SIGHUP reload */
	int argc;	   /* the command line, parsed again at a reload */
	char **argv;
	struct event_base *base;
	struct server_listener listeners[CONFIG_MAX_LISTEN];
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
	struct udp_packet pkts[UDP_BATCH];
	struct server_request reqs[UDP_BATCH];

	/* The external interface's addresses, kept current by the rtnetlink watcher. */
	uint32_t external[SERVER_MAX_EXTERNAL];
	size_t n_external;
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
	struct upstream *upstream;
	struct upstream_events upstream_ev;
	TAILQ_HEAD(, server_pending) pending;
	size_t n_pending;
	struct server_wish wishes[UDP_BATCH];
	size_t n_wishes;
};

static int64_t mono_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t mono_now_ms(void)
{
	return mono_now_us() / 1000;
}

static int64_t mono_now(void)
{
	return mono_now_ms() / 1000;
}

static int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* CLOCK_BOOTTIME seconds: counts suspend, never stepped by NTP; what the state file's *_boot times are on. */
static int64_t boot_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec;
}

/* The kernel's id of this boot, "" when it cannot be read: then only the wall clock is written. */
static void server_read_boot_id(struct server *s)
{
	char id[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");

	s->boot_id[0] = '\0';
	if (!f)
		return;
	if (fgets(id, sizeof(id), f) && strlen(id) >= STATE_BOOT_ID_LEN) {
		memcpy(s->boot_id, id, STATE_BOOT_ID_LEN);
		s->boot_id[STATE_BOOT_ID_LEN] = '\0';
	}
	fclose(f);
}

static uint32_t server_epoch(const struct server *s, int64_t now)
{
	int64_t e = now - s->epoch_start;

	return e < 0 ? 0 : e > UINT32_MAX ? UINT32_MAX : (uint32_t)e;
}

/*
 * The address clients are told: the gateway's in upstream mode, else
 * --external-address, else the interface's first; 0 when none.
 */
static uint32_t server_public_address(const struct server *s)
{
	if (s->cfg.upstream_gateway)
		return s->upstream ? upstream_address(s->upstream) : 0;
	if (s->cfg.external_address)
		return s->cfg.external_address;
	return s->n_external ? s->external[0] : 0;
}

/* Re-reads the external interface's addresses; 1 when they changed. */
static int server_read_external(struct server *s)
{
	struct netif_addr a[SERVER_MAX_EXTERNAL];
	uint32_t now[SERVER_MAX_EXTERNAL];
	int n = netif_ipv4_all(s->cfg.external_interface, a, SERVER_MAX_EXTERNAL);
	size_t count = n > 0 ? (size_t)n : 0;

	/* A query that failed (out of file descriptors or memory) is no news about the interface. */
	if (n < 0 && n != -ENODEV) {
		log_warnx("cannot read the addresses of %s: %s; keeping the last known", s->cfg.external_interface,
			  strerror(-n));
		return 0;
	}

	for (size_t i = 0; i < count; i++)
		now[i] = a[i].addr;
	if (count == s->n_external && memcmp(now, s->external, count * sizeof(now[0])) == 0)
		return 0;
	memcpy(s->external, now, count * sizeof(now[0]));
	s->n_external = count;
	return 1;
}

/* --- state file: a snapshot and a journal of the changes since --- */

static struct state_mapping state_of(const struct table_mapping *m, int64_t mono, int64_t wall, int64_t boot)
{
	return (struct state_mapping){
		.expires_boot = boot + (m->expires - mono),
		.client = m->client,
		.protocol = m->protocol,
		.origin = m->origin,
		.internal_port = m->internal_port,
		.external_port = m->external_port,
		.lifetime = m->lifetime,
		.expires = wall + (m->expires - mono),
		.upstream_port = m->upstream_port,
	};
}

struct snapshot {
	struct state_mapping *out;
	size_t n;
	int64_t mono, wall, boot;
};

static int snapshot_one(const struct table_mapping *m, void *arg)
{
	struct snapshot *sn = arg;

	sn->out[sn->n++] = state_of(m, sn->mono, sn->wall, sn->boot);
	return 0;
}

/* No more appends to the journal: the next turn saves a snapshot of a new generation instead. */
static void server_close_journal(struct server *s)
{
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	s->journal_fd = -1;
	s->journal_end = -1;
}

/*
 * Compaction: the whole table as the snapshot of the next generation, then
 * an empty journal of that generation (see state.h for why this order is
 * safe).  Costs what the table is: run at start, at exit, and after a turn
 * whose journal outgrew the snapshot, never while a client waits.
 */
static int server_compact(struct server *s, int64_t now)
{
	struct snapshot sn = { .mono = now, .wall = wall_now(), .boot = boot_now() };
	int64_t started = mono_now_us();
	bool replaced;
	struct state st;
	off_t end;
	int fd, r;

	sn.out = calloc(table_count(s->table) + 1, sizeof(*sn.out));
	if (!sn.out)
		return -ENOMEM;
	table_foreach(s->table, snapshot_one, &sn);
	st = (struct state){
		.epoch_start = sn.wall - server_epoch(s, now),
		.epoch_start_boot = sn.boot - server_epoch(s, now),
		.generation = s->generation + 1,
		.n_mappings = sn.n,
		.mappings = sn.out,
	};
	memcpy(st.boot_id, s->boot_id, sizeof(st.boot_id));
	if (st.epoch_start_boot < 1)
		st.epoch_start_boot = 1;
	r = state_save(s->state_path, &st, &replaced);
	free(sn.out);
	s->metrics.state_snapshots++;
	if (r < 0) {
		s->metrics.state_errors++;
		log_warnx("cannot write %s: %s", s->state_path, strerror(-r));
		/*
		 * Renamed, but the directory sync failed: the file on disk may be
		 * the new generation, which the old journal does not continue.
		 * Nothing more goes into it; the next turn saves a snapshot again.
		 */
		if (replaced) {
			s->generation++;
			server_close_journal(s);
		}
		return r;
	}
	s->generation++;
	/* Appends to the old journal would now be ignored at the next start: never make one. */
	server_close_journal(s);
	if ((r = state_journal_start(s->journal_path, s->generation, &fd, &end)) < 0) {
		s->metrics.state_errors++;
		log_warnx("cannot start journal %s: %s; saving whole snapshots until it can be", s->journal_path,
			  strerror(-r));
		return 0;
	}
	s->journal_fd = fd;
	s->journal_end = end;
	s->journal_bytes = 0;
	s->snapshot_bytes = (size_t)sn.n * 160;
	log_info("compacted %zu mapping(s) into %s in %.1f ms", sn.n, s->state_path,
		 (double)(mono_now_us() - started) / 1000);
#ifdef __GLIBC__
	/* The snapshot's megabytes go back to the system rather than stay in the heap. */
	malloc_trim(0);
#endif
	return 0;
}

static void server_on_compact(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	(void)server_compact(s, mono_now());
}

/*
 * Makes a turn's changes durable: appended to the journal and synced, in
 * time and bytes proportional to the changes, whatever the table's size.
 */
static int server_persist(struct server *s, const struct table_change *ch, size_t n, int64_t now)
{
	struct state_change *c;
	int64_t wall = wall_now(), boot = boot_now();
	off_t before = s->journal_end;
	int r;

	if (s->journal_fd < 0)
		return server_compact(s, now);
	if (!(c = calloc(n, sizeof(*c))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		c[i] = (struct state_change){ .op = ch[i].op == TABLE_DEL ? STATE_DEL : STATE_PUT,
					      .m = state_of(&ch[i].mapping, now, wall, boot) };
	r = state_journal_append(s->journal_fd, &s->journal_end, c, n);
	free(c);
	s->metrics.state_journal_writes++;
	if (r < 0) {
		s->metrics.state_errors++;
		if (s->journal_end < 0) {
			log_warnx("cannot write %s: %s, nor cut it back; the next change starts a new one", s->journal_path,
				  strerror(-r));
			server_close_journal(s);
		} else {
			log_warnx("cannot write %s: %s; the change is refused", s->journal_path, strerror(-r));
		}
		return r;
	}
	s->journal_bytes += (size_t)(s->journal_end - before);
	/* Once the journal outgrows the snapshot, fold it in, after this turn's answers. */
	if (s->journal_bytes > SERVER_JOURNAL_MIN && s->journal_bytes > s->snapshot_bytes)
		event_active(s->compact_ev, EV_TIMEOUT, 0);
	return 0;
}

/* --- applying the table's decisions --- */

static uint32_t kernel_timeout(const struct table_mapping *m, int64_t now)
{
	int64_t left = m->expires - now;

	if (left < 0)
		left = 0;
	if (left > UINT32_MAX - NFT_TIMEOUT_SLACK)
		left = UINT32_MAX - NFT_TIMEOUT_SLACK;
	return (uint32_t)left + NFT_TIMEOUT_SLACK;
}

static void log_change(const struct table_change *ch, const char *why)
{
	char client[INET_ADDRSTRLEN];
	const struct table_mapping *m = &ch->mapping;

	netif_addr_str(m->client, client);
	switch (ch->op) {
	case TABLE_ADD:
		log_info("mapped %s %u -> %s:%u for %u s", proto_protocol_name(m->protocol), m->external_port,
			 client, m->internal_port, m->lifetime);
		break;
	case TABLE_RENEW:
		log_debug("renewed %s %u -> %s:%u for %u s", proto_protocol_name(m->protocol), m->external_port,
			  client, m->internal_port, m->lifetime);
		break;
	case TABLE_DEL:
		log_info("%s %s %u -> %s:%u", why, proto_protocol_name(m->protocol), m->external_port, client,
			 m->internal_port);
		break;
	}
}

/* Sends the transaction built since nft_begin(), counted for /metrics. */
static int server_commit(struct server *s)
{
	int r = nft_commit(s->nft);

	s->metrics.nft_transactions++;
	if (r < 0)
		s->metrics.nft_errors++;
	return r;
}

/* Queues the change log into one nftables transaction and commits it. */
static int server_install_changes(struct server *s, int64_t now)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);
	int r = 0;

	nft_begin(s->nft);
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct table_mapping *m = &ch[i].mapping;
		if (ch[i].op == TABLE_DEL)
			r = nft_del(s->nft, m);
		else if (ch[i].op == TABLE_RENEW)
			r = nft_renew(s->nft, m, kernel_timeout(m, now));
		else
			r = nft_put(s->nft, m, kernel_timeout(m, now));
	}
	return r ? r : server_commit(s);
}

struct install_ctx {
	struct server *s;
	int64_t now;
};

static int install_one(const struct table_mapping *m, void *arg)
{
	struct install_ctx *ctx = arg;

	return nft_put(ctx->s->nft, m, kernel_timeout(m, ctx->now));
}

/*
 * Replaces the kernel's copy with a fresh table holding exactly the
 * mappings in memory, in one transaction: stale elements from an earlier
 * run, or elements someone else removed, cannot survive it.
 */
static int server_install_all(struct server *s, int64_t now)
{
	struct install_ctx ctx = { s, now };
	int r;

	nft_begin(s->nft);
	if ((r = nft_install(s->nft)) < 0 || (r = nft_set_external(s->nft, s->external, s->n_external)) < 0 ||
	    (r = table_foreach(s->table, install_one, &ctx)) < 0)
		return r;
	r = server_commit(s);
	s->table_broken = r < 0;
	return r;
}

/* Remembers what the kernel no longer forwards, for server_end_flows(). */
static void server_note_ended(struct server *s, const struct table_mapping *m)
{
	if (s->n_ended == s->ended_cap) {
		size_t cap = s->ended_cap ? s->ended_cap * 2 : 64;
		struct table_mapping *e = realloc(s->ended, cap * sizeof(*e));
		/* Out of memory: the flows end at their own conntrack timeout instead. */
		if (!e)
			return;
		s->ended = e;
		s->ended_cap = cap;
	}
	s->ended[s->n_ended++] = *m;
}

/*
 * RFC 6886 3.4: established flows through a deleted or expired mapping
 * stop too.  It costs a dump of the whole conntrack table, whatever the
 * number of mappings, so the mappings that ended within SERVER_FLOWS_DELAY_MS
 * share one: a client deleting its ports one by one, or a busy router,
 * does not pay a dump per request.
 */
static void server_on_end_flows(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int r;

	(void)fd;
	(void)what;
	if (s->n_ended == 0)
		return;
	if ((r = ct_flush_mappings(s->ct, s->ended, s->n_ended)) < 0)
		log_warnx("cannot remove the conntrack entries of %zu ended mapping(s): %s", s->n_ended,
			  strerror(-r));
	else if (r > 0)
		log_debug("removed %d conntrack entr%s of %zu ended mapping(s)", r, r == 1 ? "y" : "ies",
			  s->n_ended);
	s->n_ended = 0;
}

static void server_end_flows(struct server *s)
{
	struct timeval tv = { .tv_usec = SERVER_FLOWS_DELAY_MS * 1000 };

	if (s->n_ended && !evtimer_pending(s->flows_ev, NULL))
		evtimer_add(s->flows_ev, &tv);
}

/* Tells --hook that event ("added", "renewed", "deleted", "expired") happened to m. */
static void server_hook(struct server *s, const struct table_mapping *m, const char *event)
{
	int gone = strcmp(event, "deleted") == 0 || strcmp(event, "expired") == 0;
	struct hook_event ev = {
		.event = event,
		.protocol = m->protocol,
		.client = m->client,
		.internal_port = m->internal_port,
		.external_address = server_public_address(s),
		/* Upstream mode: the port the world reaches is the gateway's. */
		.external_port = s->upstream ? m->upstream_port : m->external_port,
		.lifetime = gone ? 0 : m->lifetime,
	};

	if (s->cfg.hook[0])
		hook_run(s->hook, &ev);
}

/* A renewal moved to another port (table.h) is a delete then an add of the same mapping. */
static int server_moved(const struct table_change *ch, size_t i, size_t n)
{
	return ch[i].op == TABLE_DEL && i + 1 < n && ch[i + 1].op == TABLE_ADD &&
	       ch[i + 1].mapping.client == ch[i].mapping.client && ch[i + 1].mapping.protocol == ch[i].mapping.protocol &&
	       ch[i + 1].mapping.internal_port == ch[i].mapping.internal_port;
}

static void server_answer_pending(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t result,
				  uint16_t port);

/*
 * Remembers what a client suggested for the mapping a request was granted
 * on local_port, for server_settle() to ask the gateway; the turn's apply
 * forgets them all.
 */
static void server_wish_add(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t suggested)
{
	if (local_port && s->n_wishes < UDP_BATCH)
		s->wishes[s->n_wishes++] = (struct server_wish){ protocol, local_port, suggested };
}

/* What the client suggested for the mapping this turn granted on local_port; 0 when it is not known. */
static uint16_t server_wish(const struct server *s, uint8_t protocol, uint16_t local_port)
{
	for (size_t i = 0; i < s->n_wishes; i++)
		if (s->wishes[i].protocol == protocol && s->wishes[i].local_port == local_port)
			return s->wishes[i].suggested;
	return 0;
}

/*
 * Upstream mode: the gateway follows the table.  The hook hears of a
 * mapping once the gateway has granted it (server_upstream_mapped), and of
 * its end only if it was granted.
 */
static void server_upstream_follow(struct server *s, const struct table_change *ch, int moved, const char *why)
{
	const struct table_mapping *m = &ch->mapping;
	uint16_t suggested;

	switch (ch->op) {
	case TABLE_ADD:
	case TABLE_RENEW:
		/* A mapping the gateway granted before keeps asking for its port; a new one for the client's wish. */
		suggested = m->upstream_port ? m->upstream_port : server_wish(s, m->protocol, m->external_port);
		if (upstream_keep(s->upstream, m->protocol, m->external_port, suggested, m->expires) < 0)
			log_warnx("upstream: out of memory: %s %u is not asked for at the gateway",
				  proto_protocol_name(m->protocol), m->external_port);
		break;
	case TABLE_DEL:
		upstream_drop(s->upstream, m->protocol, m->external_port);
		server_answer_pending(s, m->protocol, m->external_port, NATPMP_RESULT_NETWORK_FAILURE, 0);
		if (m->upstream_port && !moved)
			server_hook(s, m, strcmp(why, "expired") == 0 ? "expired" : "deleted");
		break;
	}
}

/* The table's pending changes are real: log them, tell the hook and the gateway, and commit them in the table. */
static void server_settle(struct server *s, const char *why)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);

	for (size_t i = 0; i < n; i++) {
		log_change(&ch[i], why);
		if (ch[i].op == TABLE_DEL)
			server_note_ended(s, &ch[i].mapping);
		if (s->upstream) {
			server_upstream_follow(s, &ch[i], server_moved(ch, i, n), why);
			continue;
		}
		if (server_moved(ch, i, n)) {
			log_change(&ch[i + 1], why);
			server_hook(s, &ch[++i].mapping, "renewed");
			continue;
		}
		if (ch[i].op == TABLE_ADD)
			server_hook(s, &ch[i].mapping, "added");
		else if (ch[i].op == TABLE_DEL)
			server_hook(s, &ch[i].mapping, strcmp(why, "expired") == 0 ? "expired" : "deleted");
	}
	table_commit(s->table);
	s->n_wishes = 0;
}

/*
 * Makes the table's pending changes durable, then real.  The state file is
 * written first: a crash between the two leaves a mapping on disk that the
 * client was never told about, which is harmless, never the reverse.
 */
static int server_apply(struct server *s, int64_t now, const char *why)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);
	off_t before = s->journal_fd >= 0 ? s->journal_end : -1;
	int persisted = 0, r;

	if (n == 0)
		return 0;
	if ((r = server_persist(s, ch, n, now)) < 0)
		goto fail;
	persisted = 1;
	if ((r = server_install_changes(s, now)) < 0) {
		/*
		 * The kernel's copy has drifted (an element removed behind our
		 * back makes its delete fail): rebuild it from the table.
		 */
		log_warnx("nftables refused %zu change(s) (%s); reinstalling table ip %s", n, strerror(-r),
			  s->cfg.nat_table);
		if ((r = server_install_all(s, now)) < 0) {
			log_warnx("nftables refused the reinstall too: %s", strerror(-r));
			goto fail;
		}
	}
	server_settle(s, why);
	return 0;
fail:
	table_rollback(s->table);
	s->n_wishes = 0;
	if (!persisted) {
		/*
		 * A failed append is cut back by state_journal_append(): nothing
		 * of the turn is on disk.  A failed snapshot may have been renamed
		 * into place before its directory sync failed: save the
		 * rolled-back table.
		 */
		if (before < 0)
			(void)server_compact(s, now);
	} else if (before >= 0 && s->journal_fd >= 0 && state_journal_cut(s->journal_fd, before) == 0) {
		/* On disk but refused: cut back, so that a restart does not bring back what no client was told. */
		s->journal_end = before;
	} else {
		/* A turn that saved a snapshot instead (or a cut that failed): save the rolled-back table anew. */
		server_close_journal(s);
		if (server_compact(s, now) < 0)
			log_error("cannot take refused changes back out of %s: they may come back at a restart",
				  s->state_path);
	}
	return r;
}

static void server_schedule_repair(struct server *s, int delay_ms)
{
	struct timeval tv = { .tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000 };

	if (!evtimer_pending(s->repair_ev, NULL))
		evtimer_add(s->repair_ev, &tv);
}

static void server_arm_expiry(struct server *s, int64_t now)
{
	int64_t next = table_next_expiry(s->table);
	struct timeval tv = { .tv_sec = 3600 };

	if (next != INT64_MAX)
		tv.tv_sec = next <= now ? 0 : next - now < 3600 ? next - now : 3600;
	evtimer_add(s->expiry_ev, &tv);
}

static void server_on_expiry(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int64_t now = mono_now();

	(void)fd;
	(void)what;
	if (table_expire(s->table, now) > 0 && server_apply(s, now, "expired") < 0) {
		/*
		 * An expired mapping stays expired: the kernel drops its element
		 * at its own timeout, so forget it rather than resurrect it.
		 */
		table_expire(s->table, now);
		server_settle(s, "expired");
		(void)server_compact(s, now);
		/* The kernel still holds their elements: rebuild it rather than let them linger. */
		server_schedule_repair(s, 1000);
	}
	server_end_flows(s);
	server_arm_expiry(s, now);
}

/* --- the request path --- */

/*
 * Who sent a request for a new mapping, at the link layer: the neighbour
 * entry the kernel has for its source on the listen interface.  A host that
 * invents source addresses has no entry for them, or entries that all name
 * its own link-layer address: either way its mappings share one limit
 * (table_mapping.link).  A renewal or a delete needs no lookup.
 */
static uint64_t server_link(struct server *s, const struct udp_socket *sock, uint32_t client,
			    const struct proto_request *req)
{
	uint64_t mac;
	int r;

	/* (The source was found inside one of the socket's subnets before this is asked.) */
	if (!req->lifetime || !req->internal_port || table_find(s->table, client, req->protocol, req->internal_port))
		return TABLE_LINK_UNKNOWN;
	if ((r = netif_neighbour(s->neigh, sock->subnets[0].ifindex, client, &mac)) == 0)
		return TABLE_LINK_HOST(mac);
	if (r != -ENOENT && !s->neigh_failed++)
		log_warnx("cannot ask the kernel for LAN neighbours: %s; mappings are counted by address only", strerror(-r));
	return r == -ENOENT ? TABLE_LINK_UNKNOWN : TABLE_LINK_NONE;
}

static void server_decide(struct server *s, struct udp_socket *sock, struct udp_packet *p, struct server_request *r,
			  int64_t now, int64_t now_ms)
{
	char peer[INET_ADDRSTRLEN], dest[INET_ADDRSTRLEN];
	uint32_t epoch = server_epoch(s, now), public;

	r->verdict = PROTO_DROP;
	if (!udp_source_allowed(sock, p->peer.sin_addr, now)) {
		s->metrics.drops[METRICS_DROP_NOT_LAN]++;
		log_debug("ignored request on %s from %s: not inside its subnets", sock->ifname,
			  netif_addr_str(p->peer.sin_addr.s_addr, peer));
		return;
	}
	if (!udp_local_allowed(sock, p->local, now)) {
		s->metrics.drops[METRICS_DROP_NOT_LOCAL]++;
		log_debug("ignored request on %s from %s: sent to %s, not to an address of %s", sock->ifname,
			  netif_addr_str(p->peer.sin_addr.s_addr, peer), netif_addr_str(p->local.s_addr, dest), sock->ifname);
		return;
	}
	if (!ratelimit_allow(s->ratelimit, p->peer.sin_addr.s_addr, now_ms)) {
		/* Counted, and logged at most once per power of two, so a flood cannot flood the log too. */
		uint64_t n = ++s->metrics.drops[METRICS_DROP_RATE_LIMITED];
		if ((n & (n - 1)) == 0)
			log_warnx("dropped a request from %s over --rate-limit %u/s (%llu dropped in all)",
				  netif_addr_str(p->peer.sin_addr.s_addr, peer), s->cfg.rate_limit, (unsigned long long)n);
		return;
	}
	r->verdict = proto_decode(p->data, p->len, &r->req);
	switch (r->verdict) {
	case PROTO_DROP:
		s->metrics.drops[METRICS_DROP_MALFORMED]++;
		log_debug("dropped %zu-byte datagram from %s", p->len, netif_addr_str(p->peer.sin_addr.s_addr, peer));
		break;
	case PROTO_ADDRESS:
		/* RFC 6886 3.2: no external address yet, result 3 and 0.0.0.0. */
		public = server_public_address(s);
		p->reply_len = proto_encode_address(p->reply, public ? 0 : NATPMP_RESULT_NETWORK_FAILURE, epoch, public);
		break;
	case PROTO_BAD_VERSION:
		p->reply_len = proto_encode_bad_version(p->reply, r->req.opcode, epoch);
		break;
	case PROTO_UNSUPPORTED_OPCODE:
		p->reply_len = proto_encode_unsupported_opcode(p->reply, p->data, p->len);
		break;
	case PROTO_MAP:
		r->result = table_request(s->table, p->peer.sin_addr.s_addr, TABLE_ORIGIN_NATPMP, r->req.protocol,
					  r->req.internal_port, r->req.suggested_port, r->req.lifetime, now, &r->grant,
					  server_link(s, sock, p->peer.sin_addr.s_addr, &r->req));
		if (r->result == NATPMP_RESULT_SUCCESS)
			server_wish_add(s, r->req.protocol, r->grant.external_port, r->req.suggested_port);
		break;
	}
}

/* Counts an answer by opcode (0-2, 3 for any other) and its result, now or sent later (upstream mode). */
static void server_count_answer(struct server *s, int op, uint16_t result)
{
	if (result < METRICS_RESULTS)
		s->metrics.requests[op][result]++;
}

/* Counts an answered request by the result its reply carries. */
static void server_count(struct server *s, const struct udp_packet *p, const struct server_request *r)
{
	if (r->verdict == PROTO_DROP || p->reply_len < 4)
		return;
	server_count_answer(s, r->req.opcode <= 2 && r->verdict != PROTO_UNSUPPORTED_OPCODE ? r->req.opcode : 3,
			    proto_get16(p->reply + 2));
}

/* Whether another request may wait for the gateway on client's behalf. */
static int server_may_wait(const struct server *s, uint32_t client)
{
	const struct server_pending *q;
	size_t n = 0;

	if (s->n_pending >= SERVER_MAX_PENDING)
		return 0;
	TAILQ_FOREACH(q, &s->pending, link)
		n += (q->l ? q->peer.sin_addr.s_addr : q->client) == client;
	return n < SERVER_MAX_PENDING_PER_CLIENT;
}

/* q waits for the gateway's answer on its mapping (server_answer_pending). */
static void server_pending_add(struct server *s, struct server_pending *q)
{
	TAILQ_INSERT_TAIL(&s->pending, q, link);
	s->n_pending++;
}

/* A map request answered once the gateway has; one per client and request, however often it is sent. */
static void server_defer(struct server *s, struct server_listener *l, const struct udp_packet *p,
			 const struct server_request *r)
{
	struct server_pending *q;

	TAILQ_FOREACH(q, &s->pending, link)
		if (q->l == l && q->peer.sin_addr.s_addr == p->peer.sin_addr.s_addr && q->peer.sin_port == p->peer.sin_port &&
		    q->opcode == r->req.opcode && q->internal_port == r->req.internal_port &&
		    q->local_port == r->grant.external_port)
			return;
	if (!server_may_wait(s, p->peer.sin_addr.s_addr) || !(q = calloc(1, sizeof(*q))))
		return;
	*q = (struct server_pending){
		.protocol = r->req.protocol,
		.local_port = r->grant.external_port,
		.l = l,
		.peer = p->peer,
		.local = p->local,
		.opcode = r->req.opcode,
		.internal_port = r->req.internal_port,
	};
	server_pending_add(s, q);
}

/*
 * The gateway has answered for (protocol, local_port): so can everyone
 * waiting on it, with its port and the lifetime the table granted, or with
 * result.
 */
static void server_answer_pending(struct server *s, uint8_t protocol, uint16_t local_port, uint16_t result,
				  uint16_t port)
{
	const struct table_mapping *m = table_find_external(s->table, protocol, local_port);
	struct server_pending *q, *next;
	uint32_t lifetime = m && result == NATPMP_RESULT_SUCCESS ? m->lifetime : 0;

	if (result != NATPMP_RESULT_SUCCESS)
		port = 0;
	for (q = TAILQ_FIRST(&s->pending); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->protocol != protocol || q->local_port != local_port)
			continue;
		TAILQ_REMOVE(&s->pending, q, link);
		s->n_pending--;
		if (q->l) {
			struct udp_packet pkt = { .peer = q->peer, .local = q->local };
			pkt.reply_len = proto_encode_map(pkt.reply, q->opcode, result, server_epoch(s, mono_now()),
							 q->internal_port, port, lifetime);
			udp_send(&q->l->sock, &pkt, 1);
			server_count_answer(s, q->opcode, result);
		} else {
			struct table_grant g = { port, lifetime };
			http_forward_done(q->http, result, &g);
		}
		free(q);
	}
}

/* Forgets the requests still waiting: those from clients unanswered (they ask again), the HTTP ones with 503. */
static void server_flush_pending(struct server *s, int udp, int http)
{
	struct server_pending *q, *next;

	for (q = TAILQ_FIRST(&s->pending); q; q = next) {
		next = TAILQ_NEXT(q, link);
		if (q->l ? !udp : !http)
			continue;
		TAILQ_REMOVE(&s->pending, q, link);
		s->n_pending--;
		if (!q->l)
			http_forward_done(q->http, HTTP_FORWARD_FAILED, NULL);
		free(q);
	}
}

static void server_handle(struct server *s, struct server_listener *l, int n)
{
	int64_t now_ms = mono_now_ms(), now = now_ms / 1000;
	int failed;

	for (int i = 0; i < n; i++)
		server_decide(s, &l->sock, &s->pkts[i], &s->reqs[i], now, now_ms);

	failed = server_apply(s, now, "deleted") < 0;
	for (int i = 0; i < n; i++) {
		struct server_request *r = &s->reqs[i];
		if (r->verdict != PROTO_MAP)
			continue;
		if (failed) {
			r->result = NATPMP_RESULT_NETWORK_FAILURE;
			r->grant = (struct table_grant){ 0 };
		}
		/* Upstream mode: the client is told the gateway's port, once the gateway has granted one. */
		if (s->upstream && r->result == NATPMP_RESULT_SUCCESS && r->req.lifetime) {
			uint16_t port = upstream_granted(s->upstream, r->req.protocol, r->grant.external_port);
			const struct table_mapping *m = table_find(s->table, s->pkts[i].peer.sin_addr.s_addr,
								   r->req.protocol, r->req.internal_port);
			/* Deleted again later in the same batch: nothing will answer for it. */
			if (!m || m->external_port != r->grant.external_port) {
				r->result = NATPMP_RESULT_NETWORK_FAILURE;
				r->grant = (struct table_grant){ 0 };
			} else if (!port) {
				server_defer(s, l, &s->pkts[i], r);
				s->pkts[i].reply_len = 0;
				continue;
			} else {
				r->grant.external_port = port;
			}
		}
		s->pkts[i].reply_len = proto_encode_map(s->pkts[i].reply, r->req.opcode, r->result,
							 server_epoch(s, now), r->req.internal_port,
							 r->grant.external_port, r->grant.lifetime);
	}
	for (int i = 0; i < n; i++)
		server_count(s, &s->pkts[i], &s->reqs[i]);
	udp_send(&l->sock, s->pkts, n);
	server_end_flows(s);
	server_arm_expiry(s, now);
}

static void server_on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct server_listener *l = arg;
	struct server *s = l->server;

	(void)fd;
	(void)what;
	for (int round = 0; round < SERVER_ROUNDS; round++) {
		int n = udp_recv(&l->sock, s->pkts, UDP_BATCH);
		if (n < 0) {
			log_warnx("receive on %s: %s", l->sock.ifname, strerror(-n));
			return;
		}
		if (n == 0)
			return;
		server_handle(s, l, n);
		if (n < UDP_BATCH)
			return;
	}
}

/* --- the external address, announcements and repairs --- */

/* One round of RFC 6886 3.2.1 announcements: the current address and epoch, from every listen interface. */
static void server_announce(void *arg)
{
	struct server *s = arg;
	uint32_t public = server_public_address(s);
	uint8_t buf[PROTO_ADDRESS_REPLY_LEN];
	int64_t now = mono_now();
	int r;

	if (!public)
		return;
	proto_encode_address(buf, NATPMP_RESULT_SUCCESS, server_epoch(s, now), public);
	s->metrics.announcements++;
	for (size_t i = 0; i < s->n_listeners; i++)
		if ((r = udp_announce(&s->listeners[i].sock, buf, sizeof(buf), now)) < 0)
			log_debug("announcement on %s: %s", s->listeners[i].sock.ifname, strerror(-r));
}

static void server_external_changed(struct server *s)
{
	char addr[INET_ADDRSTRLEN];
	int r;

	/* Which sockets count as the router's own depends on these addresses. */
	s->busy_valid = 0;
	if (s->n_external)
		log_info("external interface %s has address %s%s", s->cfg.external_interface,
			 netif_addr_str(s->external[0], addr), s->n_external > 1 ? " (and more)" : "");
	else
		log_warnx("external interface %s has no IPv4 address or is down: opcode 0 answers result 3 until "
			  "it has one",
			  s->cfg.external_interface);
	/* Hairpinning follows the interface's addresses. */
	nft_begin(s->nft);
	if ((r = nft_set_external(s->nft, s->external, s->n_external)) < 0 || (r = server_commit(s)) < 0) {
		log_warnx("cannot update the external addresses in table ip %s: %s", s->cfg.nat_table, strerror(-r));
		server_schedule_repair(s, SERVER_REPAIR_DELAY_MS);
	}
	/*
	 * RFC 6886 3.2.1: a new or changed address is announced; an override
	 * does not change, and in upstream mode the address is the gateway's.
	 */
	if (s->cfg.external_address || s->cfg.upstream_gateway)
		return;
	if (s->n_external)
		announce_restart(s->announce);
	else
		announce_stop(s->announce);
}

static void server_on_netlink(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int r;

	(void)fd;
	(void)what;
	if ((r = netif_watch_read(s->netwatch)) < 0)
		log_warnx("reading interface events: %s", strerror(-r));
	if (r > 0 && server_read_external(s))
		server_external_changed(s);
}

static void server_on_nftables(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	char who[96];
	int r;

	(void)fd;
	(void)what;
	if ((r = nftmon_read(s->nftmon, who, sizeof(who))) < 0)
		log_warnx("reading nftables events: %s", strerror(-r));
	if (r > 0 && !evtimer_pending(s->repair_ev, NULL)) {
		log_warnx("table ip %s was changed by %s, not by this daemon: restoring it", s->cfg.nat_table, who);
		server_schedule_repair(s, SERVER_REPAIR_DELAY_MS);
	}
}

/*
 * Puts the kernel's copy back as the table in memory says, in one
 * transaction: what was removed comes back, what was added goes.
 */
static void server_on_repair(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int64_t now = mono_now();
	int r;

	(void)fd;
	(void)what;
	s->metrics.repairs++;
	if ((r = server_install_all(s, now)) < 0) {
		log_warnx("cannot restore table ip %s: %s; trying again in 1 s", s->cfg.nat_table, strerror(-r));
		server_schedule_repair(s, 1000);
		return;
	}
	log_info("restored table ip %s with %zu mapping(s) (repair %llu)", s->cfg.nat_table, table_count(s->table),
		 (unsigned long long)s->metrics.repairs);
}

/* --- upstream mode: what the gateway answers --- */

/* What a client is told when the gateway refused: its reason when the client can act on it, else 3. */
static uint16_t server_upstream_result(uint16_t result)
{
	return result == NATPMP_RESULT_NOT_AUTHORIZED || result == NATPMP_RESULT_OUT_OF_RESOURCES
		       ? result
		       : NATPMP_RESULT_NETWORK_FAILURE;
}

static void server_upstream_mapped(void *arg, uint8_t protocol, uint16_t local_port, uint16_t result, uint16_t port)
{
	struct server *s = arg;
	const struct table_mapping *m = table_find_external(s->table, protocol, local_port);
	char client[INET_ADDRSTRLEN];
	int64_t now = mono_now();
	struct table_grant g;

	if (!m) {
		upstream_drop(s->upstream, protocol, local_port);
		return;
	}
	netif_addr_str(m->client, client);
	if (result == NATPMP_RESULT_SUCCESS) {
		if (port != m->upstream_port) {
			uint16_t was = m->upstream_port;
			struct table_change ch = { .op = TABLE_RENEW };
			ch.mapping = *table_set_upstream(s->table, protocol, local_port, port);
			/*
			 * The gateway's port is acknowledged only once it is on disk.
			 * A mapping nobody was told of yet is taken back as if the
			 * gateway had refused; one granted before keeps its new port
			 * in memory (a restart asks the gateway again anyway), and
			 * whoever waits for it now is told 3.
			 */
			if (server_persist(s, &ch, 1, now) < 0) {
				if (!was) {
					table_set_upstream(s->table, protocol, local_port, 0);
					result = NATPMP_RESULT_NETWORK_FAILURE;
					goto refused;
				}
				server_answer_pending(s, protocol, local_port, NATPMP_RESULT_NETWORK_FAILURE, 0);
				return;
			}
			if (was)
				log_info("gateway moved %s %s:%u from port %u to %u (local port %u)",
					 proto_protocol_name(protocol), client, m->internal_port, was, port, local_port);
			else
				log_info("gateway maps %s %u -> local %u -> %s:%u", proto_protocol_name(protocol), port,
					 local_port, client, m->internal_port);
			server_hook(s, &ch.mapping, was ? "renewed" : "added");
		} else {
			log_debug("gateway renewed %s %u -> local %u -> %s:%u", proto_protocol_name(protocol), port,
				  local_port, client, m->internal_port);
		}
		server_answer_pending(s, protocol, local_port, NATPMP_RESULT_SUCCESS, port);
		return;
	}
refused:
	server_answer_pending(s, protocol, local_port, server_upstream_result(result), 0);
	if (m->upstream_port) {
		log_warnx("gateway did not renew %s %u -> %s:%u (%s); trying again in %d s", proto_protocol_name(protocol),
			  m->upstream_port, client, m->internal_port,
			  result == NATPMP_RESULT_NETWORK_FAILURE ? "no answer" : "refused", UPSTREAM_RETRY_MS / 1000);
		return;
	}
	/* Never acknowledged to anyone: the local forward goes too, nothing is left half made. */
	log_warnx("gateway %s %s %u -> %s:%u: removing the local forward",
		  result == NATPMP_RESULT_NETWORK_FAILURE ? "did not answer for" : "refused",
		  proto_protocol_name(protocol), local_port, client, m->internal_port);
	(void)table_request(s->table, m->client, (enum table_origin)m->origin, protocol, m->internal_port, 0, 0, now, &g,
			    TABLE_LINK_NONE);
	(void)server_apply(s, now, "rolled back");
	server_end_flows(s);
	server_arm_expiry(s, now);
}

static void server_upstream_address(void *arg, uint32_t address)
{
	struct server *s = arg;
	char addr[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN];

	netif_addr_str(s->cfg.upstream_gateway, gw);
	if (!address) {
		log_warnx("gateway %s has no external address: opcode 0 answers result 3 until it has one", gw);
		announce_stop(s->announce);
		return;
	}
	log_info("gateway %s reports external address %s", gw, netif_addr_str(address, addr));
	/* A new address moved every mapping: announced once they are all back (server_upstream_remapped). */
	if (!upstream_remapping(s->upstream))
		announce_restart(s->announce);
}

/* RFC 6886 3.2.1: once the gateway has everything back, clients hear the address (and that it may be new). */
static void server_upstream_remapped(void *arg, size_t n)
{
	struct server *s = arg;

	log_info("the gateway has answered for all %zu mapping(s) asked again", n);
	if (server_public_address(s))
		announce_restart(s->announce);
}

static int upstream_keep_one(const struct table_mapping *m, void *arg)
{
	struct server *s = arg;

	return upstream_keep(s->upstream, m->protocol, m->external_port, m->upstream_port, m->expires);
}

/*
 * The table's port_busy: whether the router itself uses the port.  The
 * kernel is asked for all of the router's sockets in one sock_diag dump per
 * protocol, at most once a second, and each candidate is a bit lookup: a
 * restart restoring 60,000 mappings, or thousands of new ones a second,
 * cost a dump, not a query each.  A service started less than a second
 * before a request may thus lose its port to it.
 */
static int server_port_busy(uint8_t protocol, uint16_t port, void *arg)
{
	struct server *s = arg;
	int64_t now_ms = mono_now_ms();
	int r = 0;

	if (!s->busy_valid || now_ms - s->busy_at_ms >= 1000) {
		if ((r = sockdiag_ports_in_use(s->sockdiag, IPPROTO_UDP, s->external, s->n_external, s->busy[0])) == 0)
			r = sockdiag_ports_in_use(s->sockdiag, IPPROTO_TCP, s->external, s->n_external, s->busy[1]);
		s->busy_valid = r == 0;
		s->busy_at_ms = now_ms;
	}
	if (r < 0) {
		if (!s->sockdiag_failed++)
			log_warnx("cannot ask the kernel which ports the router uses: %s; ports are handed out "
				  "without asking until it answers",
				  strerror(-r));
		return 0;
	}
	if (!s->busy_valid)
		return 0;
	return (s->busy[protocol == IPPROTO_TCP][port / 8] >> (port % 8)) & 1;
}

struct shadowed {
	struct server *s;
	struct table_mapping *m;
	size_t n, cap;
};

static int shadowed_one(const struct table_mapping *m, void *arg)
{
	struct shadowed *sh = arg;

	if (!server_port_busy(m->protocol, m->external_port, sh->s))
		return 0;
	if (sh->n == sh->cap) {
		size_t cap = sh->cap ? 2 * sh->cap : 16;
		struct table_mapping *more = realloc(sh->m, cap * sizeof(*more));
		if (!more)
			return -ENOMEM;
		sh->m = more;
		sh->cap = cap;
	}
	sh->m[sh->n++] = *m;
	return 0;
}

/*
 * A mapping made before a router service started listening on its port
 * would shadow that service for as long as its client renews: it moves to
 * a new port now, as a renewal would move it (the client hears the new port
 * at its next renewal, the hook at once, as "renewed").
 */
static void server_on_ports(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	struct shadowed sh = { .s = s };
	int64_t now = mono_now();
	char client[INET_ADDRSTRLEN];

	(void)fd;
	(void)what;
	s->busy_valid = 0; /* a fresh dump, whatever the last request read */
	if (table_foreach(s->table, shadowed_one, &sh) < 0 || sh.n == 0) {
		free(sh.m);
		return;
	}
	for (size_t i = 0; i < sh.n; i++) {
		const struct table_mapping *m = &sh.m[i];
		int64_t left = m->expires - now;
		struct table_grant g;

		log_warnx("the router now uses %s %u itself: moving the mapping of %s:%u off it",
			  proto_protocol_name(m->protocol), m->external_port, netif_addr_str(m->client, client),
			  m->internal_port);
		(void)table_request(s->table, m->client, (enum table_origin)m->origin, m->protocol, m->internal_port, 0,
				    left > 0 ? (uint32_t)left : 1, now, &g, TABLE_LINK_NONE);
	}
	free(sh.m);
	(void)server_apply(s, now, "moved");
	server_end_flows(s);
	server_arm_expiry(s, now);
}

/* The table's rules as the configuration of the moment gives them. */
static struct table_config server_table_config(struct server *s)
{
	return (struct table_config){
		.allowed = s->cfg.allowed_ports,
		.n_allowed = s->cfg.n_allowed,
		.reserved = s->cfg.reserved_ports,
		.n_reserved = s->cfg.n_reserved,
		.port_busy = server_port_busy,
		.port_busy_arg = s,
		.max_per_client = s->cfg.max_mappings_per_ip,
		.max_lifetime = s->cfg.max_lifetime,
	};
}

/* --- the HTTP API's view of the server --- */

/* What /health says; "serving" when the daemon answers with an address and its table is in place. */
static const char *server_status(const struct server *s)
{
	return !s->serving		      ? "starting"
	       : !server_public_address(s) ? "no external address"
	       : s->table_broken	      ? "nftables table not installed"
					      : "serving";
}

static int api_status(void *arg, struct json_object *out)
{
	struct server *s = arg;
	uint32_t public = server_public_address(s);
	char addr[INET_ADDRSTRLEN];
	const char *status = server_status(s);

	json_object_object_add(out, "status", json_object_new_string(status));
	json_object_object_add(out, "mappings", json_object_new_int64((int64_t)table_count(s->table)));
	json_object_object_add(out, "external_address", public ? json_object_new_string(netif_addr_str(public, addr)) : NULL);
	json_object_object_add(out, "epoch", json_object_new_int64(server_epoch(s, mono_now())));
	return strcmp(status, "serving") == 0;
}

struct api_foreach {
	void (*fn)(const struct table_mapping *m, uint32_t remaining, void *arg);
	void *arg;
	int64_t now;
};

static int api_foreach_one(const struct table_mapping *m, void *arg)
{
	struct api_foreach *f = arg;
	int64_t left = m->expires - f->now;

	f->fn(m, left < 0 ? 0 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left, f->arg);
	return 0;
}

static void api_foreach(void *arg, void (*fn)(const struct table_mapping *m, uint32_t remaining, void *fnarg),
			void *fnarg)
{
	struct server *s = arg;
	struct api_foreach f = { fn, fnarg, mono_now() };

	table_foreach(s->table, api_foreach_one, &f);
}

static uint32_t api_public_address(void *arg)
{
	return server_public_address(arg);
}

static int count_one(const struct table_mapping *m, void *arg)
{
	struct metrics_gauges *g = arg;

	if (m->protocol == IPPROTO_TCP)
		g->mappings_tcp++;
	else
		g->mappings_udp++;
	g->mappings_http += m->origin == TABLE_ORIGIN_HTTP;
	return 0;
}

static int api_metrics(void *arg, FILE *out)
{
	struct server *s = arg;
	struct metrics_gauges g = { .epoch = server_epoch(s, mono_now()), .serving = !strcmp(server_status(s), "serving") };

	table_foreach(s->table, count_one, &g);
	if (s->upstream) {
		const struct upstream_stats *us = upstream_stats(s->upstream);
		g.upstream = 1;
		s->metrics.upstream_requests = us->requests;
		s->metrics.upstream_timeouts = us->timeouts;
		s->metrics.upstream_resets = us->resets;
	}
	return metrics_format(&s->metrics, &g, out);
}

/*
 * POST and DELETE /forward: the request a NAT-PMP client at that address
 * would send, through the same table, limits and transaction.  The host
 * must be on a listen interface's subnet, as a NAT-PMP client must.
 */
static int api_forward(void *arg, uint32_t client, uint8_t protocol, uint16_t internal_port, uint16_t suggested_port,
		       uint32_t lifetime, struct table_grant *grant, struct http_pending *pending)
{
	struct server *s = arg;
	struct in_addr a = { .s_addr = client };
	struct server_pending *q = NULL;
	int64_t now = mono_now();
	int lan = 0, r;
	uint16_t result;

	for (size_t i = 0; i < s->n_listeners && !lan; i++)
		lan = udp_host_allowed(&s->listeners[i].sock, a, now);
	if (!lan)
		return HTTP_FORWARD_NOT_LAN;
	/* Upstream mode: room to wait for the gateway is made before anything changes. */
	if (s->upstream && lifetime &&
	    (!server_may_wait(s, client) || !(q = calloc(1, sizeof(*q)))))
		return HTTP_FORWARD_FAILED;
	/* The token holder speaks for the host: no sender at the link layer to count. */
	result = table_request(s->table, client, TABLE_ORIGIN_HTTP, protocol, internal_port, suggested_port, lifetime,
			       now, grant, TABLE_LINK_NONE);
	if (result == NATPMP_RESULT_SUCCESS)
		server_wish_add(s, protocol, grant->external_port, suggested_port);
	if ((r = server_apply(s, now, "deleted")) < 0) {
		free(q);
		return HTTP_FORWARD_FAILED;
	}
	if (result == NATPMP_RESULT_SUCCESS)
		s->metrics.http_forwards++;
	server_end_flows(s);
	server_arm_expiry(s, now);
	/* Upstream mode: as for a NAT-PMP client, the answer is the gateway's port, once it has granted one. */
	if (s->upstream && result == NATPMP_RESULT_SUCCESS && lifetime) {
		uint16_t port = upstream_granted(s->upstream, protocol, grant->external_port);
		if (port) {
			free(q);
			grant->external_port = port;
			return result;
		}
		*q = (struct server_pending){ .protocol = protocol, .local_port = grant->external_port, .client = client,
					      .http = pending };
		server_pending_add(s, q);
		return HTTP_FORWARD_PENDING;
	}
	free(q);
	return result;
}

static const struct http_backend server_http_backend = {
	.status = api_status,
	.foreach = api_foreach,
	.public_address = api_public_address,
	.metrics = api_metrics,
	.forward = api_forward,
};

static int server_http_open(struct server *s)
{
	struct http_backend b = server_http_backend;

	b.arg = s;
	b.upstream = s->cfg.upstream_gateway != 0;
	if (!s->cfg.http_listen[0])
		return 0;
	return (s->http = http_open(s->base, s->cfg.http_listen, &s->cfg, &b)) ? 0 : -1;
}

/* --- SIGHUP --- */

static void server_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void server_notify(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	int r;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if ((r = notify_send(msg)) < 0)
		log_warnx("cannot tell the service manager: %s", strerror(-r));
}

static void server_close_listeners(struct server_listener *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (ls[i].ev)
			event_free(ls[i].ev);
		ls[i].ev = NULL;
		udp_close(&ls[i].sock);
	}
}

/* Opens a socket per listen interface of cfg into ls; 0, or -1 after logging, with none left open. */
static int server_open_listeners(struct server *s, const struct config *cfg, struct server_listener *ls)
{
	int r;

	for (size_t i = 0; i < cfg->n_listen; i++) {
		struct server_listener *l = &ls[i];
		l->server = s;
		if ((r = udp_open(&l->sock, cfg->listen_interfaces[i], cfg->listen_port)) < 0) {
			log_error("cannot listen on %s port %u: %s", cfg->listen_interfaces[i], cfg->listen_port,
				  r == -ENODEV ? "no such interface" : strerror(-r));
			server_close_listeners(ls, i);
			return -1;
		}
		l->ev = event_new(s->base, l->sock.fd, EV_READ | EV_PERSIST, server_on_readable, l);
		if (!l->ev || event_add(l->ev, NULL) < 0) {
			log_error("cannot watch the socket on %s", cfg->listen_interfaces[i]);
			udp_close(&l->sock);
			server_close_listeners(ls, i);
			return -1;
		}
	}
	return 0;
}

static int listeners_differ(const struct config *a, const struct config *b)
{
	if (a->n_listen != b->n_listen || a->listen_port != b->listen_port)
		return 1;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen_interfaces[i], b->listen_interfaces[i]) != 0)
			return 1;
	return 0;
}

/*
 * SIGHUP: the command line, --config file and environment are parsed
 * again, and what changed takes effect; the mappings stay, and the table is
 * reinstalled with them.  Everything that can fail (the new configuration,
 * new sockets, a new netlink handle) is done before anything is replaced,
 * so a bad reload leaves the daemon exactly as it was.  The state directory
 * cannot move while running.
 */
static void server_reload(struct server *s)
{
	struct config next;
	struct server_listener ls[CONFIG_MAX_LISTEN];
	struct nft *nft = NULL;
	struct nftmon *mon = NULL;
	struct http *http = NULL;
	int new_listeners, new_nft, new_http, r;
	int64_t now = mono_now();
	struct timespec ts;
	uint32_t old_public = server_public_address(s), old_rate = s->cfg.rate_limit;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	server_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading the configuration",
		      (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	memset(ls, 0, sizeof(ls));
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
		ls[i].sock.fd = -1;
	if (config_parse(&next, s->argc, s->argv) != 0)
		goto refuse;
	if (next.upstream_gateway != s->cfg.upstream_gateway ||
	    strcmp(next.upstream_interface, s->cfg.upstream_interface) != 0) {
		log_warnx("reload: upstream mode (--upstream-gateway, --upstream-interface) cannot change while "
			  "running (restart to change it); keeping it as it was");
		next.upstream_gateway = s->cfg.upstream_gateway;
		strcpy(next.upstream_interface, s->cfg.upstream_interface);
		strcpy(next.external_interface, s->cfg.external_interface);
		next.external_address = s->cfg.external_address;
	}
	if (strcmp(next.state_dir, s->cfg.state_dir) != 0) {
		log_warnx("reload: --state-dir cannot change while running (restart to move the state); keeping %s",
			  s->cfg.state_dir);
		strcpy(next.state_dir, s->cfg.state_dir);
	}
	new_listeners = listeners_differ(&next, &s->cfg);
	new_nft = strcmp(next.nat_table, s->cfg.nat_table) || strcmp(next.nat_chain, s->cfg.nat_chain) ||
		  strcmp(next.external_interface, s->cfg.external_interface);
	new_http = strcmp(next.http_listen, s->cfg.http_listen) != 0;
	if (new_listeners && server_open_listeners(s, &next, ls) < 0)
		goto refuse;
	if (new_nft) {
		struct nft_config nc = { next.nat_table, next.nat_chain, next.external_interface };
		if (!(nft = nft_open(&nc)) || !(mon = nftmon_open(next.nat_table, nft_portid(nft)))) {
			log_error("reload: cannot open a netlink socket: %s", strerror(errno));
			goto undo;
		}
	}
	if (new_http && next.http_listen[0]) {
		struct http_backend b = server_http_backend;
		b.arg = s;
		b.upstream = s->cfg.upstream_gateway != 0;
		/* The old listener may hold the address: it goes first, and comes back if the new one fails. */
		server_flush_pending(s, 0, 1);
		http_retire(s->http);
		s->http = NULL;
		if (!(http = http_open(s->base, next.http_listen, &s->cfg, &b))) {
			(void)server_http_open(s);
			goto undo;
		}
	}

	/* Nothing can fail from here on that would leave the old configuration half replaced. */
	if (new_http && !next.http_listen[0]) {
		server_flush_pending(s, 0, 1);
		http_retire(s->http);
		s->http = NULL;
	}
	if (new_listeners) {
		/* Their clients ask again, on the new sockets. */
		server_flush_pending(s, 1, 0);
		server_close_listeners(s->listeners, s->n_listeners);
		memcpy(s->listeners, ls, sizeof(ls));
		s->n_listeners = next.n_listen;
		/* The events' argument is the listener: point them at its new home. */
		for (size_t i = 0; i < s->n_listeners; i++) {
			event_del(s->listeners[i].ev);
			event_assign(s->listeners[i].ev, s->base, s->listeners[i].sock.fd, EV_READ | EV_PERSIST,
				     server_on_readable, &s->listeners[i]);
			event_add(s->listeners[i].ev, NULL);
		}
	}
	if (new_nft) {
		/* Under the same name, the install below replaces the table in one transaction. */
		if (strcmp(next.nat_table, s->cfg.nat_table) != 0 && (r = nft_remove(s->nft)) < 0)
			log_warnx("reload: cannot remove the old table ip %s: %s", s->cfg.nat_table, strerror(-r));
		nft_close(s->nft);
		s->nft = nft;
		event_del(s->nftmon_ev);
		event_free(s->nftmon_ev);
		nftmon_close(s->nftmon);
		s->nftmon = mon;
		s->nftmon_ev = event_new(s->base, nftmon_fd(mon), EV_READ | EV_PERSIST, server_on_nftables, s);
		if (!s->nftmon_ev || event_add(s->nftmon_ev, NULL) < 0)
			log_warnx("reload: cannot watch table ip %s for changes by others", next.nat_table);
	}
	s->cfg = next;
	/* http and hook read the configuration through a pointer to s->cfg: they see the new one now. */
	if (http)
		s->http = http;
	log_set_level(s->cfg.log_level);
	{
		struct table_config tc = server_table_config(s);
		if (table_configure(s->table, &tc) < 0)
			log_warnx("reload: out of memory: the port ranges and limits stay as they were");
	}
	/* A new bucket only for a new rate: a SIGHUP must not forgive a flooding client. */
	if (s->cfg.rate_limit != old_rate) {
		struct ratelimit *rl = ratelimit_new(s->cfg.rate_limit);
		if (rl) {
			ratelimit_free(s->ratelimit);
			s->ratelimit = rl;
		}
	}
	(void)server_read_external(s);
	s->busy_valid = 0;
	if ((r = server_install_all(s, now)) < 0) {
		log_warnx("reload: cannot reinstall table ip %s: %s; trying again in 1 s", s->cfg.nat_table,
			  strerror(-r));
		server_schedule_repair(s, 1000);
	} else if (new_nft && nft_probe_timeout_update(s->nft) < 0) {
		log_warnx("reload: cannot ask the kernel how element timeouts are updated: renewals replace elements");
	}
	server_external_changed(s);
	/* RFC 6886 3.2.1: a new --external-address is a new address, announced like any other. */
	if (server_public_address(s) && server_public_address(s) != old_public)
		announce_restart(s->announce);
	s->metrics.reloads++;
	log_info("reloaded: serving %zu mapping(s) on port %u of %zu interface(s), table ip %s", table_count(s->table),
		 s->cfg.listen_port, s->n_listeners, s->cfg.nat_table);
	server_notify("READY=1\nSTATUS=serving %zu mapping(s) on %zu interface(s)", table_count(s->table),
		      s->n_listeners);
	return;
undo:
	http_close(http);
	nftmon_close(mon);
	nft_close(nft);
	server_close_listeners(ls, next.n_listen);
refuse:
	s->metrics.reload_errors++;
	log_error("reload refused: the running configuration stays in force (fix the error above, then SIGHUP again)");
	server_notify("READY=1\nSTATUS=reload refused; serving with the previous configuration");
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading the configuration");
		server_reload(s);
		return;
	}
	log_info("%s: shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	{
		char status[128];
		snprintf(status, sizeof(status), "STOPPING=1\nSTATUS=removing table ip %s, saving the state",
			 s->cfg.nat_table);
		(void)notify_send(status);
	}
	event_base_loopbreak(s->base);
}

/* --- start-up --- */

/*
 * Loads the state file into the table.  Returns -1, leaving the file as it
 * is, when it exists but cannot be read (permissions, I/O): starting empty
 * would overwrite mappings that are only out of reach for now.  A file that
 * was read but makes no sense is moved aside and the table starts empty.
 */
static int server_restore(struct server *s, int64_t now)
{
	char err[256], moved[PATH_MAX + 64];
	struct state st;
	int64_t wall = wall_now(), boot = boot_now();
	size_t restored = 0, expired = 0, refused = 0, journaled = 0, uncertain = 0;
	int same_boot, r;

	s->epoch_start = now;
	r = state_load(s->state_path, &st, err, sizeof(err));
	if (r == -ENOENT) {
		log_info("no state file at %s: starting with an empty table", s->state_path);
		return 0;
	}
	if (r < 0 && r != -EBADMSG) {
		log_error("cannot read state file %s: %s; fix that (permissions, disk) and start again: starting "
			  "empty would lose its mappings",
			  s->state_path, strerror(-r));
		return -1;
	}
	if (r < 0) {
		/* The journal continues what is lost: it goes aside with it, for whoever investigates. */
		(void)state_quarantine(s->journal_path, moved, sizeof(moved));
		if (state_quarantine(s->state_path, moved, sizeof(moved)) == 0)
			log_error("state file %s is unusable (%s); moved it to %s and started with an empty "
				  "table, epoch 0",
				  s->state_path, err, moved);
		else
			log_error("state file %s is unusable (%s) and could not be moved aside; starting with an "
				  "empty table, epoch 0",
				  s->state_path, err);
		return 0;
	}
	r = state_journal_replay(s->journal_path, &st, &journaled, err, sizeof(err));
	if (r == -EBADMSG) {
		if (state_quarantine(s->journal_path, moved, sizeof(moved)) == 0)
			log_error("journal %s is damaged (%s); moved it to %s and kept the %zu change(s) before the "
				  "damage",
				  s->journal_path, err, moved, journaled);
		else
			log_error("journal %s is damaged (%s); kept the %zu change(s) before the damage",
				  s->journal_path, err, journaled);
	} else if (r < 0) {
		log_error("cannot read journal %s: %s; fix that (permissions, disk) and start again: starting "
			  "without it would lose its mappings",
			  s->journal_path, strerror(-r));
		state_free(&st);
		return -1;
	}
	s->generation = st.generation;
	/*
	 * Within the boot that wrote the file, how long the daemon was stopped
	 * is measured on CLOCK_BOOTTIME, which NTP never steps: a clock set
	 * forward meanwhile neither expires mappings nor moves the epoch.
	 * After a reboot only the wall clock is left.
	 */
	same_boot = s->boot_id[0] && strcmp(st.boot_id, s->boot_id) == 0;
	/* The epoch keeps running across restarts: clients see no reset (RFC 6886 3.6). */
	if (same_boot && st.epoch_start_boot && st.epoch_start_boot <= boot)
		s->epoch_start = now - (boot - st.epoch_start_boot);
	else if (st.epoch_start <= wall)
		s->epoch_start = now - (wall - st.epoch_start);
	for (size_t i = 0; i < st.n_mappings; i++) {
		const struct state_mapping *sm = &st.mappings[i];
		char client[INET_ADDRSTRLEN];
		int on_boot = same_boot && sm->expires_boot;
		int64_t left = on_boot ? sm->expires_boot - boot : sm->expires - wall;
		struct table_mapping m = {
			.client = sm->client,
			.protocol = sm->protocol,
			.origin = sm->origin,
			.internal_port = sm->internal_port,
			.external_port = sm->external_port,
			.lifetime = sm->lifetime,
			.upstream_port = sm->upstream_port,
		};
		if (left <= 0) {
			expired++;
			/* On the wall clock, a step forward looks the same as time passing. */
			uncertain += !on_boot;
			continue;
		}
		/*
		 * A router without a clock that booted before NTP set it sees
		 * expiries far ahead: no mapping outlives the lifetime it was
		 * granted, nor today's --max-lifetime.
		 */
		if (m.lifetime > s->cfg.max_lifetime)
			m.lifetime = s->cfg.max_lifetime;
		m.expires = now + (left < m.lifetime ? left : m.lifetime);
		if ((r = table_restore(s->table, &m)) < 0) {
			refused++;
			log_warnx("state file: not restoring %s %u -> %s:%u: %s", proto_protocol_name(m.protocol),
				  m.external_port, netif_addr_str(m.client, client), m.internal_port,
				  r == -ERANGE	       ? "port no longer allowed"
				  : r == -EADDRINUSE ? "the router itself now uses the port"
				  : r == -ENOSPC     ? "over the client's limit"
						     : "conflicts with another mapping");
			continue;
		}
		restored++;
	}
	/*
	 * RFC 6886 3.6: clients map again when the epoch shows state was lost.
	 * It was if a mapping its client may still count on was not restored:
	 * refused, or expired by a wall clock that may have been stepped.
	 */
	if (refused + uncertain) {
		s->epoch_start = now;
		log_warnx("%zu saved mapping(s) could not be restored for certain: the epoch starts again at 0, so "
			  "that clients map again",
			  refused + uncertain);
	}
	log_info("restored %zu mapping(s) from %s and %zu journal line(s) (%zu expired while stopped, %zu refused), "
		 "epoch %u, times from the %s",
		 restored, s->state_path, journaled, expired, refused, server_epoch(s, now),
		 same_boot ? "boot clock (same boot)" : "wall clock");
	state_free(&st);
	return 0;
}

struct server *server_new(const struct config *cfg, int argc, char **argv)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->argc = argc;
	s->argv = argv;
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++)
		s->listeners[i].sock.fd = -1;
	s->journal_fd = -1;
	s->journal_end = -1;
	TAILQ_INIT(&s->pending);
	return s;
}

int server_start(struct server *s)
{
	const struct config *cfg = &s->cfg;
	struct table_config tc = server_table_config(s);
	struct nft_config nc = {
		.table = cfg->nat_table,
		.chain = cfg->nat_chain,
		.external_interface = cfg->external_interface,
	};
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
	int64_t now = mono_now();
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) {
		log_error("cannot create state directory %s: %s; create it or point --state-dir elsewhere",
			  cfg->state_dir, strerror(errno));
		return -1;
	}
	snprintf(s->state_path, sizeof(s->state_path), "%s/%s", cfg->state_dir, STATE_FILE_NAME);
	snprintf(s->journal_path, sizeof(s->journal_path), "%s/%s", cfg->state_dir, STATE_JOURNAL_NAME);

	if (!(s->base = event_base_new()) || !(s->table = table_new(&tc))) {
		log_error("out of memory at start");
		return -1;
	}
	if (!(s->nft = nft_open(&nc)) || !(s->ct = ct_open()) || !(s->sockdiag = sockdiag_open()) ||
	    !(s->neigh = netif_neigh_open()) ||
	    !(s->netwatch = netif_watch_open()) || !(s->nftmon = nftmon_open(cfg->nat_table, nft_portid(s->nft)))) {
		log_error("cannot open a netlink socket: %s (the daemon needs CAP_NET_ADMIN)", strerror(errno));
		return -1;
	}
	if (!(s->ratelimit = ratelimit_new(cfg->rate_limit)) || !(s->announce = announce_new(s->base, server_announce, s)) ||
	    !(s->repair_ev = evtimer_new(s->base, server_on_repair, s)) ||
	    !(s->compact_ev = evtimer_new(s->base, server_on_compact, s)) ||
	    !(s->flows_ev = evtimer_new(s->base, server_on_end_flows, s)) ||
	    !(s->ports_ev = event_new(s->base, -1, EV_PERSIST, server_on_ports, s)) ||
	    !(s->netwatch_ev = event_new(s->base, netif_watch_fd(s->netwatch), EV_READ | EV_PERSIST, server_on_netlink, s)) ||
	    !(s->nftmon_ev = event_new(s->base, nftmon_fd(s->nftmon), EV_READ | EV_PERSIST, server_on_nftables, s)) ||
	    event_add(s->netwatch_ev, NULL) < 0 || event_add(s->nftmon_ev, NULL) < 0) {
		log_error("out of memory at start");
		return -1;
	}
	/*
	 * The listen sockets first: a misspelt interface fails the start before
	 * anything touches the kernel's tables or the state file.  Requests
	 * that arrive meanwhile wait in the sockets until the loop runs.
	 */
	/*
	 * Signals first: a SIGHUP from a service manager that reloads during a
	 * long restore waits for the loop instead of killing the daemon.
	 */
	for (size_t i = 0; i < 3; i++) {
		s->signal_ev[i] = evsignal_new(s->base, signals[i], server_on_signal, s);
		if (!s->signal_ev[i] || event_add(s->signal_ev[i], NULL) < 0) {
			log_error("cannot install signal handlers");
			return -1;
		}
	}
	if (server_open_listeners(s, cfg, s->listeners) < 0)
		return -1;
	s->n_listeners = cfg->n_listen;
	/* The HTTP API too: /health answers 503 until the table is in place. */
	if (!(s->hook = hook_new(s->base, &s->cfg, &s->metrics)) || server_http_open(s) < 0)
		return -1;

	/* Before the restore: the router's own ports on these addresses are not restored. */
	server_read_external(s);

	server_read_boot_id(s);
	if (server_restore(s, now) < 0)
		return -1;
	s->restored = 1;
	/* A fresh table replaces whatever a previous run left, then holds exactly our mappings. */
	if ((r = server_install_all(s, now)) < 0) {
		log_error("cannot install nftables table ip %s: %s (the daemon needs CAP_NET_ADMIN and a kernel "
			  "with nf_tables and nft_nat)",
			  cfg->nat_table, strerror(-r));
		return -1;
	}
	table_commit(s->table);
	if (cfg->upstream_gateway) {
		s->upstream_ev = (struct upstream_events){
			.arg = s,
			.address = server_upstream_address,
			.mapped = server_upstream_mapped,
			.remapped = server_upstream_remapped,
		};
		if (!(s->upstream = upstream_open(s->base, cfg->upstream_gateway, cfg->upstream_interface, &s->upstream_ev)))
			return -1;
		/* What the state file had: asked for again, suggesting the port each client was told. */
		if (table_foreach(s->table, upstream_keep_one, s) < 0) {
			log_error("out of memory at start");
			return -1;
		}
	}
	if ((r = nft_probe_timeout_update(s->nft)) < 0)
		log_warnx("cannot ask the kernel how element timeouts are updated (%s): renewals replace elements",
			  strerror(-r));
	else
		log_info("renewals %s", r ? "update element timeouts in place" : "replace elements (kernel before 6.10)");
	if (server_compact(s, now) < 0) {
		log_error("state directory %s is not writable: fix its permissions or choose another --state-dir",
			  cfg->state_dir);
		return -1;
	}

	if (!(s->expiry_ev = evtimer_new(s->base, server_on_expiry, s))) {
		log_error("out of memory at start");
		return -1;
	}
	server_arm_expiry(s, now);
	{
		struct timeval tv = { .tv_sec = SERVER_PORTS_CHECK_S };
		evtimer_add(s->ports_ev, &tv);
	}
	s->serving = 1;
	log_info("serving NAT-PMP on port %u of %zu interface(s); %zu mapping(s) in table ip %s", cfg->listen_port,
		 s->n_listeners, table_count(s->table), cfg->nat_table);
	{
		char status[160];
		snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %zu mapping(s) on %zu interface(s)",
			 table_count(s->table), s->n_listeners);
		if ((r = notify_send(status)) < 0)
			log_warnx("cannot tell the service manager we are ready: %s", strerror(-r));
	}
	/* RFC 6886 3.2.1: at start, and so after any loss of state, announce the address. */
	if (server_public_address(s))
		announce_restart(s->announce);
	else if (!cfg->upstream_gateway)
		log_warnx("external interface %s has no IPv4 address yet: opcode 0 answers result 3 until it has one",
			  cfg->external_interface);
	return 0;
}

int server_run(struct server *s)
{
	return event_base_dispatch(s->base) < 0 ? -1 : 0;
}

void server_free(struct server *s)
{
	int r;

	if (!s)
		return;
	if (s->nft) {
		if ((r = nft_remove(s->nft)) < 0)
			log_warnx("cannot remove nftables table ip %s: %s", s->cfg.nat_table, strerror(-r));
		nft_close(s->nft);
	}
	/* Never before the restore: an early failure would overwrite the file with nothing. */
	if (s->restored)
		(void)server_compact(s, mono_now());
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	server_flush_pending(s, 1, 1);
	upstream_close(s->upstream);
	http_close(s->http);
	http_close_retired();
	hook_free(s->hook);
	if (s->compact_ev)
		event_free(s->compact_ev);
	if (s->flows_ev)
		event_free(s->flows_ev);
	if (s->ports_ev)
		event_free(s->ports_ev);
	for (size_t i = 0; i < CONFIG_MAX_LISTEN; i++) {
		if (s->listeners[i].ev)
			event_free(s->listeners[i].ev);
		udp_close(&s->listeners[i].sock);
	}
	for (size_t i = 0; i < 3; i++)
		if (s->signal_ev[i])
			event_free(s->signal_ev[i]);
	if (s->expiry_ev)
		event_free(s->expiry_ev);
	if (s->repair_ev)
		event_free(s->repair_ev);
	if (s->netwatch_ev)
		event_free(s->netwatch_ev);
	if (s->nftmon_ev)
		event_free(s->nftmon_ev);
	announce_free(s->announce);
	nftmon_close(s->nftmon);
	netif_watch_close(s->netwatch);
	sockdiag_close(s->sockdiag);
	netif_neigh_close(s->neigh);
	ct_close(s->ct);
	ratelimit_free(s->ratelimit);
	free(s->ended);
	table_free(s->table);
	if (s->base)
		event_base_free(s->base);
	free(s);
}
