/*
 * natpmp-responder.c - the benchmark's reference point: the most a NAT-PMP
 * or PCP server can answer on this machine, through the daemon's own
 * sockets and batching, for bench.sh to measure the daemon against.
 *
 *   natpmp-responder IFNAME [PORT]       (in the router namespace; port 5351)
 *
 * It opens the daemon's IPv4 listener (daemon/udp.h: the interface-bound
 * socket, IP_PKTINFO, recvmmsg and sendmmsg in batches of UDP_BATCH), reads
 * the same number of batches per wake-up from the same libevent loop, and
 * decodes each request with the daemon's codecs (wire/codec.h).  Then it does
 * nothing a server must do (no client checks, no rate limit, no table, no
 * journal, no nftables) and answers every address request with 198.51.100.1
 * and every map request with success: the suggested port (else the internal
 * one) for the lifetime asked.  Prints "listening" once ready; runs until
 * SIGTERM or SIGINT.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/udp.h"
#include "wire/codec.h"

/* Batches read per wake-up: the daemon's SERVER_ROUNDS. */
#define RESPONDER_ROUNDS 8
#define RESPONDER_EPOCH 1000

static struct udp_packet pkts[UDP_BATCH];

static void answer(struct udp_packet *p)
{
	const struct codec *c = codec_for(p->data, p->len);
	struct codec_request req;
	struct codec_answer a = { .epoch = RESPONDER_EPOCH, .external_address = htonl(0xc6336401) };

	p->reply_len = 0;
	switch (c->decode(p->data, p->len, &p->peer.sa, RESPONDER_EPOCH, &req, p->reply, &p->reply_len)) {
	case CODEC_DROP:
	case CODEC_ANSWERED:
		return;
	case CODEC_ADDRESS:
		break;
	case CODEC_MAP:
		a.external_port = req.lifetime ? (req.suggested_port ? req.suggested_port : req.internal_port) : 0;
		a.lifetime = req.lifetime;
		break;
	}
	p->reply_len = c->encode(&req, &a, p->reply);
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct udp_socket *u = arg;

	(void)fd;
	(void)what;
	for (int round = 0; round < RESPONDER_ROUNDS; round++) {
		int n = udp_recv(u, pkts, UDP_BATCH);
		if (n <= 0)
			return;
		for (int i = 0; i < n; i++)
			answer(&pkts[i]);
		udp_send(u, pkts, n);
		if (n < UDP_BATCH)
			return;
	}
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig;
	(void)what;
	event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
	struct udp_socket u;
	struct event_base *base;
	struct event *ev, *term, *intr;
	int r;

	if (argc < 2 || argc > 3) {
		fprintf(stderr, "usage: natpmp-responder IFNAME [PORT]\n");
		return 2;
	}
	if ((r = udp_open(&u, argv[1], argc == 3 ? (uint16_t)atoi(argv[2]) : 5351, AF_INET)) != 0) {
		fprintf(stderr, "natpmp-responder: cannot listen on %s: %s\n", argv[1], strerror(r < 0 ? -r : ENODEV));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (!(base = event_base_new()) || !(ev = event_new(base, u.fd, EV_READ | EV_PERSIST, on_readable, &u)) ||
	    !(term = evsignal_new(base, SIGTERM, on_signal, base)) || !(intr = evsignal_new(base, SIGINT, on_signal, base)) ||
	    event_add(ev, NULL) < 0 || event_add(term, NULL) < 0 || event_add(intr, NULL) < 0) {
		fprintf(stderr, "natpmp-responder: out of memory\n");
		return 1;
	}
	printf("listening on %s\n", argv[1]);
	fflush(stdout);
	event_base_dispatch(base);
	event_free(ev);
	event_free(term);
	event_free(intr);
	event_base_free(base);
	udp_close(&u);
	return 0;
}
