/*
 * http.c - the HTTP API's handles: listening (TCP or a unix socket), retiring at a reload, closing.
 *
 * evhttp does the protocol, with limits set so that no client holds more
 * than a small buffer and a connection for HTTP_TIMEOUT_S: headers over
 * HTTP_MAX_HEADERS and bodies over 16 times HTTP_MAX_BODY are cut off by
 * evhttp itself; a body over HTTP_MAX_BODY gets a JSON 400 from here.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/log.h"
#include "http_impl.h"
#include "kernel/netif.h"
#include "wire/proto.h"

/*
 * The open handles (one, two during a reload): a listener's error callback
 * gets evhttp's argument, not ours, and finds its handle here.
 */
static struct http *http_open_list;

/*
 * accept() failed, in practice for want of file descriptors (a flood of
 * connections): libevent would retry at once, in a loop, logging each
 * time.  Accepting pauses for a second instead, while the connections
 * already open time out; NAT-PMP is served meanwhile.
 */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct http *h = http_open_list;
	struct timeval tv = { .tv_sec = 1 };
	int err = EVUTIL_SOCKET_ERROR();

	(void)arg;
	while (h && h->listener != lev)
		h = h->next;
	if (!h)
		return;
	evconnlistener_disable(lev);
	evtimer_add(h->resume, &tv);
	h->accept_errors++;
	if ((h->accept_errors & (h->accept_errors - 1)) == 0)
		log_warnx("HTTP API: cannot accept a connection: %s; pausing for 1 s (%llu time(s) so far)",
			  evutil_socket_error_to_string(err), (unsigned long long)h->accept_errors);
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	(void)fd;
	(void)what;
	evconnlistener_enable(h->listener);
}

/* A stream socket at path, replacing a stale socket left by an earlier run (never another kind of file). */
static int listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t mask;
	int fd, err;

	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			close(fd);
			return -EEXIST;
		}
		/* A socket someone still answers on is another instance's: never take it over. */
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0 || errno == EAGAIN) {
			close(fd);
			return -EADDRINUSE;
		}
		close(fd);
		unlink(path);
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
			return -errno;
	}
	/*
	 * Owner and group only, from the moment it exists (a chmod afterwards
	 * would follow a symlink put there meanwhile): the socket's mode is the
	 * API's access control when no token is set.
	 */
	mask = umask(0117);
	err = bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ? -errno : 0;
	umask(mask);
	if (err == 0 && listen(fd, 64) < 0)
		err = -errno;
	if (err < 0) {
		close(fd);
		return err;
	}
	return fd;
}

struct http *http_open(struct event_base *base, const char *listen, const struct config *cfg,
		       const struct http_backend *backend)
{
	struct http *h = calloc(1, sizeof(*h));
	char addr[INET6_ADDRSTRLEN];
	struct evhttp_bound_socket *bound;
	int fd;

	if (!h || !(h->evhttp = evhttp_new(base)) || !(h->resume = evtimer_new(base, on_resume, h))) {
		if (h && h->evhttp)
			evhttp_free(h->evhttp);
		log_error("out of memory for the HTTP API");
		free(h);
		return NULL;
	}
	h->base = base;
	h->cfg = cfg;
	h->backend = *backend;
	h->unix_fd = -1;
	LIST_INIT(&h->pending);
	LIST_INIT(&h->gates);
	evhttp_set_timeout(h->evhttp, HTTP_TIMEOUT_S);
	evhttp_set_max_headers_size(h->evhttp, HTTP_MAX_HEADERS);
	evhttp_set_max_body_size(h->evhttp, HTTP_MAX_BODY * 16);
	evhttp_set_allowed_methods(h->evhttp, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_PUT |
						      EVHTTP_REQ_HEAD | EVHTTP_REQ_PATCH | EVHTTP_REQ_OPTIONS);
	evhttp_set_gencb(h->evhttp, http_on_request, h);
	evhttp_set_bevcb(h->evhttp, http_gate_bev, h);
	if (listen[0] == '/') {
		if ((fd = listen_unix(listen)) < 0) {
			log_error("cannot listen for HTTP on %s: %s", listen,
				  fd == -EEXIST ? "a file that is not a socket is in the way" : strerror(-fd));
			goto fail;
		}
		if (!(bound = evhttp_accept_socket_with_handle(h->evhttp, fd))) {
			close(fd);
			log_error("cannot serve HTTP on %s", listen);
			goto fail;
		}
		h->unix_fd = fd;
		snprintf(h->path, sizeof(h->path), "%s", listen);
	} else {
		uint16_t port = 0;

		if (config_http_split(listen, addr, sizeof(addr), &port) < 0 ||
		    !(bound = evhttp_bind_socket_with_handle(h->evhttp, addr, port))) {
			log_error("cannot listen for HTTP on %s: %s", listen, strerror(errno));
			goto fail;
		}
	}
	h->bound = bound;
	h->listener = evhttp_bound_socket_get_listener(bound);
	evconnlistener_set_error_cb(h->listener, on_accept_error);
	h->next = http_open_list;
	http_open_list = h;
	log_info("HTTP API on %s%s", listen, cfg->http_token[0] ? " (token set)" : " (no token: read-only)");
	return h;
fail:
	http_close(h);
	return NULL;
}

void http_close(struct http *h)
{
	struct http_pending *q;

	if (!h)
		return;
	for (struct http **p = &http_open_list; *p; p = &(*p)->next)
		if (*p == h) {
			*p = h->next;
			break;
		}
	/*
	 * Requests still waiting for the server are answered now, while their
	 * connections exist, and detached: evhttp_free() frees the requests,
	 * and the server's later http_forward_done() only frees its memory.
	 */
	while ((q = LIST_FIRST(&h->pending)) != NULL) {
		struct table_grant none = { 0 };
		LIST_REMOVE(q, link);
		http_forward_reply(q, HTTP_FORWARD_FAILED, &none);
		q->h = NULL;
		q->req = NULL;
	}
	/* A connection accepted in this very turn of the loop has a gate not set up yet: it goes first. */
	for (struct http_gate *g = LIST_FIRST(&h->gates), *next; g; g = next) {
		next = LIST_NEXT(g, link);
		if (!g->evcon) {
			bufferevent_decref(g->bev);
			http_gate_free(g);
		}
	}
	/* evhttp closes the listening sockets it was given, the unix one included (and frees the other gates). */
	if (h->evhttp)
		evhttp_free(h->evhttp);
	if (h->resume)
		event_free(h->resume);
	if (h->reap)
		event_free(h->reap);
	if (h->path[0])
		unlink(h->path);
	free(h);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	struct timeval tv = { .tv_sec = HTTP_RETIRE_MS / 1000, .tv_usec = (HTTP_RETIRE_MS % 1000) * 1000 };

	(void)fd;
	(void)what;
	/* A request still waiting for the server (the gateway's answer) gets it, for a few more seconds. */
	if (!LIST_EMPTY(&h->pending) && ++h->reap_tries < HTTP_RETIRE_WAITS) {
		evtimer_add(h->reap, &tv);
		return;
	}
	http_close(h);
}

/*
 * Freeing the evhttp at once would cut the connections it is still writing
 * answers to: the listening socket goes now, so that a new handle can take
 * its address, and the rest after HTTP_RETIRE_MS.
 */
void http_retire(struct http *h)
{
	struct timeval tv = { .tv_sec = HTTP_RETIRE_MS / 1000, .tv_usec = (HTTP_RETIRE_MS % 1000) * 1000 };

	if (!h)
		return;
	if (!(h->reap = evtimer_new(h->base, on_reap, h))) {
		http_close(h);
		return;
	}
	h->retiring = 1;
	evtimer_del(h->resume);
	if (h->bound)
		evhttp_del_accept_socket(h->evhttp, h->bound);
	h->bound = NULL;
	h->listener = NULL;
	if (h->path[0])
		unlink(h->path);
	h->path[0] = '\0';
	evtimer_add(h->reap, &tv);
}

void http_close_retired(void)
{
	struct http *h = http_open_list, *next;

	for (; h; h = next) {
		next = h->next;
		if (h->reap)
			http_close(h);
	}
}
