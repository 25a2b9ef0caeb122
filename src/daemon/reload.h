/*
 * reload.h - SIGHUP: the command line, --config file and environment
 * parsed again, and what changed applied; everything that can fail is done
 * before anything is replaced, so a refused reload changes nothing.
 */
#ifndef NATPMP_DAEMON_RELOAD_H
#define NATPMP_DAEMON_RELOAD_H

#include "server_impl.h"

/* Logs what it did or why it refused, and tells the service manager. */
void reload_config(struct server *s);

#endif
