/*
 * config_outer.c - the options about a NAT outside the router: upstream
 * mode and STUN mode.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_outer.h"

static int outer_error(const char *option, const char *value, const char *why)
{
	fprintf(stderr, "natpmp-server: error: --%s '%s': %s\n", option, value, why);
	return -1;
}

/* "HOST[:PORT]": host into host (hostlen), port into *port (def when none); -1 with *why. */
static int split_host_port(const char *arg, char *host, size_t hostlen, uint16_t def, uint16_t *port,
			   const char **why)
{
	const char *colon = strrchr(arg, ':');
	size_t len = colon ? (size_t)(colon - arg) : strlen(arg);
	char *end;
	unsigned long v;

	if (colon && strchr(arg, ':') != colon) {
		*why = "is IPv6: the outer NAT is reached over IPv4; give a host name or an IPv4 address";
		return -1;
	}
	if (len == 0 || len >= hostlen) {
		*why = "has no host, or one too long: use HOST or HOST:PORT";
		return -1;
	}
	memcpy(host, arg, len);
	host[len] = '\0';
	*port = def;
	if (!colon)
		return 0;
	v = isdigit((unsigned char)colon[1]) ? strtoul(colon + 1, &end, 10) : 0;
	if (!isdigit((unsigned char)colon[1]) || *end || v < 1 || v > 65535) {
		*why = "has a port that is not 1 to 65535: use HOST or HOST:PORT";
		return -1;
	}
	*port = (uint16_t)v;
	return 0;
}

/* A host name as DNS spells one (RFC 1123: letters, digits, hyphens and dots), or an IPv4 address. */
static bool host_ok(const char *host)
{
	for (const char *c = host; *c; c++)
		if (!isalnum((unsigned char)*c) && *c != '-' && *c != '.')
			return false;
	return true;
}

int config_stun_server(struct config *cfg, const char *arg)
{
	char host[CONFIG_STUN_HOST_MAX];
	const char *why;
	uint16_t port;

	if (cfg->n_stun == CONFIG_MAX_STUN)
		return outer_error("stun-server", arg, "too many STUN servers (8 at most)");
	if (split_host_port(arg, host, sizeof(host), 3478, &port, &why) < 0)
		return outer_error("stun-server", arg, why);
	if (!host_ok(host))
		return outer_error("stun-server", arg, "is not a host name or an IPv4 address, e.g. stun.example.net:3478");
	snprintf(cfg->stun_servers[cfg->n_stun++], sizeof(cfg->stun_servers[0]), "%s:%u", host, port);
	return 0;
}

int config_stun_keepalive_server(struct config *cfg, const char *arg)
{
	char host[CONFIG_STUN_HOST_MAX];
	const char *why;
	uint16_t port;

	if (split_host_port(arg, host, sizeof(host), 80, &port, &why) < 0)
		return outer_error("stun-keepalive-server", arg, why);
	if (!host_ok(host))
		return outer_error("stun-keepalive-server", arg,
				   "is not a host name or an IPv4 address: give the HTTP server's, e.g. keepalive.example.net:80");
	snprintf(cfg->stun_keepalive_server, sizeof(cfg->stun_keepalive_server), "%s:%u", host, port);
	return 0;
}

/*
 * Upstream mode: the gateway forwards to the router's address on the
 * interface facing it, so that is where the local forwards must match, the
 * role --external-interface has otherwise.  --upstream-interface names it,
 * or --external-interface does; two different names cannot both be right.
 */
static int config_upstream_check(struct config *cfg)
{
	if (!cfg->upstream_gateway) {
		if (cfg->upstream_interface[0])
			return outer_error("upstream-interface", cfg->upstream_interface,
					   "needs --upstream-gateway: name the gateway to ask through it");
		return 0;
	}
	if (cfg->external_address) {
		char addr[INET_ADDRSTRLEN];
		struct in_addr a = { .s_addr = cfg->external_address };
		return outer_error("external-address", inet_ntop(AF_INET, &a, addr, sizeof(addr)),
				   "cannot be combined with --upstream-gateway: the gateway tells the external "
				   "address; drop one of them");
	}
	if (!cfg->upstream_interface[0]) {
		if (!cfg->external_interface[0]) {
			fprintf(stderr, "natpmp-server: error: --upstream-gateway needs the interface that faces it: "
					"give --upstream-interface, e.g. --upstream-interface wg0\n");
			return -1;
		}
		strcpy(cfg->upstream_interface, cfg->external_interface);
	}
	if (cfg->external_interface[0] && strcmp(cfg->external_interface, cfg->upstream_interface) != 0) {
		fprintf(stderr,
			"natpmp-server: error: --external-interface %s and --upstream-interface %s differ: in upstream mode "
			"the forwards arrive from the gateway, so they name the same interface; give only "
			"--upstream-interface\n",
			cfg->external_interface, cfg->upstream_interface);
		return -1;
	}
	strcpy(cfg->external_interface, cfg->upstream_interface);
	return 0;
}

/* STUN mode: the STUN server tells the address and the outer NAT picks the ports, so nothing may say otherwise. */
static int config_stun_check(struct config *cfg)
{
	char addr[INET_ADDRSTRLEN];

	if (!cfg->n_stun) {
		if (cfg->stun_keepalive_server[0])
			return outer_error("stun-keepalive-server", cfg->stun_keepalive_server,
					   "needs --stun-server: keep-alives keep STUN-learnt bindings");
		if (cfg->stun_allow_filtered)
			return outer_error("stun-allow-filtered", "yes", "needs --stun-server");
		return 0;
	}
	if (cfg->upstream_gateway) {
		struct in_addr a = { .s_addr = cfg->upstream_gateway };
		return outer_error("upstream-gateway", inet_ntop(AF_INET, &a, addr, sizeof(addr)),
				   "cannot be combined with --stun-server: a NAT-PMP gateway maps ports itself, a "
				   "STUN server is for an outer NAT that does not; drop one of them");
	}
	if (cfg->external_address) {
		struct in_addr a = { .s_addr = cfg->external_address };
		return outer_error("external-address", inet_ntop(AF_INET, &a, addr, sizeof(addr)),
				   "cannot be combined with --stun-server: the STUN server tells the public "
				   "address; drop one of them");
	}
	return 0;
}

int config_outer_check(struct config *cfg)
{
	return config_upstream_check(cfg) < 0 || config_stun_check(cfg) < 0 ? -1 : 0;
}
