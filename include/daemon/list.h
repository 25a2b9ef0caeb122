/*
 * list.h - natpmp-server --list-mappings: the mappings as the state
 * directory holds them, without the HTTP API and without touching anything.
 *
 * The running daemon appends every change to its journal before it answers,
 * so the snapshot and the journal are its acknowledged mappings; when it is
 * stopped they are what a start would restore.  Remaining lifetimes are
 * counted on the boot clock within the boot that wrote them, else on the
 * wall clock, as the restore counts them; expired mappings are not listed.
 */
#ifndef NATPMP_DAEMON_LIST_H
#define NATPMP_DAEMON_LIST_H

#include <stdio.h>

#include "daemon/config.h"

/*
 * Prints cfg->state_dir's mappings to out, as a table (with a line saying
 * whether a daemon holds the directory) or, with cfg->json, as a JSON list
 * of objects like GET /mappings's.  Returns the exit status: 0, or 1 after
 * saying on stderr why the files could not be read.
 */
int list_mappings(const struct config *cfg, FILE *out);

#endif
