/*
 * install.c - the kernel's copy of the table: one nftables transaction per
 * turn, the full reinstall, repairs after foreign changes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "install.h"

static uint32_t install_timeout(const struct table_mapping *m, int64_t now)
{
	int64_t left = m->expires - now;

	if (left < 0)
		left = 0;
	if (left > UINT32_MAX - NFT_TIMEOUT_SLACK)
		left = UINT32_MAX - NFT_TIMEOUT_SLACK;
	return (uint32_t)left + NFT_TIMEOUT_SLACK;
}

/* Sends the transaction built since nft_begin(), counted for /metrics. */
int install_commit(struct server *s)
{
	int r = nft_commit(s->nft);

	s->metrics.nft_transactions++;
	if (r < 0)
		s->metrics.nft_errors++;
	return r;
}

/* Element operations from which a commit is made with the monitor out of the group (install_commit_quiet()). */
#define INSTALL_QUIET_MIN 64

/* Reads what the monitor heard; someone else's change to the table schedules a repair. */
static void install_hear(struct server *s)
{
	char who[96];
	int r;

	if ((r = nftmon_read(s->nftmon, who, sizeof(who))) < 0)
		log_warnx("reading nftables events: %s", strerror(-r));
	if (r > 0 && !evtimer_pending(s->repair_ev, NULL)) {
		log_warnx("table ip %s was changed by %s, not by this daemon: restoring it", s->cfg.nat_table, who);
		install_schedule_repair(s, SERVER_REPAIR_DELAY_MS);
	}
}

/* The generation after gen once one more transaction went in (the kernel skips 0). */
static uint32_t install_gen_next(uint32_t gen)
{
	return gen + 1 ? gen + 1 : 1;
}

/*
 * Commits the transaction built since nft_begin(); a large one (a busy
 * turn, a reinstall) with the monitor out of nf_tables' group: while
 * anyone listens, the kernel builds a notification for every element of
 * it (a third of a restart with 60,000 mappings, a tenth of a busy turn),
 * only for the monitor's filter to drop them as ours.  Small ones, a home
 * router's usual turn, commit while it listens, and nothing goes unheard.
 * Someone else's commit in the moment out is found by the generation id
 * (asked before and after: it moves by exactly one for ours) or heard
 * after it (then whether it came before or after ours is not known); then
 * whether both tables are still there is asked (a firewall reload's flush
 * ruleset).  What such a commit did to single elements or rules of ours in
 * that moment stays unseen (docs/architecture.md).
 */
static int install_commit_quiet(struct server *s)
{
	uint32_t before, after;
	uint64_t heard;
	int r, e, unsure;

	if (!s->nftmon || nft_queued(s->nft) < INSTALL_QUIET_MIN)
		return install_commit(s);
	/* What was heard so far is judged now: the generation asked next has it. */
	install_hear(s);
	if (nft_generation(s->nft, &before) < 0 || nftmon_pause(s->nftmon) < 0)
		return install_commit(s);
	heard = nftmon_heard(s->nftmon);
	r = install_commit(s);
	/* Deaf to foreign changes until it listens again: a repair soon reinstalls, and tries to join again. */
	if ((e = nftmon_resume(s->nftmon)) < 0) {
		log_warnx("cannot listen for nftables events again: %s; reinstalling table ip %s in 1 s to try again",
			  strerror(-e), s->cfg.nat_table);
		install_schedule_repair(s, 1000);
		return r;
	}
	install_hear(s);
	/* With elements queued, a commit that succeeded sent a transaction, and one that failed went in not at all. */
	unsure = nft_generation(s->nft, &after) < 0 || nftmon_heard(s->nftmon) != heard ||
		 after != (r == 0 ? install_gen_next(before) : before);
	if (unsure && nft_installed(s->nft) == 0) {
		log_warnx("table ip %s went away while this daemon committed to it, unheard: restoring it",
			  s->cfg.nat_table);
		install_schedule_repair(s, SERVER_REPAIR_DELAY_MS);
	}
	return r;
}

/* Queues the change log into one nftables transaction and commits it. */
int install_changes(struct server *s, int64_t now)
{
	const struct table_change *ch;
	size_t n = table_changes(s->table, &ch);
	int r = 0;

	nft_begin(s->nft);
	for (size_t i = 0; i < n && r == 0; i++) {
		const struct table_mapping *m = &ch[i].mapping;
		if (ch[i].op == TABLE_DEL)
			r = nft_del(s->nft, m);
		else if (ch[i].op == TABLE_RENEW)
			r = nft_renew(s->nft, m, install_timeout(m, now));
		else
			r = nft_put(s->nft, m, install_timeout(m, now));
	}
	return r ? r : install_commit_quiet(s);
}

struct install_ctx {
	struct server *s;
	int64_t now;
};

/* table_foreach's callback: counts the IPv4 mappings (arg: a size_t), which the ip maps hold. */
static int install_count_v4(const struct table_mapping *m, void *arg)
{
	*(size_t *)arg += table_addr_is_v4(&m->client);
	return 0;
}

static int install_one(const struct table_mapping *m, void *arg)
{
	struct install_ctx *ctx = arg;

	return nft_put(ctx->s->nft, m, install_timeout(m, ctx->now));
}

/*
 * Replaces the kernel's copy with a fresh table holding exactly the
 * mappings in memory, in one transaction: stale elements from an earlier
 * run, or elements someone else removed, cannot survive it.
 */
int install_all(struct server *s, int64_t now)
{
	struct install_ctx ctx = { s, now };
	size_t v4 = 0;
	int r;

	nft_begin(s->nft);
	/* Pinholes live in table ip6: only IPv4 mappings fill the maps presizing is for. */
	(void)table_foreach(s->table, install_count_v4, &v4);
	nft_presize(s->nft, v4);
	if ((r = nft_install(s->nft)) < 0 || (r = nft_set_external(s->nft, s->external, s->n_external)) < 0 ||
	    (r = table_foreach(s->table, install_one, &ctx)) < 0)
		return r;
	r = install_commit_quiet(s);
	s->table_broken = r < 0;
	return r;
}

void install_schedule_repair(struct server *s, int delay_ms)
{
	struct timeval tv = { .tv_sec = delay_ms / 1000, .tv_usec = (delay_ms % 1000) * 1000 };

	if (!evtimer_pending(s->repair_ev, NULL))
		evtimer_add(s->repair_ev, &tv);
}

void install_on_nftables(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	install_hear(arg);
}

/*
 * Puts the kernel's copy back as the table in memory says, in one
 * transaction: what was removed comes back, what was added goes.
 */
void install_on_repair(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int64_t now = server_mono_s();
	int r;

	(void)fd;
	(void)what;
	s->metrics.repairs++;
	if ((r = install_all(s, now)) < 0) {
		log_warnx("cannot restore table ip %s: %s; trying again in 1 s", s->cfg.nat_table, strerror(-r));
		install_schedule_repair(s, 1000);
		return;
	}
	log_info("restored table ip %s with %zu mapping(s) (repair %llu)", s->cfg.nat_table, table_count(s->table),
		 (unsigned long long)s->metrics.repairs);
}
