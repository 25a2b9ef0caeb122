/*
 * upstream.c - the NAT-PMP client of the upstream gateway.
 *
 * Each local mapping the server keeps has a struct umap here, found by
 * (protocol, local port).  A umap is on at most one of two queues (urgent:
 * someone waits; background: renewals and deletes) or is the one request in
 * flight; between requests its timer waits for the next renewal or retry.
 * The address request is a umap of its own, with protocol 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "kernel/netif.h"
#include "wire/proto.h"
#include "outer/upstream.h"

TAILQ_HEAD(umap_queue, umap);

enum umap_state {
	UMAP_KEEP,   /* mapped, or to be, at the gateway */
	UMAP_DELETE, /* to be deleted there, then forgotten */
};

struct umap {
	struct upstream *u;
	TAILQ_ENTRY(umap) all;	 /* every mapping (not the address request) */
	TAILQ_ENTRY(umap) link;	 /* on *queue */
	struct umap_queue *queue; /* NULL: not queued */
	struct event *timer;	 /* next renewal or retry */
	enum umap_state state;
	uint8_t protocol;	 /* 0: the address request */
	uint16_t local_port;
	uint16_t suggested;
	uint16_t port;		 /* the gateway's, from its last grant */
	int64_t granted_until_ms; /* 0: no grant in force */
	int64_t renew_at_ms;
	int64_t until_ms;	 /* what the server wants */
	int sent;		 /* asked at least once: a delete is worth sending */
	int remapping;		 /* asked again after the gateway lost its state */
};

struct upstream {
	struct event_base *base;
	const struct outer_events *ev;
	struct sockaddr_in gateway;
	int fd;
	struct event *read_ev;
	int announce_fd; /* 224.0.0.1:5350 on the interface: the gateway's announcements; -1: none */
	struct event *announce_ev;
	struct event *retx_ev;
	struct umap_queue urgent, background;
	TAILQ_HEAD(, umap) all;
	struct umap *index[2][65536]; /* [0] UDP, [1] TCP, by local port */
	struct umap addr;
	struct umap *inflight;
	int tries;
	int background_turn; /* renewals go next, clients having had the last turn */
	int64_t hint_at_ms;  /* the last announcement acted on */
	uint32_t address;
	int epoch_known;
	uint32_t epoch;
	int64_t epoch_at_ms;
	size_t remapping; /* umaps still to answer after a reset */
	size_t remap_total;
	struct outer_stats stats;
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct umap **slot(struct upstream *u, uint8_t protocol, uint16_t port)
{
	return &u->index[protocol == IPPROTO_TCP][port];
}

static void arm(struct umap *m, int64_t at_ms)
{
	int64_t d = at_ms - now_ms();
	struct timeval tv;

	if (d < 0)
		d = 0;
	tv.tv_sec = d / 1000;
	tv.tv_usec = (d % 1000) * 1000;
	evtimer_add(m->timer, &tv);
}

static void unqueue(struct umap *m)
{
	if (m->queue)
		TAILQ_REMOVE(m->queue, m, link);
	m->queue = NULL;
}

static void pump(struct upstream *u);

/* Puts m on a queue unless it is in flight; an urgent need lifts it out of the background. */
static void enqueue(struct umap *m, int urgent)
{
	struct upstream *u = m->u;
	struct umap_queue *q = urgent ? &u->urgent : &u->background;

	evtimer_del(m->timer);
	if (u->inflight == m || m->queue == q || (m->queue == &u->urgent && !urgent))
		return;
	unqueue(m);
	TAILQ_INSERT_TAIL(q, m, link);
	m->queue = q;
	pump(u);
}

static void send_current(struct upstream *u)
{
	struct umap *m = u->inflight;
	uint8_t buf[PROTO_MAP_REQUEST_LEN] = { NATPMP_VERSION, NATPMP_OP_ADDRESS };
	size_t len = PROTO_ADDRESS_REQUEST_LEN;
	struct timeval tv;
	int64_t wait = (int64_t)UPSTREAM_FIRST_WAIT_MS << u->tries;

	if (m->protocol) {
		int64_t left = (m->until_ms - now_ms()) / 1000;
		uint32_t lifetime = m->state == UMAP_DELETE ? 0 : left < 1 ? 1 : left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
		len = proto_encode_map_request(buf, m->protocol, m->local_port, m->state == UMAP_DELETE ? 0 : m->suggested,
					       lifetime);
	}
	if (u->tries == 0)
		u->stats.requests++;
	u->tries++;
	m->sent = 1;
	/* A lost datagram or a route that is not there yet both come to the same: try again. */
	if (sendto(u->fd, buf, len, 0, (const struct sockaddr *)&u->gateway, sizeof(u->gateway)) < 0)
		log_debug("upstream: cannot send to the gateway: %s", strerror(errno));
	tv.tv_sec = wait / 1000;
	tv.tv_usec = (wait % 1000) * 1000;
	evtimer_add(u->retx_ev, &tv);
}

/* Sends the request in flight from its first try: it is new, or what it asks for changed. */
static void send_afresh(struct upstream *u)
{
	u->tries = 0;
	send_current(u);
}

/* m is no longer the request in flight, if it was. */
static void land(struct upstream *u, struct umap *m)
{
	if (u->inflight != m)
		return;
	u->inflight = NULL;
	evtimer_del(u->retx_ev);
}

/*
 * Starts the next request when none is in flight: urgent first, but while
 * both queues hold requests they take turns, so that a stream of new
 * mappings cannot make granted ones lapse.
 */
static void pump(struct upstream *u)
{
	struct umap *urgent = TAILQ_FIRST(&u->urgent), *background = TAILQ_FIRST(&u->background), *m;

	if (u->inflight || (!urgent && !background))
		return;
	m = urgent && (!background || !u->background_turn) ? urgent : background;
	u->background_turn = m == urgent && background;
	unqueue(m);
	u->inflight = m;
	send_afresh(u);
}

static void umap_free(struct umap *m)
{
	struct upstream *u = m->u;

	unqueue(m);
	land(u, m);
	TAILQ_REMOVE(&u->all, m, all);
	*slot(u, m->protocol, m->local_port) = NULL;
	event_free(m->timer);
	free(m);
	pump(u);
}

/* One mapping asked for again after a reset has its answer; after the last, the server hears. */
static void remap_count_down(struct upstream *u)
{
	if (--u->remapping == 0 && u->ev->remapped)
		u->ev->remapped(u->ev->arg, u->remap_total);
}

static void remap_done(struct umap *m)
{
	if (!m->remapping)
		return;
	m->remapping = 0;
	remap_count_down(m->u);
}

static void remap_all(struct upstream *u, const char *why);

/* The gateway's address as it last said; a change moves every mapping there, asked for again. */
static void set_address(struct upstream *u, uint32_t address)
{
	uint32_t was = u->address;
	char text[INET_ADDRSTRLEN];

	/* Every answer, so that one who changes the gateway's address can see it was heard. */
	log_debug("upstream: the gateway's external address is %s", netif_addr_str(address, text));
	if (address == was)
		return;
	u->address = address;
	if (was && address)
		remap_all(u, "changed its external address");
	if (u->ev->address)
		u->ev->address(u->ev->arg, address);
}

/*
 * The end of a request: the gateway's answer r, or NULL when it stayed
 * silent through every retransmission.  The server hears of it last, since
 * it may drop m or start other requests.
 */
static void finish(struct upstream *u, struct umap *m, const struct proto_reply *r)
{
	int64_t now = now_ms();
	uint16_t result = r ? r->result : NATPMP_RESULT_NETWORK_FAILURE;
	uint16_t port;
	int remapping;

	land(u, m);
	if (!m->protocol) {
		int known = r ? result == NATPMP_RESULT_SUCCESS : u->address != 0;
		arm(m, now + (known ? UPSTREAM_ADDRESS_REFRESH_MS : UPSTREAM_RETRY_MS));
		pump(u);
		/* An error answer means the gateway has no address; silence says nothing about it. */
		if (r)
			set_address(u, result == NATPMP_RESULT_SUCCESS ? r->address : 0);
		return;
	}
	if (m->state == UMAP_DELETE) {
		umap_free(m);
		return;
	}
	if (result == NATPMP_RESULT_SUCCESS) {
		m->port = r->external_port;
		m->granted_until_ms = now + (int64_t)r->lifetime * 1000;
		m->renew_at_ms = now + (int64_t)r->lifetime * 500;
		if (m->until_ms > m->granted_until_ms)
			arm(m, m->renew_at_ms);
	} else {
		arm(m, now + UPSTREAM_RETRY_MS);
	}
	pump(u);
	remapping = m->remapping;
	m->remapping = 0;
	port = result == NATPMP_RESULT_SUCCESS ? m->port : 0;
	u->ev->mapped(u->ev->arg, m->protocol, m->local_port, result, port);
	if (remapping)
		remap_count_down(u);
}

/* The gateway stayed silent through every retransmission: it is down, and so is everything queued. */
static void on_retransmit(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	struct umap_queue failed;
	struct umap *m = u->inflight;

	(void)fd;
	(void)what;
	if (!m)
		return;
	if (u->tries < UPSTREAM_TRIES) {
		send_current(u);
		return;
	}
	u->stats.timeouts++;
	log_warnx("upstream: the gateway did not answer within %d ms", UPSTREAM_FIRST_WAIT_MS * ((1 << UPSTREAM_TRIES) - 1));
	/* Collected first: the callbacks may queue new requests, which get a fresh chance. */
	TAILQ_INIT(&failed);
	TAILQ_CONCAT(&failed, &u->urgent, link);
	TAILQ_CONCAT(&failed, &u->background, link);
	TAILQ_FOREACH(m, &failed, link)
		m->queue = &failed;
	finish(u, u->inflight, NULL);
	while ((m = TAILQ_FIRST(&failed))) {
		unqueue(m);
		if (m->state == UMAP_DELETE) {
			umap_free(m);
			continue;
		}
		finish(u, m, NULL);
	}
}

/* Every mapping is asked for again, now, suggesting its port; the server hears when all have answered. */
static void remap_all(struct upstream *u, const char *why)
{
	struct umap *m;
	size_t n = 0;

	TAILQ_FOREACH(m, &u->all, all) {
		if (m->state != UMAP_KEEP)
			continue;
		m->granted_until_ms = 0;
		if (m->port)
			m->suggested = m->port;
		if (!m->remapping) {
			m->remapping = 1;
			u->remapping++;
		}
		n++;
	}
	u->remap_total = n;
	log_warnx("upstream: the gateway %s; asking again for %zu mapping(s)", why, n);
	/* Queued after the loop: enqueue() may start a request, and its answer could not be counted yet. */
	TAILQ_FOREACH(m, &u->all, all)
		if (m->remapping && u->inflight != m)
			enqueue(m, 1);
	enqueue(&u->addr, 1);
	if (u->remapping == 0 && u->ev->remapped)
		u->ev->remapped(u->ev->arg, 0);
}

/* RFC 6886 3.6 and 3.7: an epoch that went back means the gateway lost its mappings. */
static void heard(struct upstream *u, const struct proto_reply *r, int64_t now)
{
	if (u->epoch_known && proto_epoch_lost(u->epoch, now - u->epoch_at_ms, r->epoch)) {
		u->stats.resets++;
		remap_all(u, "lost its mappings (its epoch went back)");
	}
	u->epoch_known = 1;
	u->epoch = r->epoch;
	u->epoch_at_ms = now;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct sockaddr_in from;
	struct proto_reply r;
	struct umap *m;

	(void)what;
	for (int i = 0; i < 64; i++) {
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		int64_t now = now_ms();

		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_debug("upstream: receive: %s", strerror(errno));
			return;
		}
		/*
		 * RFC 6886 3.1: only the gateway's own answers count, and of those
		 * only the answer to the request in flight: anything else could be
		 * forged by any host on the upstream link.
		 */
		if (from.sin_addr.s_addr != u->gateway.sin_addr.s_addr || from.sin_port != u->gateway.sin_port ||
		    proto_decode_reply(buf, (size_t)n, &r) < 0 || !(m = u->inflight))
			continue;
		/* A late answer to an earlier request, or to what m asked before it changed, is no answer. */
		if (r.opcode != (m->protocol ? proto_protocol_to_opcode(m->protocol) : NATPMP_OP_ADDRESS) ||
		    (m->protocol && r.internal_port && r.internal_port != m->local_port))
			continue;
		if (m->protocol && r.result == NATPMP_RESULT_SUCCESS &&
		    (m->state == UMAP_DELETE) != (r.lifetime == 0 || r.external_port == 0))
			continue;
		heard(u, &r, now);
		finish(u, m, &r);
	}
}

/*
 * RFC 6886 3.2.1: a gateway announces its address when it starts and when
 * the address changes.  Anyone on the link can send to 224.0.0.1, so an
 * announcement is only a reason to ask the gateway (at most once a second);
 * its answer is what counts.  A restart or a new address is thus dealt with
 * at once rather than at the next request.
 */
static void on_announce(evutil_socket_t fd, short what, void *arg)
{
	struct upstream *u = arg;
	uint8_t buf[PROTO_MAX_DATAGRAM];
	struct sockaddr_in from;
	struct proto_reply r;

	(void)what;
	for (int i = 0; i < 16; i++) {
		socklen_t fromlen = sizeof(from);
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);

		if (n < 0)
			return;
		if (from.sin_addr.s_addr != u->gateway.sin_addr.s_addr || from.sin_port != u->gateway.sin_port ||
		    proto_decode_reply(buf, (size_t)n, &r) < 0 || r.opcode != NATPMP_OP_ADDRESS)
			continue;
		if (now_ms() - u->hint_at_ms < 1000)
			continue;
		u->hint_at_ms = now_ms();
		log_debug("upstream: the gateway announced its address: asking it");
		enqueue(&u->addr, 1);
	}
}

/* The announcement socket; without one, news waits for the next request (a minute at most). */
static void open_announce(struct upstream *u, const char *ifname)
{
	struct sockaddr_in any = { .sin_family = AF_INET, .sin_port = htons(NATPMP_CLIENT_PORT) };
	struct ip_mreqn mr = { .imr_multiaddr.s_addr = htonl(0xe0000001), .imr_ifindex = (int)if_nametoindex(ifname) };
	int one = 1;

	u->announce_fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->announce_fd < 0 || setsockopt(u->announce_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(u->announce_fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0 ||
	    bind(u->announce_fd, (const struct sockaddr *)&any, sizeof(any)) < 0 ||
	    setsockopt(u->announce_fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
	    !(u->announce_ev = event_new(u->base, u->announce_fd, EV_READ | EV_PERSIST, on_announce, u)) ||
	    event_add(u->announce_ev, NULL) < 0) {
		log_warnx("upstream: cannot listen for the gateway's announcements on %s (%s); its restarts and new "
			  "addresses are noticed at the next request instead",
			  ifname, strerror(errno));
		if (u->announce_ev)
			event_free(u->announce_ev);
		u->announce_ev = NULL;
		if (u->announce_fd >= 0)
			close(u->announce_fd);
		u->announce_fd = -1;
	}
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct umap *m = arg;

	(void)fd;
	(void)what;
	/* Renewals wait behind requests someone waits for; a mapping with no grant in force does not. */
	enqueue(m, !m->protocol || m->granted_until_ms <= now_ms());
}

struct upstream *upstream_open(struct event_base *base, uint32_t gateway, const char *ifname,
			       const struct outer_events *ev)
{
	struct upstream *u = calloc(1, sizeof(*u));
	char addr[INET_ADDRSTRLEN];

	if (!u) {
		log_error("upstream: out of memory");
		return NULL;
	}
	u->base = base;
	u->ev = ev;
	u->gateway = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(NATPMP_SERVER_PORT),
					   .sin_addr.s_addr = gateway };
	TAILQ_INIT(&u->urgent);
	TAILQ_INIT(&u->background);
	TAILQ_INIT(&u->all);
	u->addr.u = u;
	u->announce_fd = -1;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (u->fd < 0) {
		log_error("upstream: cannot open a socket: %s", strerror(errno));
		goto fail;
	}
	/* Out of the interface facing the gateway, whatever the routing table says about it. */
	if (setsockopt(u->fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0) {
		log_error("upstream: cannot use interface %s to reach gateway %s: %s", ifname,
			  netif_addr_str(gateway, addr), errno == ENODEV ? "no such interface" : strerror(errno));
		goto fail;
	}
	if (!(u->read_ev = event_new(base, u->fd, EV_READ | EV_PERSIST, on_readable, u)) ||
	    !(u->retx_ev = evtimer_new(base, on_retransmit, u)) || !(u->addr.timer = evtimer_new(base, on_timer, &u->addr)) ||
	    event_add(u->read_ev, NULL) < 0) {
		log_error("upstream: out of memory");
		goto fail;
	}
	open_announce(u, ifname);
	log_info("upstream mode: asking gateway %s through %s", netif_addr_str(gateway, addr), ifname);
	enqueue(&u->addr, 1);
	return u;
fail:
	upstream_close(u);
	return NULL;
}

void upstream_close(struct upstream *u)
{
	struct umap *m;

	if (!u)
		return;
	while ((m = TAILQ_FIRST(&u->all))) {
		TAILQ_REMOVE(&u->all, m, all);
		event_free(m->timer);
		free(m);
	}
	if (u->addr.timer)
		event_free(u->addr.timer);
	if (u->retx_ev)
		event_free(u->retx_ev);
	if (u->read_ev)
		event_free(u->read_ev);
	if (u->announce_ev)
		event_free(u->announce_ev);
	if (u->announce_fd >= 0)
		close(u->announce_fd);
	if (u->fd >= 0)
		close(u->fd);
	free(u);
}

int upstream_keep(struct upstream *u, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s)
{
	struct umap **sp = slot(u, protocol, local_port), *m = *sp;
	int64_t now = now_ms();

	if (!m) {
		if (!(m = calloc(1, sizeof(*m))) || !(m->timer = evtimer_new(u->base, on_timer, m))) {
			free(m);
			return -ENOMEM;
		}
		m->u = u;
		m->protocol = protocol;
		m->local_port = local_port;
		TAILQ_INSERT_TAIL(&u->all, m, all);
		*sp = m;
	}
	if (m->state == UMAP_DELETE) {
		/* The gateway may still map the port to us: asking again for it is all a delete would undo. */
		m->state = UMAP_KEEP;
		if (u->inflight == m)
			send_afresh(u);
	}
	m->until_ms = until_s * 1000;
	if (suggested)
		m->suggested = suggested;
	if (m->granted_until_ms > now) {
		/* Granted: a renewal is due at half the grant, if the grant ends before the server's wish. */
		if (m->until_ms > m->granted_until_ms && !m->queue && u->inflight != m && !evtimer_pending(m->timer, NULL))
			arm(m, m->renew_at_ms);
		return 0;
	}
	enqueue(m, 1);
	return 0;
}

void upstream_drop(struct upstream *u, uint8_t protocol, uint16_t local_port)
{
	struct umap *m = *slot(u, protocol, local_port);

	if (!m || m->state == UMAP_DELETE)
		return;
	remap_done(m);
	evtimer_del(m->timer);
	m->state = UMAP_DELETE;
	m->port = 0;
	m->granted_until_ms = 0;
	/* Never asked for: nothing at the gateway to delete. */
	if (!m->sent) {
		umap_free(m);
		return;
	}
	if (u->inflight == m) {
		send_afresh(u);
		return;
	}
	enqueue(m, 0);
}

uint16_t upstream_granted(const struct upstream *u, uint8_t protocol, uint16_t local_port)
{
	const struct umap *m = u->index[protocol == IPPROTO_TCP][local_port];

	return m && m->state == UMAP_KEEP && m->granted_until_ms > now_ms() ? m->port : 0;
}

uint32_t upstream_address(const struct upstream *u)
{
	return u->address;
}

size_t upstream_remapping(const struct upstream *u)
{
	return u->remapping;
}

const struct outer_stats *upstream_stats(const struct upstream *u)
{
	return &u->stats;
}
