/* test_config.c - options, environment, and every kind of bad value. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "daemon/config.h"

static int parse(struct config *cfg, const char *line)
{
	char buf[1024], *argv[32], *save;
	int argc = 0;

	strcpy(buf, line);
	argv[argc++] = "natpmp-server";
	for (char *tok = strtok_r(buf, " ", &save); tok && argc < 31; tok = strtok_r(NULL, " ", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	return config_parse(cfg, argc, argv);
}

#define BASE "--listen-interface br-lan --external-interface eth0 "

static void test_defaults(void)
{
	struct config c;

	CHECK_EQ(parse(&c, BASE), 0);
	CHECK_EQ(c.n_listen, 1);
	CHECK(strcmp(c.listen_interfaces[0], "br-lan") == 0);
	CHECK_EQ(c.listen_port, 5351);
	CHECK(strcmp(c.nat_table, "natpmp") == 0);
	CHECK(strcmp(c.nat_chain, "prerouting") == 0);
	CHECK_EQ(c.max_mappings_per_ip, 100);
	CHECK_EQ(c.default_lifetime, 3600);
	CHECK_EQ(c.max_lifetime, 86400);
	CHECK_EQ(c.n_allowed, 1);
	CHECK_EQ(c.allowed_ports[0].from, 1024);
	CHECK_EQ(c.allowed_ports[0].to, 65535);
	CHECK(strcmp(c.state_dir, "/var/lib/natpmp-server") == 0);
	CHECK(!c.check_config);
}

static void test_values(void)
{
	struct config c;

	CHECK_EQ(parse(&c, BASE "--listen-interface wg0 --allowed-ports 5000 --allowed-ports 6000-7000 "
			     "--max-lifetime 60 --default-lifetime 30 -n --log-level debug"),
		 0);
	CHECK_EQ(c.n_listen, 2);
	CHECK_EQ(c.n_allowed, 2);
	CHECK(c.allowed_ports[0].from == 5000 && c.allowed_ports[0].to == 5000);
	CHECK(c.allowed_ports[1].from == 6000 && c.allowed_ports[1].to == 7000);
	CHECK_EQ(c.max_lifetime, 60);
	CHECK(c.check_config);
	CHECK_EQ(c.log_level, LOG_LEVEL_DEBUG);
}

static void test_bad_values(void)
{
	static const char *const bad[] = {
		"--listen-port 0",
		"--listen-port 70000",
		"--listen-port 12ab",
		"--listen-port -1",
		"--allowed-ports 9000-8000",
		"--allowed-ports 0-100",
		"--allowed-ports 1-",
		"--allowed-ports x",
		"--default-lifetime -5",
		"--max-lifetime 0",
		"--max-lifetime 99999999999",
		"--max-mappings-per-ip 0",
		"--default-lifetime 100 --max-lifetime 50",
		"--listen-interface a/b",
		"--listen-interface abcdefghijklmnopq",
		"--listen-interface eth0",
		"--listen-interface br-lan",
		"--nat-table a;b",
		"--state-dir relative/path",
		"--log-level loud",
		"--no-such-option",
		"stray",
		"--upstream-gateway 10.2.0",
		"--upstream-gateway 0.0.0.0",
		"--upstream-gateway 224.0.0.1",
		"--upstream-gateway 127.0.0.1",
		"--upstream-interface wg0",
		"--upstream-gateway 10.2.0.1 --upstream-interface wg0",
		"--upstream-gateway 10.2.0.1 --external-address 203.0.113.7",
		"--upstream-gateway 10.2.0.1 --upstream-interface br-lan",
	};
	struct config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char line[256];
		snprintf(line, sizeof(line), BASE "%s", bad[i]);
		if (parse(&c, line) != -1) {
			fprintf(stderr, "accepted: %s\n", bad[i]);
			check_failures++;
		}
	}
	CHECK_EQ(parse(&c, "--external-interface eth0"), -1);
	CHECK_EQ(parse(&c, "--listen-interface br-lan"), -1);
	CHECK_EQ(parse(&c, "--listen-port"), -1);
}

/* Upstream mode: the interface facing the gateway is where forwards arrive, named once. */
static void test_upstream(void)
{
	struct config c;

	CHECK_EQ(parse(&c, BASE), 0);
	CHECK_EQ(c.upstream_gateway, 0);
	CHECK_EQ(c.upstream_interface[0], '\0');
	CHECK_EQ(parse(&c, BASE "--upstream-gateway 10.2.0.1"), 0);
	CHECK_EQ(c.upstream_gateway, htonl(0x0a020001));
	CHECK(strcmp(c.upstream_interface, "eth0") == 0);
	CHECK(strcmp(c.external_interface, "eth0") == 0);
	CHECK_EQ(parse(&c, "--listen-interface br-lan --upstream-interface wg0 --upstream-gateway 10.2.0.1"), 0);
	CHECK(strcmp(c.upstream_interface, "wg0") == 0);
	CHECK(strcmp(c.external_interface, "wg0") == 0);
	CHECK_EQ(parse(&c, "--listen-interface br-lan --external-interface wg0 --upstream-interface wg0 "
			   "--upstream-gateway 10.2.0.1"),
		 0);
	/* Without either interface there is nowhere to ask or forward from. */
	CHECK_EQ(parse(&c, "--listen-interface br-lan --upstream-gateway 10.2.0.1"), -1);
}

static void test_environment(void)
{
	struct config c;

	setenv("NATPMP_LISTEN_PORT", "6000", 1);
	setenv("NATPMP_ALLOWED_PORTS", "2000-3000, 4000", 1);
	setenv("NATPMP_LISTEN_INTERFACE", "lan0 lan1", 1);
	setenv("NATPMP_EXTERNAL_INTERFACE", "wan0", 1);
	CHECK_EQ(parse(&c, ""), 0);
	CHECK_EQ(c.listen_port, 6000);
	CHECK_EQ(c.n_listen, 2);
	CHECK(strcmp(c.external_interface, "wan0") == 0);
	CHECK_EQ(c.n_allowed, 2);
	CHECK_EQ(c.allowed_ports[1].from, 4000);
	/* The command line wins, also for repeatable options. */
	CHECK_EQ(parse(&c, "--listen-port 7000 --listen-interface x0 --allowed-ports 9000"), 0);
	CHECK_EQ(c.listen_port, 7000);
	CHECK_EQ(c.n_listen, 1);
	CHECK_EQ(c.n_allowed, 1);
	CHECK_EQ(c.allowed_ports[0].from, 9000);
	setenv("NATPMP_LISTEN_PORT", "0", 1);
	CHECK_EQ(parse(&c, ""), -1);
	unsetenv("NATPMP_LISTEN_PORT");
	unsetenv("NATPMP_ALLOWED_PORTS");
	unsetenv("NATPMP_LISTEN_INTERFACE");
	unsetenv("NATPMP_EXTERNAL_INTERFACE");
}

static void test_print_round_trip(void)
{
	struct config a, b;
	char buf[2048] = "", line[256];
	FILE *f = fmemopen(buf, sizeof(buf), "w");

	CHECK_EQ(parse(&a, BASE "--allowed-ports 3000-4000 --allowed-ports 5000 --max-lifetime 600"), 0);
	config_print(&a, f);
	fclose(f);
	/* What -n prints is itself a valid command line giving the same configuration. */
	char args[2048] = "";
	for (char *s = strtok(buf, "\n"); s; s = strtok(NULL, "\n")) {
		snprintf(line, sizeof(line), "%s ", s);
		strcat(args, line);
	}
	CHECK_EQ(parse(&b, args), 0);
	CHECK_EQ(a.default_lifetime, 600);
	CHECK_EQ(b.default_lifetime, 600);
	b.default_lifetime_given = a.default_lifetime_given;
	CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

/* The --config file: precedence, quoting, comments, foreign keys, the token, and errors. */
static void test_config_file(void)
{
	char path[] = "/tmp/natpmp-test-config.XXXXXX", line[600];
	struct config c;
	FILE *f;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	f = fdopen(fd, "w");
	fputs("# a comment\n\n  NATPMP_RATE_LIMIT = 7\nNATPMP_RATE_LIMIT=\"9\"\nNATPMP_MAX_LIFETIME='500'\r\n"
	      "DAEMON_OPTS=ignored\nNATPMP_ALLOWED_PORTS=\"6881-6999 51413\"\n"
	      "NATPMP_TOKEN=abcdefghijklmnopqrstuvwxyz\nNATPMP_HTTP_LISTEN=0.0.0.0:8080\n",
	      f);
	fclose(f);
	setenv("NATPMP_RATE_LIMIT", "3", 1);
	setenv("NATPMP_DEFAULT_LIFETIME", "60", 1);
	snprintf(line, sizeof(line), BASE "--config %s --max-lifetime 400", path);
	CHECK_EQ(parse(&c, line), 0);
	CHECK_EQ(c.rate_limit, 9);	  /* the file's last line, over the environment */
	CHECK_EQ(c.max_lifetime, 400);	  /* the command line over the file */
	CHECK_EQ(c.default_lifetime, 60); /* the environment where the file is silent */
	CHECK_EQ(c.n_allowed, 2);
	CHECK_EQ(c.allowed_ports[1].from, 51413);
	CHECK(strcmp(c.http_token, "abcdefghijklmnopqrstuvwxyz") == 0);
	CHECK(!config_http_local(&c));
	unsetenv("NATPMP_RATE_LIMIT");
	unsetenv("NATPMP_DEFAULT_LIFETIME");

	/* A key with a space inside is no option. */
	f = fopen(path, "w");
	fputs("NATPMP_RATE LIMIT=7\n", f);
	fclose(f);
	snprintf(line, sizeof(line), BASE "--config %s", path);
	CHECK_EQ(parse(&c, line), -1);
	f = fopen(path, "w");
	fputs("NATPMP_CONFIG=/etc/other\n", f);
	fclose(f);
	CHECK_EQ(parse(&c, line), -1);
	f = fopen(path, "w");
	fputs("NATPMP_HTTP_LISTEN=10.0.0.1:80\n", f);
	fclose(f);
	CHECK_EQ(parse(&c, line), -1); /* off loopback without a token */
	f = fopen(path, "w");
	fputs("NATPMP_HTTP_LISTEN=127.0.0.1:80\n", f);
	fclose(f);
	CHECK_EQ(parse(&c, line), 0);
	CHECK(config_http_local(&c));
	CHECK_EQ(c.http_token[0], '\0');
	unlink(path);
	CHECK_EQ(parse(&c, line), -1);
}

int main(void)
{
	test_defaults();
	test_values();
	test_bad_values();
	test_upstream();
	test_environment();
	test_print_round_trip();
	test_config_file();
	return check_exit();
}
