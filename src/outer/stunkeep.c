/*
 * stunkeep.c - STUN mode: bindings through a full-cone outer NAT, opened
 * and kept from the router's local ports, their public ports learnt by
 * STUN.
 *
 * Each local mapping has a struct sbind, found by (protocol, local port).
 * Its one timer does everything in turn: the next keep-alive, the deadline
 * of a TCP connection or answer, and a failure to report from the event
 * loop (outer_events must never be called from within an outer_* call).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/log.h"
#include "kernel/netif.h"
#include "outer/stunkeep.h"
#include "stun_io.h"
#include "stunkeep_impl.h"
#include "stunprobe.h"

static struct sbind **slot(const struct stunkeep *k, uint8_t protocol, uint16_t port)
{
	return (struct sbind **)&k->index[protocol == IPPROTO_TCP][port];
}

static const char *proto_name(uint8_t protocol)
{
	return protocol == IPPROTO_TCP ? "TCP" : "UDP";
}

static void set_address(struct stunkeep *k, uint32_t address)
{
	char text[INET_ADDRSTRLEN];

	if (!address || address == k->address)
		return;
	log_info("stun: the outer NAT's public address is %s", netif_addr_str(address, text));
	k->address = address;
	if (k->ev->address)
		k->ev->address(k->ev->arg, address);
}

/* The last step of a handler: the callee may drop b. */
static void report(struct sbind *b, uint16_t result, uint16_t port)
{
	struct stunkeep *k = b->k;

	k->ev->mapped(k->ev->arg, b->protocol, b->local_port, result, port);
}

static void close_sockets(struct sbind *b);

/*
 * A binding never granted failed: result 3.  A new mapping is then dropped;
 * one the server had granted before (restored from its state file) stays,
 * and is tried again: at the next keep-alive, or, when the outer NAT does
 * not forward, once a probe finds that it does.
 */
static void report_failure(struct sbind *b)
{
	struct stunkeep *k = b->k;
	uint8_t protocol = b->protocol;
	uint16_t local_port = b->local_port;

	b->failing = 0;
	/* Told once: a retry that fails again is news only to a client that asked since. */
	if (!b->told || b->wanted) {
		b->wanted = 0;
		report(b, 3, 0);
		if (!(b = *slot(k, protocol, local_port)))
			return;
	}
	b->told = 1;
	b->waiting = 1;
	close_sockets(b);
	if (k->forwarding)
		stun_io_arm(b->timer, k->keepalive_ms);
}

/* b fails from the event loop: result 3 (never granted), told once its timer fires. */
static void fail_soon(struct sbind *b, const char *why)
{
	b->failing = 1;
	b->why = why;
	stun_io_arm(b->timer, 0);
}

static void tcp_close(struct sbind *b);

/* Everything b has open: its STUN socket or connection, its keep-alive connection, its transaction. */
static void close_sockets(struct sbind *b)
{
	stun_tx_cancel(&b->tx);
	sbind_http_close(b);
	if (b->protocol == IPPROTO_TCP) {
		tcp_close(b);
		return;
	}
	if (b->io)
		event_free(b->io);
	b->io = NULL;
	if (b->fd >= 0)
		close(b->fd);
	b->fd = -1;
}

static void silent(struct sbind *b, const char *why, int server);

/* An answer from the STUN server for b: its public address and port. */
static void learnt(struct sbind *b, const struct stun_response *r)
{
	struct stunkeep *k = b->k;
	struct sockaddr_in x;
	uint16_t was = b->port;

	if (!r->success || !r->has_mapped || stun_io_sockaddr(&r->mapped, &x) < 0) {
		silent(b, r->success ? "the STUN server gave no IPv4 mapped address" : "the STUN server answered an error", 0);
		return;
	}
	if (b->silent)
		log_info("stun: keep-alives of %s local port %u are answered again", proto_name(b->protocol),
			 b->local_port);
	b->silent = 0;
	stun_io_arm(b->timer, k->keepalive_ms);
	set_address(k, x.sin_addr.s_addr);
	b->port = ntohs(x.sin_port);
	if (b->granted && b->port == was)
		return;
	if (b->granted) {
		k->stats.resets++;
		log_warnx("stun: the outer NAT moved %s local port %u from public port %u to %u (it restarted or "
			  "dropped the binding)", proto_name(b->protocol), b->local_port, was, b->port);
	}
	b->granted = 1;
	report(b, 0, b->port);
}

/*
 * No answer: a binding never granted fails, a granted one keeps its port and
 * tries again.  server: the STUN server stayed silent (not a local failure,
 * nor a refused TCP connection, which many servers only serve over UDP):
 * the next probe starts from the next server.
 */
static void silent(struct sbind *b, const char *why, int server)
{
	struct stunkeep *k = b->k;

	k->stats.timeouts++;
	if (server)
		stunprobe_server_failed(k->probe);
	if (!b->granted) {
		log_debug("stun: %s local port %u fails: %s", proto_name(b->protocol), b->local_port, why);
		report_failure(b);
		return;
	}
	if (!b->silent++)
		log_warnx("stun: keep-alive of %s local port %u (public port %u): %s; trying again every %u s",
			  proto_name(b->protocol), b->local_port, b->port, why, k->keepalive_ms / 1000);
	stun_io_arm(b->timer, k->keepalive_ms);
}

/* --- UDP --- */

static void udp_on_answer(struct stun_tx *tx, const struct stun_response *r, void *arg)
{
	struct sbind *b = arg;

	(void)tx;
	if (r)
		learnt(b, r);
	else
		silent(b, "the STUN server did not answer", 1);
}

static void udp_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct sbind *b = arg;

	(void)fd;
	(void)what;
	/* Only the server's answers come here: what peers send to the port is forwarded before it. */
	(void)stun_tx_read(&b->tx, NULL);
}

static void udp_ask(struct sbind *b)
{
	struct sockaddr_in to;

	if (!stunprobe_server(b->k->probe, &to)) {
		silent(b, "no STUN server answers", 0);
		return;
	}
	stun_tx_start(&b->tx, &to, 0);
}

static int udp_open(struct sbind *b)
{
	int fd = stun_io_socket(SOCK_DGRAM, b->k->ifname, b->local_port, 0);

	if (fd < 0)
		return fd;
	b->fd = fd;
	b->tx.fd = fd;
	if (!(b->io = event_new(b->k->base, fd, EV_READ | EV_PERSIST, udp_on_read, b)))
		return -ENOMEM;
	event_add(b->io, NULL);
	return 0;
}

/* --- TCP --- */

/*
 * A TCP binding's public port is learnt over a short connection from the
 * local port to the STUN server: connect, one Binding request, its answer,
 * then a reset (no TIME_WAIT to hold the port; STUN servers close such
 * connections within seconds anyway: coturn after 3 s).  Without a
 * keep-alive server, that is done again at each keep-alive, which both
 * keeps the binding and shows a move.  With one, a second connection from
 * the port stays open to it, sent a HEAD request at each keep-alive: a
 * binding that moved breaks it (the server meets another port and resets),
 * and only then is the port learnt again.
 */

static void tcp_on_read(evutil_socket_t fd, short what, void *arg);

static void tcp_close(struct sbind *b)
{
	if (b->io)
		event_free(b->io);
	b->io = NULL;
	stun_io_abort(b->fd);
	b->fd = -1;
	b->connecting = b->asking = 0;
	b->deadline_ms = 0;
	b->in_len = 0;
}

/* Learning failed: a binding never granted fails; a granted one keeps its port and tries at the next keep-alive. */
static void tcp_failed(struct sbind *b, const char *why)
{
	tcp_close(b);
	silent(b, why, 0);
}

static void tcp_ask(struct sbind *b)
{
	uint8_t buf[STUN_MAX_REQUEST];
	size_t len;

	stun_io_txid(b->txid);
	len = stun_encode_binding(buf, b->txid, 0);
	b->k->stats.requests++;
	if (send(b->fd, buf, len, MSG_NOSIGNAL) != (ssize_t)len) {
		tcp_failed(b, "the connection to the STUN server could not be written to");
		return;
	}
	b->asking = 1;
	b->deadline_ms = stun_io_now_ms() + STUN_IO_GIVE_UP_MS;
	stun_io_arm(b->timer, STUN_IO_GIVE_UP_MS);
}

static void tcp_on_connected(evutil_socket_t fd, short what, void *arg)
{
	struct sbind *b = arg;
	int err = 0;
	socklen_t len = sizeof(err);

	(void)what;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err) {
		tcp_failed(b, err == ECONNREFUSED ? "the STUN server refused the connection"
						  : "no connection to the STUN server could be made");
		return;
	}
	b->connecting = 0;
	event_free(b->io);
	if (!(b->io = event_new(b->k->base, fd, EV_READ | EV_PERSIST, tcp_on_read, b))) {
		tcp_failed(b, "out of memory");
		return;
	}
	event_add(b->io, NULL);
	tcp_ask(b);
}

/* RFC 8489 6.2.2: over TCP, messages follow each other; each header says its length. */
static void tcp_on_read(evutil_socket_t fd, short what, void *arg)
{
	struct sbind *b = arg;
	struct stun_response r;
	ssize_t n;
	size_t len;

	(void)what;
	n = recv(fd, b->in + b->in_len, sizeof(b->in) - b->in_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		tcp_failed(b, n == 0 ? "the STUN server closed the connection before answering"
				     : "the STUN server reset the connection before answering");
		return;
	}
	b->in_len += (size_t)n;
	while (b->in_len >= STUN_HEADER_LEN) {
		len = STUN_HEADER_LEN + ((size_t)b->in[2] << 8 | b->in[3]);
		if (len > sizeof(b->in)) {
			tcp_failed(b, "the STUN server sent a message too long for a Binding answer");
			return;
		}
		if (b->in_len < len)
			return;
		if (stun_decode_response(b->in, len, b->txid, &r) == STUN_ANSWER) {
			tcp_close(b);
			/* The binding lives on in the keep-alive connection, made now if it is not there. */
			sbind_http_keepalive(b);
			learnt(b, &r);
			return;
		}
		memmove(b->in, b->in + len, b->in_len - len);
		b->in_len -= len;
	}
}

/* Learns the public port: a connection from the local port to the STUN server. */
void sbind_tcp_learn(struct sbind *b)
{
	struct sockaddr_in to;
	int fd;

	tcp_close(b);
	if (!stunprobe_server(b->k->probe, &to)) {
		silent(b, "no STUN server answers", 0);
		return;
	}
	/* Reused: the keep-alive connection leaves from the same port. */
	if ((fd = stun_io_socket(SOCK_STREAM, b->k->ifname, b->local_port, 1)) < 0) {
		tcp_failed(b, "the local port cannot be bound");
		return;
	}
	b->fd = fd;
	if ((connect(fd, (const struct sockaddr *)&to, sizeof(to)) < 0 && errno != EINPROGRESS) ||
	    !(b->io = event_new(b->k->base, fd, EV_WRITE, tcp_on_connected, b))) {
		tcp_failed(b, "no connection to the STUN server could be made");
		return;
	}
	event_add(b->io, NULL);
	b->connecting = 1;
	b->deadline_ms = stun_io_now_ms() + STUN_IO_GIVE_UP_MS;
	stun_io_arm(b->timer, STUN_IO_GIVE_UP_MS);
}

/* --- a binding's life --- */

static void start(struct sbind *b)
{
	struct stunkeep *k = b->k;
	int r;

	b->waiting = 0;
	if (!k->forwarding) {
		fail_soon(b, k->why_not);
		return;
	}
	if (b->protocol != IPPROTO_TCP && (r = udp_open(b)) < 0) {
		log_warnx("stun: cannot bind UDP local port %u on %s: %s", b->local_port, k->ifname, strerror(-r));
		close_sockets(b);
		fail_soon(b, "the local port cannot be bound");
		return;
	}
	/* The first request from the timer: a failure must not reach the server within outer_keep(). */
	stun_io_arm(b->timer, 0);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct sbind *b = arg;
	struct stunkeep *k = b->k;

	(void)fd;
	(void)what;
	if (b->failing) {
		log_debug("stun: %s local port %u fails: %s", proto_name(b->protocol), b->local_port, b->why);
		report_failure(b);
		return;
	}
	if (b->waiting) {
		if (k->probed && k->forwarding)
			start(b);
		return;
	}
	if (b->protocol != IPPROTO_TCP) {
		udp_ask(b);
		return;
	}
	if (b->deadline_ms) {
		/* libevent's clock may run a little ahead of CLOCK_MONOTONIC: wait out what is left. */
		int64_t left = b->deadline_ms - stun_io_now_ms();
		if (left > 0) {
			stun_io_arm(b->timer, left);
			return;
		}
		tcp_failed(b, b->connecting ? "no connection to the STUN server was made in time"
					    : "the STUN server did not answer in time");
		return;
	}
	/* A kept connection holds the binding; without one, the STUN connection each time does. */
	if (b->granted && b->k->http.sin_port && b->http_fd >= 0) {
		sbind_http_keepalive(b);
		stun_io_arm(b->timer, b->k->keepalive_ms);
		return;
	}
	sbind_tcp_learn(b);
}

static void sbind_free(struct sbind *b)
{
	struct stunkeep *k = b->k;

	close_sockets(b);
	stun_tx_free(&b->tx);
	if (b->timer)
		event_free(b->timer);
	TAILQ_REMOVE(&k->all, b, all);
	*slot(k, b->protocol, b->local_port) = NULL;
	free(b);
}

int stunkeep_keep(struct stunkeep *k, uint8_t protocol, uint16_t local_port, int64_t until_s)
{
	struct sbind *b = *slot(k, protocol, local_port);

	(void)until_s;
	/* Kept until dropped: the server drops it when the mapping ends. */
	if (b) {
		/* One that failed: a client waits for its answer now, not at the next try. */
		if (b->told && b->waiting) {
			b->wanted = 1;
			if (k->forwarding)
				stun_io_arm(b->timer, 0);
			else
				fail_soon(b, k->why_not);
		}
		return 0;
	}
	if (!(b = calloc(1, sizeof(*b))))
		return -ENOMEM;
	b->k = k;
	b->protocol = protocol;
	b->local_port = local_port;
	b->fd = b->http_fd = -1;
	if (!(b->timer = evtimer_new(k->base, on_timer, b)) || stun_tx_init(&b->tx, k->base, -1, udp_on_answer, b) < 0) {
		if (b->timer)
			event_free(b->timer);
		free(b);
		return -ENOMEM;
	}
	b->tx.requests = &k->stats.requests;
	TAILQ_INSERT_TAIL(&k->all, b, all);
	*slot(k, protocol, local_port) = b;
	if (!k->probed) {
		b->waiting = 1;
		return 0;
	}
	start(b);
	return 0;
}

void stunkeep_drop(struct stunkeep *k, uint8_t protocol, uint16_t local_port)
{
	struct sbind *b = *slot(k, protocol, local_port);

	if (b) {
		log_debug("stun: closing the binding of %s local port %u", proto_name(protocol), local_port);
		sbind_free(b);
	}
}

uint16_t stunkeep_granted(const struct stunkeep *k, uint8_t protocol, uint16_t local_port)
{
	const struct sbind *b = *slot(k, protocol, local_port);

	return b && b->granted ? b->port : 0;
}

uint32_t stunkeep_address(const struct stunkeep *k)
{
	return k->address;
}

const struct outer_stats *stunkeep_stats(const struct stunkeep *k)
{
	return &k->stats;
}

void stunkeep_recheck(struct stunkeep *k)
{
	stunprobe_recheck(k->probe);
}

bool stunkeep_owns(const struct stunkeep *k, uint8_t protocol, uint16_t port)
{
	const struct sbind *b = *slot(k, protocol, port);

	return b && b->fd >= 0;
}

void stunkeep_status(const struct stunkeep *k, struct outer_status *st)
{
	*st = (struct outer_status){
		.kind = "stun",
		.mapping = stunprobe_kind_name(k->mapping),
		.filtering = stunprobe_kind_name(k->filtering),
		.forwarding = k->forwarding,
		.why_not = k->forwarding ? NULL : k->why_not,
	};
}

/* Whether peers can reach a port the NAT's behaviour gives: set k->forwarding and say why not. */
static void judge(struct stunkeep *k)
{
	bool was = k->forwarding;

	if (k->mapping == STUNPROBE_ADDRESS || k->mapping == STUNPROBE_ADDRESS_PORT)
		snprintf(k->why_not, sizeof(k->why_not),
			 "the outer NAT's mapping is %s (symmetric NAT): each peer would meet another public port "
			 "than the one STUN reports", stunprobe_kind_name(k->mapping));
	else if (k->filtering == STUNPROBE_ADDRESS || k->filtering == STUNPROBE_ADDRESS_PORT)
		snprintf(k->why_not, sizeof(k->why_not),
			 "the outer NAT's filtering is %s: it lets in only peers the router has sent to first",
			 stunprobe_kind_name(k->filtering));
	else
		k->why_not[0] = '\0';
	k->forwarding = !k->why_not[0] || k->allow_filtered;
	if (!k->why_not[0])
		return;
	if (k->allow_filtered)
		log_warnx("stun: %s; mapping through it anyway (--stun-allow-filtered)", k->why_not);
	else if (was)
		log_warnx("stun: %s: map requests fail with result 3 (PCP NETWORK_FAILURE); "
			  "--stun-allow-filtered maps through it anyway", k->why_not);
}

static void on_probe(void *arg, const struct stunprobe_result *r)
{
	struct stunkeep *k = arg;
	struct sbind *b, *next;
	uint32_t was = k->address;

	k->probed = 1;
	if (r->discovered) {
		if (r->mapping != k->mapping || r->filtering != k->filtering || !r->nat)
			log_info("stun: %s; its mapping is %s, its filtering %s",
				 r->nat ? "a NAT stands between the router and the STUN server"
					: "no NAT stands between the router and the STUN server",
				 stunprobe_kind_name(r->mapping), stunprobe_kind_name(r->filtering));
		k->mapping = r->mapping;
		k->filtering = r->filtering;
		judge(k);
	}
	set_address(k, r->address);
	for (b = TAILQ_FIRST(&k->all); b; b = next) {
		next = TAILQ_NEXT(b, all);
		/* A failure is told once: one already told waits for the outer NAT to forward. */
		if (b->waiting && (k->forwarding || !b->told))
			start(b);
		/* A new public address moved every binding: learn each port again now (TCP by a new connection). */
		else if (was && k->address != was && !b->failing && !b->connecting && !b->asking) {
			if (b->protocol == IPPROTO_TCP)
				sbind_http_close(b);
			stun_io_arm(b->timer, 0);
		}
	}
	/* A verdict that stops mappings is looked at again at each refresh: two lost answers may have made it. */
	if (!r->discovered && r->address && !k->forwarding)
		stunprobe_recheck(k->probe);
}

struct stunkeep *stunkeep_open(struct event_base *base, const struct outer_stun_config *cfg,
			       const struct outer_events *ev)
{
	struct stunkeep *k = calloc(1, sizeof(*k));

	if (!k) {
		log_error("stun: out of memory");
		return NULL;
	}
	k->base = base;
	k->ev = ev;
	snprintf(k->ifname, sizeof(k->ifname), "%s", cfg->ifname);
	k->keepalive_ms = cfg->keepalive_s * 1000;
	k->allow_filtered = cfg->allow_filtered;
	k->forwarding = true;
	TAILQ_INIT(&k->all);
	if (cfg->keepalive_server) {
		const char *colon = strrchr(cfg->keepalive_server, ':');
		size_t len = colon ? (size_t)(colon - cfg->keepalive_server) : strlen(cfg->keepalive_server);
		snprintf(k->http_host, sizeof(k->http_host), "%.*s", (int)len, cfg->keepalive_server);
		k->http_port = colon ? (uint16_t)atoi(colon + 1) : SBIND_HTTP_PORT;
	}
	if (!k->http_port)
		log_info("stun: TCP bindings are held by a new STUN connection every %u s; behind a carrier NAT that "
			 "forgets a TCP mapping once its connection closes, give --stun-keepalive-server",
			 cfg->keepalive_s);
	if (!(k->probe = stunprobe_open(base, cfg->ifname, cfg->servers, cfg->n_servers, on_probe, k)) ||
	    !(k->http_lookup_ev = evtimer_new(base, stunkeep_http_lookup, k))) {
		if (k->probe)
			stunprobe_close(k->probe);
		free(k);
		return NULL;
	}
	/* Last: a name evdns knows at once is answered within the call. */
	if (k->http_port)
		stun_io_arm(k->http_lookup_ev, 0);
	return k;
}

void stunkeep_close(struct stunkeep *k)
{
	struct sbind *b;

	if (!k)
		return;
	while ((b = TAILQ_FIRST(&k->all)))
		sbind_free(b);
	event_free(k->http_lookup_ev);
	stunprobe_close(k->probe);
	free(k);
}
