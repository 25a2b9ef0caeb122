/*
 * config.h - the daemon's configuration: command line, then NATPMP_<NAME>
 * environment variables for options the command line did not give.
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

#include "log.h"
#include "table.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_RANGES 64
#define CONFIG_NAME_MAX 64

struct config {
	char listen_interfaces[CONFIG_MAX_LISTEN][16];
	size_t n_listen;
	uint16_t listen_port;
	char external_interface[16];
	char nat_table[CONFIG_NAME_MAX];
	char nat_chain[CONFIG_NAME_MAX];
	uint32_t max_mappings_per_ip;
	uint32_t default_lifetime;
	bool default_lifetime_given; /* else it follows a lower --max-lifetime */
	uint32_t max_lifetime;
	struct port_range allowed_ports[CONFIG_MAX_RANGES];
	size_t n_allowed;
	struct port_range reserved_ports[CONFIG_MAX_RANGES]; /* never handed out */
	size_t n_reserved;
	uint32_t external_address; /* network byte order; 0: the external interface's */
	uint32_t rate_limit;	   /* requests per second per client; 0: unlimited */
	char state_dir[256];
	enum log_level log_level;
	bool check_config;
};

int config_parse(struct config *cfg, int argc, char **argv);
/* Writes the effective configuration as the command-line options that give it. */
void config_print(const struct config *cfg, FILE *out);
void config_usage(FILE *out);

#endif
