/*
 * ports.h - the router's own ports (kernel/sockdiag.h): never handed out,
 * and mappings moved off a port the router started to use since.
 */
#ifndef NATPMP_DAEMON_PORTS_H
#define NATPMP_DAEMON_PORTS_H

#include "server_impl.h"

/* The table's port_busy (engine/table.h): 1 when the router uses protocol's port (host order); arg: the server. */
int ports_busy(uint8_t protocol, uint16_t port, void *arg);
/* The periodic check (every SERVER_PORTS_CHECK_S; arg: the server). */
void ports_on_check(evutil_socket_t fd, short what, void *arg);

#endif
