/*
 * test_conntrack.c - flushing a mapping's conntrack entries, against the real kernel.
 *
 * The test moves itself into a network namespace of its own, whose
 * conntrack table starts empty and is never the host's, creates entries in
 * it with conntrack(8) and reads the table back with conntrack(8), so that
 * what is checked does not depend on the code under test.  Only the bulk
 * entries of the timing test are created over netlink by the test itself:
 * a conntrack(8) process per entry would take minutes.  Needs root: fails
 * without it (never skips).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "kernel/conntrack.h"

#define ROUTER "198.51.100.1"

static char listing[1 << 20];

/* Runs a command in this namespace; its standard output lands in listing. */
static int run(const char *cmd)
{
	FILE *p;
	size_t n;

	if (!(p = popen(cmd, "r")))
		return -1;
	n = fread(listing, 1, sizeof(listing) - 1, p);
	listing[n] = '\0';
	return pclose(p);
}

static long table_size(void)
{
	if (run("conntrack -C 2>/dev/null") != 0)
		return -1;
	return atol(listing);
}

static struct table_mapping mapping(const char *client, uint8_t protocol, uint16_t iport, uint16_t eport)
{
	struct table_mapping m = { .protocol = protocol, .internal_port = iport, .external_port = eport };

	m.client = table_addr_v4(0);
	inet_pton(AF_INET, client, &m.client.v4);
	return m;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* --- entries made and read with conntrack(8) --- */

enum fate { KEPT, GONE_SINGLE, GONE_BATCH };

struct flow {
	const char *what;
	const char *proto;
	const char *osrc, *odst;
	unsigned osport, odport;
	const char *rsrc, *rdst;
	unsigned rsport, rdport;
	unsigned zone;
	enum fate fate;
};

/*
 * Mapping A is tcp 40000 -> 192.168.77.2:8080, mapping B udp 51413 ->
 * 192.168.77.3:51413, mapping C tcp 40001 -> 192.168.77.2:8080.
 */
static const struct flow flows[] = {
	{ "A inbound", "tcp", "203.0.113.5", ROUTER, 33333, 40000, "192.168.77.2", "203.0.113.5", 8080, 33333, 0,
	  GONE_SINGLE },
	{ "A inbound, second peer", "tcp", "203.0.113.6", ROUTER, 44444, 40000, "192.168.77.2", "203.0.113.6", 8080,
	  44444, 0, GONE_SINGLE },
	{ "A outbound (SNAT)", "tcp", "192.168.77.2", "203.0.113.7", 8080, 443, "203.0.113.7", ROUTER, 443, 40000, 0,
	  GONE_SINGLE },
	{ "A inbound in zone 7", "tcp", "203.0.113.10", ROUTER, 5555, 40000, "192.168.77.2", "203.0.113.10", 8080, 5555,
	  7, GONE_SINGLE },
	{ "other external port (C)", "tcp", "203.0.113.8", ROUTER, 33333, 40001, "192.168.77.2", "203.0.113.8", 8080,
	  33333, 0, GONE_BATCH },
	{ "other client", "tcp", "203.0.113.9", ROUTER, 33333, 40000, "192.168.77.3", "203.0.113.9", 8080, 33333, 0,
	  KEPT },
	{ "other internal port", "tcp", "203.0.113.11", ROUTER, 33333, 40000, "192.168.77.2", "203.0.113.11", 8081,
	  33333, 0, KEPT },
	{ "A's inbound tuples, udp", "udp", "203.0.113.5", ROUTER, 33333, 40000, "192.168.77.2", "203.0.113.5", 8080,
	  33333, 0, KEPT },
	{ "A's client port, other SNAT port", "tcp", "192.168.77.2", "203.0.113.12", 8080, 443, "203.0.113.12", ROUTER,
	  443, 40002, 0, KEPT },
	{ "A's SNAT port, other client port", "tcp", "192.168.77.2", "203.0.113.13", 8081, 443, "203.0.113.13", ROUTER,
	  443, 40000, 0, KEPT },
	{ "B inbound", "udp", "203.0.113.20", ROUTER, 6881, 51413, "192.168.77.3", "203.0.113.20", 51413, 6881, 0,
	  GONE_BATCH },
	{ "B outbound (SNAT)", "udp", "192.168.77.3", "203.0.113.21", 51413, 6881, "203.0.113.21", ROUTER, 6881, 51413,
	  0, GONE_BATCH },
	{ "B's client port, not translated", "udp", "192.168.77.3", "192.168.77.1", 51413, 53, "192.168.77.1",
	  "192.168.77.3", 53, 51413, 0, KEPT },
	{ "B's inbound tuples, tcp", "tcp", "203.0.113.20", ROUTER, 6881, 51413, "192.168.77.3", "203.0.113.20", 51413,
	  6881, 0, KEPT },
};
#define N_FLOWS (sizeof(flows) / sizeof(flows[0]))

static int flow_insert(const struct flow *f)
{
	char cmd[512], zone[32] = "";

	if (f->zone)
		snprintf(zone, sizeof(zone), " -w %u", f->zone);
	snprintf(cmd, sizeof(cmd),
		 "conntrack -I -p %s -s %s -d %s --sport %u --dport %u -r %s -q %s --reply-port-src %u "
		 "--reply-port-dst %u -t 600 -u SEEN_REPLY%s%s >/dev/null 2>&1",
		 f->proto, f->osrc, f->odst, f->osport, f->odport, f->rsrc, f->rdst, f->rsport, f->rdport,
		 strcmp(f->proto, "tcp") == 0 ? " --state ESTABLISHED" : "", zone);
	return system(cmd);
}

/* How many lines of the last `conntrack -L -o extended` show f. */
static int flow_listed(const struct flow *f)
{
	char tuples[256], proto[16];
	int n = 0;

	snprintf(tuples, sizeof(tuples), " src=%s dst=%s sport=%u dport=%u src=%s dst=%s sport=%u dport=%u ", f->osrc,
		 f->odst, f->osport, f->odport, f->rsrc, f->rdst, f->rsport, f->rdport);
	snprintf(proto, sizeof(proto), " %s ", f->proto);
	for (const char *line = listing; *line;) {
		const char *end = strchrnul(line, '\n');
		size_t len = (size_t)(end - line);
		if (memmem(line, len, tuples, strlen(tuples)) && memmem(line, len, proto, strlen(proto)))
			n++;
		line = *end ? end + 1 : end;
	}
	return n;
}

/* Checks that exactly the flows that have not met their fate yet are in the table. */
static void check_table(enum fate done)
{
	long expected = 0;
	bool bad = false;

	CHECK_EQ(run("conntrack -L -o extended 2>/dev/null"), 0);
	for (size_t i = 0; i < N_FLOWS; i++) {
		bool alive = flows[i].fate == KEPT || flows[i].fate > done;
		expected += alive;
		if (flow_listed(&flows[i]) != alive) {
			fprintf(stderr, "%s: %s, expected %s\n", __FILE__, flows[i].what, alive ? "kept" : "deleted");
			check_failures++;
			bad = true;
		}
	}
	CHECK_EQ(table_size(), expected);
	if (bad)
		fputs(listing, stderr);
}

static void test_empty(struct ct *c)
{
	struct table_mapping ms[] = {
		mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000),
		mapping("192.168.77.3", IPPROTO_UDP, 51413, 51413),
	};

	CHECK_EQ(table_size(), 0);
	CHECK_EQ(ct_flush_mapping(c, &ms[0]), 0);
	CHECK_EQ(ct_flush_mappings(c, ms, 2), 0);
	CHECK_EQ(ct_flush_mappings(c, NULL, 0), 0);
	CHECK_EQ(ct_flush_mappings(c, ms, 0), 0);
}

static void test_single(struct ct *c)
{
	struct table_mapping a = mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000);

	for (size_t i = 0; i < N_FLOWS; i++)
		if (flow_insert(&flows[i]) != 0) {
			fprintf(stderr, "%s: conntrack -I failed for %s\n", __FILE__, flows[i].what);
			check_failures++;
		}
	check_table(KEPT);
	CHECK_EQ(ct_flush_mapping(c, &a), 4);
	check_table(GONE_SINGLE);
	/* Nothing left to delete: 0, not an error. */
	CHECK_EQ(ct_flush_mapping(c, &a), 0);
	check_table(GONE_SINGLE);
}

static void test_batch(struct ct *c)
{
	struct table_mapping ms[] = {
		mapping("192.168.77.3", IPPROTO_UDP, 51413, 51413), /* B */
		mapping("192.168.77.2", IPPROTO_TCP, 8080, 40001),  /* C */
		mapping("192.168.77.4", IPPROTO_TCP, 1000, 45000),  /* no entries */
		mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000),  /* A: already flushed */
	};

	/* Mixed protocols: one dump of everything. */
	CHECK_EQ(ct_flush_mappings(c, ms, 4), 3);
	check_table(GONE_BATCH);
	CHECK_EQ(ct_flush_mappings(c, ms, 4), 0);
	check_table(GONE_BATCH);
}

/* --- bulk entries, over netlink --- */

#define BULK_PER_SEND 64

struct bulk {
	struct mnl_socket *nl;
	uint32_t portid, seq;
	size_t len, n;
	int failures;
	char buf[BULK_PER_SEND * 512];
	char rbuf[32768];
};

static struct bulk bulk;

static void put_tuple(struct nlmsghdr *nlh, uint16_t type, uint8_t proto, uint32_t src, uint16_t sport, uint32_t dst,
		      uint16_t dport)
{
	struct nlattr *tuple = mnl_attr_nest_start(nlh, type), *nest;

	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_IP);
	mnl_attr_put_u32(nlh, CTA_IP_V4_SRC, htonl(src));
	mnl_attr_put_u32(nlh, CTA_IP_V4_DST, htonl(dst));
	mnl_attr_nest_end(nlh, nest);
	nest = mnl_attr_nest_start(nlh, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(nlh, CTA_PROTO_NUM, proto);
	mnl_attr_put_u16(nlh, CTA_PROTO_SRC_PORT, htons(sport));
	mnl_attr_put_u16(nlh, CTA_PROTO_DST_PORT, htons(dport));
	mnl_attr_nest_end(nlh, nest);
	mnl_attr_nest_end(nlh, tuple);
}

/* Sends what bulk_add() queued and waits for every acknowledgement. */
static void bulk_send(void)
{
	uint32_t first = bulk.seq - (uint32_t)bulk.n;
	size_t acked = 0;

	if (bulk.n == 0)
		return;
	if (mnl_socket_sendto(bulk.nl, bulk.buf, bulk.len) < 0) {
		bulk.failures += (int)bulk.n;
		acked = bulk.n;
	}
	while (acked < bulk.n) {
		int len = (int)mnl_socket_recvfrom(bulk.nl, bulk.rbuf, sizeof(bulk.rbuf));
		if (len < 0) {
			bulk.failures += (int)(bulk.n - acked);
			break;
		}
		for (struct nlmsghdr *nlh = (struct nlmsghdr *)bulk.rbuf; mnl_nlmsg_ok(nlh, len);
		     nlh = mnl_nlmsg_next(nlh, &len)) {
			const struct nlmsgerr *err = mnl_nlmsg_get_payload(nlh);
			if (nlh->nlmsg_type != NLMSG_ERROR || nlh->nlmsg_seq - first >= bulk.n)
				continue;
			acked++;
			if (err->error && bulk.failures++ == 0)
				fprintf(stderr, "%s: creating an entry: %s\n", __FILE__, strerror(-err->error));
		}
	}
	bulk.len = 0;
	bulk.n = 0;
}

/* Queues the creation of an entry; addresses in host order. */
static void bulk_add(uint8_t proto, uint32_t osrc, uint16_t osport, uint32_t odst, uint16_t odport, uint32_t rsrc,
		     uint16_t rsport, uint32_t rdst, uint16_t rdport)
{
	struct nlmsghdr *nlh;
	struct nfgenmsg *nfg;

	memset(bulk.buf + bulk.len, 0, 512); /* attribute padding */
	nlh = mnl_nlmsg_put_header(bulk.buf + bulk.len);

	nlh->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK;
	nlh->nlmsg_seq = bulk.seq++;
	nfg = mnl_nlmsg_put_extra_header(nlh, sizeof(*nfg));
	nfg->nfgen_family = AF_INET;
	nfg->version = NFNETLINK_V0;
	put_tuple(nlh, CTA_TUPLE_ORIG, proto, osrc, osport, odst, odport);
	put_tuple(nlh, CTA_TUPLE_REPLY, proto, rsrc, rsport, rdst, rdport);
	mnl_attr_put_u32(nlh, CTA_TIMEOUT, htonl(600));
	/* The kernel marks a new entry confirmed before it applies the status, which must agree. */
	mnl_attr_put_u32(nlh, CTA_STATUS, htonl(IPS_CONFIRMED | IPS_SEEN_REPLY));
	if (proto == IPPROTO_TCP) {
		struct nlattr *info = mnl_attr_nest_start(nlh, CTA_PROTOINFO);
		struct nlattr *tcp = mnl_attr_nest_start(nlh, CTA_PROTOINFO_TCP);
		mnl_attr_put_u8(nlh, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
		mnl_attr_nest_end(nlh, tcp);
		mnl_attr_nest_end(nlh, info);
	}
	bulk.len += NLMSG_ALIGN(nlh->nlmsg_len);
	if (++bulk.n == BULK_PER_SEND)
		bulk_send();
}

static bool bulk_open(void)
{
	struct timeval tv = { .tv_sec = 5 };

	bulk.nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!bulk.nl || mnl_socket_bind(bulk.nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return false;
	setsockopt(mnl_socket_get_fd(bulk.nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	bulk.portid = mnl_socket_get_portid(bulk.nl);
	bulk.seq = 1;
	return true;
}

#define BULK_COUNT 10000
#define BULK_MAPPINGS 1000

/*
 * BULK_COUNT tcp entries, DNATed from ROUTER:20000+k to 192.168.78.x:20000+k
 * for k below BULK_MAPPINGS (each matched by one of the batch's mappings and
 * by nothing else), and BULK_COUNT udp entries of the same shape.
 */
static void bulk_create(void)
{
	uint32_t router = ntohl(inet_addr(ROUTER));

	for (uint32_t i = 0; i < BULK_COUNT; i++) {
		uint16_t k = (uint16_t)(i % BULK_MAPPINGS);
		uint32_t remote = 0x0a000001 + i;               /* 10.0.0.1 and up */
		uint32_t client = 0xc0a84e01 + k % 200;         /* 192.168.78.1 and up */
		bulk_add(IPPROTO_TCP, remote, 30000, router, (uint16_t)(20000 + k), client, (uint16_t)(20000 + k),
			 remote, 30000);
		bulk_add(IPPROTO_UDP, remote, 30000, router, (uint16_t)(20000 + k), client, (uint16_t)(20000 + k),
			 remote, 30000);
	}
	bulk_send();
}

static void test_bulk(struct ct *c)
{
	static struct table_mapping ms[BULK_MAPPINGS];
	struct table_mapping tcp = mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000);
	struct table_mapping udp = mapping("192.168.77.2", IPPROTO_UDP, 8081, 40005);
	const struct flow in_tcp = { "", "tcp", "203.0.113.5", ROUTER, 33333, 40000, "192.168.77.2", "203.0.113.5",
				     8080, 33333, 0, KEPT };
	const struct flow in_udp = { "", "udp", "203.0.113.30", ROUTER, 33333, 40005, "192.168.77.2", "203.0.113.30",
				     8081, 33333, 0, KEPT };
	struct timespec t0;
	long before;
	double ms_build;
	int r;

	if (!bulk_open()) {
		fprintf(stderr, "%s: cannot open a netlink socket: %s\n", __FILE__, strerror(errno));
		check_failures++;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	bulk_create();
	ms_build = ms_since(&t0);
	CHECK_EQ(bulk.failures, 0);
	CHECK_EQ(flow_insert(&in_tcp), 0);
	CHECK_EQ(flow_insert(&in_udp), 0);
	before = table_size();
	CHECK_EQ(before, 2 * BULK_COUNT + 7 + 2);
	printf("kernel-conntrack: created %d entries over netlink in %.1f ms\n", 2 * BULK_COUNT, ms_build);

	/* The kernel leaves out the udp entries; the tcp ones are matched here. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = ct_flush_mapping(c, &tcp);
	printf("kernel-conntrack: one tcp mapping, %ld entries (half udp): %d deleted in %.1f ms\n", before, r,
	       ms_since(&t0));
	CHECK_EQ(r, 1);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = ct_flush_mapping(c, &udp);
	printf("kernel-conntrack: one udp mapping, %ld entries (half tcp): %d deleted in %.1f ms\n", before - 1, r,
	       ms_since(&t0));
	CHECK_EQ(r, 1);
	CHECK_EQ(table_size(), before - 2);

	for (uint16_t k = 0; k < BULK_MAPPINGS; k++) {
		char client[16];
		snprintf(client, sizeof(client), "192.168.78.%u", 1 + k % 200);
		ms[k] = mapping(client, IPPROTO_TCP, (uint16_t)(20000 + k), (uint16_t)(20000 + k));
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = ct_flush_mappings(c, ms, BULK_MAPPINGS);
	printf("kernel-conntrack: %d tcp mappings in one flush among %ld entries: %d deleted in %.1f ms\n",
	       BULK_MAPPINGS, before - 2, r, ms_since(&t0));
	CHECK_EQ(r, BULK_COUNT);
	CHECK_EQ(table_size(), before - 2 - BULK_COUNT);
	/* The udp twins of those entries are another protocol's: all still there. */
	CHECK_EQ(run("conntrack -L -p udp --orig-src 10.0.0.0 --mask-src 255.0.0.0 2>/dev/null | wc -l"), 0);
	CHECK_EQ(atol(listing), BULK_COUNT);
	mnl_socket_close(bulk.nl);
}

int main(void)
{
	struct ct *c;

	if (geteuid() != 0) {
		fprintf(stderr, "kernel-conntrack: needs root (network namespaces, ctnetlink): run it as root\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "kernel-conntrack: cannot make a network namespace: %s\n", strerror(errno));
		return 1;
	}
	if (system("conntrack --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "kernel-conntrack: conntrack(8) is needed to make and read entries\n");
		return 1;
	}
	if (system("conntrack -L >/dev/null 2>&1") != 0) {
		fprintf(stderr, "kernel-conntrack: the kernel has no ctnetlink (nf_conntrack_netlink)\n");
		return 1;
	}
	c = ct_open();
	CHECK(c != NULL);
	if (!c)
		return check_exit();
	test_empty(c);
	test_single(c);
	test_batch(c);
	test_bulk(c);
	ct_close(c);
	return check_exit();
}
