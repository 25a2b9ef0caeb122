/*
 * config.c - command line and environment.
 *
 * The option names are those of the Go NAT-PMP server for NixOS, so that its
 * users can switch by changing the binary's name.  Every value is checked
 * here, once; the rest of the daemon trusts struct config.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_file.h"
#include "config_outer.h"
#include "config_rule.h"
#include "daemon/config.h"
#include "kernel/netif.h"

enum {
	OPT_LISTEN_INTERFACE = 256,
	OPT_LISTEN_PORT,
	OPT_EXTERNAL_INTERFACE,
	OPT_NAT_TABLE,
	OPT_NAT_CHAIN,
	OPT_PINHOLE_MARK,
	OPT_MAX_MAPPINGS,
	OPT_DEFAULT_LIFETIME,
	OPT_MAX_LIFETIME,
	OPT_ALLOWED_PORTS,
	OPT_RESERVED_PORTS,
	OPT_EXTERNAL_ADDRESS,
	OPT_RATE_LIMIT,
	OPT_STATE_DIR,
	OPT_LOG_LEVEL,
	OPT_CONFIG,
	OPT_HTTP_LISTEN,
	OPT_HTTP_TOKEN_FILE,
	OPT_HOOK,
	OPT_HOOK_TIMEOUT,
	OPT_UPSTREAM_GATEWAY,
	OPT_UPSTREAM_INTERFACE,
	OPT_STUN_SERVER,
	OPT_STUN_KEEPALIVE,
	OPT_STUN_KEEPALIVE_SERVER,
	OPT_STUN_ALLOW_FILTERED,
	OPT_RULE,
	OPT_CHECK_CONFIG,
	OPT_HELP,
	OPT_VERSION,
	/* Command-line only: not settings, so no NATPMP_ names. */
	OPT_LIST_MAPPINGS,
	OPT_JSON,
	OPT_END,
};

static const struct option config_options[] = {
	{ "listen-interface", required_argument, NULL, OPT_LISTEN_INTERFACE },
	{ "listen-port", required_argument, NULL, OPT_LISTEN_PORT },
	{ "external-interface", required_argument, NULL, OPT_EXTERNAL_INTERFACE },
	{ "nat-table", required_argument, NULL, OPT_NAT_TABLE },
	{ "nat-chain", required_argument, NULL, OPT_NAT_CHAIN },
	{ "pinhole-mark", required_argument, NULL, OPT_PINHOLE_MARK },
	{ "max-mappings-per-ip", required_argument, NULL, OPT_MAX_MAPPINGS },
	{ "default-lifetime", required_argument, NULL, OPT_DEFAULT_LIFETIME },
	{ "max-lifetime", required_argument, NULL, OPT_MAX_LIFETIME },
	{ "allowed-ports", required_argument, NULL, OPT_ALLOWED_PORTS },
	{ "reserved-ports", required_argument, NULL, OPT_RESERVED_PORTS },
	{ "external-address", required_argument, NULL, OPT_EXTERNAL_ADDRESS },
	{ "rate-limit", required_argument, NULL, OPT_RATE_LIMIT },
	{ "state-dir", required_argument, NULL, OPT_STATE_DIR },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "http-listen", required_argument, NULL, OPT_HTTP_LISTEN },
	{ "http-token-file", required_argument, NULL, OPT_HTTP_TOKEN_FILE },
	{ "hook", required_argument, NULL, OPT_HOOK },
	{ "hook-timeout", required_argument, NULL, OPT_HOOK_TIMEOUT },
	{ "upstream-gateway", required_argument, NULL, OPT_UPSTREAM_GATEWAY },
	{ "upstream-interface", required_argument, NULL, OPT_UPSTREAM_INTERFACE },
	{ "stun-server", required_argument, NULL, OPT_STUN_SERVER },
	{ "stun-keepalive", required_argument, NULL, OPT_STUN_KEEPALIVE },
	{ "stun-keepalive-server", required_argument, NULL, OPT_STUN_KEEPALIVE_SERVER },
	{ "stun-allow-filtered", no_argument, NULL, OPT_STUN_ALLOW_FILTERED },
	{ "rule", required_argument, NULL, OPT_RULE },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "help", no_argument, NULL, OPT_HELP },
	{ "version", no_argument, NULL, OPT_VERSION },
	{ "list-mappings", no_argument, NULL, OPT_LIST_MAPPINGS },
	{ "json", no_argument, NULL, OPT_JSON },
	{ NULL, 0, NULL, 0 },
};


static void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen_port = 5351;
	strcpy(cfg->nat_table, "natpmp");
	strcpy(cfg->nat_chain, "prerouting");
	cfg->pinhole_mark = cfg->pinhole_mask = CONFIG_PINHOLE_MARK;
	cfg->max_mappings_per_ip = 100;
	cfg->default_lifetime = 3600;
	cfg->max_lifetime = 86400;
	cfg->rate_limit = 50;
	strcpy(cfg->state_dir, "/var/lib/natpmp-server");
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->hook_timeout = 10;
	cfg->stun_keepalive = 20;
}

static int config_error(const char *option, const char *value, const char *why)
{
	fprintf(stderr, "natpmp-server: error: --%s '%s': %s\n", option, value, why);
	return -1;
}

/* Whole decimal numbers only: no sign, no spaces, no trailing text. */
static int parse_uint(const char *option, const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	char why[96];

	if (!isdigit((unsigned char)s[0]))
		return config_error(option, s, "not a whole number");
	errno = 0;
	*out = strtoul(s, &end, 10);
	if (*end != '\0')
		return config_error(option, s, "not a whole number");
	if (errno == ERANGE || *out < min || *out > max) {
		snprintf(why, sizeof(why), "out of range: use %lu to %lu", min, max);
		return config_error(option, s, why);
	}
	return 0;
}

/* MARK[/MASK], each decimal or 0x hex: the bits a pinhole sets; MASK defaults to MARK. */
static int parse_mark(const char *s, uint32_t *mark, uint32_t *mask)
{
	unsigned long long v[2] = { 0, 0 };
	const char *p = s;
	char *end;

	for (int i = 0; i < 2; i++) {
		errno = 0;
		if (!isdigit((unsigned char)*p) || (v[i] = strtoull(p, &end, 0), errno) || v[i] == 0 || v[i] > UINT32_MAX)
			return config_error("pinhole-mark", s, "not MARK or MARK/MASK: non-zero 32-bit numbers, e.g. 0x1000000");
		if (*end == '\0') {
			if (i == 0)
				v[1] = v[0];
			break;
		}
		if (*end != '/' || i == 1)
			return config_error("pinhole-mark", s, "not MARK or MARK/MASK: non-zero 32-bit numbers, e.g. 0x1000000");
		p = end + 1;
	}
	if (v[0] & ~v[1])
		return config_error("pinhole-mark", s, "MARK has bits outside MASK: give a MASK that covers them");
	*mark = (uint32_t)v[0];
	*mask = (uint32_t)v[1];
	return 0;
}

static int parse_range(const char *option, const char *s, struct port_range *r)
{
	char buf[32], *dash;
	unsigned long from, to;

	if (strlen(s) >= sizeof(buf))
		return config_error(option, s, "not a port or range: use N or N-M, e.g. 1024-65535");
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (parse_uint(option, buf, 1, 65535, &from) < 0)
		return -1;
	to = from;
	if (dash && parse_uint(option, dash + 1, 1, 65535, &to) < 0)
		return -1;
	if (to < from)
		return config_error(option, s, "range runs backwards: put the lower port first");
	r->from = (uint16_t)from;
	r->to = (uint16_t)to;
	return 0;
}

static int parse_name(const char *option, const char *s, char *out, size_t outlen)
{
	size_t len = strlen(s);

	if (len == 0 || len >= outlen)
		return config_error(option, s, "must be 1 to 63 characters");
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-')
			return config_error(option, s, "use only letters, digits, '_' and '-'");
	memcpy(out, s, len + 1);
	return 0;
}

static int parse_interface(const char *option, const char *s, char out[16])
{
	if (!netif_name_valid(s))
		return config_error(option, s, "not an interface name (1-15 characters, no '/', ':' or spaces)");
	strcpy(out, s);
	return 0;
}

/* A unicast IPv4 address another host can have: not 0, broadcast, multicast or loopback. */
static int parse_unicast(const char *option, const char *s, const char *hint, uint32_t *out)
{
	char why[128];
	struct in_addr a;
	uint32_t h;

	if (inet_pton(AF_INET, s, &a) != 1)
		return config_error(option, s, "not an IPv4 address: use A.B.C.D");
	h = ntohl(a.s_addr);
	if (h == 0 || h == 0xffffffff || (h >> 28) == 0xe || (h >> 24) == 127) {
		snprintf(why, sizeof(why), "not a unicast address: %s", hint);
		return config_error(option, s, why);
	}
	*out = a.s_addr;
	return 0;
}

static int parse_path(const char *option, const char *s, char *out, size_t outlen)
{
	char why[64];

	if (s[0] != '/' || strlen(s) >= outlen) {
		snprintf(why, sizeof(why), "use an absolute path shorter than %zu characters", outlen);
		return config_error(option, s, why);
	}
	strcpy(out, s);
	return 0;
}

/* A.B.C.D:PORT, or an absolute path for a unix socket. */
/*
 * --http-listen: /path, A.B.C.D:PORT, [IPv6]:PORT, localhost:PORT (which is
 * 127.0.0.1), or :PORT and *:PORT (every IPv4 address).  Stored as /path,
 * A.B.C.D:PORT or [IPv6]:PORT, the forms config_http_split() reads.
 */
static int parse_http_listen(const char *s, struct config *cfg)
{
	char addr[INET6_ADDRSTRLEN];
	const char *colon = strrchr(s, ':'), *host = s;
	struct in6_addr a6;
	struct in_addr a;
	unsigned long port;
	size_t hlen;

	if (s[0] == '/')
		return parse_path("http-listen", s, cfg->http_listen, sizeof(cfg->http_listen));
	if (!colon)
		return config_error("http-listen", s,
				    "use ADDRESS:PORT, e.g. 127.0.0.1:8080 or [::1]:8080, or a socket path");
	if (!isdigit((unsigned char)colon[1]) || (port = strtoul(colon + 1, NULL, 10)) < 1 || port > 65535 ||
	    strspn(colon + 1, "0123456789") != strlen(colon + 1))
		return config_error("http-listen", s, "the port must be 1 to 65535");
	hlen = (size_t)(colon - s);
	if (host[0] == '[') {
		if (hlen < 3 || host[hlen - 1] != ']' || hlen - 2 >= sizeof(addr))
			return config_error("http-listen", s, "an IPv6 address goes in brackets: e.g. [::1]:8080");
		memcpy(addr, host + 1, hlen - 2);
		addr[hlen - 2] = '\0';
		if (inet_pton(AF_INET6, addr, &a6) != 1)
			return config_error("http-listen", s, "not an IPv6 address in the brackets: e.g. [::1]:8080");
		snprintf(cfg->http_listen, sizeof(cfg->http_listen), "[%s]:%lu", addr, port);
		return 0;
	}
	if (hlen >= sizeof(addr))
		return config_error("http-listen", s, "not an address and port: use e.g. 127.0.0.1:8080");
	memcpy(addr, host, hlen);
	addr[hlen] = '\0';
	if (strcmp(addr, "localhost") == 0)
		strcpy(addr, "127.0.0.1");
	else if (hlen == 0 || strcmp(addr, "*") == 0)
		strcpy(addr, "0.0.0.0");
	if (inet_pton(AF_INET, addr, &a) != 1)
		return config_error("http-listen", s,
				    strchr(addr, ':') ? "an IPv6 address goes in brackets: e.g. [::1]:8080"
						      : "not an address and port: use e.g. 127.0.0.1:8080, [::1]:8080 or "
							"localhost:8080 (names other than localhost are not looked up)");
	snprintf(cfg->http_listen, sizeof(cfg->http_listen), "%s:%lu", addr, port);
	return 0;
}

int config_http_split(const char *listen, char *addr, size_t addrlen, uint16_t *port)
{
	const char *colon = strrchr(listen, ':');
	size_t hlen;

	if (listen[0] == '/' || !colon)
		return -1;
	hlen = (size_t)(colon - listen);
	if (listen[0] == '[' && hlen >= 2) {
		listen++;
		hlen -= 2;
	}
	if (hlen >= addrlen)
		return -1;
	memcpy(addr, listen, hlen);
	addr[hlen] = '\0';
	*port = (uint16_t)strtoul(colon + 1, NULL, 10);
	return 0;
}

static int set_token(const char *option, const char *shown, const char *tok, size_t len, struct config *cfg)
{
	if (len < CONFIG_TOKEN_MIN || len > CONFIG_TOKEN_MAX)
		return config_error(option, shown, "the token must be 16 to 256 characters");
	for (size_t i = 0; i < len; i++)
		if (tok[i] <= ' ' || tok[i] == 0x7f)
			return config_error(option, shown, "the token must be printable, without spaces");
	memcpy(cfg->http_token, tok, len);
	cfg->http_token[len] = '\0';
	return 0;
}

/*
 * The file's first line is the token; a trailing newline is not part of it.
 * A line NATPMP_TOKEN=token (the --config form, perhaps copied from there)
 * means the token, quoted or not.
 */
static int read_token(const char *path, struct config *cfg)
{
	char buf[4096], *tok, *line, *next;
	struct stat st;
	size_t len;
	FILE *f = fopen(path, "r");

	if (!f) {
		char why[160];
		snprintf(why, sizeof(why), "cannot read it: %s", strerror(errno));
		return config_error("http-token-file", path, why);
	}
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & S_IROTH)) {
		fclose(f);
		return config_error("http-token-file", path, "every user can read it: chmod o-r it (or use LoadCredential=)");
	}
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	/* The first line that is neither blank nor a # comment. */
	for (line = buf; line; line = next) {
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		line[strcspn(line, "\r")] = '\0';
		if (line[0] && line[0] != '#')
			break;
	}
	if (!line)
		return config_error("http-token-file", path, "holds no token: write it on the first line");
	/* The --config form, perhaps copied from there: [export] NATPMP_TOKEN = value, the file's grammar for the value. */
	tok = line;
	if (strncmp(tok, "export ", 7) == 0)
		tok += strspn(tok + 7, " \t") + 7;
	if (strncmp(tok, "NATPMP_TOKEN", 12) == 0 && strchr(" \t=", tok[12])) {
		const char *why = NULL;
		tok += 12 + strspn(tok + 12, " \t");
		if (*tok != '=')
			return config_error("http-token-file", path, "a NATPMP_TOKEN line needs '=' before the token");
		tok += 1 + strspn(tok + 1, " \t");
		if (!(tok = config_file_value(tok, &why)))
			return config_error("http-token-file", path, why);
	}
	len = strlen(tok);
	return set_token("http-token-file", path, tok, len, cfg);
}

bool config_http_local(const struct config *cfg)
{
	struct in6_addr a6;
	struct in_addr a;
	char addr[INET6_ADDRSTRLEN];
	uint16_t port;

	if (config_http_split(cfg->http_listen, addr, sizeof(addr), &port) < 0)
		return true;
	if (inet_pton(AF_INET, addr, &a) == 1)
		return (ntohl(a.s_addr) >> 24) == 127;
	return inet_pton(AF_INET6, addr, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Applies one option's value; the first --allowed-ports replaces the default list. */
static int config_apply(struct config *cfg, int opt, const char *arg, int *ranges_reset)
{
	unsigned long v;
	int level;

	switch (opt) {
	case OPT_LISTEN_INTERFACE:
		if (cfg->n_listen == CONFIG_MAX_LISTEN)
			return config_error("listen-interface", arg, "too many listen interfaces (16 at most)");
		return parse_interface("listen-interface", arg, cfg->listen_interfaces[cfg->n_listen++]);
	case OPT_LISTEN_PORT:
		if (parse_uint("listen-port", arg, 1, 65535, &v) < 0)
			return -1;
		cfg->listen_port = (uint16_t)v;
		return 0;
	case OPT_EXTERNAL_INTERFACE:
		return parse_interface("external-interface", arg, cfg->external_interface);
	case OPT_NAT_TABLE:
		return parse_name("nat-table", arg, cfg->nat_table, sizeof(cfg->nat_table));
	case OPT_NAT_CHAIN:
		return parse_name("nat-chain", arg, cfg->nat_chain, sizeof(cfg->nat_chain));
	case OPT_PINHOLE_MARK:
		return parse_mark(arg, &cfg->pinhole_mark, &cfg->pinhole_mask);
	case OPT_MAX_MAPPINGS:
		if (parse_uint("max-mappings-per-ip", arg, 1, 131072, &v) < 0)
			return -1;
		cfg->max_mappings_per_ip = (uint32_t)v;
		return 0;
	case OPT_DEFAULT_LIFETIME:
		if (parse_uint("default-lifetime", arg, 1, UINT32_MAX, &v) < 0)
			return -1;
		cfg->default_lifetime = (uint32_t)v;
		cfg->default_lifetime_given = true;
		return 0;
	case OPT_MAX_LIFETIME:
		if (parse_uint("max-lifetime", arg, 1, UINT32_MAX, &v) < 0)
			return -1;
		cfg->max_lifetime = (uint32_t)v;
		return 0;
	case OPT_ALLOWED_PORTS:
		/* The first range given replaces the default instead of adding to it. */
		if (!*ranges_reset) {
			cfg->n_allowed = 0;
			*ranges_reset = 1;
		}
		if (cfg->n_allowed == CONFIG_MAX_RANGES)
			return config_error("allowed-ports", arg, "too many ranges (64 at most)");
		return parse_range("allowed-ports", arg, &cfg->allowed_ports[cfg->n_allowed++]);
	case OPT_RESERVED_PORTS:
		if (cfg->n_reserved == CONFIG_MAX_RANGES)
			return config_error("reserved-ports", arg, "too many ranges (64 at most)");
		return parse_range("reserved-ports", arg, &cfg->reserved_ports[cfg->n_reserved++]);
	case OPT_EXTERNAL_ADDRESS:
		return parse_unicast("external-address", arg, "use the address the outside world sees",
				     &cfg->external_address);
	case OPT_UPSTREAM_GATEWAY:
		return parse_unicast("upstream-gateway", arg, "use the gateway's address, e.g. 10.2.0.1",
				     &cfg->upstream_gateway);
	case OPT_UPSTREAM_INTERFACE:
		return parse_interface("upstream-interface", arg, cfg->upstream_interface);
	case OPT_STUN_SERVER:
		return config_stun_server(cfg, arg);
	case OPT_STUN_KEEPALIVE:
		if (parse_uint("stun-keepalive", arg, 1, 3600, &v) < 0)
			return -1;
		cfg->stun_keepalive = (uint32_t)v;
		return 0;
	case OPT_STUN_KEEPALIVE_SERVER:
		return config_stun_keepalive_server(cfg, arg);
	case OPT_STUN_ALLOW_FILTERED:
		cfg->stun_allow_filtered = true;
		return 0;
	case OPT_RATE_LIMIT:
		if (parse_uint("rate-limit", arg, 0, 1000000, &v) < 0)
			return -1;
		cfg->rate_limit = (uint32_t)v;
		return 0;
	case OPT_STATE_DIR:
		if (arg[0] != '/' || strlen(arg) >= sizeof(cfg->state_dir))
			return config_error("state-dir", arg, "use an absolute path shorter than 256 characters");
		strcpy(cfg->state_dir, arg);
		return 0;
	case OPT_LOG_LEVEL:
		if ((level = log_level_parse(arg)) < 0)
			return config_error("log-level", arg, "use debug, info, warning or error");
		cfg->log_level = (enum log_level)level;
		return 0;
	case OPT_CONFIG:
		return parse_path("config", arg, cfg->config_file, sizeof(cfg->config_file));
	case OPT_HTTP_LISTEN:
		return parse_http_listen(arg, cfg);
	case OPT_HTTP_TOKEN_FILE:
		if (parse_path("http-token-file", arg, cfg->http_token_file, sizeof(cfg->http_token_file)) < 0)
			return -1;
		return read_token(arg, cfg);
	case OPT_HOOK:
		return parse_path("hook", arg, cfg->hook, sizeof(cfg->hook));
	case OPT_HOOK_TIMEOUT:
		if (parse_uint("hook-timeout", arg, 1, 3600, &v) < 0)
			return -1;
		cfg->hook_timeout = (uint32_t)v;
		return 0;
	case OPT_RULE: {
		const char *why;
		if (cfg->n_rules == CONFIG_MAX_RULES || cfg->n_third_party == CONFIG_MAX_RULES)
			return config_error("rule", arg, "too many rules (64 at most)");
		if (strncmp(arg, "third-party", 11) == 0) {
			if (config_third_party_parse(arg, &cfg->third_party[cfg->n_third_party], &why) < 0)
				return config_error("rule", arg, why);
			cfg->n_third_party++;
			return 0;
		}
		if (config_rule_parse(arg, &cfg->rules[cfg->n_rules], &why) < 0)
			return config_error("rule", arg, why);
		cfg->n_rules++;
		return 0;
	}
	case OPT_CHECK_CONFIG:
		cfg->check_config = true;
		return 0;
	case OPT_LIST_MAPPINGS:
		cfg->list_mappings = true;
		return 0;
	case OPT_JSON:
		cfg->json = true;
		return 0;
	}
	return -1;
}

static int option_repeatable(int opt)
{
	return opt == OPT_LISTEN_INTERFACE || opt == OPT_ALLOWED_PORTS || opt == OPT_RESERVED_PORTS || opt == OPT_RULE ||
	       opt == OPT_STUN_SERVER;
}

/* NATPMP_LISTEN_INTERFACE for "listen-interface". */
static void env_name(const char *option, char *out, size_t outlen)
{
	size_t i = 0;

	i = (size_t)snprintf(out, outlen, "NATPMP_");
	for (; *option && i + 1 < outlen; option++)
		out[i++] = *option == '-' ? '_' : (char)toupper((unsigned char)*option);
	out[i] = '\0';
}

/* What a NATPMP_ name in the --config file is (config_file.h). */
static enum config_key config_key_kind(const char *key)
{
	char name[64];

	if (strcmp(key, "NATPMP_TOKEN") == 0)
		return CONFIG_KEY_SINGLE;
	for (const struct option *o = config_options; o->name; o++) {
		env_name(o->name, name, sizeof(name));
		if (o->val < OPT_HELP && o->val != OPT_CONFIG && strcmp(key, name) == 0)
			return option_repeatable(o->val) ? CONFIG_KEY_REPEATABLE : CONFIG_KEY_SINGLE;
	}
	return CONFIG_KEY_UNKNOWN;
}

/* The file's value for a setting (the last line that gives it: config_file_load() keeps one), else the environment's. */
static const char *config_lookup(const struct config_file *cf, const char *name)
{
	for (size_t i = 0; i < cf->n; i++)
		if (strcmp(cf->key[i], name) == 0)
			return cf->value[i];
	return getenv(name);
}

/* A repeatable option's list (comma- or space-separated), applied item by item. */
static int config_apply_list(struct config *cfg, const struct option *o, const char *value, int *ranges_reset)
{
	char *copy, *tok, *save;
	int r = 0;

	if (!(copy = strdup(value)))
		return config_error(o->name, value, "out of memory");
	/* A rule holds spaces: rules are separated by commas or semicolons only. */
	const char *sep = o->val == OPT_RULE ? ",;" : ", \t";
	for (tok = strtok_r(copy, sep, &save); tok && r == 0; tok = strtok_r(NULL, sep, &save))
		r = config_apply(cfg, o->val, tok, ranges_reset);
	free(copy);
	return r;
}

static int config_from_env(struct config *cfg, const int *seen, int *ranges_reset, const struct config_file *cf)
{
	const char *token;

	for (const struct option *o = config_options; o->name; o++) {
		char name[64];
		const char *value;
		int r = 0, in_file = 0;

		if (o->val >= OPT_HELP || o->val == OPT_CONFIG || seen[o->val - OPT_LISTEN_INTERFACE])
			continue;
		env_name(o->name, name, sizeof(name));
		value = config_lookup(cf, name);
		if (!value)
			continue;
		if (o->has_arg == no_argument) {
			if (strcmp(value, "1") == 0 || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
				r = config_apply(cfg, o->val, value, ranges_reset);
			else if (strcmp(value, "0") && strcmp(value, "false") && strcmp(value, "no") && value[0])
				r = config_error(o->name, value, "environment value must be 1/true/yes or 0/false/no");
			if (r < 0)
				return -1;
			continue;
		}
		if (!option_repeatable(o->val)) {
			if (config_apply(cfg, o->val, value, ranges_reset) < 0)
				return -1;
			continue;
		}
		/* Every line of the file adds, as the option given twice on the command line does. */
		for (size_t i = 0; i < cf->n && r == 0; i++)
			if (strcmp(cf->key[i], name) == 0) {
				in_file = 1;
				r = config_apply_list(cfg, o, cf->value[i], ranges_reset);
			}
		if (!in_file)
			r = config_apply_list(cfg, o, value, ranges_reset);
		if (r < 0)
			return -1;
	}
	/* A token file, wherever it was named, wins over a token in a variable. */
	if (!cfg->http_token[0] && (token = config_lookup(cf, "NATPMP_TOKEN")) && token[0]) {
		if (cf->world_readable && token != getenv("NATPMP_TOKEN"))
			return config_error("config", cf->path,
					    "holds NATPMP_TOKEN but every user can read it: chmod o-r it, or "
					    "use --http-token-file");
		return set_token("http-token (NATPMP_TOKEN)", "...", token, strlen(token), cfg);
	}
	return 0;
}

/* "a-b,c" for ranges, cut short with "..." when it does not fit. */
static void config_ranges_str(const struct port_range *r, size_t n, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (size_t i = 0; i < n && used < len; i++) {
		int w = r[i].from == r[i].to ? snprintf(out + used, len - used, "%s%u", i ? "," : "", r[i].from)
					     : snprintf(out + used, len - used, "%s%u-%u", i ? "," : "", r[i].from, r[i].to);
		if (w < 0 || (size_t)w >= len - used) {
			snprintf(out + (len > 4 ? len - 4 : 0), len > 4 ? 4 : len, "...");
			return;
		}
		used += (size_t)w;
	}
}

/* How many ports the allowed ranges leave once the reserved ones are taken out. */
static uint32_t config_grantable(const struct config *cfg)
{
	uint32_t n = 0;

	for (uint32_t p = 1; p <= 65535; p++) {
		bool allowed = false, reserved = false;

		for (size_t i = 0; i < cfg->n_allowed && !allowed; i++)
			allowed = p >= cfg->allowed_ports[i].from && p <= cfg->allowed_ports[i].to;
		for (size_t i = 0; i < cfg->n_reserved && allowed && !reserved; i++)
			reserved = p >= cfg->reserved_ports[i].from && p <= cfg->reserved_ports[i].to;
		n += allowed && !reserved;
	}
	return n;
}

static int config_check(struct config *cfg)
{
	char value[128];
	struct stat st;

	if (cfg->n_listen == 0) {
		fprintf(stderr, "natpmp-server: error: --listen-interface is required: name the LAN interface(s) "
				"clients ask on, e.g. --listen-interface br-lan\n");
		return -1;
	}
	if (config_outer_check(cfg) < 0)
		return -1;
	if (cfg->external_interface[0] == '\0') {
		fprintf(stderr, "natpmp-server: error: --external-interface is required: name the interface that "
				"has the public address, e.g. --external-interface eth0\n");
		return -1;
	}
	for (size_t i = 0; i < cfg->n_listen; i++) {
		if (strcmp(cfg->listen_interfaces[i], cfg->external_interface) == 0)
			return config_error("listen-interface", cfg->listen_interfaces[i],
					    "is also the external interface: the daemon never answers there");
		for (size_t j = 0; j < i; j++)
			if (strcmp(cfg->listen_interfaces[i], cfg->listen_interfaces[j]) == 0)
				return config_error("listen-interface", cfg->listen_interfaces[i],
						    "given twice");
	}
	if (strcmp(cfg->nat_chain, "postrouting") == 0)
		return config_error("nat-chain", cfg->nat_chain,
				    "is the name of the daemon's own postrouting chain: choose another");
	if (cfg->default_lifetime > cfg->max_lifetime && !cfg->default_lifetime_given)
		cfg->default_lifetime = cfg->max_lifetime;
	if (cfg->default_lifetime > cfg->max_lifetime) {
		snprintf(value, sizeof(value), "%u", cfg->default_lifetime);
		return config_error("default-lifetime", value, "is above --max-lifetime: lower it or raise that");
	}
	if (cfg->n_allowed == 0) {
		cfg->allowed_ports[0] = (struct port_range){ 1024, 65535 };
		cfg->n_allowed = 1;
	}
	if (config_grantable(cfg) == 0) {
		char reserved[128], why[256];
		config_ranges_str(cfg->reserved_ports, cfg->n_reserved, reserved, sizeof(reserved));
		config_ranges_str(cfg->allowed_ports, cfg->n_allowed, value, sizeof(value));
		snprintf(why, sizeof(why), "covers every port --allowed-ports '%s' allows: no port could ever be "
					   "granted; narrow --reserved-ports or widen --allowed-ports", value);
		return config_error("reserved-ports", reserved, why);
	}
	if (cfg->http_listen[0] && !cfg->http_token[0] && !config_http_local(cfg))
		return config_error("http-listen", cfg->http_listen,
				    "is not a loopback address: set a token first (--http-token-file or NATPMP_TOKEN), "
				    "or listen on 127.0.0.1");
	if (cfg->hook[0] && (stat(cfg->hook, &st) < 0 || !S_ISREG(st.st_mode) || access(cfg->hook, X_OK) < 0))
		return config_error("hook", cfg->hook, "is not an executable file: check the path and its mode");
	return 0;
}

int config_parse(struct config *cfg, int argc, char **argv)
{
	int seen[OPT_END - OPT_LISTEN_INTERFACE] = { 0 };
	int ranges_reset = 0, opt, r;
	struct config_file cf = { 0 };
	const char *file;

	config_defaults(cfg);
	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":nhV", config_options, NULL)) != -1) {
		switch (opt) {
		case 'n':
			opt = OPT_CHECK_CONFIG;
			break;
		case 'h':
		case OPT_HELP:
			config_usage(stdout);
			return 1;
		case 'V':
		case OPT_VERSION:
			printf("natpmp-server %s\n", NATPMP_VERSION_STRING);
			return 1;
		case ':':
			fprintf(stderr, "natpmp-server: error: %s needs a value; see --help\n", argv[optind - 1]);
			return -1;
		case '?':
			fprintf(stderr, "natpmp-server: error: unknown option '%s'; see --help\n", argv[optind - 1]);
			return -1;
		}
		seen[opt - OPT_LISTEN_INTERFACE] = 1;
		if (config_apply(cfg, opt, optarg, &ranges_reset) < 0)
			return -1;
	}
	if (optind < argc) {
		fprintf(stderr, "natpmp-server: error: unexpected argument '%s'; options start with --, see --help\n",
			argv[optind]);
		return -1;
	}
	if (!cfg->config_file[0] && (file = getenv("NATPMP_CONFIG")) && file[0] &&
	    config_apply(cfg, OPT_CONFIG, file, &ranges_reset) < 0)
		return -1;
	if (cfg->config_file[0] && config_file_load(cfg->config_file, &cf, config_key_kind) < 0) {
		config_file_free(&cf);
		return -1;
	}
	r = config_from_env(cfg, seen, &ranges_reset, &cf);
	config_file_free(&cf);
	if (r < 0)
		return -1;
	if (cfg->json && !cfg->list_mappings) {
		fprintf(stderr, "natpmp-server: error: --json goes with --list-mappings\n");
		return -1;
	}
	/* Listing reads only the state directory: the interfaces need not be given. */
	return cfg->list_mappings ? 0 : config_check(cfg);
}
