/*
 * reload.c - SIGHUP: the configuration read again and applied, or refused as
 * a whole.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "server_impl.h"
#include "reload.h"
#include "api.h"
#include "external.h"
#include "install.h"
#include "turn.h"
#include "waiting.h"

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

/*
 * Logs what a reload changes, as the options that differ (-n's form: the
 * token is never printed), or that it changes nothing.
 */
static void reload_log_changes(const struct config *old, const struct config *next)
{
	char *a = NULL, *b = NULL, msg[1024];
	size_t alen = 0, blen = 0, used = 0;
	FILE *fa = open_memstream(&a, &alen), *fb = open_memstream(&b, &blen);

	if (fa)
		config_print(old, fa);
	if (fb)
		config_print(next, fb);
	int bad = !fa || !fb;

	if (fa && fclose(fa) != 0)
		bad = 1;
	if (fb && fclose(fb) != 0)
		bad = 1;
	if (bad || !a || !b) {
		free(a);
		free(b);
		return;
	}
	msg[0] = '\0';
	/* Each line of the new configuration the old one lacks is a change; each old one the new lacks, a removal. */
	for (int pass = 0; pass < 2; pass++) {
		const char *from = pass ? a : b, *in = pass ? b : a;
		for (const char *line = from; *line;) {
			const char *end = strchr(line, '\n');
			size_t len = end ? (size_t)(end - line) : strlen(line);
			bool found = false;
			for (const char *p = in; *p && !found;) {
				const char *pe = strchr(p, '\n');
				size_t plen = pe ? (size_t)(pe - p) : strlen(p);
				found = plen == len && memcmp(p, line, len) == 0;
				p += plen + (pe != NULL);
			}
			if (!found && used < sizeof(msg))
				used += (size_t)snprintf(msg + used, sizeof(msg) - used, "%s%s%.*s", used ? ", " : "",
							 pass ? "no more " : "", (int)len, line);
			line += len + (end != NULL);
		}
	}
	if (msg[0])
		log_info("reload: %s", msg);
	else
		log_info("reload: no change in the configuration");
	free(a);
	free(b);
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
/* Whether the STUN-mode options differ: the outer NAT was opened with them. */
static int reload_stun_changed(const struct config *a, const struct config *b)
{
	if (a->n_stun != b->n_stun || a->stun_keepalive != b->stun_keepalive ||
	    a->stun_allow_filtered != b->stun_allow_filtered ||
	    strcmp(a->stun_keepalive_server, b->stun_keepalive_server) != 0)
		return 1;
	for (size_t i = 0; i < a->n_stun; i++)
		if (strcmp(a->stun_servers[i], b->stun_servers[i]) != 0)
			return 1;
	return 0;
}

void reload_config(struct server *s)
{
	struct config next;
	struct server_listener ls[SERVER_MAX_LISTENERS];
	struct nft *nft = NULL;
	struct nftmon *mon = NULL;
	struct http *http = NULL;
	int new_listeners, new_nft, new_http, ext_changed, table_lock = -1, r, n_ls = 0;
	int64_t now = server_mono_s();
	struct timespec ts;
	uint32_t old_public = external_address(s), old_rate = s->cfg.rate_limit, old_override = s->cfg.external_address;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	server_notify("RELOADING=1\nMONOTONIC_USEC=%lld\nSTATUS=reloading the configuration",
		      (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
	memset(ls, 0, sizeof(ls));
	for (size_t i = 0; i < SERVER_MAX_LISTENERS; i++)
		ls[i].sock.fd = -1;
	if (config_parse(&next, s->argc, s->argv) != 0)
		goto refuse;
	if (reload_stun_changed(&next, &s->cfg) ||
	    (s->cfg.n_stun && strcmp(next.external_interface, s->cfg.external_interface) != 0)) {
		/* The bindings' sockets are tied to the external interface too. */
		log_warnx("reload: STUN mode (--stun-server, the other --stun-* options and --external-interface) "
			  "cannot change while running (restart to change it); keeping it as it was");
		strcpy(next.external_interface, s->cfg.external_interface);
		memcpy(next.stun_servers, s->cfg.stun_servers, sizeof(next.stun_servers));
		next.n_stun = s->cfg.n_stun;
		next.stun_keepalive = s->cfg.stun_keepalive;
		strcpy(next.stun_keepalive_server, s->cfg.stun_keepalive_server);
		next.stun_allow_filtered = s->cfg.stun_allow_filtered;
	}
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
		  strcmp(next.external_interface, s->cfg.external_interface) || next.pinhole_mark != s->cfg.pinhole_mark ||
		  next.pinhole_mask != s->cfg.pinhole_mask;
	new_http = strcmp(next.http_listen, s->cfg.http_listen) != 0;
	if (new_listeners && (n_ls = turn_open_listeners(s, &next, ls)) < 0)
		goto refuse;
	if (new_nft) {
		struct nft_config nc = { next.nat_table, next.nat_chain, next.external_interface, next.pinhole_mark,
					 next.pinhole_mask };
		/* Another daemon's table is never taken over, by a reload either. */
		if (strcmp(next.nat_table, s->cfg.nat_table) != 0 && (table_lock = lock_open_table(next.nat_table)) < 0)
			goto undo;
		if (!(nft = nft_open(&nc)) || !(mon = nftmon_open(next.nat_table, nft_portid(nft)))) {
			log_error("reload: cannot open a netlink socket: %s", strerror(errno));
			goto undo;
		}
	}
	if (new_http && next.http_listen[0]) {
		/* The old listener may hold the address: it goes first, and comes back if the new one fails. */
		waiting_flush(s, 0, 1);
		http_retire(s->http);
		s->http = NULL;
		if (!(http = api_listen(s, next.http_listen))) {
			(void)api_open(s);
			goto undo;
		}
	}

	/* Nothing can fail from here on that would leave the old configuration half replaced. */
	if (new_http && !next.http_listen[0]) {
		waiting_flush(s, 0, 1);
		http_retire(s->http);
		s->http = NULL;
	}
	if (new_listeners) {
		/* Their clients ask again, on the new sockets. */
		waiting_flush(s, 1, 0);
		turn_close_listeners(s->listeners, s->n_listeners);
		memcpy(s->listeners, ls, sizeof(ls));
		s->n_listeners = (size_t)n_ls;
		/* The events' argument is the listener: point them at its new home. */
		for (size_t i = 0; i < s->n_listeners; i++) {
			if (!s->listeners[i].ev)
				continue; /* waiting for its interface: turn_retry_listeners() makes its event */
			event_del(s->listeners[i].ev);
			event_assign(s->listeners[i].ev, s->base, s->listeners[i].sock.fd, EV_READ | EV_PERSIST,
				     turn_on_readable, &s->listeners[i]);
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
		s->nftmon_ev = event_new(s->base, nftmon_fd(mon), EV_READ | EV_PERSIST, install_on_nftables, s);
		if (!s->nftmon_ev || event_add(s->nftmon_ev, NULL) < 0)
			log_warnx("reload: cannot watch table ip %s for changes by others", next.nat_table);
		if (table_lock >= 0) {
			lock_set_table(&s->lock, table_lock);
			server_watch_lock(s);
		}
	}
	reload_log_changes(&s->cfg, &next);
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
	ext_changed = external_read(s) || new_nft || old_override != s->cfg.external_address;
	s->busy_valid = 0;
	if ((r = install_all(s, now)) < 0) {
		log_warnx("reload: cannot reinstall table ip %s: %s; trying again in 1 s", s->cfg.nat_table,
			  strerror(-r));
		install_schedule_repair(s, 1000);
	} else if (new_nft && nft_probe_timeout_update(s->nft) < 0) {
		log_warnx("reload: cannot ask the kernel how element timeouts are updated: renewals replace elements");
	}
	/* Only news is logged and announced: a reload that changed nothing there says nothing of it. */
	if (ext_changed)
		external_changed(s);
	/* RFC 6886 3.2.1: a new --external-address is a new address, announced like any other. */
	if (external_address(s) && external_address(s) != old_public)
		announce_restart(s->announce);
	s->metrics.reloads++;
	log_info("reloaded: serving %zu mapping(s) on port %u of %zu interface(s), table ip %s", table_count(s->table),
		 s->cfg.listen_port, s->cfg.n_listen, s->cfg.nat_table);
	server_notify("READY=1\nSTATUS=serving %zu mapping(s) on %zu interface(s)", table_count(s->table),
		      s->cfg.n_listen);
	return;
undo:
	if (table_lock >= 0)
		close(table_lock);
	http_close(http);
	nftmon_close(mon);
	nft_close(nft);
	turn_close_listeners(ls, (size_t)(n_ls > 0 ? n_ls : 0));
refuse:
	s->metrics.reload_errors++;
	log_error("reload refused: the running configuration stays in force (fix the error above, then SIGHUP again)");
	server_notify("READY=1\nSTATUS=reload refused; serving with the previous configuration");
}
