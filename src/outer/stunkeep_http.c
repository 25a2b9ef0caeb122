/*
 * stunkeep_http.c - STUN mode's TCP keep-alive connections, natmap's way:
 * from each TCP binding's local port, a connection to an HTTP server that
 * stays open and is sent a HEAD request at each keep-alive; and the
 * server's address, by name or number.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "stunkeep_impl.h"

/* --- TCP keep-alive connection to the HTTP server (natmap's -k/-h) --- */

void sbind_http_close(struct sbind *b)
{
	if (b->http_io)
		event_free(b->http_io);
	b->http_io = NULL;
	stun_io_abort(b->http_fd);
	b->http_fd = -1;
	b->http_connecting = 0;
}

static void http_send(struct sbind *b)
{
	char req[160];
	int len = snprintf(req, sizeof(req), "HEAD / HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n",
			   b->k->http_host);

	if (send(b->http_fd, req, (size_t)len, MSG_NOSIGNAL) != len)
		sbind_http_close(b);
}

static void http_on_io(evutil_socket_t fd, short what, void *arg)
{
	struct sbind *b = arg;
	char buf[1024];
	int err = 0;
	socklen_t len = sizeof(err);
	ssize_t n;

	(void)what;
	if (b->http_connecting) {
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
			log_debug("stun: keep-alive connection from local port %u: %s", b->local_port, strerror(err));
			sbind_http_close(b);
			return;
		}
		b->http_connecting = 0;
		event_free(b->http_io);
		if (!(b->http_io = event_new(b->k->base, fd, EV_READ | EV_PERSIST, http_on_io, b))) {
			sbind_http_close(b);
			return;
		}
		event_add(b->http_io, NULL);
		http_send(b);
		return;
	}
	/* The answers say nothing the binding needs; an end says it may have moved: learn it again. */
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
		log_info("stun: the keep-alive connection from local port %u %s: learning its public port again",
			 b->local_port, n == 0 ? "was closed" : "was reset");
		sbind_http_close(b);
		if (b->fd < 0)
			sbind_tcp_learn(b);
	}
}

/* Keeps the connection to the keep-alive server: made when it is not there, else a HEAD request. */
void sbind_http_keepalive(struct sbind *b)
{
	struct stunkeep *k = b->k;
	int fd;

	if (!k->http.sin_port || b->http_connecting)
		return;
	if (b->http_fd >= 0) {
		http_send(b);
		return;
	}
	if ((fd = stun_io_socket(SOCK_STREAM, k->ifname, b->local_port, 1)) < 0)
		return;
	b->http_fd = fd;
	if ((connect(fd, (const struct sockaddr *)&k->http, sizeof(k->http)) < 0 && errno != EINPROGRESS) ||
	    !(b->http_io = event_new(k->base, fd, EV_WRITE, http_on_io, b))) {
		sbind_http_close(b);
		return;
	}
	b->http_connecting = 1;
	event_add(b->http_io, NULL);
}

/* --- the keep-alive server's address, by name or number --- */

static void http_on_address(void *arg, const struct sockaddr_in *a, const char *why)
{
	struct stunkeep *k = arg;
	char text[22];

	if (!a) {
		log_warnx("stun: keep-alive server %s cannot be resolved: %s; TCP bindings are held by STUN connections "
			  "meanwhile; trying again in %d s", k->http_host, why, STUNPROBE_REFRESH_MS / 1000);
		stun_io_arm(k->http_lookup_ev, STUNPROBE_REFRESH_MS);
		return;
	}
	k->http = *a;
	k->http.sin_port = htons(k->http_port);
	log_info("stun: TCP bindings are held by connections to the keep-alive server %s (%s)", k->http_host,
		 stun_io_addr_str(&k->http, text));
}

void stunkeep_http_lookup(evutil_socket_t fd, short what, void *arg)
{
	struct stunkeep *k = arg;

	(void)fd;
	(void)what;
	stunprobe_lookup(k->probe, k->http_host, http_on_address, k);
}
