/*
 * persist.c - when the state file is written: each turn's journal lines,
 * compaction into a snapshot, the restore at start.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <unistd.h>

#include "server_impl.h"
#include "persist.h"

/* A mapping as the state file keeps it: an IPv4 client's as such, an IPv6 one's (a pinhole) in client6. */
static struct state_mapping state_of(const struct table_mapping *m, int64_t mono, int64_t wall, int64_t boot)
{
	struct state_mapping sm = {
		.expires_boot = boot + (m->expires - mono),
		.client = m->client.v4,
		.protocol = m->protocol,
		.origin = m->origin,
		.internal_port = m->internal_port,
		.external_port = m->external_port,
		.lifetime = m->lifetime,
		.expires = wall + (m->expires - mono),
		.upstream_port = m->upstream_port,
	};

	memcpy(sm.nonce, m->nonce, sizeof(sm.nonce));
	if (!table_addr_is_v4(&m->client)) {
		sm.client = 0;
		sm.ipv6 = true;
		memcpy(sm.client6, m->client.v6, sizeof(sm.client6));
	}
	return sm;
}

struct snapshot {
	struct state_mapping *out;
	size_t n;
	int64_t mono, wall, boot;
};

static int snapshot_one(const struct table_mapping *m, void *arg)
{
	struct snapshot *sn = arg;

	sn->out[sn->n++] = state_of(m, sn->mono, sn->wall, sn->boot);
	return 0;
}

/* No more appends to the journal: the next turn saves a snapshot of a new generation instead. */
void persist_close_journal(struct server *s)
{
	if (s->journal_fd >= 0)
		close(s->journal_fd);
	s->journal_fd = -1;
	s->journal_end = -1;
}

/*
 * Compaction: the whole table as the snapshot of the next generation, then
 * an empty journal of that generation (see state.h for why this order is
 * safe).  Costs what the table is: run at start, at exit, and after a turn
 * whose journal outgrew the snapshot, never while a client waits.
 */
int persist_compact(struct server *s, int64_t now)
{
	struct snapshot sn = { .mono = now, .wall = server_wall_s(), .boot = server_boot_s() };
	int64_t started = server_mono_us();
	bool replaced;
	struct state st;
	off_t end;
	int fd, r;

	sn.out = calloc(table_count(s->table) + 1, sizeof(*sn.out));
	if (!sn.out)
		return -ENOMEM;
	table_foreach(s->table, snapshot_one, &sn);
	st = (struct state){
		.epoch_start = sn.wall - server_epoch(s, now),
		.epoch_start_boot = sn.boot - server_epoch(s, now),
		.generation = s->generation + 1,
		.n_mappings = sn.n,
		.mappings = sn.out,
	};
	memcpy(st.boot_id, s->boot_id, sizeof(st.boot_id));
	if (st.epoch_start_boot < 1)
		st.epoch_start_boot = 1;
	r = state_save(s->state_path, &st, &replaced);
	free(sn.out);
	s->metrics.state_snapshots++;
	if (r < 0) {
		s->metrics.state_errors++;
		log_warnx("cannot write %s: %s", s->state_path, strerror(-r));
		/*
		 * Renamed, but the directory sync failed: the file on disk may be
		 * the new generation, which the old journal does not continue.
		 * Nothing more goes into it; the next turn saves a snapshot again.
		 */
		if (replaced) {
			s->generation++;
			persist_close_journal(s);
		}
		return r;
	}
	s->generation++;
	/* Appends to the old journal would now be ignored at the next start: never make one. */
	persist_close_journal(s);
	if ((r = state_journal_start(s->journal_path, s->generation, &fd, &end)) < 0) {
		s->metrics.state_errors++;
		log_warnx("cannot start journal %s: %s; saving whole snapshots until it can be", s->journal_path,
			  strerror(-r));
		return 0;
	}
	s->journal_fd = fd;
	s->journal_end = end;
	s->journal_bytes = 0;
	s->snapshot_bytes = (size_t)sn.n * 160;
	log_info("compacted %zu mapping(s) into %s in %.1f ms", sn.n, s->state_path,
		 (double)(server_mono_us() - started) / 1000);
#ifdef __GLIBC__
	/* The snapshot's megabytes go back to the system rather than stay in the heap. */
	malloc_trim(0);
#endif
	return 0;
}

int persist_writable(const struct server *s)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/.write-test.XXXXXX", s->cfg.state_dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	if ((fd = mkstemp(path)) < 0)
		return -errno;
	unlink(path);
	close(fd);
	return 0;
}

void persist_on_compact(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;

	(void)fd;
	(void)what;
	(void)persist_compact(s, server_mono_s());
}

/*
 * Makes a turn's changes durable: appended to the journal and synced, in
 * time and bytes proportional to the changes, whatever the table's size.
 */
int persist_changes(struct server *s, const struct table_change *ch, size_t n, int64_t now)
{
	struct state_change *c;
	int64_t wall = server_wall_s(), boot = server_boot_s();
	off_t before = s->journal_end;
	int r;

	if (s->journal_fd < 0)
		return persist_compact(s, now);
	if (!(c = calloc(n, sizeof(*c))))
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		c[i] = (struct state_change){ .op = ch[i].op == TABLE_DEL ? STATE_DEL : STATE_PUT,
					      .m = state_of(&ch[i].mapping, now, wall, boot) };
	r = state_journal_append(s->journal_fd, &s->journal_end, c, n);
	free(c);
	s->metrics.state_journal_writes++;
	if (r < 0) {
		s->metrics.state_errors++;
		if (s->journal_end < 0) {
			log_warnx("cannot write %s: %s, nor cut it back; the next change starts a new one", s->journal_path,
				  strerror(-r));
			persist_close_journal(s);
		} else {
			log_warnx("cannot write %s: %s; the change is refused", s->journal_path, strerror(-r));
		}
		return r;
	}
	s->journal_bytes += (size_t)(s->journal_end - before);
	/* Once the journal outgrows the snapshot, fold it in, after this turn's answers. */
	if (s->journal_bytes > SERVER_JOURNAL_MIN && s->journal_bytes > s->snapshot_bytes)
		event_active(s->compact_ev, EV_TIMEOUT, 0);
	return 0;
}

off_t persist_mark(const struct server *s)
{
	return s->journal_fd >= 0 ? s->journal_end : -1;
}

void persist_take_back(struct server *s, off_t before, int persisted, int64_t now)
{
	if (!persisted) {
		/*
		 * A failed append is cut back by state_journal_append(): nothing
		 * of the turn is on disk.  A failed snapshot may have been renamed
		 * into place before its directory sync failed: save the
		 * rolled-back table.
		 */
		if (before < 0)
			(void)persist_compact(s, now);
	} else if (before >= 0 && s->journal_fd >= 0 && state_journal_cut(s->journal_fd, before) == 0) {
		/* On disk but refused: cut back, so that a restart does not bring back what no client was told. */
		s->journal_end = before;
	} else {
		/* A turn that saved a snapshot instead (or a cut that failed): save the rolled-back table anew. */
		persist_close_journal(s);
		if (persist_compact(s, now) < 0)
			log_error("cannot take refused changes back out of %s: they may come back at a restart",
				  s->state_path);
	}
}

/*
 * Loads the state file into the table.  Returns -1, leaving the file as it
 * is, when it exists but cannot be read (permissions, I/O): starting empty
 * would overwrite mappings that are only out of reach for now.  A file that
 * was read but makes no sense is moved aside and the table starts empty.
 */
int persist_restore(struct server *s, int64_t now)
{
	char err[256], moved[PATH_MAX + 64];
	struct state st;
	int64_t wall = server_wall_s(), boot = server_boot_s();
	size_t restored = 0, expired = 0, refused = 0, journaled = 0, uncertain = 0;
	bool same_boot;
	int r;

	s->epoch_start = now;
	r = state_load(s->state_path, &st, err, sizeof(err));
	if (r == -ENOENT) {
		log_info("no state file at %s: starting with an empty table", s->state_path);
		return 0;
	}
	if (r < 0 && r != -EBADMSG) {
		log_error("cannot read state file %s: %s; fix that (permissions, disk) and start again: starting "
			  "empty would lose its mappings",
			  s->state_path, strerror(-r));
		return -1;
	}
	if (r < 0) {
		/* The journal continues what is lost: it goes aside with it, for whoever investigates. */
		(void)state_quarantine(s->journal_path, moved, sizeof(moved));
		if (state_quarantine(s->state_path, moved, sizeof(moved)) == 0)
			log_error("state file %s is unusable (%s); moved it to %s and started with an empty "
				  "table, epoch 0",
				  s->state_path, err, moved);
		else
			log_error("state file %s is unusable (%s) and could not be moved aside; starting with an "
				  "empty table, epoch 0",
				  s->state_path, err);
		return 0;
	}
	r = state_journal_replay(s->journal_path, &st, &journaled, err, sizeof(err));
	if (r == -EBADMSG) {
		if (state_quarantine(s->journal_path, moved, sizeof(moved)) == 0)
			log_error("journal %s is damaged (%s); moved it to %s and kept the %zu change(s) before the "
				  "damage",
				  s->journal_path, err, moved, journaled);
		else
			log_error("journal %s is damaged (%s); kept the %zu change(s) before the damage",
				  s->journal_path, err, journaled);
	} else if (r < 0) {
		log_error("cannot read journal %s: %s; fix that (permissions, disk) and start again: starting "
			  "without it would lose its mappings",
			  s->journal_path, strerror(-r));
		state_free(&st);
		return -1;
	}
	s->generation = st.generation;
	/*
	 * Within the boot that wrote the file, how long the daemon was stopped
	 * is measured on CLOCK_BOOTTIME, which NTP never steps: a clock set
	 * forward meanwhile neither expires mappings nor moves the epoch.
	 * After a reboot only the wall clock is left.
	 */
	same_boot = state_same_boot(&st, s->boot_id);
	/* The epoch keeps running across restarts: clients see no reset (RFC 6886 3.6). */
	if (same_boot && st.epoch_start_boot && st.epoch_start_boot <= boot)
		s->epoch_start = now - (boot - st.epoch_start_boot);
	else if (st.epoch_start <= wall)
		s->epoch_start = now - (wall - st.epoch_start);
	for (size_t i = 0; i < st.n_mappings; i++) {
		const struct state_mapping *sm = &st.mappings[i];
		char client[TABLE_ADDR_STRLEN];
		bool on_boot;
		int64_t left = state_mapping_left(sm, same_boot, boot, wall, &on_boot);
		struct table_mapping m = {
			.client = table_addr_v4(sm->client),
			.protocol = sm->protocol,
			.origin = sm->origin,
			.internal_port = sm->internal_port,
			.external_port = sm->external_port,
			.lifetime = sm->lifetime,
			.upstream_port = sm->upstream_port,
		};
		memcpy(m.nonce, sm->nonce, sizeof(m.nonce));
		if (sm->ipv6)
			memcpy(m.client.v6, sm->client6, sizeof(m.client.v6));
		if (left <= 0) {
			expired++;
			/* On the wall clock, a step forward looks the same as time passing. */
			uncertain += !on_boot;
			continue;
		}
		/*
		 * A router without a clock that booted before NTP set it sees
		 * expiries far ahead: no mapping outlives the lifetime it was
		 * granted, nor today's --max-lifetime.
		 */
		if (m.lifetime > s->cfg.max_lifetime)
			m.lifetime = s->cfg.max_lifetime;
		m.expires = now + (left < m.lifetime ? left : m.lifetime);
		if ((r = table_restore(s->table, &m)) < 0) {
			refused++;
			log_warnx("state file: not restoring %s %u -> %s:%u: %s", proto_protocol_name(m.protocol),
				  m.external_port, table_addr_str(&m.client, client), m.internal_port,
				  r == -ERANGE	       ? "port no longer allowed"
				  : r == -EACCES     ? "no longer allowed by --rule"
				  : r == -EADDRINUSE ? "the router itself now uses the port"
				  : r == -ENOSPC     ? "over the client's limit"
						     : "conflicts with another mapping");
			continue;
		}
		restored++;
	}
	/*
	 * RFC 6886 3.6: clients map again when the epoch shows state was lost.
	 * It was if a mapping its client may still count on was not restored:
	 * refused, or expired by a wall clock that may have been stepped.
	 */
	if (refused + uncertain) {
		s->epoch_start = now;
		log_warnx("%zu saved mapping(s) could not be restored for certain: the epoch starts again at 0, so "
			  "that clients map again",
			  refused + uncertain);
	}
	log_info("restored %zu mapping(s) from %s and %zu journal line(s) (%zu expired while stopped, %zu refused), "
		 "epoch %u, times from the %s",
		 restored, s->state_path, journaled, expired, refused, server_epoch(s, now),
		 same_boot ? "boot clock (same boot)" : "wall clock");
	state_free(&st);
	return 0;
}
