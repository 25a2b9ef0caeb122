/*
 * test_nft.c - the netlink backend against the real kernel.
 *
 * The test moves itself into a network namespace of its own, so the host's
 * ruleset is never seen or touched, and reads the kernel's copy back with
 * nft(8) (the daemon never runs it; a test may), with protocols as numbers
 * (-p): by name they depend on the machine's /etc/protocols.  Needs root:
 * fails without it (never skips).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "kernel/nft.h"

static char listing[1 << 20];

/* Runs an nft command in this namespace; the output lands in listing. */
static int nft_cmd(const char *args)
{
	char cmd[256];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "nft -p %s 2>&1", args);
	if (!(p = popen(cmd, "r")))
		return -1;
	n = fread(listing, 1, sizeof(listing) - 1, p);
	listing[n] = '\0';
	return pclose(p);
}

static struct table_mapping mapping(const char *client, uint8_t protocol, uint16_t iport, uint16_t eport)
{
	struct table_mapping m = { .protocol = protocol, .internal_port = iport, .external_port = eport };

	m.client = table_addr_v4(0);
	inet_pton(AF_INET, client, &m.client.v4);
	return m;
}

/* An IPv6 client's mapping: a pinhole, its external port its own. */
static struct table_mapping pinhole(const char *client, uint8_t protocol, uint16_t port)
{
	struct table_mapping m = { .protocol = protocol, .internal_port = port, .external_port = port };

	inet_pton(AF_INET6, client, m.client.v6);
	return m;
}

static int contains(const char *needle)
{
	return strstr(listing, needle) != NULL;
}

static void test_layout(struct nft *n)
{
	struct table_mapping a = mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000);
	struct table_mapping b = mapping("192.168.77.3", IPPROTO_UDP, 51413, 51413);

	nft_begin(n);
	CHECK_EQ(nft_install(n), 0);
	CHECK_EQ(nft_put(n, &a, 3630), 0);
	CHECK_EQ(nft_put(n, &b, 90), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list table ip natpmp"), 0);
	CHECK(contains("type inet_proto . inet_service : ipv4_addr . inet_service"));
	CHECK(contains("flags timeout"));
	CHECK(contains("type nat hook prerouting priority dstnat; policy accept;"));
	CHECK(contains("iifname \"eth9\" fib daddr type local dnat ip to meta l4proto . th dport map @mappings"));
	CHECK(contains("6 . 40000 timeout 1h30s"));
	CHECK(contains(": 192.168.77.2 . 8080"));
	CHECK(contains("17 . 51413 timeout 1m30s"));
	CHECK(contains(": 192.168.77.3 . 51413"));
	/* RFC 6886 3.9: the client's traffic from its internal port leaves from the external port. */
	CHECK(contains("type nat hook postrouting priority srcnat - 10; policy accept;"));
	CHECK(contains("oifname \"eth9\" meta l4proto 6 masquerade to :ip saddr . meta l4proto . tcp sport map @sources"));
	CHECK(contains("oifname \"eth9\" meta l4proto 17 masquerade to :ip saddr . meta l4proto . udp sport map @sources"));
	CHECK(contains("192.168.77.2 . 6 . 8080 timeout 1h30s"));
	CHECK(contains(": 40000"));
	/* Hairpinning. */
	CHECK(contains("iifname != \"eth9\" ip daddr @external dnat ip to meta l4proto . th dport map @mappings"));
	/* A small table's maps carry no size: the kernel grows them as they fill. */
	CHECK(!contains("size "));
	CHECK(contains("iifname != \"eth9\" oifname != \"eth9\" ct status dnat ct original ip daddr @external masquerade"));
	if (check_failures)
		fputs(listing, stderr);
	/* table ip6 natpmp: the pinholes, marking what they admit from outside (bit 24 by default). */
	struct table_mapping h = pinhole("2001:db8:77::2", IPPROTO_TCP, 8080);
	nft_begin(n);
	CHECK_EQ(nft_put(n, &h, 600), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list table ip6 natpmp"), 0);
	CHECK(contains("type ipv6_addr . inet_proto . inet_service"));
	CHECK(contains("type filter hook forward priority filter - 10; policy accept;"));
	CHECK(contains("iifname \"eth9\" ip6 daddr . meta l4proto . th dport @pinholes meta mark set meta mark | 0x01000000"));
	CHECK(contains("2001:db8:77::2 . 6 . 8080 timeout 10m"));
	if (check_failures)
		fputs(listing, stderr);
	/* What nft lists, nft reads back: users save their ruleset that way. */
	CHECK_EQ(nft_cmd("list table ip natpmp > /tmp/natpmp-kernel-nft.$PPID && nft delete table ip natpmp && "
			 "nft -f /tmp/natpmp-kernel-nft.$PPID; r=$?; rm -f /tmp/natpmp-kernel-nft.$PPID; exit $r"),
		 0);
	if (check_failures)
		fputs(listing, stderr);
}

static void test_external_set(struct nft *n)
{
	uint32_t one[1], two[2];

	inet_pton(AF_INET, "198.51.100.1", &one[0]);
	inet_pton(AF_INET, "198.51.100.7", &two[0]);
	inet_pton(AF_INET, "198.51.100.8", &two[1]);
	nft_begin(n);
	CHECK_EQ(nft_set_external(n, one, 1), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list set ip natpmp external"), 0);
	CHECK(contains("elements = { 198.51.100.1 }"));
	/* Replacing, not adding. */
	nft_begin(n);
	CHECK_EQ(nft_set_external(n, two, 2), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list set ip natpmp external"), 0);
	CHECK(!contains("198.51.100.1 "));
	CHECK(contains("198.51.100.7"));
	CHECK(contains("198.51.100.8"));
	nft_begin(n);
	CHECK_EQ(nft_set_external(n, NULL, 0), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list set ip natpmp external"), 0);
	CHECK(!contains("198.51.100."));
}

static void test_renew_and_delete(struct nft *n)
{
	struct table_mapping a = mapping("192.168.77.2", IPPROTO_TCP, 8080, 40000);
	struct table_mapping gone = mapping("192.168.77.9", IPPROTO_TCP, 9, 50000);

	struct table_mapping h = pinhole("2001:db8:77::2", IPPROTO_TCP, 8080);

	/* Renewal gives the element its new timeout (older kernels ignore a re-add), a pinhole's too. */
	nft_begin(n);
	CHECK_EQ(nft_renew(n, &a, 7230), 0);
	CHECK_EQ(nft_renew(n, &h, 7230), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(contains("6 . 40000 timeout 2h30s"));
	CHECK_EQ(nft_cmd("list set ip6 natpmp pinholes"), 0);
	CHECK(contains("2001:db8:77::2 . 6 . 8080 timeout 2h30s"));

	/* Renewing an element someone removed puts it back. */
	CHECK_EQ(nft_cmd("delete element ip natpmp mappings '{ tcp . 40000 }'"), 0);
	nft_begin(n);
	CHECK_EQ(nft_renew(n, &a, 100), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(contains("6 . 40000 timeout 1m40s"));

	/* Deleting removes; deleting what is not there succeeds. */
	nft_begin(n);
	CHECK_EQ(nft_del(n, &a), 0);
	CHECK_EQ(nft_del(n, &gone), 0);
	CHECK_EQ(nft_del(n, &h), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list set ip6 natpmp pinholes"), 0);
	CHECK(!contains("2001:db8:77::2"));
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(!contains("40000"));
	CHECK(!contains("50000"));
	CHECK(contains("17 . 51413"));
}

static void test_atomic_failure(struct nft *n)
{
	struct table_mapping a = mapping("192.168.77.2", IPPROTO_TCP, 8080, 41000);
	struct table_mapping other = mapping("192.168.77.4", IPPROTO_TCP, 22, 41000);
	struct table_mapping c = mapping("192.168.77.2", IPPROTO_TCP, 8081, 41001);

	nft_begin(n);
	CHECK_EQ(nft_put(n, &a, 100), 0);
	CHECK_EQ(nft_commit(n), 0);
	/* The same key with another client's data: the kernel refuses the whole batch. */
	nft_begin(n);
	CHECK_EQ(nft_put(n, &c, 100), 0);
	CHECK_EQ(nft_put(n, &other, 100), 0);
	CHECK(nft_commit(n) < 0);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(contains(": 192.168.77.2 . 8080"));
	CHECK(!contains("192.168.77.4"));
	CHECK(!contains("41001"));
	/* The socket is still usable afterwards. */
	nft_begin(n);
	CHECK_EQ(nft_put(n, &c, 100), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(contains("41001"));
}

static void test_reinstall_and_foreign_tables(struct nft *n)
{
	struct table_mapping a = mapping("192.168.77.2", IPPROTO_UDP, 7000, 7000);

	CHECK_EQ(nft_cmd("add table ip filter"), 0);
	CHECK_EQ(nft_cmd("add chain ip filter input '{ type filter hook input priority 0; }'"), 0);
	CHECK_EQ(nft_cmd("add rule ip filter input tcp dport 22 accept"), 0);
	/* A reinstall replaces our table, stale elements and all, and nothing else. */
	nft_begin(n);
	CHECK_EQ(nft_install(n), 0);
	CHECK_EQ(nft_put(n, &a, 100), 0);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_cmd("list ruleset"), 0);
	CHECK(contains("17 . 7000"));
	CHECK(!contains("41000"));
	CHECK(!contains("51413"));
	CHECK(contains("tcp dport 22 accept"));

	CHECK_EQ(nft_remove(n), 0);
	CHECK_EQ(nft_remove(n), 0);
	CHECK_EQ(nft_cmd("list ruleset"), 0);
	CHECK(!contains("natpmp"));
	CHECK(contains("tcp dport 22 accept"));

	/* With our table gone, changes fail instead of silently doing nothing. */
	nft_begin(n);
	CHECK_EQ(nft_put(n, &a, 100), 0);
	CHECK(nft_commit(n) < 0);
}

static void test_large_batch(struct nft *n)
{
	const int count = 60000;
	struct timespec t0, t1;
	int r;

	nft_begin(n);
	/* A table this large is installed into maps sized once for the most they can hold. */
	nft_presize(n, (size_t)count);
	CHECK_EQ(nft_install(n), 0);
	for (int i = 0; i < count; i++) {
		struct table_mapping m = mapping("10.0.0.0", i % 2 ? IPPROTO_UDP : IPPROTO_TCP, (uint16_t)(1024 + i / 2),
						 (uint16_t)(1024 + i / 2));
		m.client.v4 = htonl(ntohl(m.client.v4) + (uint32_t)(i % 250) + 1);
		CHECK_EQ(nft_put(n, &m, 3600), 0);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	r = nft_commit(n);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ(r, 0);
	printf("kernel-nft: installed %d elements in one transaction in %.1f ms\n", count,
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings | grep -o ' : 10\\.' | wc -l"), 0);
	CHECK_EQ(atoi(listing), count);
	CHECK_EQ(nft_cmd("list map ip natpmp sources | grep -c 'size 131072'"), 0);
	CHECK_EQ(atoi(listing), 1);
	CHECK_EQ(nft_cmd("list map ip natpmp mappings | grep -c 'size 131072'"), 0);
	CHECK_EQ(atoi(listing), 1);
	nft_presize(n, 0);
}

int main(void)
{
	struct nft_config cfg = { .table = "natpmp", .chain = "prerouting", .external_interface = "eth9",
				  .pinhole_mark = 0x1000000, .pinhole_mask = 0x1000000 };
	struct nft *n;

	if (geteuid() != 0) {
		fprintf(stderr, "kernel-nft: needs root (network namespaces, nftables): run it as root\n");
		return 1;
	}
	if (unshare(CLONE_NEWNET) < 0) {
		fprintf(stderr, "kernel-nft: cannot make a network namespace: %s\n", strerror(errno));
		return 1;
	}
	if (system("nft --version >/dev/null 2>&1") != 0) {
		fprintf(stderr, "kernel-nft: nft(8) is needed to read the kernel's copy back\n");
		return 1;
	}
	n = nft_open(&cfg);
	CHECK(n != NULL);
	if (!n)
		return check_exit();
	test_layout(n);
	test_external_set(n);
	test_renew_and_delete(n);
	/* Again, with renewals as the kernel's probe allows (one operation on Linux 6.10 and later). */
	int update = nft_probe_timeout_update(n);
	CHECK(update == 0 || update == 1);
	printf("kernel-nft: re-adding an element %s its timeout on this kernel\n", update == 1 ? "updates" : "keeps");
	CHECK_EQ(nft_cmd("list map ip natpmp mappings"), 0);
	CHECK(!contains("16m40s")); /* the probe element is gone */
	test_renew_and_delete(n);
	test_atomic_failure(n);
	test_reinstall_and_foreign_tables(n);
	test_large_batch(n);
	/*
	 * The generation, as install.c asks it around a large commit: it moves
	 * by exactly one for a transaction (nobody else commits in this
	 * namespace), and asking it while a batch is being built, with nothing
	 * left to flush after the question, does not make the commit wait for
	 * the question's number (it waited 5 s and failed: -ETIMEDOUT).
	 */
	uint32_t g1 = 0, g2 = 0;
	CHECK_EQ(nft_generation(n, &g1), 0);
	nft_begin(n);
	CHECK_EQ(nft_install(n), 0);
	CHECK_EQ(nft_queued(n), 0);
	CHECK_EQ(nft_generation(n, &g2), 0);
	CHECK_EQ(g2, g1);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_generation(n, &g2), 0);
	CHECK_EQ(g2, g1 + 1);
	/* A commit with nothing queued sends no transaction: the generation stays. */
	nft_begin(n);
	CHECK_EQ(nft_commit(n), 0);
	CHECK_EQ(nft_generation(n, &g1), 0);
	CHECK_EQ(g1, g2);
	/* What a reinstall asks afterwards: are both tables still there? */
	CHECK_EQ(nft_installed(n), 1);
	CHECK_EQ(nft_cmd("delete table ip6 natpmp"), 0);
	CHECK_EQ(nft_installed(n), 0);
	CHECK_EQ(nft_remove(n), 0);
	CHECK_EQ(nft_installed(n), 0);
	nft_close(n);
	return check_exit();
}
