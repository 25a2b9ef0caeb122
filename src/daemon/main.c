/*
 * main.c - natpmp-server: parse the configuration, run the server.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/list.h"
#include "base/log.h"
#include "daemon/server.h"

static void check_interface(const char *role, const char *name)
{
	if (if_nametoindex(name))
		fprintf(stderr, "natpmp-server: check: %s %s exists\n", role, name);
	else
		fprintf(stderr, "natpmp-server: warning: %s %s does not exist (yet): the daemon would wait for it; check "
				"the name if it is not one that comes up later (PPPoE, WireGuard, a bridge)\n",
			role, name);
}

/* The state directory, or the directory it would be created in, can be written: 0, or -1 after saying why. */
static int check_state_dir(const char *dir)
{
	char parent[PATH_MAX];
	struct stat st;

	if (stat(dir, &st) == 0) {
		if (!S_ISDIR(st.st_mode) || access(dir, W_OK | X_OK) < 0) {
			fprintf(stderr, "natpmp-server: error: state directory %s is not a directory this user (uid %u) "
					"can write: fix its owner or mode, or choose another --state-dir\n",
				dir, (unsigned)getuid());
			return -1;
		}
		fprintf(stderr, "natpmp-server: check: state directory %s is writable\n", dir);
		return 0;
	}
	snprintf(parent, sizeof(parent), "%s", dir);
	if (errno != ENOENT || access(dirname(parent), W_OK | X_OK) < 0) {
		fprintf(stderr, "natpmp-server: error: state directory %s does not exist and cannot be created here "
				"(uid %u): create it, or choose another --state-dir\n",
			dir, (unsigned)getuid());
		return -1;
	}
	fprintf(stderr, "natpmp-server: check: state directory %s does not exist yet and will be created\n", dir);
	return 0;
}

/*
 * -n: the configuration as the options that give it (stdout), then what
 * can be checked without changing anything (stderr): interfaces (a warning:
 * they may come later), the state directory and the HTTP token.  1 when
 * something would stop the start.
 */
static int check_config(const struct config *cfg)
{
	int r = 0;

	config_print(cfg, stdout);
	fflush(stdout);
	for (size_t i = 0; i < cfg->n_listen; i++)
		check_interface("listen interface", cfg->listen_interfaces[i]);
	check_interface(cfg->upstream_gateway ? "upstream interface" : "external interface", cfg->external_interface);
	if (check_state_dir(cfg->state_dir) < 0)
		r = 1;
	if (!cfg->http_listen[0])
		fprintf(stderr, "natpmp-server: check: no HTTP API (--http-listen is not set)\n");
	else if (cfg->http_token_file[0])
		fprintf(stderr, "natpmp-server: check: HTTP API on %s, token read from %s\n", cfg->http_listen,
			cfg->http_token_file);
	else if (cfg->http_token[0])
		fprintf(stderr, "natpmp-server: check: HTTP API on %s, token from NATPMP_TOKEN\n", cfg->http_listen);
	else
		fprintf(stderr, "natpmp-server: check: HTTP API on %s without a token: read-only, and only on "
				"loopback or a unix socket\n",
			cfg->http_listen);
	return r;
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct server *s;
	int r;

	r = config_parse(&cfg, argc, argv);
	if (r != 0)
		return r > 0 ? 0 : 2;
	if (cfg.list_mappings)
		return list_mappings(&cfg, stdout);
	if (cfg.check_config)
		return check_config(&cfg);
	log_init(cfg.log_level);
	if (!(s = server_new(&cfg, argc, argv)))
		fatalx("out of memory");
	r = server_start(s) < 0 ? 1 : server_run(s) < 0 ? 1 : 0;
	server_free(s);
	return r;
}
