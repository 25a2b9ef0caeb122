/*
 * config_print.c - what the options look like from outside: --help's text,
 * and -n's configuration printed as the options that give it.
 */
#include <arpa/inet.h>
#include <stdio.h>

#include "config_rule.h"
#include "daemon/config.h"

void config_usage(FILE *out)
{
	fputs("usage: natpmp-server --listen-interface IF --external-interface IF [options]\n"
	      "\n"
	      "A NAT-PMP (RFC 6886) server: LAN clients ask it for ports, it forwards them\n"
	      "from the external interface through its own nftables table.\n"
	      "\n"
	      "  --listen-interface IF      LAN interface to answer on (repeatable; required)\n"
	      "  --listen-port PORT         UDP port to answer on (default 5351)\n"
	      "  --external-interface IF    interface whose address is the public one (required)\n"
	      "  --nat-table NAME           nftables tables (ip, and ip6 for pinholes) the daemon owns\n"
	      "                             (default natpmp)\n"
	      "  --nat-chain NAME           prerouting chain in that table (default prerouting)\n"
	      "  --pinhole-mark MARK[/MASK] bits set in the packet mark of what an IPv6 pinhole\n"
	      "                             admits; your forward chain accepts them (default\n"
	      "                             0x1000000)\n"
	      "  --max-mappings-per-ip N    mappings one client may hold (default 100)\n"
	      "  --default-lifetime SECS    lifetime for requests that carry none (default 3600)\n"
	      "  --max-lifetime SECS        longest lifetime granted (default 86400)\n"
	      "  --allowed-ports RANGE      ports that may be mapped, N or N-M (repeatable;\n"
	      "                             default 1024-65535)\n"
	      "  --reserved-ports RANGE     ports never handed out, N or N-M (repeatable); ports\n"
	      "                             the router itself listens on are never handed out either\n"
	      "  --external-address ADDR    report this IPv4 address instead of the external\n"
	      "                             interface's (behind another NAT)\n"
	      "  --rate-limit N             requests per second one client may send (bursts of 2N);\n"
	      "                             more are dropped; 0 for no limit (default 50)\n"
	      "  --state-dir DIR            where state.json is kept (default /var/lib/natpmp-server)\n"
	      "  --log-level LEVEL          debug, info, warning or error (default info)\n"
	      "  --config FILE              read NATPMP_<NAME>=value lines from FILE (again at SIGHUP)\n"
	      "  --http-listen ADDR:PORT    serve the HTTP API on a loopback address, or on any\n"
	      "                             address once a token is set, or on a unix socket /PATH\n"
	      "  --http-token-file FILE     bearer token for the HTTP API (or NATPMP_TOKEN=...)\n"
	      "  --hook PATH                run PATH on every mapping change (no shell)\n"
	      "  --hook-timeout SECS        kill a hook still running after SECS (default 10)\n"
	      "  --upstream-gateway ADDR    upstream mode: also map each port at this NAT-PMP\n"
	      "                             gateway (a VPN's, or the ISP router's: double NAT)\n"
	      "  --upstream-interface IF    the interface facing that gateway; forwards arrive\n"
	      "                             on it (default: --external-interface)\n"
	      "  --stun-server HOST[:PORT]  STUN mode, behind a full-cone carrier-grade NAT: learn\n"
	      "                             the public address there, and open and keep each\n"
	      "                             mapping's port through it (repeatable, tried in turn;\n"
	      "                             port 3478 when none)\n"
	      "  --stun-keepalive SECS      STUN mode: keep each binding alive this often; below\n"
	      "                             the outer NAT's idle timeout (default 20)\n"
	      "  --stun-keepalive-server HOST[:PORT]\n"
	      "                             STUN mode: also keep TCP bindings by a kept connection\n"
	      "                             to this HTTP server (port 80 when none)\n"
	      "  --stun-allow-filtered      STUN mode: map even when the outer NAT seems to filter\n"
	      "                             or map per destination\n"
	      "  --rule 'allow|deny EXT CLIENT[/PREFIX] INT'\n"
	      "                             which LAN addresses may map which external ports to\n"
	      "                             which internal ports (repeatable; first match wins;\n"
	      "                             once any is given, what none allows is refused)\n"
	      "  -n, --check-config         check the configuration, print it, and exit\n"
	      "  --list-mappings            list the mappings in --state-dir (the running daemon's, or\n"
	      "                             those a start would restore) and exit\n"
	      "  --json                     with --list-mappings: as a JSON list\n"
	      "  -h, --help                 this text\n"
	      "  -V, --version              the version\n"
	      "\n"
	      "Each option can also come from the --config file or the environment as\n"
	      "NATPMP_<NAME>, for example NATPMP_LISTEN_PORT=5351; repeatable options take a\n"
	      "comma- or space-separated list there.  The command line wins over the file, the\n"
	      "file over the environment.  SIGHUP reloads all of them, keeping the mappings.\n",
	      out);
}

static void print_ranges(FILE *out, const char *option, const struct port_range *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (r[i].from == r[i].to)
			fprintf(out, "--%s %u\n", option, r[i].from);
		else
			fprintf(out, "--%s %u-%u\n", option, r[i].from, r[i].to);
	}
}

void config_print(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < cfg->n_listen; i++)
		fprintf(out, "--listen-interface %s\n", cfg->listen_interfaces[i]);
	fprintf(out, "--listen-port %u\n", cfg->listen_port);
	fprintf(out, "--external-interface %s\n", cfg->external_interface);
	fprintf(out, "--nat-table %s\n", cfg->nat_table);
	fprintf(out, "--nat-chain %s\n", cfg->nat_chain);
	fprintf(out, "--pinhole-mark 0x%x/0x%x\n", cfg->pinhole_mark, cfg->pinhole_mask);
	fprintf(out, "--max-mappings-per-ip %u\n", cfg->max_mappings_per_ip);
	fprintf(out, "--default-lifetime %u\n", cfg->default_lifetime);
	fprintf(out, "--max-lifetime %u\n", cfg->max_lifetime);
	print_ranges(out, "allowed-ports", cfg->allowed_ports, cfg->n_allowed);
	print_ranges(out, "reserved-ports", cfg->reserved_ports, cfg->n_reserved);
	for (size_t i = 0; i < cfg->n_rules; i++) {
		char rule[96];
		config_rule_format(&cfg->rules[i], rule, sizeof(rule));
		fprintf(out, "--rule '%s'\n", rule);
	}
	for (size_t i = 0; i < cfg->n_third_party; i++) {
		char rule[96];
		config_third_party_format(&cfg->third_party[i], rule, sizeof(rule));
		fprintf(out, "--rule '%s'\n", rule);
	}
	if (cfg->external_address) {
		char addr[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = cfg->external_address };
		fprintf(out, "--external-address %s\n", inet_ntop(AF_INET, &a, addr, sizeof(addr)));
	}
	fprintf(out, "--rate-limit %u\n", cfg->rate_limit);
	fprintf(out, "--state-dir %s\n", cfg->state_dir);
	fprintf(out, "--log-level %s\n", log_level_name(cfg->log_level));
	if (cfg->config_file[0])
		fprintf(out, "--config %s\n", cfg->config_file);
	if (cfg->http_listen[0])
		fprintf(out, "--http-listen %s\n", cfg->http_listen);
	/* The token itself is a secret: say where it came from, never what it is. */
	if (cfg->http_token_file[0])
		fprintf(out, "--http-token-file %s\n", cfg->http_token_file);
	else if (cfg->http_token[0])
		fprintf(out, "# HTTP token from NATPMP_TOKEN\n");
	if (cfg->hook[0])
		fprintf(out, "--hook %s\n--hook-timeout %u\n", cfg->hook, cfg->hook_timeout);
	if (cfg->upstream_gateway) {
		char addr[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = cfg->upstream_gateway };
		fprintf(out, "--upstream-gateway %s\n--upstream-interface %s\n", inet_ntop(AF_INET, &a, addr, sizeof(addr)),
			cfg->upstream_interface);
	}
	for (size_t i = 0; i < cfg->n_stun; i++)
		fprintf(out, "--stun-server %s\n", cfg->stun_servers[i]);
	if (cfg->n_stun)
		fprintf(out, "--stun-keepalive %u\n", cfg->stun_keepalive);
	if (cfg->stun_keepalive_server[0])
		fprintf(out, "--stun-keepalive-server %s\n", cfg->stun_keepalive_server);
	if (cfg->stun_allow_filtered)
		fprintf(out, "--stun-allow-filtered\n");
}
