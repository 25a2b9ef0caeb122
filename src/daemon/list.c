/*
 * list.c - natpmp-server --list-mappings (list.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "daemon/list.h"
#include "daemon/lock.h"
#include "engine/table.h"
#include "store/state.h"
#include "wire/proto.h"

/* Tries to read a snapshot and its journal that belong together; a compaction between the two reads is retried. */
#define LIST_TRIES 3

/* Reads the snapshot and its journal; 0, or -errno after saying why on stderr. */
static int list_read(const char *dir, struct state *st)
{
	char path[PATH_MAX], journal[PATH_MAX], err[256];
	struct stat before, after;
	size_t applied;
	int r;

	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	snprintf(journal, sizeof(journal), "%s/%s", dir, STATE_JOURNAL_NAME);
	for (int tries = 0;; tries++) {
		if (stat(path, &before) < 0 && errno == ENOENT) {
			memset(st, 0, sizeof(*st));
			return 0;
		}
		if ((r = state_load(path, st, err, sizeof(err))) < 0) {
			fprintf(stderr, "natpmp-server: error: cannot read %s: %s\n", path,
				r == -EBADMSG ? err : strerror(-r));
			return r;
		}
		r = state_journal_replay(journal, st, &applied, err, sizeof(err));
		/* The daemon may have replaced both meanwhile: read again if the snapshot is another file now. */
		if (stat(path, &after) == 0 && after.st_ino == before.st_ino) {
			if (r < 0 && r != -EBADMSG) {
				fprintf(stderr, "natpmp-server: error: cannot read %s: %s\n", journal, strerror(-r));
				state_free(st);
				return r;
			}
			if (r == -EBADMSG)
				fprintf(stderr, "natpmp-server: warning: %s: %s; listing what came before\n", journal, err);
			return 0;
		}
		state_free(st);
		if (tries + 1 == LIST_TRIES) {
			fprintf(stderr, "natpmp-server: error: %s keeps changing while it is read; try again\n", path);
			return -EAGAIN;
		}
	}
}

static int list_order(const void *pa, const void *pb)
{
	const struct state_mapping *a = pa, *b = pb;

	if (a->protocol != b->protocol)
		return a->protocol == IPPROTO_TCP ? -1 : 1;
	return (int)a->external_port - (int)b->external_port;
}

int list_mappings(const struct config *cfg, FILE *out)
{
	char boot_id[STATE_BOOT_ID_LEN + 1], client[INET6_ADDRSTRLEN];
	struct json_object *list = NULL;
	long holder = lock_dir_holder(cfg->state_dir);
	bool upstream = false;
	struct state st;
	struct timespec boot;
	bool same_boot, on_boot;
	int64_t wall;
	size_t shown = 0;

	if (list_read(cfg->state_dir, &st) < 0)
		return 1;
	state_boot_id(boot_id);
	same_boot = state_same_boot(&st, boot_id);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	wall = (int64_t)time(NULL);
	if (st.n_mappings)
		qsort(st.mappings, st.n_mappings, sizeof(st.mappings[0]), list_order);
	for (size_t i = 0; i < st.n_mappings; i++)
		upstream |= st.mappings[i].upstream_port != 0;
	if (cfg->json)
		list = json_object_new_array();
	else if (holder > 0)
		fprintf(out, "# natpmp-server (pid %ld) is running on %s: the mappings it has acknowledged\n", holder,
			cfg->state_dir);
	else if (holder < 0)
		fprintf(out, "# cannot tell whether a natpmp-server runs on %s (its lock file cannot be read or names "
			     "no pid): these are its mappings, or those a start would restore\n",
			cfg->state_dir);
	else
		fprintf(out, "# no natpmp-server runs on %s: the mappings a start would restore\n", cfg->state_dir);
	if (!cfg->json)
		fprintf(out, "%-15s %-5s %8s %8s %9s %-6s%s\n", "CLIENT", "PROTO", "INTERNAL", "EXTERNAL", "LIFETIME",
			"ORIGIN", upstream ? " UPSTREAM" : "");
	for (size_t i = 0; i < st.n_mappings; i++) {
		const struct state_mapping *m = &st.mappings[i];
		/* As the restore counts it (persist.c), and caps it below. */
		int64_t left = state_mapping_left(m, same_boot, (int64_t)boot.tv_sec, wall, &on_boot);
		const char *origin = table_origin_name(m->origin);

		if (left <= 0)
			continue;
		if (left > m->lifetime)
			left = m->lifetime; /* as the restore caps it */
		state_client_str(m, client);
		shown++;
		if (!cfg->json) {
			fprintf(out, "%-15s %-5s %8u %8u %9" PRId64 " %-6s", client, proto_protocol_name(m->protocol),
				m->internal_port, m->external_port, left, origin);
			if (upstream && m->upstream_port)
				fprintf(out, " %8u", m->upstream_port);
			fputc('\n', out);
			continue;
		}
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "client", json_object_new_string(client));
		json_object_object_add(o, "protocol", json_object_new_string(proto_protocol_name(m->protocol)));
		json_object_object_add(o, "internal_port", json_object_new_int(m->internal_port));
		json_object_object_add(o, "external_port", json_object_new_int(m->external_port));
		if (m->upstream_port)
			json_object_object_add(o, "upstream_port", json_object_new_int(m->upstream_port));
		json_object_object_add(o, "lifetime", json_object_new_int64(left));
		json_object_object_add(o, "origin", json_object_new_string(origin));
		json_object_array_add(list, o);
	}
	if (cfg->json) {
		fprintf(out, "%s\n", json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN));
		json_object_put(list);
	} else {
		fprintf(out, "# %zu mapping(s)\n", shown);
	}
	state_free(&st);
	return fflush(out) == 0 && !ferror(out) ? 0 : 1;
}
