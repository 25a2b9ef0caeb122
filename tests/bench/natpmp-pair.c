/*
 * natpmp-pair.c - one client timing the same requests at two NAT-PMP
 * servers in turn, for comparisons the machine's noise cannot bias.
 *
 *   natpmp-pair [-6 | -2] -g GATEWAY1 -a ADDR1 [-G GATEWAY2 -A ADDR2] [-c COUNT] [-i PORT]
 *               [-s SUGGESTED] [-P tcp|udp] [-l LIFETIME]
 *
 * Runs minutes apart differ by up to 20% on a shared machine, more than the
 * differences bench.sh is asked to show (the cost of a create at 60,000
 * mappings against one at 100).  Here each round sends one map request to
 * each server, from ADDR1 to GATEWAY1 and from ADDR2 to GATEWAY2 (each
 * server's own LAN client), the first of the pair alternating from round to
 * round, each sent once the one before was answered: whatever slows the
 * machine down falls on both alike.  Round k asks for internal port PORT+k
 * (default 50000), suggesting SUGGESTED+k (default: the internal port; 0:
 * none), for LIFETIME seconds (default 3600; 0 deletes).  A request
 * unanswered within 1 s counts as lost.  Without -G and -A only the first
 * server is asked (a fill).
 *
 * -6: PCP MAP requests (RFC 6887) over IPv6 instead of NAT-PMP, the
 * addresses IPv6 ones: each opens a pinhole for ADDR's own port (no
 * suggestion), the nonce naming the port.  -2: the second server (which
 * may be the first) is asked by PCP MAP over IPv4 and the first by
 * NAT-PMP, to time the two protocols side by side at one server.
 *
 * Output, one line per server, then the ratio of the medians:
 *   result server=1 ok=N failed=N lost=N p50_us=U p90_us=U p99_us=U
 *   result server=2 ...
 *   ratio p50_2/p50_1=R
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "wire/pcp.h"
#include "wire/proto.h"

#define PAIR_MAX 100000
#define PAIR_TIMEOUT_MS 1000

struct pair_side {
	int fd;
	int pcp;	     /* PCP MAP (-6, or -2's second side), not NAT-PMP */
	int v6;		     /* -6: over IPv6 */
	uint8_t client[16]; /* PCP: the address the requests name (its client address; IPv4 as ::ffff:a.b.c.d) */
	uint32_t *lat;
	size_t n;
	unsigned long ok, failed, lost;
};

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* A socket from local to server:5351 (IPv4, or with v6 IPv6, addresses as text), asking by PCP or NAT-PMP. */
static int side_open(struct pair_side *s, int v6, int pcp, const char *local, const char *server, size_t count)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in v4;
		struct sockaddr_in6 v6;
	} l = { 0 }, r = { 0 };
	int family = v6 ? AF_INET6 : AF_INET;
	socklen_t len = v6 ? sizeof(l.v6) : sizeof(l.v4);

	s->pcp = pcp;
	s->v6 = v6;
	if (v6 ? inet_pton(AF_INET6, local, &l.v6.sin6_addr) != 1 || inet_pton(AF_INET6, server, &r.v6.sin6_addr) != 1
	       : inet_pton(AF_INET, local, &l.v4.sin_addr) != 1 || inet_pton(AF_INET, server, &r.v4.sin_addr) != 1) {
		fprintf(stderr, "natpmp-pair: '%s' or '%s' is not an IPv%d address\n", local, server, v6 ? 6 : 4);
		return -1;
	}
	l.sa.sa_family = r.sa.sa_family = (sa_family_t)family;
	if (v6) {
		r.v6.sin6_port = htons(5351);
		memcpy(s->client, &l.v6.sin6_addr, 16);
	} else {
		r.v4.sin_port = htons(5351);
		s->client[10] = s->client[11] = 0xff;
		memcpy(s->client + 12, &l.v4.sin_addr, 4);
	}
	if ((s->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0 || bind(s->fd, &l.sa, len) < 0 ||
	    connect(s->fd, &r.sa, len) < 0 || !(s->lat = calloc(count, sizeof(*s->lat)))) {
		fprintf(stderr, "natpmp-pair: cannot open a socket from %s to %s: %s\n", local, server, strerror(errno));
		return -1;
	}
	return 0;
}

/* A PCP MAP (RFC 6887 11.1) for the pinhole of the side's own port internal; the nonce names the port. */
static size_t pcp_request(const struct pair_side *s, uint8_t *buf, uint8_t protocol, uint16_t internal,
			  uint32_t lifetime)
{
	uint8_t *d = buf + PCP_HEADER_LEN;

	memset(buf, 0, PCP_MAP_LEN);
	buf[0] = PCP_VERSION;
	buf[1] = PCP_OP_MAP;
	proto_put32(buf + 4, lifetime);
	memcpy(buf + 8, s->client, 16);
	memcpy(d, "pair", 4);
	proto_put16(d + 4, internal);
	d[12] = protocol;
	proto_put16(d + 16, internal);
	/* No wish for the external address: :: for IPv6, ::ffff:0.0.0.0 for IPv4. */
	if (!s->v6)
		d[30] = d[31] = 0xff;
	return PCP_MAP_LEN;
}

/* One request, timed: its answer (ok or failed) or its loss is counted in s. */
static void side_ask(struct pair_side *s, uint8_t protocol, uint16_t internal, uint16_t suggested, uint32_t lifetime)
{
	uint8_t req[PCP_MAP_LEN], buf[128];
	size_t len = s->pcp ? pcp_request(s, req, protocol, internal, lifetime)
			    : proto_encode_map_request(req, protocol, internal, suggested, lifetime);
	struct pollfd p = { .fd = s->fd, .events = POLLIN };
	struct proto_reply r;
	int64_t t0 = now_us(), left;
	ssize_t n;

	if (send(s->fd, req, len, 0) != (ssize_t)len) {
		s->lost++;
		return;
	}
	while ((left = PAIR_TIMEOUT_MS - (now_us() - t0) / 1000) > 0 && poll(&p, 1, (int)left) > 0) {
		if ((n = recv(s->fd, buf, sizeof(buf), 0)) < 0)
			continue;
		if (s->pcp) {
			if (n < PCP_MAP_LEN || buf[0] != PCP_VERSION || buf[1] != (PCP_OP_MAP | PCP_R) ||
			    proto_get16(buf + PCP_HEADER_LEN + 16) != internal)
				continue;
			r.result = buf[3];
		} else if (proto_decode_reply(buf, (size_t)n, &r) < 0 || r.internal_port != internal) {
			continue;
		}
		s->lat[s->n++] = (uint32_t)(now_us() - t0);
		if (r.result == 0)
			s->ok++;
		else
			s->failed++;
		return;
	}
	s->lost++;
}

static uint32_t pct(const struct pair_side *s, unsigned int p)
{
	return s->n ? s->lat[(s->n - 1) * p / 100] : 0;
}

int main(int argc, char **argv)
{
	const char *g1 = NULL, *a1 = NULL, *g2 = NULL, *a2 = NULL;
	unsigned int count = 200, suggested = 1, lifetime = 3600;
	int v6 = 0, pcp2 = 0, sides;
	uint16_t first = 50000, sugg_first = 0;
	uint8_t protocol = IPPROTO_TCP;
	struct pair_side side[2];
	int opt;

	while ((opt = getopt(argc, argv, "62g:a:G:A:c:i:s:P:l:")) != -1) {
		switch (opt) {
		case '6':
			v6 = 1;
			break;
		case '2':
			pcp2 = 1;
			break;
		case 'g':
			g1 = optarg;
			break;
		case 'a':
			a1 = optarg;
			break;
		case 'G':
			g2 = optarg;
			break;
		case 'A':
			a2 = optarg;
			break;
		case 'c':
			if (cli_parse_uint("-c COUNT", optarg, 1, PAIR_MAX, &count) < 0)
				return 2;
			break;
		case 'i':
			if (cli_parse_port("-i PORT", optarg, 1, &first) < 0)
				return 2;
			break;
		case 's':
			if (strcmp(optarg, "0") == 0)
				suggested = 0;
			else if (cli_parse_port("-s SUGGESTED", optarg, 1, &sugg_first) < 0)
				return 2;
			break;
		case 'P':
			if (strcmp(optarg, "tcp") && strcmp(optarg, "udp")) {
				fprintf(stderr, "natpmp-pair: -P '%s': use tcp or udp\n", optarg);
				return 2;
			}
			protocol = optarg[0] == 't' ? IPPROTO_TCP : IPPROTO_UDP;
			break;
		case 'l':
			if (cli_parse_uint("-l LIFETIME", optarg, 0, 4294967295u, &lifetime) < 0)
				return 2;
			break;
		default:
			fprintf(stderr, "usage: natpmp-pair [-6 | -2] -g GATEWAY1 -a ADDR1 [-G GATEWAY2 -A ADDR2] [-c COUNT] "
					"[-i PORT] [-s SUGGESTED] [-P tcp|udp] [-l LIFETIME]\n");
			return 2;
		}
	}
	if (!g1 || !a1 || !g2 != !a2 || (unsigned int)first + count - 1 > 65535 ||
	    (sugg_first && (unsigned int)sugg_first + count - 1 > 65535)) {
		fprintf(stderr, "natpmp-pair: -g and -a are required, -G and -A go together, and the ports must stay "
				"below 65536\n");
		return 2;
	}
	sides = g2 ? 2 : 1;
	if (side_open(&side[0], v6, v6, a1, g1, count) < 0 ||
	    (sides == 2 && side_open(&side[1], v6, v6 || pcp2, a2, g2, count) < 0))
		return 1;
	for (unsigned int k = 0; k < count; k++) {
		uint16_t internal = (uint16_t)(first + k);
		uint16_t want = !suggested ? 0 : sugg_first ? (uint16_t)(sugg_first + k) : internal;
		/* Who goes first alternates: neither server always meets the machine right after the other. */
		for (int j = 0; j < sides; j++)
			side_ask(&side[(k + (unsigned int)j) % (unsigned int)sides], protocol, internal, want, lifetime);
	}
	for (int i = 0; i < sides; i++) {
		qsort(side[i].lat, side[i].n, sizeof(side[i].lat[0]), cmp_u32);
		printf("result server=%d ok=%lu failed=%lu lost=%lu p50_us=%u p90_us=%u p99_us=%u\n", i + 1, side[i].ok,
		       side[i].failed, side[i].lost, pct(&side[i], 50), pct(&side[i], 90), pct(&side[i], 99));
	}
	if (sides == 2)
		printf("ratio p50_2/p50_1=%.2f\n", pct(&side[0], 50) ? (double)pct(&side[1], 50) / pct(&side[0], 50) : 0.0);
	return 0;
}
