/*
 * main.c - natpmp-server: parse the configuration, run the server.
 */
#include <stdio.h>
#include <stdlib.h>

#include "daemon/config.h"
#include "base/log.h"
#include "daemon/server.h"

int main(int argc, char **argv)
{
	struct config cfg;
	struct server *s;
	int r;

	r = config_parse(&cfg, argc, argv);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (cfg.check_config) {
		config_print(&cfg, stdout);
		return 0;
	}
	log_init(cfg.log_level);
	if (!(s = server_new(&cfg, argc, argv)))
		fatalx("out of memory");
	r = server_start(s) < 0 ? 1 : server_run(s) < 0 ? 1 : 0;
	server_free(s);
	return r;
}
