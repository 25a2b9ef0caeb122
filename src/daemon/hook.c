/*
 * hook.c - running --hook without a shell and without waiting for it.
 *
 * posix_spawn() starts the program; SIGCHLD (through libevent, so in the
 * loop, not in a signal handler) says when it ended, and a timer kills it
 * when it takes too long.  It runs without the daemon's capabilities and
 * without its secrets (token, credentials, service manager sockets).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/hook.h"
#include "base/log.h"
#include "kernel/netif.h"
#include "wire/proto.h"

extern char **environ;

struct hook {
	const struct config *cfg;
	struct metrics *metrics;
	struct event *sigchld;
	struct event *timer;
	struct hook_event *queue; /* a ring of HOOK_QUEUE */
	size_t head, len;
	pid_t running; /* 0: none */
	struct hook_event current;
	char path[PATH_MAX]; /* of the current run: a reload may change the configuration's */
	uint32_t timeout;
	int killed;
	uint64_t dropped;
};

static void hook_next(struct hook *h);

static void hook_on_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;

	(void)fd;
	(void)what;
	if (h->running) {
		log_warnx("hook %s (%s) still running after %u s: killing it", h->path, h->current.event, h->timeout);
		h->killed = 1;
		kill(-h->running, SIGKILL);
	}
}

static void hook_on_sigchld(evutil_socket_t fd, short what, void *arg)
{
	struct hook *h = arg;
	int status;
	pid_t pid;

	(void)fd;
	(void)what;
	if (!h->running || (pid = waitpid(h->running, &status, WNOHANG)) <= 0)
		return;
	h->running = 0;
	evtimer_del(h->timer);
	if (h->killed) {
		h->metrics->hooks[METRICS_HOOK_TIMEOUT]++;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		h->metrics->hooks[METRICS_HOOK_OK]++;
	} else {
		h->metrics->hooks[METRICS_HOOK_FAILED]++;
		if (WIFEXITED(status))
			log_warnx("hook %s (%s) exited with status %d", h->path, h->current.event, WEXITSTATUS(status));
		else
			log_warnx("hook %s (%s) was killed by signal %d", h->path, h->current.event, WTERMSIG(status));
	}
	hook_next(h);
}

/*
 * What of the daemon's environment a hook must not get: the HTTP token,
 * systemd's credentials directory (where the token file may be), and the
 * service manager's sockets (a hook could tell systemd the daemon stopped).
 */
static const char *const hook_hidden[] = { "NATPMP_TOKEN=", "CREDENTIALS_DIRECTORY=", "NOTIFY_SOCKET=",
					   "WATCHDOG_PID=", "WATCHDOG_USEC=", "LISTEN_FDS=", "LISTEN_PID=" };

static int hook_hides(const char *var)
{
	for (size_t i = 0; i < sizeof(hook_hidden) / sizeof(hook_hidden[0]); i++)
		if (strncmp(var, hook_hidden[i], strlen(hook_hidden[i])) == 0)
			return 1;
	return 0;
}

#define HOOK_VARS 8

/* The daemon's environment without what hook_hidden names, nor its own NATPMP_ variables of a run; then vars. */
static char **hook_environment(char vars[HOOK_VARS][80])
{
	size_t n = 0, k = 0;
	char **env;

	while (environ[n])
		n++;
	if (!(env = calloc(n + HOOK_VARS + 1, sizeof(*env))))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		int shadowed = 0;
		for (size_t v = 0; v < HOOK_VARS && !shadowed; v++)
			shadowed = strncmp(environ[i], vars[v], (size_t)(strchr(vars[v], '=') - vars[v] + 1)) == 0;
		if (!hook_hides(environ[i]) && !shadowed)
			env[k++] = environ[i];
	}
	for (size_t v = 0; v < HOOK_VARS; v++)
		env[k++] = vars[v];
	return env;
}

/*
 * natmap's IP4P: an IPv4 address and port as an IPv6 address, for a name
 * whose AAAA record carries both: 2001::PORT:AB:CD in hex, where AB and
 * CD are the address's halves.
 */
static void hook_ip4p(const struct hook_event *ev, char *out, size_t len)
{
	uint32_t a;

	out[0] = '\0';
	if (!table_addr_is_v4(&ev->external_address))
		return;
	a = ntohl(ev->external_address.v4);
	snprintf(out, len, "2001::%x:%x:%x", ev->external_port, a >> 16, a & 0xffff);
}

static int hook_spawn(struct hook *h, const struct hook_event *ev)
{
	char proto[4], client[TABLE_ADDR_STRLEN], external[TABLE_ADDR_STRLEN], iport[8], eport[8], life[16];
	char *argv[] = { h->path, (char *)ev->event, proto, client, iport, external, eport, life, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	char vars[HOOK_VARS][80], ip4p[48];
	char **env;
	pid_t pid;
	int r;

	snprintf(proto, sizeof(proto), "%s", proto_protocol_name(ev->protocol));
	table_addr_str(&ev->client, client);
	table_addr_str(&ev->external_address, external);
	snprintf(iport, sizeof(iport), "%u", ev->internal_port);
	snprintf(eport, sizeof(eport), "%u", ev->external_port);
	snprintf(life, sizeof(life), "%u", ev->lifetime);
	hook_ip4p(ev, ip4p, sizeof(ip4p));
	snprintf(vars[0], sizeof(vars[0]), "NATPMP_EVENT=%s", ev->event);
	snprintf(vars[1], sizeof(vars[1]), "NATPMP_PROTOCOL=%s", ev->protocol == IPPROTO_TCP ? "tcp" : "udp");
	snprintf(vars[2], sizeof(vars[2]), "NATPMP_INTERNAL_ADDRESS=%s", client);
	snprintf(vars[3], sizeof(vars[3]), "NATPMP_INTERNAL_PORT=%s", iport);
	snprintf(vars[4], sizeof(vars[4]), "NATPMP_PUBLIC_ADDRESS=%s", external);
	snprintf(vars[5], sizeof(vars[5]), "NATPMP_PUBLIC_PORT=%s", eport);
	snprintf(vars[6], sizeof(vars[6]), "NATPMP_LOCAL_PORT=%u", ev->local_port);
	snprintf(vars[7], sizeof(vars[7]), "NATPMP_IP4P=%s", ip4p);
	if (!(env = hook_environment(vars)))
		return -ENOMEM;

	sigemptyset(&none);
	/* The daemon ignores SIGPIPE, and an ignored signal stays ignored across exec. */
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGCHLD);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	/*
	 * The daemon's CAP_NET_ADMIN reaches it through the ambient set
	 * (AmbientCapabilities= in the unit), which an exec would pass on:
	 * emptied, a hook run by a user other than root gets no capability.
	 * No new privileges: nor from a setuid or file-capability program it
	 * runs (the unit sets the same).  The daemon keeps its own; it never
	 * execs anything else.
	 */
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	r = posix_spawn(&pid, h->path, &fa, &attr, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	free(env);
	if (r != 0)
		return -r;
	h->running = pid;
	return 0;
}

static void hook_next(struct hook *h)
{
	int r;

	while (!h->running && h->len > 0) {
		struct timeval tv = { 0 };
		h->current = h->queue[h->head];
		h->head = (h->head + 1) % HOOK_QUEUE;
		h->len--;
		h->killed = 0;
		/* A reload that removed --hook leaves nothing to run. */
		if (!h->cfg->hook[0])
			continue;
		snprintf(h->path, sizeof(h->path), "%s", h->cfg->hook);
		h->timeout = h->cfg->hook_timeout;
		if ((r = hook_spawn(h, &h->current)) < 0) {
			h->metrics->hooks[METRICS_HOOK_FAILED]++;
			log_warnx("cannot run hook %s (%s): %s", h->path, h->current.event, strerror(-r));
			continue;
		}
		tv.tv_sec = h->timeout;
		evtimer_add(h->timer, &tv);
	}
}

struct hook *hook_new(struct event_base *base, const struct config *cfg, struct metrics *m)
{
	struct hook *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->cfg = cfg;
	h->metrics = m;
	h->queue = calloc(HOOK_QUEUE, sizeof(*h->queue));
	h->sigchld = evsignal_new(base, SIGCHLD, hook_on_sigchld, h);
	h->timer = evtimer_new(base, hook_on_timeout, h);
	if (!h->queue || !h->sigchld || !h->timer || event_add(h->sigchld, NULL) < 0) {
		hook_free(h);
		return NULL;
	}
	return h;
}

void hook_run(struct hook *h, const struct hook_event *ev)
{
	if (h->len == HOOK_QUEUE) {
		/* Logged at each power of two, so a burst cannot flood the log. */
		h->metrics->hooks[METRICS_HOOK_DROPPED]++;
		h->dropped++;
		if ((h->dropped & (h->dropped - 1)) == 0)
			log_warnx("hook queue full (%d waiting): dropped a run for %s (%llu dropped in all)", HOOK_QUEUE,
				  ev->event, (unsigned long long)h->dropped);
		return;
	}
	h->queue[(h->head + h->len) % HOOK_QUEUE] = *ev;
	h->len++;
	hook_next(h);
}

void hook_free(struct hook *h)
{
	if (!h)
		return;
	if (h->running) {
		kill(-h->running, SIGKILL);
		waitpid(h->running, NULL, 0);
	}
	if (h->sigchld)
		event_free(h->sigchld);
	if (h->timer)
		event_free(h->timer);
	free(h->queue);
	free(h);
}
