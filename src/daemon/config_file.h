/*
 * config_file.h - the --config file's grammar, for config.c.
 *
 * A line is blank, a comment (# first), or [export ]NATPMP_<NAME>=value,
 * with spaces allowed around '='.  A value is either quoted whole, in '...'
 * or "..." (taken as written, # included), or unquoted: then it ends at a
 * '#' that follows a space or tab (a comment), trailing spaces go, and it may
 * hold no quote.  A repeatable option's lines add up, as on the command
 * line; any other setting given twice takes the last line's value, as in a
 * shell, with a warning that names both lines.  Lines whose name does not start with NATPMP_ belong to other
 * programs (the file may be an /etc/default file) and are skipped.
 * Anything else is an error that names the file, the line and the fix, and
 * never shows a value (it may be a secret).
 *
 * config_file_load() returns 0, or -1 after printing the error to stderr.
 */
#ifndef NATPMP_DAEMON_CONFIG_FILE_H
#define NATPMP_DAEMON_CONFIG_FILE_H

#include <stddef.h>

#define CONFIG_FILE_ENTRIES 128

enum config_key {
	CONFIG_KEY_UNKNOWN,	/* not a setting: a typo */
	CONFIG_KEY_SINGLE,	/* once per file */
	CONFIG_KEY_REPEATABLE, /* its lines add up */
};

struct config_file {
	const char *path;
	int world_readable;
	char *buf; /* the file, cut into the strings below */
	const char *key[CONFIG_FILE_ENTRIES];
	const char *value[CONFIG_FILE_ENTRIES];
	size_t line[CONFIG_FILE_ENTRIES];
	size_t n;
};

/*
 * A value as the grammar above reads it (v: what follows '=' and blanks),
 * cut in place; NULL with *why set when it is malformed.
 */
char *config_file_value(char *v, const char **why);
/* Reads path into cf; kind says what each NATPMP_ name is.  Free cf with config_file_free() either way. */
int config_file_load(const char *path, struct config_file *cf, enum config_key (*kind)(const char *key));
void config_file_free(struct config_file *cf);

#endif
