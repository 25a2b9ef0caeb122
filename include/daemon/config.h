/*
 * config.h - the daemon's configuration: the command line first, then the
 * --config file's NATPMP_<NAME>=value lines, then NATPMP_<NAME> environment
 * variables, for each option the earlier sources did not give.  SIGHUP
 * parses all three again (the file is re-read; the environment is the one
 * the daemon was started with).
 *
 * config_parse() returns 0 when the daemon should run, 1 when it printed
 * help or version and should exit 0, and -1 after printing an error that
 * names the option and the value to stderr.
 */
#ifndef NATPMP_CONFIG_H
#define NATPMP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h"
#include "engine/table.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_RANGES 64
#define CONFIG_MAX_RULES 64
#define CONFIG_NAME_MAX 64
#define CONFIG_TOKEN_MAX 256
#define CONFIG_TOKEN_MIN 16
#define CONFIG_MAX_STUN 8
#define CONFIG_STUN_HOST_MAX 256

/* The default --pinhole-mark (and mask): bit 24, clear of Tailscale's and Kubernetes' bits. */
#define CONFIG_PINHOLE_MARK 0x1000000u

/* --rule 'third-party SENDER HOST': SENDER may map for HOST by PCP's THIRD_PARTY (networks, network order). */
struct config_third_party {
	uint32_t sender_net, sender_mask;
	uint32_t host_net, host_mask;
};

struct config {
	char listen_interfaces[CONFIG_MAX_LISTEN][16];
	size_t n_listen;
	uint16_t listen_port;
	char external_interface[16];
	char nat_table[CONFIG_NAME_MAX];
	char nat_chain[CONFIG_NAME_MAX];
	uint32_t pinhole_mark, pinhole_mask; /* --pinhole-mark: the bits a pinhole sets in a packet's mark */
	uint32_t max_mappings_per_ip;
	uint32_t default_lifetime;
	bool default_lifetime_given; /* else it follows a lower --max-lifetime */
	uint32_t max_lifetime;
	struct port_range allowed_ports[CONFIG_MAX_RANGES];
	size_t n_allowed;
	struct port_range reserved_ports[CONFIG_MAX_RANGES]; /* never handed out */
	size_t n_reserved;
	struct table_rule rules[CONFIG_MAX_RULES]; /* --rule, in order */
	size_t n_rules;
	struct config_third_party third_party[CONFIG_MAX_RULES]; /* --rule 'third-party ...' */
	size_t n_third_party;
	uint32_t external_address; /* network byte order; 0: the external interface's */
	uint32_t rate_limit;	   /* requests per second per client; 0: unlimited */
	char state_dir[256];
	enum log_level log_level;
	char config_file[256];	   /* "": none */
	char http_listen[108];	   /* "": no HTTP API; "/path": unix socket; else A.B.C.D:PORT */
	char http_token_file[256]; /* where http_token came from, "" for NATPMP_TOKEN */
	char http_token[CONFIG_TOKEN_MAX + 1]; /* "": POST/DELETE /forward are refused */
	char hook[256];		   /* "": none */
	uint32_t hook_timeout;	   /* seconds */
	uint32_t upstream_gateway; /* network byte order; 0: not in upstream mode */
	char upstream_interface[16]; /* upstream mode: also external_interface */
	/* STUN mode: "HOST:PORT" each, tried in turn; n_stun 0: not in STUN mode */
	char stun_servers[CONFIG_MAX_STUN][CONFIG_STUN_HOST_MAX + 6];
	size_t n_stun;
	uint32_t stun_keepalive;	  /* seconds between keep-alives of a binding */
	char stun_keepalive_server[CONFIG_STUN_HOST_MAX + 6]; /* "HOST:PORT" of an HTTP server for TCP bindings; "": none */
	bool stun_allow_filtered;	  /* map through an outer NAT that seems to filter */
	bool check_config;
	bool list_mappings; /* --list-mappings: print the state directory's mappings and exit */
	bool json;	    /* ... as JSON */
};

int config_parse(struct config *cfg, int argc, char **argv);
/* True when the HTTP API listens on a loopback address or a unix socket. */
bool config_http_local(const struct config *cfg);
/*
 * --http-listen's address (without brackets) and port, for a TCP listener;
 * -1 for a unix socket path.
 */
int config_http_split(const char *listen, char *addr, size_t addrlen, uint16_t *port);
/* Writes the effective configuration as the command-line options that give it. */
void config_print(const struct config *cfg, FILE *out);
void config_usage(FILE *out);

#endif
