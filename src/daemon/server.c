/*
 * server.c - the daemon's lifecycle: start-up in order, signals, the event
 * loop, shutdown.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server_impl.h"
#include "api.h"
#include "expiry.h"
#include "external.h"
#include "install.h"
#include "persist.h"
#include "ports.h"
#include "reload.h"
#include "turn.h"
#include "waiting.h"


/* Someone asked the table lock who holds it (a second daemon refused): the answer is given, the question let go. */
static void server_on_lock(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	lock_drain(&s->lock);
}

void server_watch_lock(struct server *s)
{
	if (s->lock_ev) {
		event_del(s->lock_ev);
		event_free(s->lock_ev);
	}
	if ((s->lock_ev = event_new(s->base, s->lock.table_fd, EV_READ | EV_PERSIST, server_on_lock, s)))
		event_add(s->lock_ev, NULL);
}

/* The table's rules as the configuration of the moment gives them. */
struct table_config server_table_config(struct server *s)
{
	return (struct table_config){
		.allowed = s->cfg.allowed_ports,
		.n_allowed = s->cfg.n_allowed,
		.reserved = s->cfg.reserved_ports,
		.n_reserved = s->cfg.n_reserved,
		.rules = s->cfg.rules,
		.n_rules = s->cfg.n_rules,
		.port_busy = ports_busy,
		.port_busy_arg = s,
		.max_per_client = s->cfg.max_mappings_per_ip,
		.max_lifetime = s->cfg.max_lifetime,
	};
}

static void server_on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct server *s = arg;

	(void)what;
	if (sig == SIGHUP) {
		log_info("SIGHUP: reloading the configuration");
		reload_config(s);
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

struct server *server_new(const struct config *cfg, int argc, char **argv)
{
	struct server *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->argc = argc;
	s->argv = argv;
	for (size_t i = 0; i < SERVER_MAX_LISTENERS; i++)
		s->listeners[i].sock.fd = -1;
	s->journal_fd = -1;
	s->journal_end = -1;
	s->lock = (struct lock)LOCK_INIT;
	TAILQ_INIT(&s->pending);
	return s;
}

/* STUN mode's outer NAT, with what the configuration says (stunkeep.c copies what it keeps). */
static struct outer *server_open_stun(struct server *s)
{
	const char *servers[CONFIG_MAX_STUN];
	struct outer_stun_config sc = {
		.ifname = s->cfg.external_interface,
		.servers = servers,
		.n_servers = s->cfg.n_stun,
		.keepalive_server = s->cfg.stun_keepalive_server[0] ? s->cfg.stun_keepalive_server : NULL,
		.keepalive_s = s->cfg.stun_keepalive,
		.allow_filtered = s->cfg.stun_allow_filtered,
	};

	for (size_t i = 0; i < s->cfg.n_stun; i++)
		servers[i] = s->cfg.stun_servers[i];
	return outer_open_stun(s->base, &sc, &s->outer_ev);
}

int server_start(struct server *s)
{
	const struct config *cfg = &s->cfg;
	struct table_config tc = server_table_config(s);
	struct nft_config nc = {
		.table = cfg->nat_table,
		.chain = cfg->nat_chain,
		.external_interface = cfg->external_interface,
		.pinhole_mark = cfg->pinhole_mark,
		.pinhole_mask = cfg->pinhole_mask,
	};
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP };
	int64_t now = server_mono_s();
	int r;

	signal(SIGPIPE, SIG_IGN);
	if (mkdir(cfg->state_dir, 0755) < 0 && errno != EEXIST) {
		log_error("cannot create state directory %s: %s; create it or point --state-dir elsewhere",
			  cfg->state_dir, strerror(errno));
		return -1;
	}
	/* Before anything touches the state files or the table: another daemon's stay as they are. */
	if (lock_take_dir(&s->lock, cfg->state_dir) < 0 || lock_take_table(&s->lock, cfg->nat_table) < 0)
		return -1;
	snprintf(s->state_path, sizeof(s->state_path), "%s/%s", cfg->state_dir, STATE_FILE_NAME);
	snprintf(s->journal_path, sizeof(s->journal_path), "%s/%s", cfg->state_dir, STATE_JOURNAL_NAME);

	if (!(s->base = event_base_new()) || !(s->table = table_new(&tc))) {
		log_error("out of memory at start");
		return -1;
	}
	server_watch_lock(s);
	if (!(s->nft = nft_open(&nc)) || !(s->ct = ct_open()) || !(s->sockdiag = sockdiag_open()) ||
	    !(s->neigh = netif_neigh_open()) ||
	    !(s->netwatch = netif_watch_open()) || !(s->nftmon = nftmon_open(cfg->nat_table, nft_portid(s->nft)))) {
		log_error("cannot open a netlink socket: %s (the daemon needs CAP_NET_ADMIN)", strerror(errno));
		return -1;
	}
	if (!(s->ratelimit = ratelimit_new(cfg->rate_limit)) || !(s->announce = announce_new(s->base, external_announce, s)) ||
	    !(s->repair_ev = evtimer_new(s->base, install_on_repair, s)) ||
	    !(s->compact_ev = evtimer_new(s->base, persist_on_compact, s)) ||
	    !(s->flows_ev = evtimer_new(s->base, expiry_on_flows, s)) ||
	    !(s->ports_ev = event_new(s->base, -1, EV_PERSIST, ports_on_check, s)) ||
	    !(s->netwatch_ev = event_new(s->base, netif_watch_fd(s->netwatch), EV_READ | EV_PERSIST, external_on_netlink, s)) ||
	    !(s->nftmon_ev = event_new(s->base, nftmon_fd(s->nftmon), EV_READ | EV_PERSIST, install_on_nftables, s)) ||
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
	if ((r = turn_open_listeners(s, cfg, s->listeners)) < 0)
		return -1;
	s->n_listeners = (size_t)r;
	/* The HTTP API too: /health answers 503 until the table is in place. */
	if (!(s->hook = hook_new(s->base, &s->cfg, &s->metrics)) || api_open(s) < 0)
		return -1;

	/* Before the restore: the router's own ports on these addresses are not restored. */
	external_read(s);

	state_boot_id(s->boot_id);
	if (persist_restore(s, now) < 0)
		return -1;
	s->restored = 1;
	/* A fresh table replaces whatever a previous run left, then holds exactly our mappings. */
	if ((r = install_all(s, now)) < 0) {
		log_error("cannot install nftables table ip %s: %s (the daemon needs CAP_NET_ADMIN and a kernel "
			  "with nf_tables and nft_nat)",
			  cfg->nat_table, strerror(-r));
		return -1;
	}
	table_commit(s->table);
	if (cfg->upstream_gateway || cfg->n_stun) {
		s->outer_ev = (struct outer_events){
			.arg = s,
			.address = waiting_on_address,
			.mapped = waiting_on_mapped,
			.remapped = waiting_on_remapped,
		};
		if (cfg->upstream_gateway)
			s->outer = outer_open_natpmp(s->base, cfg->upstream_gateway, cfg->upstream_interface, &s->outer_ev);
		else
			s->outer = server_open_stun(s);
		if (!s->outer)
			return -1;
		/* What the state file had: asked for again, suggesting the port each client was told. */
		if (table_foreach(s->table, waiting_keep_one, s) < 0) {
			log_error("out of memory at start");
			return -1;
		}
	}
	if ((r = nft_probe_timeout_update(s->nft)) < 0)
		log_warnx("cannot ask the kernel how element timeouts are updated (%s): renewals replace elements",
			  strerror(-r));
	else
		log_info("renewals %s", r ? "update element timeouts in place" : "replace elements (kernel before 6.10)");
	/*
	 * The snapshot that folds in what was restored is written once the
	 * daemon serves (44 ms at 60,000 mappings, not spent before the first
	 * answer); whether the directory takes new files is known now.
	 */
	if ((r = persist_writable(s)) < 0) {
		log_error("state directory %s is not writable (%s): fix its permissions or choose another --state-dir",
			  cfg->state_dir, strerror(-r));
		return -1;
	}

	if (!(s->expiry_ev = evtimer_new(s->base, expiry_on_timer, s))) {
		log_error("out of memory at start");
		return -1;
	}
	expiry_arm(s, now);
	{
		struct timeval tv = { .tv_sec = SERVER_PORTS_CHECK_S };
		evtimer_add(s->ports_ev, &tv);
	}
	s->serving = 1;
	event_active(s->compact_ev, EV_TIMEOUT, 0);
	log_info("serving NAT-PMP and PCP on port %u of %zu interface(s); %zu mapping(s) in table ip %s", cfg->listen_port,
		 cfg->n_listen, table_count(s->table), cfg->nat_table);
	{
		char status[160];
		snprintf(status, sizeof(status), "READY=1\nSTATUS=serving %zu mapping(s) on %zu interface(s)",
			 table_count(s->table), cfg->n_listen);
		if ((r = notify_send(status)) < 0)
			log_warnx("cannot tell the service manager we are ready: %s", strerror(-r));
	}
	/* RFC 6886 3.2.1: at start, and so after any loss of state, announce the address. */
	if (external_address(s))
		announce_restart(s->announce);
	else if (!s->outer)
		external_warn_none(s);
	external_warn_unreachable(s);
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
		(void)persist_compact(s, server_mono_s());
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	waiting_flush(s, 1, 1);
	outer_close(s->outer);
	http_close(s->http);
	http_close_retired();
	hook_free(s->hook);
	if (s->compact_ev)
		event_free(s->compact_ev);
	if (s->flows_ev)
		event_free(s->flows_ev);
	if (s->ports_ev)
		event_free(s->ports_ev);
	for (size_t i = 0; i < SERVER_MAX_LISTENERS; i++) {
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
	if (s->lock_ev)
		event_free(s->lock_ev);
	if (s->base)
		event_base_free(s->base);
	/* Last: the next daemon may take the table and the files only once this one is done with them. */
	lock_release(&s->lock);
	free(s);
}
