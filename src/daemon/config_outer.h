/*
 * config_outer.h - the options about a NAT outside the router, for
 * config.c: upstream mode (--upstream-gateway, --upstream-interface) and
 * STUN mode (--stun-server HOST[:PORT], --stun-keepalive SECONDS,
 * --stun-keepalive-server HOST[:PORT], --stun-allow-filtered).
 *
 * Each function returns 0, or -1 after printing an error that names the
 * option, the value and what to write instead.
 */
#ifndef NATPMP_DAEMON_CONFIG_OUTER_H
#define NATPMP_DAEMON_CONFIG_OUTER_H

#include "daemon/config.h"

/* --stun-server: a host name or IPv4 address, and a port (3478 when none). */
int config_stun_server(struct config *cfg, const char *arg);
/* --stun-keepalive-server: a host name or IPv4 address, and a port (80 when none). */
int config_stun_keepalive_server(struct config *cfg, const char *arg);
/* After every source: the outer-NAT options agree with each other and with the rest. */
int config_outer_check(struct config *cfg);

#endif
