/*
 * natpmp-bench.c - load generator for NAT-PMP servers (natpmp-server, miniupnpd) and TCP forwards.
 *
 * The benchmark scripts run it in the namespace lab and parse its output, so a
 * run ends with one "result key=value ..." line whose keys and order never
 * change (new keys only ever go at the end).  map mode spreads NAT-PMP requests
 * over many client addresses, one non-blocking UDP socket each, with a fixed
 * window of requests in flight per address and no retransmission: a request
 * unanswered within the timeout counts as lost, which is what a server that
 * drops under load must show.  accept and connect measure how fast new TCP
 * connections get through a forward.  Every run is bounded in time.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tools/cli.h"
#include "wire/pcp.h"
#include "wire/proto.h"

#define BENCH_NAME "natpmp-bench"
#define BENCH_TIMEOUT_MS 1000
#define BENCH_LIFETIME 3600
#define BENCH_FIRST_PORT 10000
/* With -c alone a dead server would hold a script for COUNT timeouts: sending stops after this. */
#define BENCH_CAP_SECONDS 3600
#define BENCH_MAX_SECONDS 86400
#define BENCH_MAX_ADDRS 4096
#define BENCH_MAX_WINDOW 4096
#define BENCH_MAX_CONCURRENCY 65536
#define BENCH_MAX_COUNT 100000000ULL
/* Datagrams per sendmmsg/recvmmsg call, and events per epoll_wait. */
#define BENCH_BATCH 64
/* Replies are 8 to 16 bytes; an unsupported-opcode echo may be longer, but only its head matters. */
#define BENCH_RX_LEN 128
/* Room for the replies to a whole window, at the kernel's ~1 KiB truesize per small datagram. */
#define BENCH_RCVBUF_PER_REQUEST 2048
#define BENCH_MIN_RCVBUF (256 * 1024)
#define BENCH_MAX_ERRNO 4096

enum bench_exit {
	EXIT_DONE = 0,
	EXIT_SYSTEM = 1,
	EXIT_USAGE = 2,
};

enum scenario { SC_FILL, SC_CREATE, SC_RENEW, SC_DELETE, SC_DELETE_ALL, SC_ADDRESS, SC_COUNT };

static const char *const scenario_names[SC_COUNT] = { "fill", "create", "renew", "delete", "delete-all", "address" };

struct map_opts {
	struct sockaddr_in server;
	bool server_given;
	struct in_addr first;
	bool first_given;
	unsigned int naddrs;
	unsigned int window;
	unsigned int timeout_ms;
	unsigned int seconds; /* 0: not given */
	unsigned long long count;
	bool count_given;
	unsigned long long mappings; /* renew: how many mappings to cycle over */
	bool mappings_given;
	uint32_t lifetime;
	uint8_t opcode;
	uint16_t first_port;
	bool codes;
	bool pcp; /* -2: PCP MAP (RFC 6887) instead of NAT-PMP */
	enum scenario scenario;
};

struct accept_opts {
	struct sockaddr_in local;
	struct sockaddr_in6 local6; /* -b with an IPv6 address: listens there instead */
	bool v6;
	bool port_given;
	unsigned int seconds;
};

struct connect_opts {
	struct sockaddr_in server;
	struct sockaddr_in6 server6; /* -h with an IPv6 address: connects there instead */
	bool v6;
	bool server_given, port_given;
	struct sockaddr_in local;
	bool local_given;
	unsigned int seconds;
	unsigned int concurrency;
	unsigned int timeout_ms;
	bool codes;
};

/* Latencies in microseconds, sorted at the end for exact percentiles. */
struct samples {
	uint32_t *v;
	size_t n, cap;
};

struct slot {
	int64_t sent_us;
	uint64_t seq; /* send order: among equal keys the oldest is answered first */
	uint16_t port;
	uint8_t opcode;
	bool used;
};

/* One client address: its socket and its window of requests in flight. */
struct peer {
	int fd;
	struct in_addr addr;
	struct slot *slots;
	uint32_t *free_slots;
	unsigned int nfree;
	unsigned int in_flight;
	uint64_t next;	/* this address's requests sent so far */
	uint64_t total; /* ... and to send; UINT64_MAX: until the time is up */
	uint64_t cycle; /* renew: mappings this address holds, internal ports first_port.. */
	bool blocked;	/* the send buffer was full: wait for EPOLLOUT */
};

struct map_run {
	const struct map_opts *o;
	struct peer *peers;
	int epfd;
	int64_t start_us, last_reply_us, stop_us, next_expiry_us;
	uint64_t sent, ok, failed, lost, stray, icmp, seq, in_flight;
	unsigned int active; /* peers with requests still to send */
	bool stopping, retry_soon;
	struct samples lat;
	uint64_t *codes; /* replies per result code */
};

struct conn {
	int fd; /* -1: free */
	int64_t start_us;
};

static volatile sig_atomic_t bench_interrupted;

/* The first failed write's errno: stdout is line buffered, so by exit it is long gone. */

static const struct option bench_long_options[] = {
	{ "help", no_argument, NULL, 'H' },
	{ NULL, 0, NULL, 0 },
};

static void bench_usage(FILE *out)
{
	fputs("usage: natpmp-bench map -g GATEWAY -a FIRST_ADDR [-n NADDRS] [-p PORT] [-w WINDOW]\n"
	      "                        [-c COUNT] [-t SECONDS] [-m MAPPINGS] [-l LIFETIME] [-P tcp|udp]\n"
	      "                        [-i FIRST_INTERNAL_PORT] [-T MS] [-x] [-2] SCENARIO\n"
	      "       natpmp-bench accept [-b ADDR] -p PORT -t SECONDS\n"
	      "       natpmp-bench connect -h HOST -p PORT -t SECONDS [-w CONCURRENCY] [-b SRCADDR] [-T MS] [-x]\n"
	      "       natpmp-bench --help\n"
	      "\n"
	      "Load generator for NAT-PMP (RFC 6886) servers and for TCP forwards.\n"
	      "\n"
	      "map: NAT-PMP requests from NADDRS source addresses FIRST_ADDR, FIRST_ADDR+1, ...\n"
	      "(already configured on a local interface), one UDP socket each, spread round-robin.\n"
	      "Requests are never retransmitted: one unanswered within -T counts as lost.\n"
	      "  -g GATEWAY   server address (required)\n"
	      "  -a ADDR      first client address (required)\n"
	      "  -n NADDRS    client addresses, 1 to 4096 (default 1)\n"
	      "  -p PORT      server port (default 5351)\n"
	      "  -w WINDOW    requests in flight per address, 1 to 4096 (default 1: one at a time)\n"
	      "  -c COUNT     requests in all, 1 to 100000000 (delete-all: not used)\n"
	      "  -t SECONDS   stop sending after SECONDS, 1 to 86400 (with -c: whichever comes\n"
	      "               first; without -t sending stops after 3600 s all the same)\n"
	      "  -m MAPPINGS  renew: how many mappings the earlier fill/create made (default COUNT);\n"
	      "               renewals cycle over them\n"
	      "  -l LIFETIME  fill, create, renew: lifetime asked for, 1 to 4294967295 (default 3600)\n"
	      "  -P PROTO     tcp or udp (default tcp)\n"
	      "  -i PORT      first internal port, 1 to 65535 (default 10000)\n"
	      "  -T MS        reply timeout, 1 to 60000 (default 1000)\n"
	      "  -x           also print a line per non-zero result code\n"
	      "  -2           PCP (RFC 6887) MAP requests, 60 bytes, one nonce per mapping,\n"
	      "               instead of NAT-PMP (fill, create, renew, delete)\n"
	      "Scenarios (request r goes to address r mod NADDRS; address k's j-th mapping is\n"
	      "internal port FIRST_INTERNAL_PORT+j; suggested external port 0):\n"
	      "  fill         create COUNT mappings, to prepare a table of that size\n"
	      "  create       the same, measured: use another -i than the fill's\n"
	      "  renew        renew COUNT times the MAPPINGS mappings made with this -i\n"
	      "  delete       delete COUNT mappings (lifetime 0) from -i on\n"
	      "  delete-all   one request per address: internal port 0, lifetime 0\n"
	      "  address      COUNT opcode 0 requests\n"
	      "Output:\n"
	      "  result scenario=S sent=N ok=N failed=N lost=N seconds=S rate=R p50_us=U p90_us=U\n"
	      "         p99_us=U max_us=U stray=N icmp_errors=N\n"
	      "  failed result=CODE count=N      (-x, one per non-zero result code)\n"
	      "failed: replies with a non-zero result; lost: no reply within -T; stray: datagrams\n"
	      "that answer nothing in flight (late, duplicate or malformed); icmp_errors: ICMP\n"
	      "errors (port unreachable) the sockets reported.  seconds runs from the first send\n"
	      "to the last reply, rate is replies (ok + failed) per second, latencies run from\n"
	      "send to reply over the replies (all 0 without replies).\n"
	      "\n"
	      "accept: a TCP server on ADDR:PORT (ADDR default 0.0.0.0; IPv6 too) that accepts and at once\n"
	      "closes every connection, for SECONDS; \"listening\" on stderr once it listens.\n"
	      "Output: accepted N\n"
	      "\n"
	      "connect: new TCP connections to HOST:PORT (HOST IPv4 or IPv6) for SECONDS, CONCURRENCY at a time\n"
	      "(1 to 65536, default 1), each closed with RST (SO_LINGER 0, so no TIME_WAIT)\n"
	      "once established (a reset after the handshake counts as established); one not\n"
	      "established within -T MS (default 1000) has failed.\n"
	      "  -b SRCADDR   source address (ports still chosen per connection)\n"
	      "Output:\n"
	      "  result scenario=connect ok=N failed=N seconds=S rate=R p50_us=U p90_us=U p99_us=U\n"
	      "         max_us=U\n"
	      "  failed errno=NAME count=N       (-x, one per error)\n"
	      "\n"
	      "SIGINT or SIGTERM stops sending and prints the result so far.  Exit status: 0 run\n"
	      "done (losses are results, not errors), 1 system error, 2 usage error.\n",
	      out);
}

/* Callers clear errno before a line, so that it still holds the cause of a failed write here. */
/* getopt's leftovers: a missing value or an option this mode does not have. */
static int option_error(int opt, const char *mode, char **argv)
{
	if (opt == ':') {
		fprintf(stderr, BENCH_NAME ": -%c needs a value; see --help\n", optopt);
		return -EINVAL;
	}
	/* optopt is 0 for an unknown long option. */
	if (optopt && strncmp(argv[optind - 1], "--", 2) != 0)
		fprintf(stderr, BENCH_NAME ": %s has no option '-%c'; see --help\n", mode, optopt);
	else
		fprintf(stderr, BENCH_NAME ": unknown option '%s'; see --help\n", argv[optind - 1]);
	return -EINVAL;
}

static const char *addr_str(struct in_addr a, char buf[INET_ADDRSTRLEN])
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static void on_signal(int sig)
{
	(void)sig;
	bench_interrupted = 1;
}

/* No SA_RESTART: epoll_wait returns EINTR, so a stop request is seen at once. */
static int install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return cli_system_error(-errno, "sigaction");
	return 0;
}

/* Raises the soft open-files limit to cover need descriptors, as far as the hard limit lets it. */
static int raise_nofile(rlim_t need, const char *what, const char *value)
{
	struct rlimit rl;
	char why[128];

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cli_system_error(-errno, "getrlimit RLIMIT_NOFILE");
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need)
		return 0;
	if (rl.rlim_cur == RLIM_INFINITY)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
		snprintf(why, sizeof(why), "needs %llu open files, over the hard limit %llu: raise ulimit -Hn",
			 (unsigned long long)need, (unsigned long long)rl.rlim_max);
		return cli_usage_error(what, value, why);
	}
	rl.rlim_cur = need;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return cli_system_error(-errno, "setrlimit RLIMIT_NOFILE %llu", (unsigned long long)need);
	return 0;
}

static int samples_reserve(struct samples *s, size_t cap)
{
	uint32_t *v;

	if (cap <= s->cap)
		return 0;
	if (!(v = realloc(s->v, cap * sizeof(*v))))
		return cli_system_error(-ENOMEM, "latency samples (%zu)", cap);
	s->v = v;
	s->cap = cap;
	return 0;
}

static int samples_add(struct samples *s, int64_t us)
{
	int r;

	if (s->n == s->cap && (r = samples_reserve(s, s->cap ? s->cap * 2 : 65536)) < 0)
		return r;
	s->v[s->n++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Nearest rank: the smallest sample with at least p% of them at or below it. */
static uint32_t percentile(const struct samples *s, unsigned int p)
{
	size_t rank;

	if (s->n == 0)
		return 0;
	rank = (s->n * p + 99) / 100;
	return s->v[rank ? rank - 1 : 0];
}

static void print_latency(struct samples *s)
{
	qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	printf(" p50_us=%u p90_us=%u p99_us=%u max_us=%u", percentile(s, 50), percentile(s, 90), percentile(s, 99),
	       percentile(s, 100));
}

/* epoll_wait's timeout: milliseconds until deadline (INT64_MAX: none), rounded up so it never wakes early. */
static int wait_ms(int64_t deadline, int64_t now)
{
	int64_t left;

	if (deadline == INT64_MAX)
		return -1;
	if (deadline <= now)
		return 0;
	left = (deadline - now + 999) / 1000;
	return left > 60000 ? 60000 : (int)left;
}

/* ---- map ---- */

static int parse_scenario(struct map_opts *o, const char *s)
{
	for (int i = 0; i < SC_COUNT; i++) {
		if (strcmp(s, scenario_names[i]) == 0) {
			o->scenario = (enum scenario)i;
			return 0;
		}
	}
	return cli_usage_error("scenario", s, "use fill, create, renew, delete, delete-all or address");
}

/* The requests (or mappings) of count that fall to address k of n when they are dealt round-robin. */
static uint64_t share(unsigned long long count, unsigned int n, unsigned int k)
{
	return count / n + (k < count % n);
}

/* The checks that need several options at once; each names the value that does not fit. */
static int map_check(struct map_opts *o, const char *count_arg, const char *mappings_arg)
{
	unsigned long long n, room = 65536ULL - o->first_port;
	char why[160], a[INET_ADDRSTRLEN], naddrs[16];

	if (!o->server_given)
		return cli_usage_message("map needs -g GATEWAY", NULL);
	if (!o->first_given)
		return cli_usage_message("map needs -a FIRST_ADDR", NULL);
	if ((unsigned long long)ntohl(o->first.s_addr) + o->naddrs - 1 > UINT32_MAX) {
		snprintf(naddrs, sizeof(naddrs), "%u", o->naddrs);
		snprintf(why, sizeof(why), "from -a %s the addresses would pass 255.255.255.255",
			 addr_str(o->first, a));
		return cli_usage_error("-n NADDRS", naddrs, why);
	}
	if (o->scenario == SC_DELETE_ALL)
		return 0;
	if (!o->count_given && !o->seconds)
		return cli_usage_error("scenario", scenario_names[o->scenario], "needs -c COUNT or -t SECONDS");
	if (o->scenario == SC_ADDRESS)
		return 0;
	if (o->scenario == SC_RENEW && !o->mappings_given) {
		if (!o->count_given)
			return cli_usage_message("renew with -t alone needs -m MAPPINGS, how many mappings to renew", NULL);
		o->mappings = o->count;
	}
	/* An address without a mapping of its own would have nothing to renew, and its share would go unsent. */
	if (o->scenario == SC_RENEW && o->mappings < o->naddrs) {
		snprintf(why, sizeof(why), "fewer mappings than the %u addresses of -n: each needs one", o->naddrs);
		return cli_usage_error(o->mappings_given ? "-m MAPPINGS" : "-c COUNT",
				   o->mappings_given ? mappings_arg : count_arg, why);
	}
	if (o->scenario != SC_RENEW && !o->count_given)
		return 0;
	/* Address k's internal ports run from -i up, one per mapping it holds: they must stay within 65535. */
	n = o->scenario == SC_RENEW ? o->mappings : o->count;
	if (n / o->naddrs + (n % o->naddrs != 0) > room) {
		snprintf(why, sizeof(why), "with -n %u and -i %u the internal ports would pass 65535", o->naddrs,
			 o->first_port);
		if (o->scenario == SC_RENEW && o->mappings_given)
			return cli_usage_error("-m MAPPINGS", mappings_arg, why);
		return cli_usage_error("-c COUNT", count_arg, why);
	}
	return 0;
}

static int map_parse(struct map_opts *o, int argc, char **argv)
{
	const char *count_arg = "", *mappings_arg = "";
	unsigned long long v;
	int opt;

	memset(o, 0, sizeof(*o));
	o->server.sin_family = AF_INET;
	o->server.sin_port = htons(NATPMP_SERVER_PORT);
	o->naddrs = 1;
	o->window = 1;
	o->timeout_ms = BENCH_TIMEOUT_MS;
	o->lifetime = BENCH_LIFETIME;
	o->opcode = NATPMP_OP_MAP_TCP;
	o->first_port = BENCH_FIRST_PORT;
	while ((opt = getopt_long(argc, argv, ":g:a:n:p:w:c:t:m:l:P:i:T:x2h", bench_long_options, NULL)) != -1) {
		switch (opt) {
		case 'g':
			if (cli_parse_ipv4("-g GATEWAY", optarg, &o->server.sin_addr) < 0)
				return -EINVAL;
			o->server_given = true;
			break;
		case 'a':
			if (cli_parse_ipv4("-a FIRST_ADDR", optarg, &o->first) < 0)
				return -EINVAL;
			o->first_given = true;
			break;
		case 'n':
			if (cli_parse_uint("-n NADDRS", optarg, 1, BENCH_MAX_ADDRS, &o->naddrs) < 0)
				return -EINVAL;
			break;
		case 'p': {
			uint16_t port;

			if (cli_parse_port("-p PORT", optarg, 1, &port) < 0)
				return -EINVAL;
			o->server.sin_port = htons(port);
			break;
		}
		case 'w':
			if (cli_parse_uint("-w WINDOW", optarg, 1, BENCH_MAX_WINDOW, &o->window) < 0)
				return -EINVAL;
			break;
		case 'c':
			if (cli_parse_number("-c COUNT", optarg, 1, BENCH_MAX_COUNT, &o->count) < 0)
				return -EINVAL;
			o->count_given = true;
			count_arg = optarg;
			break;
		case 't':
			if (cli_parse_uint("-t SECONDS", optarg, 1, BENCH_MAX_SECONDS, &o->seconds) < 0)
				return -EINVAL;
			break;
		case 'm':
			if (cli_parse_number("-m MAPPINGS", optarg, 1, BENCH_MAX_ADDRS * 65535ULL, &o->mappings) < 0)
				return -EINVAL;
			o->mappings_given = true;
			mappings_arg = optarg;
			break;
		case 'l':
			/* Lifetime 0 would delete: that is what the delete scenarios are for. */
			if (cli_parse_number("-l LIFETIME", optarg, 1, UINT32_MAX, &v) < 0)
				return -EINVAL;
			o->lifetime = (uint32_t)v;
			break;
		case 'P':
			if (strcmp(optarg, "tcp") == 0)
				o->opcode = NATPMP_OP_MAP_TCP;
			else if (strcmp(optarg, "udp") == 0)
				o->opcode = NATPMP_OP_MAP_UDP;
			else
				return cli_usage_error("-P PROTO", optarg, "use tcp or udp");
			break;
		case 'i':
			/* Internal port 0 means "all mappings" (delete-all), never a mapping of its own. */
			if (cli_parse_port("-i FIRST_INTERNAL_PORT", optarg, 1, &o->first_port) < 0)
				return -EINVAL;
			break;
		case 'T':
			if (cli_parse_uint("-T MS", optarg, 1, 60000, &o->timeout_ms) < 0)
				return -EINVAL;
			break;
		case 'x':
			o->codes = true;
			break;
		case '2':
			o->pcp = true;
			break;
		case 'h':
		case 'H':
			return 1;
		default:
			return option_error(opt, "map", argv);
		}
	}
	if (optind == argc)
		return cli_usage_message("map needs a SCENARIO: fill, create, renew, delete, delete-all or address", NULL);
	if (optind + 1 < argc)
		return cli_usage_message("unexpected argument", argv[optind + 1]);
	if (parse_scenario(o, argv[optind]) < 0)
		return -EINVAL;
	return map_check(o, count_arg, mappings_arg);
}

/*
 * A PCP MAP (RFC 6887 11.1) of port for peer p: the client address is p's,
 * and the nonce names (address, port), so that a renewal or delete of a
 * mapping repeats the nonce it was made with.  PCP_MAP_LEN bytes.
 */
static size_t pcp_map_request(const struct map_opts *o, const struct peer *p, uint16_t port, uint32_t lifetime,
			      uint8_t *buf)
{
	uint8_t *d = buf + PCP_HEADER_LEN;

	memset(buf, 0, PCP_MAP_LEN);
	buf[0] = PCP_VERSION;
	buf[1] = PCP_OP_MAP;
	proto_put32(buf + 4, lifetime);
	buf[18] = buf[19] = 0xff;
	memcpy(buf + 20, &p->addr, 4);
	memcpy(d, &p->addr, 4);
	proto_put16(d + 4, port);
	memcpy(d + 6, "bench!", 6);
	d[12] = o->opcode == NATPMP_OP_MAP_UDP ? IPPROTO_UDP : IPPROTO_TCP;
	proto_put16(d + 16, port);
	d[30] = d[31] = 0xff; /* suggested external address ::ffff:0.0.0.0: no wish */
	return PCP_MAP_LEN;
}

/* Request j of peer p (its j-th own request) into buf; its internal port in *port. */
static size_t map_request(const struct map_opts *o, const struct peer *p, uint64_t j, uint8_t *buf, uint16_t *port)
{
	uint32_t lifetime = o->lifetime;

	buf[0] = NATPMP_VERSION;
	if (o->scenario == SC_ADDRESS) {
		buf[1] = NATPMP_OP_ADDRESS;
		*port = 0;
		return PROTO_ADDRESS_REQUEST_LEN;
	}
	switch (o->scenario) {
	case SC_RENEW:
		*port = (uint16_t)(o->first_port + j % p->cycle);
		break;
	case SC_DELETE_ALL:
		*port = 0;
		lifetime = 0;
		break;
	case SC_DELETE:
		lifetime = 0;
		/* fall through */
	default:
		*port = (uint16_t)(o->first_port + j);
		break;
	}
	if (o->pcp)
		return pcp_map_request(o, p, *port, lifetime, buf);
	/* RFC 6886 3.3: bytes 2-3 are reserved and zero; suggested external port 0 lets the server pick. */
	buf[1] = o->opcode;
	memset(buf + 2, 0, 2);
	proto_put16(buf + 4, *port);
	proto_put16(buf + 6, 0);
	proto_put32(buf + 8, lifetime);
	return PROTO_MAP_REQUEST_LEN;
}

static void peer_set_total(struct map_run *r, struct peer *p, unsigned int k)
{
	const struct map_opts *o = r->o;

	switch (o->scenario) {
	case SC_DELETE_ALL:
		p->total = 1;
		break;
	case SC_RENEW:
		p->cycle = share(o->mappings, o->naddrs, k);
		p->total = p->cycle == 0 ? 0 : o->count_given ? share(o->count, o->naddrs, k) : UINT64_MAX;
		break;
	case SC_ADDRESS:
		p->total = o->count_given ? share(o->count, o->naddrs, k) : UINT64_MAX;
		break;
	default:
		/* Without -c, until the time is up or the address runs out of internal ports. */
		p->total = o->count_given ? share(o->count, o->naddrs, k) : 65536ULL - o->first_port;
		break;
	}
	if (p->total > 0)
		r->active++;
}

static int peer_open(struct map_run *r, struct peer *p)
{
	const struct map_opts *o = r->o;
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_addr = p->addr };
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	int want = (int)(o->window * BENCH_RCVBUF_PER_REQUEST);

	if (want < BENCH_MIN_RCVBUF)
		want = BENCH_MIN_RCVBUF;
	if ((p->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return cli_system_error(-errno, "socket");
	/*
	 * Replies the socket has no room for would count as lost against the server.
	 * SO_RCVBUFFORCE passes net.core.rmem_max as root; without root the plain
	 * option's capped size will have to do.
	 */
	if (setsockopt(p->fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
		setsockopt(p->fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	if (bind(p->fd, (const struct sockaddr *)&local, sizeof(local)) < 0) {
		int err = -errno;

		if (err == -EADDRNOTAVAIL)
			fprintf(stderr, BENCH_NAME ": bind %s: the address is not configured here (-a, -n)\n",
				addr_str(p->addr, a));
		else
			cli_system_error(err, "bind %s", addr_str(p->addr, a));
		return err;
	}
	/* Connected: the kernel drops datagrams from anyone but the server, and reports ICMP errors. */
	if (connect(p->fd, (const struct sockaddr *)&o->server, sizeof(o->server)) < 0)
		return cli_system_error(-errno, "connect %s to %s", addr_str(p->addr, a), addr_str(o->server.sin_addr, g));
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, p->fd, &ev) < 0)
		return cli_system_error(-errno, "epoll_ctl");
	if (!(p->slots = calloc(o->window, sizeof(*p->slots))) ||
	    !(p->free_slots = malloc(o->window * sizeof(*p->free_slots))))
		return cli_system_error(-ENOMEM, "window of %u", o->window);
	for (unsigned int i = 0; i < o->window; i++)
		p->free_slots[i] = o->window - 1 - i;
	p->nfree = o->window;
	return 0;
}

static int peer_watch_out(struct map_run *r, struct peer *p, bool out)
{
	struct epoll_event ev = { .events = EPOLLIN | (out ? EPOLLOUT : 0), .data.ptr = p };

	p->blocked = out;
	if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, p->fd, &ev) < 0)
		return cli_system_error(-errno, "epoll_ctl");
	return 0;
}

/* Sends peer p's next requests until its window is full, its work done or the socket full. */
static int peer_send(struct map_run *r, struct peer *p)
{
	const struct map_opts *o = r->o;
	struct mmsghdr msgs[BENCH_BATCH];
	struct iovec iov[BENCH_BATCH];
	uint8_t buf[BENCH_BATCH][PCP_MAP_LEN];
	uint16_t ports[BENCH_BATCH];
	char a[INET_ADDRSTRLEN];
	int64_t now;
	int sent;

	while (!r->stopping && !p->blocked && p->nfree > 0 && p->next < p->total) {
		uint64_t left = p->total - p->next;
		unsigned int n = p->nfree < BENCH_BATCH ? p->nfree : BENCH_BATCH;

		if (left < n)
			n = (unsigned int)left;
		memset(msgs, 0, n * sizeof(*msgs));
		for (unsigned int i = 0; i < n; i++) {
			iov[i].iov_base = buf[i];
			iov[i].iov_len = map_request(o, p, p->next + i, buf[i], &ports[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		now = cli_now_us();
		sent = sendmmsg(p->fd, msgs, n, 0);
		if (sent < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return peer_watch_out(r, p, true);
			/* An earlier request's ICMP error, reported here instead; this batch never left. */
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
				r->icmp++;
				continue;
			}
			/* No EPOLLOUT follows ENOBUFS: the main loop comes back soon instead. */
			if (errno == ENOBUFS) {
				r->retry_soon = true;
				return 0;
			}
			return cli_system_error(-errno, "send from %s", addr_str(p->addr, a));
		}
		for (int i = 0; i < sent; i++) {
			struct slot *s = &p->slots[p->free_slots[--p->nfree]];

			s->sent_us = now;
			s->seq = r->seq++;
			s->port = ports[i];
			s->opcode = buf[i][1];
			s->used = true;
		}
		if (r->next_expiry_us == INT64_MAX && sent > 0)
			r->next_expiry_us = now + (int64_t)o->timeout_ms * 1000;
		p->next += (uint64_t)sent;
		p->in_flight += (unsigned int)sent;
		r->in_flight += (uint64_t)sent;
		r->sent += (uint64_t)sent;
		if (p->next == p->total)
			r->active--;
	}
	return 0;
}

static void slot_free(struct map_run *r, struct peer *p, struct slot *s)
{
	s->used = false;
	p->free_slots[p->nfree++] = (uint32_t)(s - p->slots);
	p->in_flight--;
	r->in_flight--;
}

/* The oldest request in flight on p with this opcode (and internal port, if by_port). */
static struct slot *peer_match(const struct map_run *r, struct peer *p, uint8_t opcode, bool by_port, uint16_t port)
{
	struct slot *best = NULL;

	for (unsigned int i = 0; i < r->o->window && p->in_flight > 0; i++) {
		struct slot *s = &p->slots[i];

		if (!s->used || s->opcode != opcode || (by_port && s->port != port))
			continue;
		if (!best || s->seq < best->seq)
			best = s;
	}
	return best;
}

static int map_reply(struct map_run *r, struct peer *p, const uint8_t *buf, size_t len, int64_t now)
{
	struct slot *s = NULL;
	uint8_t op;
	uint16_t result;

	/* PCP: matched on its opcode (MAP) and internal port, as the slot recorded them. */
	if (r->o->pcp) {
		if (len < PCP_HEADER_LEN || buf[0] != PCP_VERSION || buf[1] != (PCP_OP_MAP | PCP_R)) {
			r->stray++;
			return 0;
		}
		result = buf[3];
		s = peer_match(r, p, PCP_OP_MAP, len >= PCP_MAP_LEN, len >= PCP_MAP_LEN ? proto_get16(buf + 40) : 0);
		if (!s && result != PCP_SUCCESS)
			s = peer_match(r, p, PCP_OP_MAP, false, 0);
		goto matched;
	}
	if (len < PROTO_ERROR_REPLY_LEN || buf[0] != NATPMP_VERSION || !(buf[1] & NATPMP_OP_REPLY)) {
		r->stray++;
		return 0;
	}
	op = buf[1] & (uint8_t)~NATPMP_OP_REPLY;
	result = proto_get16(buf + 2);
	if (op == NATPMP_OP_ADDRESS) {
		if (result != NATPMP_RESULT_SUCCESS || len >= PROTO_ADDRESS_REPLY_LEN)
			s = peer_match(r, p, op, false, 0);
	} else if (op == NATPMP_OP_MAP_UDP || op == NATPMP_OP_MAP_TCP) {
		if (len >= PROTO_MAP_REPLY_LEN || (result != NATPMP_RESULT_SUCCESS && len < 10))
			s = peer_match(r, p, op, len >= 10, len >= 10 ? proto_get16(buf + 8) : 0);
		/* An error reply need not echo the internal port faithfully: then the oldest of its opcode. */
		if (!s && result != NATPMP_RESULT_SUCCESS)
			s = peer_match(r, p, op, false, 0);
	}
matched:
	if (!s) {
		r->stray++;
		return 0;
	}
	if (result == NATPMP_RESULT_SUCCESS)
		r->ok++;
	else
		r->failed++;
	r->codes[result]++;
	r->last_reply_us = now;
	slot_free(r, p, s);
	/* slot_free() leaves sent_us as it was. */
	return samples_add(&r->lat, now - s->sent_us);
}

static int peer_receive(struct map_run *r, struct peer *p)
{
	static uint8_t rx[BENCH_BATCH][BENCH_RX_LEN];
	struct mmsghdr msgs[BENCH_BATCH];
	struct iovec iov[BENCH_BATCH];
	char a[INET_ADDRSTRLEN];
	int64_t now;
	int n, err;

	for (;;) {
		memset(msgs, 0, sizeof(msgs));
		for (int i = 0; i < BENCH_BATCH; i++) {
			iov[i].iov_base = rx[i];
			iov[i].iov_len = sizeof(rx[i]);
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
		}
		n = recvmmsg(p->fd, msgs, BENCH_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH) {
				r->icmp++;
				continue;
			}
			return cli_system_error(-errno, "receive on %s", addr_str(p->addr, a));
		}
		/* One clock reading for the batch: all of it was queued by then. */
		now = cli_now_us();
		for (int i = 0; i < n; i++)
			if ((err = map_reply(r, p, rx[i], msgs[i].msg_len, now)) < 0)
				return err;
		if (n < BENCH_BATCH)
			return 0;
	}
}

/* Counts the requests older than the timeout as lost, and finds when the next one will be. */
static void map_expire(struct map_run *r, int64_t now)
{
	int64_t timeout = (int64_t)r->o->timeout_ms * 1000;

	r->next_expiry_us = INT64_MAX;
	for (unsigned int k = 0; k < r->o->naddrs && r->in_flight > 0; k++) {
		struct peer *p = &r->peers[k];

		for (unsigned int i = 0; i < r->o->window && p->in_flight > 0; i++) {
			struct slot *s = &p->slots[i];

			if (!s->used)
				continue;
			if (s->sent_us + timeout <= now) {
				r->lost++;
				slot_free(r, p, s);
			} else if (s->sent_us + timeout < r->next_expiry_us) {
				r->next_expiry_us = s->sent_us + timeout;
			}
		}
	}
}

static int map_send_all(struct map_run *r)
{
	int err;

	r->retry_soon = false;
	for (unsigned int k = 0; k < r->o->naddrs; k++)
		if ((err = peer_send(r, &r->peers[k])) < 0)
			return err;
	return 0;
}

static int map_loop(struct map_run *r)
{
	struct epoll_event evs[BENCH_BATCH];
	int64_t now, wake;
	int n, err;

	r->start_us = cli_now_us();
	r->stop_us = r->start_us + (int64_t)(r->o->seconds ? r->o->seconds : BENCH_CAP_SECONDS) * 1000000;
	if ((err = map_send_all(r)) < 0)
		return err;
	for (;;) {
		now = cli_now_us();
		if (!r->stopping && (now >= r->stop_us || bench_interrupted)) {
			if (!r->o->seconds && !bench_interrupted && r->active > 0)
				fprintf(stderr, BENCH_NAME ": stopped sending after %d s; -t sets another limit\n",
					BENCH_CAP_SECONDS);
			r->stopping = true;
		}
		if (r->in_flight == 0 && (r->active == 0 || r->stopping))
			return 0;
		wake = r->next_expiry_us;
		if (!r->stopping && r->stop_us < wake)
			wake = r->stop_us;
		n = epoll_wait(r->epfd, evs, BENCH_BATCH, r->retry_soon ? 1 : wait_ms(wake, now));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cli_system_error(-errno, "epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct peer *p = evs[i].data.ptr;

			if ((evs[i].events & EPOLLOUT) && (err = peer_watch_out(r, p, false)) < 0)
				return err;
			if ((evs[i].events & (EPOLLIN | EPOLLERR)) && (err = peer_receive(r, p)) < 0)
				return err;
			if ((err = peer_send(r, p)) < 0)
				return err;
		}
		if (cli_now_us() >= r->next_expiry_us || r->retry_soon) {
			map_expire(r, cli_now_us());
			if ((err = map_send_all(r)) < 0)
				return err;
		}
	}
}

static void map_print(struct map_run *r)
{
	int64_t end = r->last_reply_us ? r->last_reply_us : cli_now_us();
	double seconds = (double)(end - r->start_us) / 1e6;
	uint64_t answered = r->ok + r->failed;

	errno = 0;
	printf("result scenario=%s sent=%llu ok=%llu failed=%llu lost=%llu seconds=%.6f rate=%.1f",
	       scenario_names[r->o->scenario], (unsigned long long)r->sent, (unsigned long long)r->ok,
	       (unsigned long long)r->failed, (unsigned long long)r->lost, seconds,
	       seconds > 0 ? (double)answered / seconds : 0.0);
	print_latency(&r->lat);
	printf(" stray=%llu icmp_errors=%llu", (unsigned long long)r->stray, (unsigned long long)r->icmp);
	cli_end_line();
	if (!r->o->codes)
		return;
	for (unsigned int c = 1; c <= UINT16_MAX; c++) {
		if (r->codes[c]) {
			printf("failed result=%u count=%llu", c, (unsigned long long)r->codes[c]);
			cli_end_line();
		}
	}
}

static int run_map(const struct map_opts *o)
{
	struct map_run r;
	char n[16];
	int err = 0;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.epfd = -1;
	r.next_expiry_us = INT64_MAX;
	snprintf(n, sizeof(n), "%u", o->naddrs);
	if ((err = raise_nofile(o->naddrs + 16, "-n NADDRS", n)) < 0)
		return err;
	if (!(r.peers = calloc(o->naddrs, sizeof(*r.peers))) || !(r.codes = calloc(UINT16_MAX + 1, sizeof(*r.codes)))) {
		err = cli_system_error(-ENOMEM, "%u addresses", o->naddrs);
		goto out;
	}
	for (unsigned int k = 0; k < o->naddrs; k++)
		r.peers[k].fd = -1;
	/* Reserved up front so that no realloc copies a big array in the middle of the measurement. */
	if (o->count_given && (err = samples_reserve(&r.lat, o->count < (1u << 24) ? o->count : (1u << 24))) < 0)
		goto out;
	if ((r.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		err = cli_system_error(-errno, "epoll_create1");
		goto out;
	}
	for (unsigned int k = 0; k < o->naddrs; k++) {
		struct peer *p = &r.peers[k];

		p->addr.s_addr = htonl(ntohl(o->first.s_addr) + k);
		if ((err = peer_open(&r, p)) < 0)
			goto out;
		peer_set_total(&r, p, k);
	}
	if ((err = map_loop(&r)) == 0)
		map_print(&r);
out:
	if (r.peers) {
		for (unsigned int k = 0; k < o->naddrs; k++) {
			if (r.peers[k].fd >= 0)
				close(r.peers[k].fd);
			free(r.peers[k].slots);
			free(r.peers[k].free_slots);
		}
	}
	if (r.epfd >= 0)
		close(r.epfd);
	free(r.peers);
	free(r.codes);
	free(r.lat.v);
	return err;
}

/* ---- accept ---- */

static int accept_parse(struct accept_opts *o, int argc, char **argv)
{
	uint16_t port;
	int opt;

	memset(o, 0, sizeof(*o));
	o->local.sin_family = AF_INET;
	o->local.sin_addr.s_addr = htonl(INADDR_ANY);
	o->local6.sin6_family = AF_INET6;
	while ((opt = getopt_long(argc, argv, ":b:p:t:h", bench_long_options, NULL)) != -1) {
		switch (opt) {
		case 'b':
			/* An IPv6 address: a pinhole's listener. */
			if (strchr(optarg, ':')) {
				if (inet_pton(AF_INET6, optarg, &o->local6.sin6_addr) != 1)
					return cli_usage_error("-b ADDR", optarg, "not an IPv4 or IPv6 address");
				o->v6 = true;
				break;
			}
			if (cli_parse_ipv4("-b ADDR", optarg, &o->local.sin_addr) < 0)
				return -EINVAL;
			break;
		case 'p':
			if (cli_parse_port("-p PORT", optarg, 1, &port) < 0)
				return -EINVAL;
			o->local.sin_port = o->local6.sin6_port = htons(port);
			o->port_given = true;
			break;
		case 't':
			if (cli_parse_uint("-t SECONDS", optarg, 1, BENCH_MAX_SECONDS, &o->seconds) < 0)
				return -EINVAL;
			break;
		case 'h':
		case 'H':
			return 1;
		default:
			return option_error(opt, "accept", argv);
		}
	}
	if (optind < argc)
		return cli_usage_message("unexpected argument", argv[optind]);
	if (!o->port_given)
		return cli_usage_message("accept needs -p PORT", NULL);
	if (!o->seconds)
		return cli_usage_message("accept needs -t SECONDS", NULL);
	return 0;
}

static int run_accept(const struct accept_opts *o)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char a[INET_ADDRSTRLEN];
	unsigned long long accepted = 0;
	int64_t deadline, now;
	int fd, epfd = -1, one = 1, n, c, err = 0;

	if ((fd = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return cli_system_error(-errno, "socket");
	/*
	 * A plain close (FIN), not SO_LINGER 0: an RST from here could reach a
	 * connect-mode client before it has looked at its socket.  Its own RST
	 * then clears this side out of FIN_WAIT, so nothing piles up in TIME_WAIT.
	 */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		err = cli_system_error(-errno, "SO_REUSEADDR");
		goto out;
	}
	if (o->v6 ? bind(fd, (const struct sockaddr *)&o->local6, sizeof(o->local6)) < 0
		  : bind(fd, (const struct sockaddr *)&o->local, sizeof(o->local)) < 0) {
		err = cli_system_error(-errno, "bind %s:%u", addr_str(o->local.sin_addr, a), ntohs(o->local.sin_port));
		goto out;
	}
	/* The kernel caps the backlog at net.core.somaxconn. */
	if (listen(fd, 65535) < 0) {
		err = cli_system_error(-errno, "listen");
		goto out;
	}
	if ((epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		err = cli_system_error(-errno, "epoll");
		goto out;
	}
	/* Ready before the clock starts, so that a script may start the other end once this line is out. */
	if (o->v6) {
		char a6[INET6_ADDRSTRLEN];
		fprintf(stderr, BENCH_NAME ": listening on [%s]:%u\n", inet_ntop(AF_INET6, &o->local6.sin6_addr, a6, sizeof(a6)),
			ntohs(o->local6.sin6_port));
	} else {
		fprintf(stderr, BENCH_NAME ": listening on %s:%u\n", addr_str(o->local.sin_addr, a), ntohs(o->local.sin_port));
	}
	deadline = cli_now_us() + (int64_t)o->seconds * 1000000;
	while (!bench_interrupted && (now = cli_now_us()) < deadline) {
		n = epoll_wait(epfd, &ev, 1, wait_ms(deadline, now));
		if (n < 0 && errno != EINTR) {
			err = cli_system_error(-errno, "epoll_wait");
			goto out;
		}
		if (n <= 0)
			continue;
		/* Drain the queue, but look at the clock now and then: under load it may never run dry. */
		for (unsigned int i = 0; i < 4096; i++) {
			if ((c = accept4(fd, NULL, NULL, SOCK_CLOEXEC)) < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					break;
				/* A connection reset before it was accepted, or a signal: take the next one. */
				if (errno == ECONNABORTED || errno == EINTR || errno == EPROTO)
					continue;
				err = cli_system_error(-errno, "accept");
				goto out;
			}
			close(c);
			accepted++;
		}
	}
	errno = 0;
	printf("accepted %llu", accepted);
	cli_end_line();
out:
	if (epfd >= 0)
		close(epfd);
	close(fd);
	return err;
}

/* ---- connect ---- */

static int connect_parse(struct connect_opts *o, int argc, char **argv)
{
	uint16_t port;
	int opt;

	memset(o, 0, sizeof(*o));
	o->server.sin_family = AF_INET;
	o->server6.sin6_family = AF_INET6;
	o->local.sin_family = AF_INET;
	o->concurrency = 1;
	o->timeout_ms = BENCH_TIMEOUT_MS;
	/* -h is HOST here, so help is --help only. */
	while ((opt = getopt_long(argc, argv, ":h:p:t:w:b:T:x", bench_long_options, NULL)) != -1) {
		switch (opt) {
		case 'h':
			/* An IPv6 address: a pinhole's host. */
			if (strchr(optarg, ':')) {
				if (inet_pton(AF_INET6, optarg, &o->server6.sin6_addr) != 1)
					return cli_usage_error("-h HOST", optarg, "not an IPv4 or IPv6 address");
				o->v6 = true;
			} else if (cli_parse_ipv4("-h HOST", optarg, &o->server.sin_addr) < 0) {
				return -EINVAL;
			}
			o->server_given = true;
			break;
		case 'p':
			if (cli_parse_port("-p PORT", optarg, 1, &port) < 0)
				return -EINVAL;
			o->server.sin_port = o->server6.sin6_port = htons(port);
			o->port_given = true;
			break;
		case 't':
			if (cli_parse_uint("-t SECONDS", optarg, 1, BENCH_MAX_SECONDS, &o->seconds) < 0)
				return -EINVAL;
			break;
		case 'w':
			if (cli_parse_uint("-w CONCURRENCY", optarg, 1, BENCH_MAX_CONCURRENCY, &o->concurrency) < 0)
				return -EINVAL;
			break;
		case 'b':
			if (cli_parse_ipv4("-b SRCADDR", optarg, &o->local.sin_addr) < 0)
				return -EINVAL;
			o->local_given = true;
			break;
		case 'T':
			if (cli_parse_uint("-T MS", optarg, 1, 60000, &o->timeout_ms) < 0)
				return -EINVAL;
			break;
		case 'x':
			o->codes = true;
			break;
		case 'H':
			return 1;
		default:
			return option_error(opt, "connect", argv);
		}
	}
	if (optind < argc)
		return cli_usage_message("unexpected argument", argv[optind]);
	if (!o->server_given)
		return cli_usage_message("connect needs -h HOST", NULL);
	if (o->v6 && o->local_given)
		return cli_usage_message("-b SRCADDR is IPv4 only: leave it out with an IPv6 -h HOST", NULL);
	if (!o->port_given)
		return cli_usage_message("connect needs -p PORT", NULL);
	if (!o->seconds)
		return cli_usage_message("connect needs -t SECONDS", NULL);
	return 0;
}

struct connect_run {
	const struct connect_opts *o;
	struct conn *conns;
	uint32_t *free_conns;
	unsigned int nfree;
	int epfd;
	int64_t next_expiry_us;
	unsigned long long ok, failed;
	uint64_t *errs; /* failures per errno */
	struct samples lat;
};

static void conn_done(struct connect_run *r, struct conn *c, int error)
{
	close(c->fd);
	c->fd = -1;
	r->free_conns[r->nfree++] = (uint32_t)(c - r->conns);
	if (error) {
		r->failed++;
		r->errs[error > 0 && error < BENCH_MAX_ERRNO ? error : 0]++;
	} else {
		r->ok++;
	}
}

/* Starts one connection in a free slot; 0, or -errno when the system (not the network) fails. */
static int conn_start(struct connect_run *r)
{
	const struct connect_opts *o = r->o;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	struct conn *c = &r->conns[r->free_conns[--r->nfree]];
	struct epoll_event ev = { .events = EPOLLOUT, .data.u32 = (uint32_t)(c - r->conns) };
	int one = 1, err;

	if ((c->fd = socket(o->v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		err = -errno;
		c->fd = -1;
		r->nfree++;
		return cli_system_error(err, "socket");
	}
	/* RST on close: no TIME_WAIT, so the ephemeral ports last however long the run is. */
	if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) < 0)
		goto system;
	/* The port is picked at connect(), per destination, instead of at bind() among all ports. */
	if (o->local_given && (setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) < 0 ||
			       bind(c->fd, (const struct sockaddr *)&o->local, sizeof(o->local)) < 0))
		goto system;
	c->start_us = cli_now_us();
	if ((o->v6 ? connect(c->fd, (const struct sockaddr *)&o->server6, sizeof(o->server6))
		   : connect(c->fd, (const struct sockaddr *)&o->server, sizeof(o->server))) == 0) {
		conn_done(r, c, 0);
		return samples_add(&r->lat, cli_now_us() - c->start_us);
	}
	if (errno != EINPROGRESS) {
		/* Refused, unreachable, out of ports: a result to count, not a reason to stop. */
		conn_done(r, c, errno);
		return 0;
	}
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		goto system;
	if (r->next_expiry_us == INT64_MAX)
		r->next_expiry_us = c->start_us + (int64_t)o->timeout_ms * 1000;
	return 0;
system:
	err = -errno;
	close(c->fd);
	c->fd = -1;
	r->nfree++;
	return cli_system_error(err, "connection socket");
}

static void connect_expire(struct connect_run *r, int64_t now)
{
	int64_t timeout = (int64_t)r->o->timeout_ms * 1000;

	r->next_expiry_us = INT64_MAX;
	for (unsigned int i = 0; i < r->o->concurrency; i++) {
		struct conn *c = &r->conns[i];

		if (c->fd < 0)
			continue;
		if (c->start_us + timeout <= now)
			conn_done(r, c, ETIMEDOUT);
		else if (c->start_us + timeout < r->next_expiry_us)
			r->next_expiry_us = c->start_us + timeout;
	}
}

static int connect_loop(struct connect_run *r, int64_t start, int64_t *end)
{
	const struct connect_opts *o = r->o;
	struct epoll_event evs[BENCH_BATCH];
	int64_t now, deadline = start + (int64_t)o->seconds * 1000000, wake;
	bool stopping = false;
	int n, err, timeout;

	for (;;) {
		now = cli_now_us();
		if (now >= deadline || bench_interrupted)
			stopping = true;
		/* A batch at a time: connections that fail at once must not keep the loop from epoll. */
		for (unsigned int i = 0; !stopping && r->nfree > 0 && i < BENCH_BATCH; i++)
			if ((err = conn_start(r)) < 0)
				return err;
		if (stopping && r->nfree == o->concurrency)
			break;
		wake = r->next_expiry_us;
		if (!stopping && deadline < wake)
			wake = deadline;
		timeout = !stopping && r->nfree > 0 ? 0 : wait_ms(wake, now);
		n = epoll_wait(r->epfd, evs, BENCH_BATCH, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return cli_system_error(-errno, "epoll_wait");
		}
		now = cli_now_us();
		for (int i = 0; i < n; i++) {
			struct conn *c = &r->conns[evs[i].data.u32];
			socklen_t len = sizeof(err);

			if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err == 0 && (evs[i].events & (EPOLLERR | EPOLLHUP)) && !(evs[i].events & EPOLLOUT))
				err = EIO;
			/*
			 * A refused SYN gives ECONNREFUSED; a reset only comes after the
			 * handshake, from a server that closed at once: established, then.
			 */
			if (err == ECONNRESET || err == EPIPE)
				err = 0;
			if (err == 0 && (err = samples_add(&r->lat, now - c->start_us)) < 0)
				return err;
			if (err == 0)
				*end = now;
			conn_done(r, c, err);
		}
		if (now >= r->next_expiry_us)
			connect_expire(r, now);
	}
	return 0;
}

static int run_connect(const struct connect_opts *o)
{
	struct connect_run r;
	int64_t start, end = 0;
	double seconds;
	char w[16];
	int err;

	memset(&r, 0, sizeof(r));
	r.o = o;
	r.next_expiry_us = INT64_MAX;
	snprintf(w, sizeof(w), "%u", o->concurrency);
	if ((err = raise_nofile(o->concurrency + 16, "-w CONCURRENCY", w)) < 0)
		return err;
	if ((r.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return cli_system_error(-errno, "epoll_create1");
	if (!(r.conns = malloc(o->concurrency * sizeof(*r.conns))) ||
	    !(r.free_conns = malloc(o->concurrency * sizeof(*r.free_conns))) ||
	    !(r.errs = calloc(BENCH_MAX_ERRNO, sizeof(*r.errs)))) {
		err = cli_system_error(-ENOMEM, "%u connections", o->concurrency);
		goto out;
	}
	for (unsigned int i = 0; i < o->concurrency; i++) {
		r.conns[i].fd = -1;
		r.free_conns[i] = o->concurrency - 1 - i;
	}
	r.nfree = o->concurrency;
	start = cli_now_us();
	if ((err = connect_loop(&r, start, &end)) < 0)
		goto out;
	seconds = (double)((end ? end : cli_now_us()) - start) / 1e6;
	errno = 0;
	printf("result scenario=connect ok=%llu failed=%llu seconds=%.6f rate=%.1f", r.ok, r.failed, seconds,
	       seconds > 0 ? (double)r.ok / seconds : 0.0);
	print_latency(&r.lat);
	cli_end_line();
	for (int e = 0; o->codes && e < BENCH_MAX_ERRNO; e++) {
		const char *name = e ? strerrorname_np(e) : NULL;

		if (!r.errs[e])
			continue;
		if (name)
			printf("failed errno=%s count=%llu", name, (unsigned long long)r.errs[e]);
		else
			printf("failed errno=%d count=%llu", e, (unsigned long long)r.errs[e]);
		cli_end_line();
	}
out:
	if (r.conns)
		for (unsigned int i = 0; i < o->concurrency; i++)
			if (r.conns[i].fd >= 0)
				close(r.conns[i].fd);
	close(r.epfd);
	free(r.conns);
	free(r.free_conns);
	free(r.errs);
	free(r.lat.v);
	return err;
}

/* ---- main ---- */

static int run(int argc, char **argv)
{
	const char *mode;
	int r;

	opterr = 0;
	if (argc < 2)
		return cli_usage_message("no mode: use map, accept or connect", NULL);
	mode = argv[1];
	if (strcmp(mode, "-h") == 0 || strcmp(mode, "--help") == 0 || strcmp(mode, "help") == 0)
		return 1;
	/* getopt starts after the mode; argv[0] stays for its messages. */
	argv[1] = argv[0];
	argc--;
	argv++;
	if (strcmp(mode, "map") == 0) {
		struct map_opts o;

		if ((r = map_parse(&o, argc, argv)) != 0)
			return r;
		return run_map(&o) < 0 ? -EIO : 0;
	}
	if (strcmp(mode, "accept") == 0) {
		struct accept_opts o;

		if ((r = accept_parse(&o, argc, argv)) != 0)
			return r;
		return run_accept(&o) < 0 ? -EIO : 0;
	}
	if (strcmp(mode, "connect") == 0) {
		struct connect_opts o;

		if ((r = connect_parse(&o, argc, argv)) != 0)
			return r;
		return run_connect(&o) < 0 ? -EIO : 0;
	}
	return cli_usage_error("mode", mode, "use map, accept or connect");
}

int main(int argc, char **argv)
{
	int r, status;

	cli_set_name(BENCH_NAME);
	/* Line by line, so a script reading a running instance sees each line at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (install_signals() < 0)
		return EXIT_SYSTEM;
	r = run(argc, argv);
	if (r > 0) {
		errno = 0;
		bench_usage(stdout);
		cli_note_write_error();
		status = EXIT_DONE;
	} else {
		status = r == -EINVAL ? EXIT_USAGE : r < 0 ? EXIT_SYSTEM : EXIT_DONE;
	}
	return cli_finish_output() < 0 ? EXIT_SYSTEM : status;
}
