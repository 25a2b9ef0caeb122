/* test_config.c - options, environment, and every kind of bad value. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"

static int parse(struct config *cfg, const char *line)
{
	char buf[512], *argv[32], *save;
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

int main(void)
{
	test_defaults();
	test_values();
	test_bad_values();
	test_environment();
	test_print_round_trip();
	return check_exit();
}
