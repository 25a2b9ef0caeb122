/*
 * test_sockdiag.c - the port-in-use check against the real kernel.
 *
 * The test moves itself into a network namespace of its own, where the only
 * sockets are the ones it opens, opens each kind of socket the check must
 * tell apart, and times queries with a thousand-odd other sockets open.
 * Needs root: fails without it (never skips).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "kernel/sockdiag.h"

/* The namespace is private, so fixed ports cannot collide with anything. */
enum {
	P_TCP_ANY = 20001,    /* TCP listening on 0.0.0.0 */
	P_TCP_BOUND,          /* TCP bound, not listening */
	P_TCP_LO,             /* TCP listening on 127.0.0.1 */
	P_UDP_ANY,            /* UDP bound to 0.0.0.0 */
	P_UDP_LO,             /* UDP bound to 127.0.0.1 */
	P_UDP_CONNECTED,      /* UDP bound to 127.0.0.1 and connected */
	P_TCP6_ANY,           /* TCP listening on [::] */
	P_TCP6_ANY_V6ONLY,    /* TCP listening on [::] with IPV6_V6ONLY */
	P_TCP6_LO,            /* TCP listening on [::1] */
	P_TCP6_MAPPED,        /* TCP listening on [::ffff:127.0.0.1] */
	P_UDP6_ANY,           /* UDP bound to [::] */
	P_TCP_CLIENT,         /* local port of a connected TCP client */
	P_TCP_DEVICE,         /* TCP listening on 0.0.0.0 with SO_BINDTODEVICE */
	P_TCP_CLOSED,         /* TCP listener closed during the test */
	P_REUSEPORT,          /* many SO_REUSEPORT listeners on 127.0.0.1 */
	P_FREE,               /* nobody */
	P_MANY = 30000,       /* first of the ports of the timing test */
};

#define N_REUSEPORT 400
#define N_MANY 1000
#define N_QUERIES 10000

static uint32_t a4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), r;

	if (fd < 0)
		return -1;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	r = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (r == 0) {
		ifr.ifr_flags |= IFF_UP;
		r = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return r;
}

/* Socket options a test socket may need before bind(). */
#define OPT_V6ONLY 1
#define OPT_REUSEPORT 2
#define OPT_DEVICE_LO 4

/*
 * A socket of type bound to addr:port (an IPv6 address if addr has a
 * colon), listening if listen_too; -1 (and a failed check) on error.
 */
static int sock_at(int type, const char *addr, uint16_t port, int listen_too, int opts)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	int family = strchr(addr, ':') ? AF_INET6 : AF_INET, one = 1, fd;
	socklen_t len;

	if (family == AF_INET) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		CHECK_EQ(inet_pton(AF_INET, addr, &sin->sin_addr), 1);
		len = sizeof(*sin);
	} else {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		CHECK_EQ(inet_pton(AF_INET6, addr, &sin6->sin6_addr), 1);
		len = sizeof(*sin6);
	}
	fd = socket(family, type | SOCK_CLOEXEC, 0);
	CHECK(fd >= 0);
	if (fd < 0)
		return -1;
	if (family == AF_INET6) {
		/* Explicit both ways: the sysctl default must not decide the test. */
		int v6only = (opts & OPT_V6ONLY) != 0;
		CHECK_EQ(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only)), 0);
	}
	if (opts & OPT_REUSEPORT)
		CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
	if (opts & OPT_DEVICE_LO)
		CHECK_EQ(setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3), 0);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || (listen_too && listen(fd, 16) < 0)) {
		fprintf(stderr, "bind/listen %s port %u: %s\n", addr, port, strerror(errno));
		check_failures++;
		close(fd);
		return -1;
	}
	return fd;
}

static int connect_to(int fd, const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = a4(addr) };

	return connect(fd, (struct sockaddr *)&sin, sizeof(sin));
}

static void close_all(int *fds, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static const uint32_t *lo_addrs(void)
{
	static uint32_t addrs[1];

	addrs[0] = a4("127.0.0.1");
	return addrs;
}

/* Both ways of asking: the per-port query and the bitmap of one dump must agree. */
static int both_ways(struct sockdiag *d, uint8_t protocol, uint16_t port, const uint32_t *addrs, size_t n_addrs)
{
	static uint8_t bitmap[SOCKDIAG_BITMAP_BYTES];
	int one = sockdiag_port_in_use(d, protocol, port, addrs, n_addrs);

	CHECK_EQ(sockdiag_ports_in_use(d, protocol, addrs, n_addrs, bitmap), 0);
	if (one >= 0 && ((bitmap[port / 8] >> (port % 8)) & 1) != one) {
		fprintf(stderr, "port %u/%u: the query says %d, the bitmap disagrees\n", port, protocol, one);
		check_failures++;
	}
	return one;
}

static void test_ipv4(struct sockdiag *d)
{
	const uint32_t *lo = lo_addrs();
	uint32_t other = a4("127.0.0.2");
	uint32_t both[2] = { a4("127.0.0.2"), a4("127.0.0.1") };
	int fds[] = {
		sock_at(SOCK_STREAM, "0.0.0.0", P_TCP_ANY, 1, 0),
		sock_at(SOCK_STREAM, "0.0.0.0", P_TCP_BOUND, 0, 0),
		sock_at(SOCK_STREAM, "127.0.0.1", P_TCP_LO, 1, 0),
		sock_at(SOCK_DGRAM, "0.0.0.0", P_UDP_ANY, 0, 0),
		sock_at(SOCK_DGRAM, "127.0.0.1", P_UDP_LO, 0, 0),
		sock_at(SOCK_DGRAM, "127.0.0.1", P_UDP_CONNECTED, 0, 0),
		sock_at(SOCK_STREAM, "0.0.0.0", P_TCP_DEVICE, 1, OPT_DEVICE_LO),
	};

	/* A listener on the wildcard address takes every address's traffic. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_ANY, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_ANY, &other, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_ANY, NULL, 0), 1);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_TCP_ANY, lo, 1), 0);

	/* Bound but not listening: takes no connections. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_BOUND, lo, 1), 0);

	/* A listener on one address matters only if that address is an external one. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_LO, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_LO, &other, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_LO, both, 2), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_LO, NULL, 0), 0);

	/* UDP: any bound socket, and only for UDP queries. */
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_ANY, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_ANY, NULL, 0), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_UDP_ANY, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_LO, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_LO, &other, 1), 0);

	/* A connected UDP socket is still a bound one. */
	CHECK(fds[5] >= 0 && connect_to(fds[5], "127.0.0.1", P_UDP_ANY) == 0);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_CONNECTED, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP_CONNECTED, &other, 1), 0);

	/* SO_BINDTODEVICE is not looked at: in use whatever the interface. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_DEVICE, &other, 1), 1);

	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_FREE, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_FREE, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, 65535, lo, 1), 0);
	close_all(fds, sizeof(fds) / sizeof(fds[0]));
}

static void test_ipv6(struct sockdiag *d)
{
	const uint32_t *lo = lo_addrs();
	uint32_t other = a4("127.0.0.2");
	int fds[] = {
		sock_at(SOCK_STREAM, "::", P_TCP6_ANY, 1, 0),
		sock_at(SOCK_STREAM, "::", P_TCP6_ANY_V6ONLY, 1, OPT_V6ONLY),
		sock_at(SOCK_STREAM, "::1", P_TCP6_LO, 1, OPT_V6ONLY),
		sock_at(SOCK_STREAM, "::ffff:127.0.0.1", P_TCP6_MAPPED, 1, 0),
		sock_at(SOCK_DGRAM, "::", P_UDP6_ANY, 0, 0),
	};

	/* [::] may take IPv4 too; with IPV6_V6ONLY it would not, but counts all the same. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_ANY, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_ANY, NULL, 0), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_ANY_V6ONLY, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_TCP6_ANY, lo, 1), 0);

	/* An IPv6 address of its own: never sees the IPv4 traffic a DNAT would take. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_LO, lo, 1), 0);

	/* A v4-mapped address is that IPv4 address. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_MAPPED, lo, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_MAPPED, &other, 1), 0);

	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP6_ANY, &other, 1), 1);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_UDP6_ANY, &other, 1), 0);
	close_all(fds, sizeof(fds) / sizeof(fds[0]));

	/* Closed sockets are gone at once. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP6_ANY, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_UDP, P_UDP6_ANY, lo, 1), 0);
}

/* For TCP only listeners count: not a client's local port, not a listener's established connections. */
static void test_connections(struct sockdiag *d)
{
	const uint32_t *lo = lo_addrs();
	int listener = sock_at(SOCK_STREAM, "127.0.0.1", P_TCP_CLOSED, 1, 0);
	int client = sock_at(SOCK_STREAM, "127.0.0.1", P_TCP_CLIENT, 0, 0);
	int server = -1;

	CHECK(listener >= 0 && client >= 0);
	if (listener < 0 || client < 0)
		goto out;
	CHECK_EQ(connect_to(client, "127.0.0.1", P_TCP_CLOSED), 0);
	server = accept(listener, NULL, NULL);
	CHECK(server >= 0);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_CLIENT, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_CLOSED, lo, 1), 1);
	close(listener);
	listener = -1;
	/* The accepted connection still has local port P_TCP_CLOSED, but nobody listens there. */
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_CLOSED, lo, 1), 0);
	CHECK_EQ(both_ways(d, IPPROTO_TCP, P_TCP_CLIENT, lo, 1), 0);
out:
	if (server >= 0)
		close(server);
	if (client >= 0)
		close(client);
	if (listener >= 0)
		close(listener);
}

/* An answer longer than one read is read to its end: the next query is not confused by its tail. */
static void test_long_answer(struct sockdiag *d)
{
	const uint32_t *lo = lo_addrs();
	uint32_t other = a4("127.0.0.2");
	int fds[N_REUSEPORT], any = sock_at(SOCK_STREAM, "0.0.0.0", P_TCP_ANY, 1, 0);

	for (size_t i = 0; i < N_REUSEPORT; i++)
		fds[i] = sock_at(SOCK_STREAM, "127.0.0.1", P_REUSEPORT, 1, OPT_REUSEPORT);
	for (int round = 0; round < 3; round++) {
		CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, P_REUSEPORT, &other, 1), 0);
		CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, P_FREE, lo, 1), 0);
		CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, P_REUSEPORT, lo, 1), 1);
		CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, P_TCP_ANY, &other, 1), 1);
	}
	close_all(fds, N_REUSEPORT);
	if (any >= 0)
		close(any);
}

static void test_arguments(struct sockdiag *d)
{
	CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, 0, NULL, 0), -EINVAL);
	CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_TCP, P_FREE, NULL, 1), -EINVAL);
	CHECK_EQ(sockdiag_port_in_use(d, IPPROTO_ICMP, P_FREE, NULL, 0), -EPROTONOSUPPORT);
	sockdiag_close(NULL);
}

static double elapsed_us(const struct timespec *t0, const struct timespec *t1)
{
	return (double)(t1->tv_sec - t0->tv_sec) * 1e6 + (double)(t1->tv_nsec - t0->tv_nsec) / 1e3;
}

/* Times N_QUERIES queries of one kind; returns microseconds per query. */
static double time_queries(struct sockdiag *d, uint8_t protocol, uint16_t port, int expect)
{
	const uint32_t *lo = lo_addrs();
	struct timespec t0, t1;
	int wrong = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < N_QUERIES; i++)
		if (sockdiag_port_in_use(d, protocol, port, lo, 1) != expect)
			wrong++;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ(wrong, 0);
	return elapsed_us(&t0, &t1) / N_QUERIES;
}

static void test_cost(struct sockdiag *d)
{
	static int fds[2 * N_MANY];
	struct rlimit rl;
	size_t n_many = N_MANY, n = 0;
	rlim_t want = 2 * N_MANY + 64;

	/* Two sockets a port; fewer ports if the descriptor limit cannot be raised far enough. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
		n_many = rl.rlim_cur > 128 ? (size_t)(rl.rlim_cur - 64) / 2 : 32;
	for (size_t i = 0; i < n_many; i++) {
		fds[n++] = sock_at(SOCK_STREAM, "0.0.0.0", (uint16_t)(P_MANY + i), 1, 0);
		fds[n++] = sock_at(SOCK_DGRAM, "0.0.0.0", (uint16_t)(P_MANY + i), 0, 0);
	}
	printf("kernel-sockdiag: %zu TCP listeners and %zu UDP sockets open, %d queries each:\n", n_many, n_many,
	       N_QUERIES);
	/* A free port is the dearer case: it takes both the AF_INET and the AF_INET6 dump. */
	printf("  TCP, free port:   %.2f us/query\n", time_queries(d, IPPROTO_TCP, P_FREE, 0));
	printf("  TCP, port in use: %.2f us/query\n", time_queries(d, IPPROTO_TCP, (uint16_t)(P_MANY + n_many / 2), 1));
	printf("  UDP, free port:   %.2f us/query\n", time_queries(d, IPPROTO_UDP, P_FREE, 0));
	printf("  UDP, port in use: %.2f us/query\n", time_queries(d, IPPROTO_UDP, (uint16_t)(P_MANY + n_many / 2), 1));
	close_all(fds, n);
}

int main(void)
{
	struct sockdiag *d;

	if (geteuid() != 0) {
		fprintf(stderr, "kernel-sockdiag: needs root (network namespaces): run it as root\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "kernel-sockdiag: cannot make a network namespace: %s\n", strerror(errno));
		return 1;
	}
	if (lo_up() < 0) {
		fprintf(stderr, "kernel-sockdiag: cannot bring lo up: %s\n", strerror(errno));
		return 1;
	}
	d = sockdiag_open();
	CHECK(d != NULL);
	if (!d)
		return check_exit();
	test_arguments(d);
	test_ipv4(d);
	test_ipv6(d);
	test_connections(d);
	test_long_answer(d);
	test_cost(d);
	sockdiag_close(d);
	return check_exit();
}
