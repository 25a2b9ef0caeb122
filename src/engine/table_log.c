/*
 * table_log.c - the table's change log: what a turn changed, for the caller
 * to make durable and real (table_changes()), then keep (table_commit()) or
 * undo (table_rollback(), and table_undo() for one refused request).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "table_impl.h"

int table_log_change(struct table *t, enum table_op op, const struct table_mapping *m, int64_t prev_expires,
		      uint32_t prev_lifetime)
{
	if (t->replaying)
		return 0;
	if (t->log_len == t->log_cap) {
		size_t cap = t->log_cap ? t->log_cap * 2 : 64;
		struct table_change *l = realloc(t->log, cap * sizeof(*l));
		if (!l)
			return -ENOMEM;
		t->log = l;
		t->log_cap = cap;
	}
	t->log[t->log_len++] = (struct table_change){
		.op = op, .mapping = *m, .previous_expires = prev_expires, .previous_lifetime = prev_lifetime,
		.previous_origin = m->origin,
	};
	memcpy(t->log[t->log_len - 1].previous_nonce, m->nonce, TABLE_NONCE_LEN);
	return 0;
}

size_t table_changes(const struct table *t, const struct table_change **changes)
{
	*changes = t->log;
	return t->log_len;
}

/*
 * A log that a restore or a repair grew to the whole table (a change of
 * 96 bytes per mapping: 12 MB at 128,000) is given back once it is done
 * with; a turn's few changes keep reusing a small one.
 */
#define TABLE_LOG_KEEP 4096

static void table_log_trim(struct table *t)
{
	if (t->log_cap <= TABLE_LOG_KEEP)
		return;
	free(t->log);
	t->log = NULL;
	t->log_cap = 0;
}

void table_commit(struct table *t)
{
	t->log_len = 0;
	table_log_trim(t);
}

void table_rollback(struct table *t)
{
	table_undo(t, 0);
	table_log_trim(t);
}

void table_undo(struct table *t, size_t to)
{
	uint32_t i;

	t->replaying = 1;
	while (t->log_len > to) {
		const struct table_change *ch = &t->log[--t->log_len];
		const struct table_mapping *m = &ch->mapping;

		switch (ch->op) {
		case TABLE_ADD:
			if ((i = table_entry_find(t, &m->client, m->protocol, m->internal_port)) != 0)
				table_entry_remove(t, i);
			break;
		case TABLE_DEL:
			(void)table_entry_insert(t, m);
			break;
		case TABLE_RENEW:
			if ((i = table_entry_find(t, &m->client, m->protocol, m->internal_port)) != 0) {
				struct entry *e = table_entry(t, i);

				e->expires = ch->previous_expires;
				e->lifetime = ch->previous_lifetime;
				e->origin = ch->previous_origin;
				/* Giving a nonce back, or reusing the one the renewal replaced, needs no memory. */
				(void)table_entry_set_nonce(t, i, ch->previous_nonce);
				table_heap_update(t, i);
			}
			break;
		}
	}
	t->replaying = 0;
}
