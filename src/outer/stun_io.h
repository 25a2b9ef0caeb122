/*
 * stun_io.h - STUN Binding transactions over the external interface's
 * sockets, shared by stunprobe.c and stunkeep.c (wire/stun.h's codec,
 * with the sockets, timers and retransmissions around it).
 *
 * A UDP transaction is sent again after STUN_IO_FIRST_WAIT_MS, doubling,
 * STUN_IO_TRIES times in all (250 + 500 + 1000 + 2000 ms: a server silent
 * for 3.75 s is taken to be unreachable).  RFC 8489 6.2.1 allows a client
 * to choose its own schedule for a known network; this one keeps the
 * daemon's answers to its clients within NAT-PMP's first retries.
 *
 * Ports in host order, addresses in network byte order, times in the
 * monotonic clock's milliseconds.  Functions return 0 or -errno unless
 * they say otherwise.
 */
#ifndef NATPMP_OUTER_STUN_IO_H
#define NATPMP_OUTER_STUN_IO_H

#include <event2/event.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/stun.h"

#define STUN_IO_TRIES 4
#define STUN_IO_FIRST_WAIT_MS 250
/* The whole schedule: what a TCP connection and its answer get too. */
#define STUN_IO_GIVE_UP_MS (STUN_IO_FIRST_WAIT_MS * ((1 << STUN_IO_TRIES) - 1))

int64_t stun_io_now_ms(void);
/* Arms ev to fire in delay_ms (at once when negative). */
void stun_io_arm(struct event *ev, int64_t delay_ms);
/* A fresh random transaction id (RFC 8489 6: 96 bits from a good source). */
void stun_io_txid(uint8_t txid[STUN_TXID_LEN]);
/*
 * A non-blocking socket of type (SOCK_DGRAM or SOCK_STREAM) tied to
 * ifname and bound to 0.0.0.0:port (0: any port).  reuse sets SO_REUSEADDR
 * and SO_REUSEPORT, for TCP connections from one port to two servers
 * (the STUN server and the keep-alive server).  Returns the fd or -errno.
 */
int stun_io_socket(int type, const char *ifname, uint16_t port, int reuse);
/* Closes a TCP socket with a reset, leaving no TIME_WAIT to hold its port. */
void stun_io_abort(int fd);
/* "a.b.c.d:port" of an IPv4 socket address, into out (at least 22 bytes). */
const char *stun_io_addr_str(const struct sockaddr_in *sin, char *out);
/* An IPv4 STUN address as a socket address; -EAFNOSUPPORT for an IPv6 one. */
int stun_io_sockaddr(const struct stun_address *a, struct sockaddr_in *out);

struct stun_tx;
/* A transaction's end: r is the answer, NULL when none came in time. */
typedef void (*stun_tx_done)(struct stun_tx *tx, const struct stun_response *r, void *arg);

/* One UDP transaction at a time on a socket the owner reads. */
struct stun_tx {
	struct event *timer;
	int fd;
	struct sockaddr_in to;
	uint8_t txid[STUN_TXID_LEN];
	uint8_t change; /* RFC 5780 CHANGE-REQUEST flags */
	int tries;	/* sent so far; 0: no transaction */
	stun_tx_done done;
	void *arg;
	uint64_t *requests; /* counted on each first send, when not NULL */
};

int stun_tx_init(struct stun_tx *tx, struct event_base *base, int fd, stun_tx_done done, void *arg);
void stun_tx_free(struct stun_tx *tx);
/* Starts a transaction to `to` (a running one is forgotten). */
void stun_tx_start(struct stun_tx *tx, const struct sockaddr_in *to, uint8_t change);
/* Forgets the running transaction, if any: its done is not called. */
void stun_tx_cancel(struct stun_tx *tx);
/* A datagram read from tx->fd: 1 when it answered the transaction (done was called), else 0. */
int stun_tx_input(struct stun_tx *tx, const uint8_t *buf, size_t len);
/*
 * Reads what waits on tx->fd (16 datagrams at most) into the transaction:
 * 1 once one answered it (done was called, and may have freed tx), else 0.
 * from, when not NULL, gets each datagram's source.
 */
int stun_tx_read(struct stun_tx *tx, struct sockaddr_in *from);

#endif
