/*
 * client.c - natpmp-client: send one NAT-PMP or PCP request, print every answer.
 *
 * People run it by hand and the integration tests grep its output, so each
 * datagram becomes exactly one line of key=value pairs whose keys and order
 * never change, and the exit status tells what happened (see client_usage()).
 * The socket stays unconnected: an answer from an unexpected address or port
 * is still received, and printed with its real source, which is what the
 * tests check.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "client_impl.h"
#include "tools/cli.h"
#include "wire/pcp.h"
#include "wire/proto.h"

#define CLIENT_NAME "natpmp-client"
#define CLIENT_TRIES 9		/* RFC 6886 3.1 */
#define CLIENT_TIMEOUT_MS 250	/* RFC 6886 3.1, doubled after each try */
#define CLIENT_LIFETIME 3600
#define CLIENT_LISTEN_SECONDS 5
/* RFC 6886 3.1's last interval: doubling on past it would let -t 60000 -r 20 wait a year. */
#define CLIENT_MAX_INTERVAL_MS 64000
/* raw: more than either protocol's 1100-byte limit, so that a server's answer to an oversize request can be seen. */
#define CLIENT_MAX_RAW 1500

enum client_exit {
	EXIT_REPLY_OK = 0,
	EXIT_REPLY_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_NO_REPLY = 3,
	EXIT_SYSTEM = 4,
};

enum client_command { CMD_REQUEST, CMD_RAW, CMD_LISTEN };

struct client {
	union sockname server;
	bool server_given;
	union sockname local;
	bool local_port_given;
	unsigned int tries;
	unsigned int timeout_ms;
	unsigned int wait_ms;
	enum client_command cmd;
	uint8_t request[CLIENT_MAX_RAW];
	size_t request_len;
	unsigned int listen_seconds;
	/* PCP: the request's client address field is filled in once the source address is known. */
	bool pcp;
	bool nonce_given;
	uint8_t nonce[PCP_NONCE_LEN];
	bool prefer_failure;
	struct in_addr suggested_address; /* INADDR_ANY: none (::ffff:0.0.0.0) */
};

static const struct option client_options[] = {
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* The first failed write's errno: stdout is line buffered, so by exit it is long gone. */

/* Larger than any IPv4 UDP payload, so no datagram is ever cut short. */
static uint8_t client_rxbuf[65536];

static void client_usage(FILE *out)
{
	fputs("usage: natpmp-client [-g GATEWAY] [-p PORT] [-b SRCADDR] [-s SRCPORT]\n"
	      "                     [-r TRIES] [-t MS] [-w MS] [-n NONCE] [-a ADDRESS] [-F]\n"
	      "                     COMMAND\n"
	      "\n"
	      "A NAT-PMP (RFC 6886) and PCP (RFC 6887) client: sends one request and prints\n"
	      "each datagram that answers it as one line of key=value pairs.\n"
	      "\n"
	      "  -g GATEWAY  server address, IPv4 or IPv6 (fe80::1%IF for link-local; default:\n"
	      "              the IPv4 default route's gateway)\n"
	      "  -p PORT     server port (default 5351)\n"
	      "  -b SRCADDR  local address to bind (default any; listen -b :: hears IPv6)\n"
	      "  -s SRCPORT  local port to bind (default 0: any; listen: 5350)\n"
	      "  -r TRIES    sends before giving up, 1 to 20 (default 9)\n"
	      "  -t MS       wait for the first send, 1 to 60000 (default 250); doubles after\n"
	      "              each send, up to 64000\n"
	      "  -w MS       after the first reply, print further datagrams for MS more ms,\n"
	      "              0 to 60000 (default 0)\n"
	      "  -n NONCE    pcp-map, pcp-unmap: the mapping nonce, 24 hex digits (default:\n"
	      "              random; a renewal or delete must repeat the nonce it was made with)\n"
	      "  -a ADDRESS  pcp-map: the suggested external IPv4 address (default none)\n"
	      "  -F          pcp-map: PREFER_FAILURE, the suggested port and address or nothing\n"
	      "  -h, --help  this text\n"
	      "\n"
	      "Commands:\n"
	      "  address                        ask for the external address (opcode 0)\n"
	      "  map udp|tcp INTERNAL [SUGGESTED [LIFETIME]]\n"
	      "                                 map a port (opcode 1 or 2); SUGGESTED defaults\n"
	      "                                 to INTERNAL, LIFETIME to 3600 seconds\n"
	      "  unmap udp|tcp INTERNAL         delete a mapping (lifetime 0, suggested 0);\n"
	      "                                 INTERNAL 0 deletes all of that protocol\n"
	      "  pcp-announce                   PCP ANNOUNCE: is a PCP server there, its epoch\n"
	      "  pcp-map udp|tcp INTERNAL [SUGGESTED [LIFETIME]]\n"
	      "                                 PCP MAP, defaults as for map\n"
	      "  pcp-unmap udp|tcp INTERNAL     PCP MAP with lifetime 0 (give -n)\n"
	      "  raw HEX...                     send these bytes as they are, at most 1500,\n"
	      "                                 e.g. raw 01 00 or raw 0100\n"
	      "  listen [SECONDS]               for SECONDS (1 to 3600, default 5), print every\n"
	      "                                 datagram that reaches SRCADDR:SRCPORT (default\n"
	      "                                 0.0.0.0:5350, member of 224.0.0.1)\n"
	      "\n"
	      "Output, one line per datagram; a field appears only if its bytes arrived, and\n"
	      "hex= (all bytes) when the length is not the opcode's, and always for raw:\n"
	      "  reply from=ADDR:PORT len=N version=V opcode=OP result=R epoch=E\n"
	      "        [address=A | internal=I external=X lifetime=L] [hex=H] rtt_us=U\n"
	      "  PCP:  reply from=ADDR:PORT len=N version=2 opcode=OP result=R lifetime=L\n"
	      "        epoch=E [nonce=HEX protocol=P internal=I external=X address=A]\n"
	      "        [hex=H] rtt_us=U\n"
	      "  listening on ADDR:PORT for S s             (listen: first, once it listens)\n"
	      "  datagram t=MS from=ADDR:PORT len=N ...    (listen; MS since it started)\n"
	      "  no reply\n"
	      "\n"
	      "Exit status: 0 result 0 (or listen done), 1 another result, 2 usage error,\n"
	      "3 no reply, 4 system error.\n",
	      out);
}

/* Callers clear errno before a line, so that it still holds the cause of a failed write here. */
static int64_t now_ms(void)
{
	return cli_now_us() / 1000;
}

static int hex_value(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Pairs of hex digits; spaces may separate pairs, within an argument or as separate arguments. */
static int parse_hex(struct client *c, int argc, char **argv)
{
	c->request_len = 0;
	for (int i = 0; i < argc; i++) {
		const char *s = argv[i];

		while (*s) {
			int hi, lo;

			if (isspace((unsigned char)*s)) {
				s++;
				continue;
			}
			hi = hex_value((unsigned char)s[0]);
			lo = hi < 0 ? -1 : hex_value((unsigned char)s[1]);
			if (hi >= 0 && (s[1] == '\0' || isspace((unsigned char)s[1])))
				return cli_usage_error("hex", argv[i], "odd number of digits: write each byte as two");
			if (lo < 0)
				return cli_usage_error("hex", argv[i], "not hex digits: use e.g. 01 00 or 0100");
			if (c->request_len == CLIENT_MAX_RAW)
				return cli_usage_error("hex", argv[i], "the bytes come to more than 1500");
			c->request[c->request_len++] = (uint8_t)(hi << 4 | lo);
			s += 2;
		}
	}
	return 0;
}

/* A PCP request's header and MAP data (RFC 6887 7.1, 11.1); the client address is set before sending. */
static size_t pcp_request(struct client *c, uint8_t opcode, uint8_t protocol, uint16_t internal, uint16_t suggested,
			  uint32_t lifetime)
{
	uint8_t *p = c->request, *d = p + PCP_HEADER_LEN;

	memset(p, 0, PCP_MAP_LEN);
	p[0] = PCP_VERSION;
	p[1] = opcode;
	proto_put32(p + 4, lifetime);
	if (opcode == PCP_OP_ANNOUNCE)
		return PCP_HEADER_LEN;
	memcpy(d, c->nonce, PCP_NONCE_LEN);
	d[12] = protocol;
	proto_put16(d + 16, internal);
	proto_put16(d + 18, suggested);
	d[30] = d[31] = 0xff;
	memcpy(d + 32, &c->suggested_address, 4);
	if (!c->prefer_failure)
		return PCP_MAP_LEN;
	p[PCP_MAP_LEN] = PCP_OPTION_PREFER_FAILURE;
	return PCP_MAP_LEN + 4;
}

static int parse_map(struct client *c, bool unmap, int argc, char **argv)
{
	uint16_t internal, suggested;
	unsigned long long lifetime = CLIENT_LIFETIME;
	uint8_t protocol;

	if (argc < 2)
		return cli_usage_message(unmap ? "unmap needs udp|tcp and INTERNAL" : "map needs udp|tcp and INTERNAL",
				     NULL);
	if (argc > (unmap ? 2 : 4))
		return cli_usage_message("unexpected argument", argv[unmap ? 2 : 4]);
	if (strcmp(argv[0], "udp") == 0)
		protocol = IPPROTO_UDP;
	else if (strcmp(argv[0], "tcp") == 0)
		protocol = IPPROTO_TCP;
	else
		return cli_usage_error("protocol", argv[0], "use udp or tcp");
	if (cli_parse_port("internal port", argv[1], 0, &internal) < 0)
		return -EINVAL;
	suggested = unmap ? 0 : internal;
	if (unmap)
		lifetime = 0;
	if (argc > 2 && cli_parse_port("suggested port", argv[2], 0, &suggested) < 0)
		return -EINVAL;
	if (argc > 3 && cli_parse_number("lifetime", argv[3], 0, UINT32_MAX, &lifetime) < 0)
		return -EINVAL;

	if (c->pcp)
		c->request_len = pcp_request(c, PCP_OP_MAP, protocol, internal, suggested, (uint32_t)lifetime);
	else
		c->request_len = proto_encode_map_request(c->request, protocol, internal, suggested, (uint32_t)lifetime);
	c->cmd = CMD_REQUEST;
	return 0;
}

static int parse_command(struct client *c, int argc, char **argv)
{
	const char *cmd;

	if (argc == 0)
		return cli_usage_message("no command: use address, map, unmap, pcp-announce, pcp-map, pcp-unmap, raw or listen",
					 NULL);
	cmd = argv[0];
	argc--;
	argv++;
	if (strcmp(cmd, "address") == 0) {
		if (argc > 0)
			return cli_usage_message("unexpected argument", argv[0]);
		c->request[0] = NATPMP_VERSION;
		c->request[1] = NATPMP_OP_ADDRESS;
		c->request_len = PROTO_ADDRESS_REQUEST_LEN;
		c->cmd = CMD_REQUEST;
		return 0;
	}
	if (strcmp(cmd, "map") == 0 || strcmp(cmd, "unmap") == 0)
		return parse_map(c, cmd[0] == 'u', argc, argv);
	if (strncmp(cmd, "pcp-", 4) == 0) {
		c->pcp = true;
		if (!c->nonce_given)
			arc4random_buf(c->nonce, sizeof(c->nonce));
		if (strcmp(cmd + 4, "map") == 0 || strcmp(cmd + 4, "unmap") == 0)
			return parse_map(c, cmd[4] == 'u', argc, argv);
		if (strcmp(cmd + 4, "announce") == 0) {
			if (argc > 0)
				return cli_usage_message("unexpected argument", argv[0]);
			c->request_len = pcp_request(c, PCP_OP_ANNOUNCE, 0, 0, 0, 0);
			c->cmd = CMD_REQUEST;
			return 0;
		}
	}
	if (strcmp(cmd, "raw") == 0) {
		/* raw "" is allowed: an empty datagram is a case worth testing. */
		if (argc == 0)
			return cli_usage_message("raw needs HEX, e.g. raw 01 00", NULL);
		c->cmd = CMD_RAW;
		return parse_hex(c, argc, argv);
	}
	if (strcmp(cmd, "listen") == 0) {
		c->cmd = CMD_LISTEN;
		c->listen_seconds = CLIENT_LISTEN_SECONDS;
		if (argc > 1)
			return cli_usage_message("unexpected argument", argv[1]);
		if (argc == 1 && cli_parse_uint("seconds", argv[0], 1, 3600, &c->listen_seconds) < 0)
			return -EINVAL;
		if (!c->local_port_given)
			sockname_set_port(&c->local, NATPMP_CLIENT_PORT);
		return 0;
	}
	return cli_usage_error("command", cmd, "use address, map, unmap, pcp-announce, pcp-map, pcp-unmap, raw or listen");
}

/*
 * An IPv4 or IPv6 address into a (port 0); a link-local IPv6 one may name
 * its interface, fe80::1%eth0.  0, or -EINVAL after a message.
 */
static int parse_address(const char *what, const char *s, union sockname *a)
{
	char host[INET6_ADDRSTRLEN + IFNAMSIZ + 2];
	char *pct;

	memset(a, 0, sizeof(*a));
	if (inet_pton(AF_INET, s, &a->v4.sin_addr) == 1) {
		a->v4.sin_family = AF_INET;
		return 0;
	}
	if (strlen(s) >= sizeof(host))
		return cli_usage_error(what, s, "not an IPv4 or IPv6 address");
	strcpy(host, s);
	if ((pct = strchr(host, '%')) != NULL)
		*pct++ = '\0';
	if (inet_pton(AF_INET6, host, &a->v6.sin6_addr) != 1)
		return cli_usage_error(what, s, "not an IPv4 or IPv6 address");
	a->v6.sin6_family = AF_INET6;
	if (pct && !(a->v6.sin6_scope_id = if_nametoindex(pct)))
		return cli_usage_error(what, s, "no such interface after the %");
	return 0;
}

/* 0 to go on, 1 for -h, -EINVAL after a message naming the bad argument. */
static int parse_args(struct client *c, int argc, char **argv)
{
	uint16_t port, server_port = NATPMP_SERVER_PORT, local_port = 0;
	int opt;

	memset(c, 0, sizeof(*c));
	c->server.v4.sin_family = AF_INET;
	c->local.v4.sin_family = AF_INET;
	c->local.v4.sin_addr.s_addr = htonl(INADDR_ANY);
	c->tries = CLIENT_TRIES;
	c->timeout_ms = CLIENT_TIMEOUT_MS;
	opterr = 0;
	/* "+": options end at the command, so its arguments are never taken for options. */
	while ((opt = getopt_long(argc, argv, "+:g:p:b:s:r:t:w:n:a:Fh", client_options, NULL)) != -1) {
		switch (opt) {
		case 'g':
			if (parse_address("gateway", optarg, &c->server) < 0)
				return -EINVAL;
			c->server_given = true;
			break;
		case 'p':
			if (cli_parse_port("port", optarg, 0, &port) < 0)
				return -EINVAL;
			server_port = port;
			break;
		case 'b':
			if (parse_address("source address", optarg, &c->local) < 0)
				return -EINVAL;
			break;
		case 's':
			if (cli_parse_port("source port", optarg, 0, &port) < 0)
				return -EINVAL;
			local_port = port;
			c->local_port_given = true;
			break;
		case 'r':
			if (cli_parse_uint("tries", optarg, 1, 20, &c->tries) < 0)
				return -EINVAL;
			break;
		case 't':
			if (cli_parse_uint("timeout", optarg, 1, 60000, &c->timeout_ms) < 0)
				return -EINVAL;
			break;
		case 'w':
			if (cli_parse_uint("wait", optarg, 0, 60000, &c->wait_ms) < 0)
				return -EINVAL;
			break;
		case 'n':
			c->request_len = 0;
			if (strlen(optarg) != 2 * PCP_NONCE_LEN || parse_hex(c, 1, &optarg) < 0 ||
			    c->request_len != PCP_NONCE_LEN)
				return cli_usage_error("nonce", optarg, "give 24 hex digits (12 bytes)");
			memcpy(c->nonce, c->request, PCP_NONCE_LEN);
			c->nonce_given = true;
			break;
		case 'a':
			if (cli_parse_ipv4("suggested address", optarg, &c->suggested_address) < 0)
				return -EINVAL;
			break;
		case 'F':
			c->prefer_failure = true;
			break;
		case 'h':
			return 1;
		case ':':
			fprintf(stderr, CLIENT_NAME ": -%c needs a value; see -h\n", optopt);
			return -EINVAL;
		default:
			/* optopt is 0 for an unknown long option, and the option's letter for --help=x. */
			if (optopt && strncmp(argv[optind - 1], "--", 2) != 0)
				fprintf(stderr, CLIENT_NAME ": unknown option '-%c'; see -h\n", optopt);
			else
				fprintf(stderr, CLIENT_NAME ": unknown option '%s'; see -h\n", argv[optind - 1]);
			return -EINVAL;
		}
	}
	sockname_set_port(&c->server, server_port);
	sockname_set_port(&c->local, local_port);
	if (c->server_given && c->server.sa.sa_family == AF_INET6 && c->local.sa.sa_family == AF_INET &&
	    c->local.v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
		/* An IPv6 server, no source given: any IPv6 source, the same port. */
		c->local.v6 = (struct sockaddr_in6){ .sin6_family = AF_INET6, .sin6_port = htons(local_port) };
	}
	if (c->server_given && c->local.sa.sa_family != c->server.sa.sa_family)
		return cli_usage_message("the source address (-b) and the gateway (-g) are of different families", NULL);
	if ((opt = parse_command(c, argc - optind, argv + optind)) != 0)
		return opt;
	if (c->server.sa.sa_family == AF_INET6 && c->cmd == CMD_REQUEST && !c->pcp)
		return cli_usage_message("NAT-PMP is IPv4 only: over IPv6 use pcp-announce, pcp-map or pcp-unmap", NULL);
	return 0;
}

/* The gateway of the default route with the lowest metric, as the kernel lists it. */
static int default_gateway(struct in_addr *gw)
{
	unsigned long dest, gateway, mask;
	unsigned int flags;
	long metric, best = 0;
	char line[512], ifname[32];
	bool found = false;
	FILE *f;

	if (!(f = fopen("/proc/net/route", "re")))
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		/* The header line fails here, at "Destination". */
		if (sscanf(line, "%31s %lx %lx %x %*d %*d %ld %lx", ifname, &dest, &gateway, &flags, &metric,
			   &mask) != 6)
			continue;
		if (dest != 0 || mask != 0 || gateway == 0 || (~flags & (RTF_UP | RTF_GATEWAY)))
			continue;
		if (found && metric >= best)
			continue;
		/* The kernel prints the network-order word as a native integer, so it goes back as it is. */
		gw->s_addr = (in_addr_t)gateway;
		best = metric;
		found = true;
	}
	fclose(f);
	return found ? 0 : -ENETUNREACH;
}

static int open_socket(const union sockname *local, bool shared, int *fdp)
{
	char buf[INET6_ADDRSTRLEN + 8];
	int fd, one = 1, err;

	if ((fd = socket(local->sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return cli_system_error(-errno, "socket");
	/* Several listeners may share 5350 (two tests at once, say); each gets every multicast datagram. */
	if (shared && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		err = -errno;
		close(fd);
		return cli_system_error(err, "SO_REUSEADDR");
	}
	if (bind(fd, &local->sa, sockname_len(local)) < 0) {
		err = -errno;
		close(fd);
		return cli_system_error(err, "bind %s", sin_str(local, buf));
	}
	*fdp = fd;
	return 0;
}

/* 1 when fd is readable before deadline (now_ms() time), 0 once the deadline has passed, or -errno. */
static int wait_readable(int fd, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int64_t left;
	int n;

	for (;;) {
		if ((left = deadline - now_ms()) <= 0)
			return 0;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return cli_system_error(-errno, "poll");
	}
}

/* 0 with a datagram in client_rxbuf, -EAGAIN when there was none after all, or -errno. */
static int receive(int fd, union sockname *from, size_t *len)
{
	struct iovec iov = { .iov_base = client_rxbuf, .iov_len = sizeof(client_rxbuf) };
	struct msghdr msg = { .msg_name = from, .msg_namelen = sizeof(*from), .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	memset(from, 0, sizeof(*from));
	n = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
			return -EAGAIN;
		return cli_system_error(-errno, "receive");
	}
	*len = (size_t)n;
	return 0;
}

/* When the last request left, for rtt_us. */
static int64_t client_sent_us;

static int send_request(int fd, const struct client *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	ssize_t n;

	client_sent_us = cli_now_us();
	do
		n = sendto(fd, c->request, c->request_len, 0, &c->server.sa, sockname_len(&c->server));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return cli_system_error(-errno, "send to %s", sin_str(&c->server, buf));
	return 0;
}

/*
 * Prints the datagrams that arrive before deadline, only the first one if once
 * is set; *count counts them and *result is the first one's result code.
 */
static int print_until(int fd, int64_t deadline, bool hex, bool once, int *count, int *result)
{
	union sockname from;
	size_t len;
	int r, code;

	while (!(once && *count > 0) && (r = wait_readable(fd, deadline)) != 0) {
		if (r < 0)
			return r;
		if ((r = receive(fd, &from, &len)) == -EAGAIN)
			continue;
		if (r < 0)
			return r;
		code = print_datagram("reply", &from, client_rxbuf, len, hex, cli_now_us() - client_sent_us);
		if ((*count)++ == 0)
			*result = code;
	}
	return 0;
}

/*
 * PCP's client address field is the request's source (RFC 6887 8.1): the
 * bound address, or the one the kernel would pick for the server.
 */
static int pcp_client_address(struct client *c)
{
	union sockname local = c->local;
	socklen_t len = sizeof(local);
	int probe;

	if (local.sa.sa_family == AF_INET6 ? IN6_IS_ADDR_UNSPECIFIED(&local.v6.sin6_addr)
					    : local.v4.sin_addr.s_addr == htonl(INADDR_ANY)) {
		if ((probe = socket(local.sa.sa_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
			return cli_system_error(-errno, "socket");
		if (connect(probe, &c->server.sa, sockname_len(&c->server)) < 0 ||
		    getsockname(probe, (struct sockaddr *)&local, &len) < 0) {
			int err = -errno;
			close(probe);
			return cli_system_error(err, "finding the source address towards the server");
		}
		close(probe);
	}
	if (local.sa.sa_family == AF_INET6) {
		memcpy(c->request + 8, &local.v6.sin6_addr, 16);
		return 0;
	}
	memset(c->request + 8, 0, 10);
	c->request[18] = c->request[19] = 0xff;
	memcpy(c->request + 20, &local.v4.sin_addr, 4);
	return 0;
}

static int run_request(struct client *c)
{
	int64_t interval = c->timeout_ms;
	int fd, r = 0, count = 0, result = -1;
	bool hex = c->cmd == CMD_RAW;

	if (!c->server_given && (r = default_gateway(&c->server.v4.sin_addr)) < 0) {
		if (r == -ENETUNREACH)
			fprintf(stderr, CLIENT_NAME ": no default route in /proc/net/route: name the server with -g\n");
		else
			cli_system_error(r, "/proc/net/route");
		return EXIT_SYSTEM;
	}
	if (open_socket(&c->local, false, &fd) < 0)
		return EXIT_SYSTEM;
	if (c->pcp && (r = pcp_client_address(c)) < 0) {
		close(fd);
		return EXIT_SYSTEM;
	}
	/* RFC 6886 3.1: the same request again after each timeout, which doubles. */
	for (unsigned int sent = 0; sent < c->tries && count == 0 && r == 0; sent++) {
		if ((r = send_request(fd, c)) == 0)
			r = print_until(fd, now_ms() + interval, hex, true, &count, &result);
		interval = interval * 2 > CLIENT_MAX_INTERVAL_MS ? CLIENT_MAX_INTERVAL_MS : interval * 2;
	}
	if (r == 0 && count > 0 && c->wait_ms)
		r = print_until(fd, now_ms() + c->wait_ms, hex, false, &count, &result);
	close(fd);
	if (r < 0)
		return EXIT_SYSTEM;
	if (count == 0) {
		errno = 0;
		fputs("no reply", stdout);
		cli_end_line();
		return EXIT_NO_REPLY;
	}
	return result == NATPMP_RESULT_SUCCESS ? EXIT_REPLY_OK : EXIT_REPLY_ERROR;
}

static int run_listen(struct client *c)
{
	struct ip_mreq mreq = { .imr_multiaddr.s_addr = htonl(INADDR_ALLHOSTS_GROUP),
				.imr_interface.s_addr = htonl(INADDR_ANY) };
	union sockname from;
	int64_t start, deadline;
	char label[INET6_ADDRSTRLEN + 16];
	size_t len;
	int fd, r;

	if (open_socket(&c->local, true, &fd) < 0)
		return EXIT_SYSTEM;
	/*
	 * Linux is a member of 224.0.0.1 on every multicast interface anyway and
	 * hands its datagrams to any socket bound to the port, so a failed join
	 * (no route to 224.0.0.0/4, say) loses nothing: say so, and go on.
	 */
	/* (An IPv6 listener bound to [::] hears ff02::1 without joining: every node is a member.) */
	if (c->local.sa.sa_family == AF_INET && setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mreq, sizeof(mreq)) < 0)
		fprintf(stderr, CLIENT_NAME ": warning: joining 224.0.0.1: %s\n", strerror(errno));
	/* Scripts start the listener, wait for this line, then make what it should hear happen. */
	printf("listening on %s for %u s", sin_str(&c->local, label), c->listen_seconds);
	cli_end_line();
	start = now_ms();
	deadline = start + (int64_t)c->listen_seconds * 1000;
	while ((r = wait_readable(fd, deadline)) > 0) {
		if ((r = receive(fd, &from, &len)) == -EAGAIN)
			continue;
		if (r < 0)
			break;
		snprintf(label, sizeof(label), "datagram t=%lld", (long long)(now_ms() - start));
		print_datagram(label, &from, client_rxbuf, len, false, -1);
	}
	close(fd);
	return r < 0 ? EXIT_SYSTEM : EXIT_REPLY_OK;
}

int main(int argc, char **argv)
{
	struct client c;
	int r;

	cli_set_name(CLIENT_NAME);
	/* Line by line, so a test reading a running listener sees each datagram at once. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if ((r = parse_args(&c, argc, argv)) < 0)
		return EXIT_USAGE;
	if (r > 0) {
		errno = 0;
		client_usage(stdout);
		cli_note_write_error();
		r = EXIT_REPLY_OK;
	} else {
		r = c.cmd == CMD_LISTEN ? run_listen(&c) : run_request(&c);
	}
	return cli_finish_output() < 0 ? EXIT_SYSTEM : r;
}
