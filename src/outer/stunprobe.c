/*
 * stunprobe.c - the STUN servers, the public address, and RFC 5780's
 * behaviour discovery.
 *
 * One probe at a time walks these states: RESOLVE (the current server's
 * name), TEST1 (a Binding request to it: the public address), then for a
 * full probe MAP2 and MAP3 (the same socket to the server's other address,
 * then its other address and port: the mapping) and FILT2 and FILT3 (a
 * fresh socket asking for an answer from the other address and port, then
 * from the other port: the filtering).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "kernel/netif.h"
#include "stun_io.h"
#include "stunprobe.h"

enum probe_state { PROBE_IDLE, PROBE_RESOLVE, PROBE_TEST1, PROBE_MAP2, PROBE_MAP3, PROBE_FILT2, PROBE_FILT3 };

struct probe_server {
	char host[256];
	uint16_t port;
	struct sockaddr_in addr;
	int numeric; /* host is an address: nothing to resolve */
};

struct stunprobe {
	struct event_base *base;
	char ifname[16];
	struct probe_server *servers;
	size_t n, cur, tried;
	int answered; /* servers[cur] answered the last probe */
	struct sockaddr_in good; /* the last server that answered; sin_port 0: none ever did */
	struct sockaddr_in filter_from; /* where the filtering test's last datagram came from */
	struct evdns_base *dns;
	struct probe_lookup *lookups; /* stunprobe_lookup()'s in flight, cut loose at close */
	int map_fd, filter_fd;
	struct event *map_ev, *filter_ev, *next_ev;
	struct stun_tx map_tx, filter_tx;
	enum probe_state state;
	int full;
	int64_t retry_ms;
	struct sockaddr_in other, x1, x2;
	struct stunprobe_result now, last;
	stunprobe_done done;
	void *arg;
};

const char *stunprobe_kind_name(enum stunprobe_kind k)
{
	switch (k) {
	case STUNPROBE_INDEPENDENT:
		return "endpoint-independent";
	case STUNPROBE_ADDRESS:
		return "address-dependent";
	case STUNPROBE_ADDRESS_PORT:
		return "address-and-port-dependent";
	default:
		return "unknown";
	}
}

static void probe_test1(struct stunprobe *p);
static void probe_on_filter_read(evutil_socket_t fd, short what, void *arg);
static void probe_resolve(struct stunprobe *p);

/* Whether addr is one of the interface's own: then no NAT stands between it and the server. */
static int probe_own(const struct stunprobe *p, uint32_t addr)
{
	struct netif_addr a[16];
	int n = netif_ipv4_all(p->ifname, a, 16);

	for (int i = 0; i < n; i++)
		if (a[i].addr == addr)
			return 1;
	return 0;
}

static void probe_report(struct stunprobe *p, int discovered)
{
	p->state = PROBE_IDLE;
	p->now.discovered = discovered;
	/* A refresh that found the same address keeps the discovery made for it. */
	if (p->now.address) {
		bool known = discovered || (p->last.discovered && p->now.address == p->last.address);
		p->last = p->now;
		p->last.discovered = known;
	}
	stun_io_arm(p->next_ev, p->now.address ? STUNPROBE_REFRESH_MS : p->retry_ms);
	if (!p->now.address && (p->retry_ms *= 2) > STUNPROBE_REFRESH_MS)
		p->retry_ms = STUNPROBE_REFRESH_MS;
	p->done(p->arg, &p->now);
}

/* The current server failed: the next one, or, when all have, the end of this probe. */
static void probe_next_server(struct stunprobe *p, const char *why)
{
	struct probe_server *s = &p->servers[p->cur];

	log_warnx("stun: server %s:%u %s%s", s->host, s->port, why,
		  p->n > 1 ? "; trying the next" : "");
	p->answered = 0;
	p->cur = (p->cur + 1) % p->n;
	if (++p->tried < p->n) {
		probe_resolve(p);
		return;
	}
	log_warnx("stun: no STUN server answered; the public address stays %s; trying again in %lld s",
		  p->last.address ? "as last seen" : "unknown", (long long)p->retry_ms / 1000);
	p->now = (struct stunprobe_result){ 0 };
	probe_report(p, 0);
}

/* A server's address, or why there is none (stunprobe_lookup()'s callback; arg: the probe). */
static void probe_on_address(void *arg, const struct sockaddr_in *a, const char *why)
{
	struct stunprobe *p = arg;
	struct probe_server *s = &p->servers[p->cur];
	char text[300];

	if (!a) {
		snprintf(text, sizeof(text), "cannot be resolved: %s", why);
		probe_next_server(p, text);
		return;
	}
	s->addr = *a;
	s->addr.sin_port = htons(s->port);
	probe_test1(p);
}

static void probe_resolve(struct stunprobe *p)
{
	struct probe_server *s = &p->servers[p->cur];

	p->state = PROBE_RESOLVE;
	if (s->numeric)
		probe_test1(p);
	else
		stunprobe_lookup(p, s->host, probe_on_address, p);
}

static void probe_test1(struct stunprobe *p)
{
	p->state = PROBE_TEST1;
	stun_tx_start(&p->map_tx, &p->servers[p->cur].addr, 0);
}

static void probe_start(struct stunprobe *p, int full)
{
	if (p->state != PROBE_IDLE) {
		p->full |= full;
		return;
	}
	evtimer_del(p->next_ev);
	p->full = full;
	p->tried = 0;
	probe_resolve(p);
}

static void probe_on_next(evutil_socket_t fd, short what, void *arg)
{
	struct stunprobe *p = arg;

	(void)fd;
	(void)what;
	/* A refresh when the last probe found the address; a whole probe again when it did not. */
	probe_start(p, !p->last.address || !p->last.discovered);
}

/* The mapped address of a success answer, as a socket address; -1 when it has none. */
static int probe_mapped(const struct stun_response *r, struct sockaddr_in *out)
{
	if (!r || !r->success || !r->has_mapped)
		return -1;
	return stun_io_sockaddr(&r->mapped, out) < 0 ? -1 : 0;
}

static int same(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

static void probe_filtering(struct stunprobe *p)
{
	int fd;

	if (p->filter_fd >= 0) {
		event_free(p->filter_ev);
		p->filter_ev = NULL;
		close(p->filter_fd);
		p->filter_fd = -1;
	}
	/* A socket that has talked to the primary address alone: whatever it hears from elsewhere got through. */
	if ((fd = stun_io_socket(SOCK_DGRAM, p->ifname, 0, 0)) < 0) {
		log_warnx("stun: cannot open a socket for the filtering test: %s", strerror(-fd));
		probe_report(p, 1);
		return;
	}
	p->filter_fd = fd;
	p->filter_tx.fd = fd;
	if (!(p->filter_ev = event_new(p->base, fd, EV_READ | EV_PERSIST, probe_on_filter_read, p))) {
		close(fd);
		p->filter_fd = -1;
		probe_report(p, 1);
		return;
	}
	event_add(p->filter_ev, NULL);
	p->state = PROBE_FILT2;
	stun_tx_start(&p->filter_tx, &p->servers[p->cur].addr, STUN_CHANGE_IP | STUN_CHANGE_PORT);
}

static void probe_on_map_answer(struct stun_tx *tx, const struct stun_response *r, void *arg)
{
	struct stunprobe *p = arg;
	struct sockaddr_in x;
	int ok = probe_mapped(r, &x) == 0;

	(void)tx;
	switch (p->state) {
	case PROBE_TEST1:
		if (!ok) {
			probe_next_server(p, r ? "gave no IPv4 mapped address" : "did not answer");
			return;
		}
		p->answered = 1;
		p->good = p->servers[p->cur].addr;
		p->retry_ms = STUNPROBE_RETRY_MS;
		p->x1 = x;
		p->now = (struct stunprobe_result){ .address = x.sin_addr.s_addr, .nat = !probe_own(p, x.sin_addr.s_addr) };
		if (!p->full && p->last.discovered && p->now.address == p->last.address) {
			p->now = p->last;
			probe_report(p, 0);
			return;
		}
		if (!p->now.nat) {
			/* Nothing translates: nothing stands in the way but the router's own firewall. */
			p->now.mapping = p->now.filtering = STUNPROBE_INDEPENDENT;
			probe_report(p, 1);
			return;
		}
		if (!r->has_other || stun_io_sockaddr(&r->other, &p->other) < 0 ||
		    p->other.sin_addr.s_addr == p->servers[p->cur].addr.sin_addr.s_addr) {
			log_info("stun: server %s:%u gives no second address (RFC 5780 OTHER-ADDRESS): the NAT's "
				 "behaviour stays unknown", p->servers[p->cur].host, p->servers[p->cur].port);
			probe_report(p, 1);
			return;
		}
		p->state = PROBE_MAP2;
		x = p->other;
		x.sin_port = p->servers[p->cur].addr.sin_port;
		stun_tx_start(&p->map_tx, &x, 0);
		return;
	case PROBE_MAP2:
		if (!ok) {
			probe_filtering(p);
			return;
		}
		p->x2 = x;
		if (same(&x, &p->x1)) {
			p->now.mapping = STUNPROBE_INDEPENDENT;
			probe_filtering(p);
			return;
		}
		p->state = PROBE_MAP3;
		stun_tx_start(&p->map_tx, &p->other, 0);
		return;
	case PROBE_MAP3:
		if (ok)
			p->now.mapping = same(&x, &p->x2) ? STUNPROBE_ADDRESS : STUNPROBE_ADDRESS_PORT;
		probe_filtering(p);
		return;
	default:
		/* A refresh (TEST1 only) ends in TEST1; anything else is stale. */
		return;
	}
}

static void probe_on_filter_answer(struct stun_tx *tx, const struct stun_response *r, void *arg)
{
	struct stunprobe *p = arg;

	(void)tx;
	if (r && !r->success) {
		/* The server cannot answer from elsewhere (RFC 5780 7.2's 420): filtering stays unknown. */
		probe_report(p, 1);
		return;
	}
	/* An answer from where the request went means the server ignored CHANGE-REQUEST: it tells nothing. */
	if (r && p->filter_from.sin_addr.s_addr == p->filter_tx.to.sin_addr.s_addr &&
	    p->filter_from.sin_port == p->filter_tx.to.sin_port) {
		probe_report(p, 1);
		return;
	}
	if (p->state == PROBE_FILT2) {
		if (r) {
			p->now.filtering = STUNPROBE_INDEPENDENT;
			probe_report(p, 1);
			return;
		}
		p->state = PROBE_FILT3;
		stun_tx_start(&p->filter_tx, &p->servers[p->cur].addr, STUN_CHANGE_PORT);
		return;
	}
	if (p->state == PROBE_FILT3) {
		p->now.filtering = r ? STUNPROBE_ADDRESS : STUNPROBE_ADDRESS_PORT;
		probe_report(p, 1);
	}
}

static void probe_on_map_read(evutil_socket_t fd, short what, void *arg)
{
	struct stunprobe *p = arg;

	(void)what;
	(void)fd;
	(void)stun_tx_read(&p->map_tx, NULL);
}

static void probe_on_filter_read(evutil_socket_t fd, short what, void *arg)
{
	struct stunprobe *p = arg;

	(void)what;
	(void)fd;
	(void)stun_tx_read(&p->filter_tx, &p->filter_from);
}

/* --- name lookups: the servers', and the keep-alive server's (stunkeep_http.c) --- */

/*
 * A lookup's link to its probe: a closed probe cuts it (libevent 2.1 reports
 * a cancel later, from the loop, when the probe is gone).
 */
struct probe_lookup {
	struct stunprobe *p; /* NULL once the probe closed */
	void (*done)(void *arg, const struct sockaddr_in *a, const char *why);
	void *arg;
	struct evdns_getaddrinfo_request *req; /* in flight at evdns, to cancel at close */
	struct event *later;		       /* a numeric host's answer, given from the loop */
	struct sockaddr_in addr;
	struct probe_lookup *next; /* on p->lookups */
};

static void lookup_forget(struct stunprobe *p, struct probe_lookup *l)
{
	for (struct probe_lookup **pp = &p->lookups; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			return;
		}
}

static void lookup_on_answer(int err, struct evutil_addrinfo *res, void *arg)
{
	struct probe_lookup *l = arg;
	struct sockaddr_in a;
	int ok = !err && res && res->ai_family == AF_INET;

	if (ok)
		memcpy(&a, res->ai_addr, sizeof(a));
	if (res)
		evutil_freeaddrinfo(res);
	if (l->p && err != EVUTIL_EAI_CANCEL) {
		lookup_forget(l->p, l);
		l->done(l->arg, ok ? &a : NULL, err ? evutil_gai_strerror(err) : "no IPv4 address");
	}
	free(l);
}

static void lookup_on_later(evutil_socket_t fd, short what, void *arg)
{
	struct probe_lookup *l = arg;

	(void)fd;
	(void)what;
	lookup_forget(l->p, l);
	event_free(l->later);
	l->done(l->arg, &l->addr, NULL);
	free(l);
}

void stunprobe_lookup(struct stunprobe *p, const char *host,
		      void (*done)(void *arg, const struct sockaddr_in *a, const char *why), void *arg)
{
	struct evdns_getaddrinfo_request *req;
	struct evutil_addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct probe_lookup *l = calloc(1, sizeof(*l));

	if (!l) {
		done(arg, NULL, "out of memory");
		return;
	}
	*l = (struct probe_lookup){ .p = p, .done = done, .arg = arg, .next = p->lookups };
	p->lookups = l;
	l->addr.sin_family = AF_INET;
	if (inet_pton(AF_INET, host, &l->addr.sin_addr) == 1) {
		if (!(l->later = evtimer_new(p->base, lookup_on_later, l))) {
			lookup_forget(p, l);
			free(l);
			done(arg, NULL, "out of memory");
			return;
		}
		stun_io_arm(l->later, 0);
		return;
	}
	if (!p->dns && !(p->dns = evdns_base_new(p->base, EVDNS_BASE_INITIALIZE_NAMESERVERS))) {
		lookup_forget(p, l);
		free(l);
		done(arg, NULL, "no name server (read /etc/resolv.conf)");
		return;
	}
	/* evdns may answer within the call (stunprobe.h says so): then l is gone, and req NULL. */
	if ((req = evdns_getaddrinfo(p->dns, host, NULL, &hints, lookup_on_answer, l)) != NULL)
		l->req = req;
}

/* "HOST[:PORT]" into s; the configuration checked its form. */
static void probe_parse(const char *text, struct probe_server *s)
{
	const char *colon = strrchr(text, ':');
	size_t len = colon ? (size_t)(colon - text) : strlen(text);
	struct in_addr a;

	if (len >= sizeof(s->host))
		len = sizeof(s->host) - 1;
	memcpy(s->host, text, len);
	s->host[len] = '\0';
	s->port = colon ? (uint16_t)atoi(colon + 1) : STUNPROBE_DEFAULT_PORT;
	s->addr.sin_family = AF_INET;
	s->addr.sin_port = htons(s->port);
	if (inet_pton(AF_INET, s->host, &a) == 1) {
		s->addr.sin_addr = a;
		s->numeric = 1;
	}
}

struct stunprobe *stunprobe_open(struct event_base *base, const char *ifname, const char *const *servers, size_t n,
				 stunprobe_done done, void *arg)
{
	struct stunprobe *p = calloc(1, sizeof(*p));
	int fd = -1;

	if (!p || !n || !(p->servers = calloc(n, sizeof(*p->servers))))
		goto nomem;
	p->base = base;
	snprintf(p->ifname, sizeof(p->ifname), "%s", ifname);
	p->n = n;
	p->done = done;
	p->arg = arg;
	p->map_fd = p->filter_fd = -1;
	p->retry_ms = STUNPROBE_RETRY_MS;
	for (size_t i = 0; i < n; i++)
		probe_parse(servers[i], &p->servers[i]);
	if ((fd = stun_io_socket(SOCK_DGRAM, ifname, 0, 0)) < 0) {
		log_error("stun: cannot open a socket on %s: %s", ifname, strerror(-fd));
		free(p->servers);
		free(p);
		return NULL;
	}
	p->map_fd = fd;
	if (!(p->map_ev = event_new(base, fd, EV_READ | EV_PERSIST, probe_on_map_read, p)) ||
	    !(p->next_ev = evtimer_new(base, probe_on_next, p)) ||
	    stun_tx_init(&p->map_tx, base, fd, probe_on_map_answer, p) < 0 ||
	    stun_tx_init(&p->filter_tx, base, -1, probe_on_filter_answer, p) < 0) {
		stunprobe_close(p);
		p = NULL;
		goto nomem;
	}
	event_add(p->map_ev, NULL);
	/* From the event loop, so that done never runs within stunprobe_open(). */
	stun_io_arm(p->next_ev, 0);
	return p;
nomem:
	if (p)
		free(p->servers);
	free(p);
	log_error("stun: out of memory");
	return NULL;
}

void stunprobe_close(struct stunprobe *p)
{
	if (!p)
		return;
	while (p->lookups) {
		struct probe_lookup *l = p->lookups;
		p->lookups = l->next;
		l->p = NULL;
		if (l->later) {
			event_free(l->later);
			free(l);
		} else if (l->req) {
			/* Its callback frees l, now or later from the loop. */
			evdns_getaddrinfo_cancel(l->req);
		}
	}
	if (p->dns)
		evdns_base_free(p->dns, 0);
	stun_tx_free(&p->map_tx);
	stun_tx_free(&p->filter_tx);
	if (p->map_ev)
		event_free(p->map_ev);
	if (p->filter_ev)
		event_free(p->filter_ev);
	if (p->next_ev)
		event_free(p->next_ev);
	if (p->map_fd >= 0)
		close(p->map_fd);
	if (p->filter_fd >= 0)
		close(p->filter_fd);
	free(p->servers);
	free(p);
}

void stunprobe_recheck(struct stunprobe *p)
{
	probe_start(p, 1);
}

int stunprobe_server(const struct stunprobe *p, struct sockaddr_in *to)
{
	/* While none answers, the last that did: keep-alives that stop would let every binding lapse. */
	if (!p->answered && !p->good.sin_port)
		return 0;
	*to = p->answered ? p->servers[p->cur].addr : p->good;
	return 1;
}

void stunprobe_server_failed(struct stunprobe *p)
{
	if (!p->answered || p->state != PROBE_IDLE)
		return;
	p->answered = 0;
	p->cur = (p->cur + 1) % p->n;
	probe_start(p, 1);
}
