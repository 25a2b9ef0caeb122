/*
 * stun_io.c - STUN Binding transactions over the external interface's
 * sockets: sockets, timers, retransmissions.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "stun_io.h"

int64_t stun_io_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void stun_io_arm(struct event *ev, int64_t delay_ms)
{
	struct timeval tv;

	if (delay_ms < 0)
		delay_ms = 0;
	tv.tv_sec = delay_ms / 1000;
	tv.tv_usec = (delay_ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

void stun_io_txid(uint8_t txid[STUN_TXID_LEN])
{
	static uint32_t fallback;
	size_t got = 0;
	ssize_t r;

	while (got < STUN_TXID_LEN && (r = getrandom(txid + got, STUN_TXID_LEN - got, GRND_NONBLOCK)) > 0)
		got += (size_t)r;
	/* Without the kernel's pool (very early boot), ids must still differ from each other. */
	for (; got < STUN_TXID_LEN; got++)
		txid[got] = (uint8_t)(++fallback * 2654435761u >> 24) ^ (uint8_t)stun_io_now_ms();
}

int stun_io_socket(int type, const char *ifname, uint16_t port, int reuse)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, e;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname)) < 0 ||
	    (reuse && (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
		       setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)) ||
	    bind(fd, (const struct sockaddr *)&sin, sizeof(sin)) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

void stun_io_abort(int fd)
{
	struct linger l = { .l_onoff = 1, .l_linger = 0 };

	if (fd < 0)
		return;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

const char *stun_io_addr_str(const struct sockaddr_in *sin, char *out)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sin->sin_addr, a, sizeof(a));
	snprintf(out, 22, "%s:%u", a, ntohs(sin->sin_port));
	return out;
}

int stun_io_sockaddr(const struct stun_address *a, struct sockaddr_in *out)
{
	if (a->family != 4)
		return -EAFNOSUPPORT;
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	memcpy(&out->sin_addr, a->addr + 12, 4);
	out->sin_port = htons(a->port);
	return 0;
}

static void stun_tx_send(struct stun_tx *tx)
{
	uint8_t buf[STUN_MAX_REQUEST];
	size_t len = stun_encode_binding(buf, tx->txid, tx->change);

	if (tx->tries++ == 0 && tx->requests)
		(*tx->requests)++;
	/* A lost datagram and a route not there yet come to the same: the next try. */
	if (sendto(tx->fd, buf, len, 0, (const struct sockaddr *)&tx->to, sizeof(tx->to)) < 0)
		log_debug("stun: cannot send to the STUN server: %s", strerror(errno));
	stun_io_arm(tx->timer, (int64_t)STUN_IO_FIRST_WAIT_MS << (tx->tries - 1));
}

static void stun_tx_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct stun_tx *tx = arg;

	(void)fd;
	(void)what;
	if (!tx->tries)
		return;
	if (tx->tries < STUN_IO_TRIES) {
		stun_tx_send(tx);
		return;
	}
	tx->tries = 0;
	tx->done(tx, NULL, tx->arg);
}

int stun_tx_init(struct stun_tx *tx, struct event_base *base, int fd, stun_tx_done done, void *arg)
{
	memset(tx, 0, sizeof(*tx));
	tx->fd = fd;
	tx->done = done;
	tx->arg = arg;
	if (!(tx->timer = evtimer_new(base, stun_tx_on_timer, tx)))
		return -ENOMEM;
	return 0;
}

void stun_tx_free(struct stun_tx *tx)
{
	if (tx->timer)
		event_free(tx->timer);
	tx->timer = NULL;
	tx->tries = 0;
}

void stun_tx_start(struct stun_tx *tx, const struct sockaddr_in *to, uint8_t change)
{
	tx->to = *to;
	tx->change = change;
	tx->tries = 0;
	stun_io_txid(tx->txid);
	stun_tx_send(tx);
}

void stun_tx_cancel(struct stun_tx *tx)
{
	tx->tries = 0;
	if (tx->timer)
		evtimer_del(tx->timer);
}

int stun_tx_input(struct stun_tx *tx, const uint8_t *buf, size_t len)
{
	struct stun_response r;

	if (!tx->tries || stun_decode_response(buf, len, tx->txid, &r) != STUN_ANSWER)
		return 0;
	tx->tries = 0;
	evtimer_del(tx->timer);
	tx->done(tx, &r, tx->arg);
	return 1;
}

int stun_tx_read(struct stun_tx *tx, struct sockaddr_in *from)
{
	struct sockaddr_in src;
	socklen_t len = sizeof(src);
	uint8_t buf[1500];
	ssize_t n;

	for (int i = 0; i < 16 && (n = recvfrom(tx->fd, buf, sizeof(buf), 0, (struct sockaddr *)&src, &len)) >= 0; i++) {
		if (from)
			*from = src;
		len = sizeof(src);
		if (stun_tx_input(tx, buf, (size_t)n))
			return 1;
	}
	return 0;
}
