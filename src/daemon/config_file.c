/*
 * config_file.c - the --config file's grammar (config_file.h).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "config_file.h"

#define CONFIG_FILE_MAX (64 * 1024)

static int file_error(const char *path, size_t line, const char *what, const char *why)
{
	fprintf(stderr, "natpmp-server: error: --config '%s' line %zu: %s: %s\n", path, line, what, why);
	return -1;
}

/*
 * How a bad line is named in an error: its first word (letters, digits and
 * '_', at most 40), quoted, never the rest, which may be a token
 * ("NATPMP_TOKEN secret" with the '=' forgotten).
 */
static const char *line_start(const char *p)
{
	static char word[48];
	size_t n = 0;

	while (n < 40 && (isalnum((unsigned char)p[n]) || p[n] == '_'))
		n++;
	snprintf(word, sizeof(word), "'%.*s'", (int)n, p);
	return word;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/*
 * The value after '=' (leading blanks skipped), cut in place: NULL and
 * *why set when it is malformed.
 */
char *config_file_value(char *v, const char **why)
{
	char *end;

	if (*v == '"' || *v == '\'') {
		char *close = strchr(v + 1, *v);

		if (!close) {
			*why = "the quote is never closed: close it at the end of the value, or remove it";
			return NULL;
		}
		for (end = close + 1; is_blank(*end); end++)
			;
		if (*end && *end != '#') {
			*why = "text after the closing quote: quote the whole value, or put a # before a comment";
			return NULL;
		}
		*close = '\0';
		return v + 1;
	}
	/* Unquoted: a '#' after a blank starts a comment, as in a shell. */
	for (end = v; *end && !(*end == '#' && end > v && is_blank(end[-1])); end++)
		if (*end == '"' || *end == '\'') {
			*why = "a quote inside an unquoted value: quote the whole value ('...' or \"...\")";
			return NULL;
		}
	while (end > v && is_blank(end[-1]))
		end--;
	*end = '\0';
	return v;
}

/* A NATPMP_ name written in lower or mixed case, e.g. natpmp_listen_port. */
static bool misspelt_case(const char *key)
{
	return strncasecmp(key, "NATPMP_", 7) == 0 && strncmp(key, "NATPMP_", 7) != 0;
}

/*
 * A setting given again: the last line wins, as in a shell or an
 * EnvironmentFile, and the earlier one is named so that nobody edits a line
 * that does nothing.  Returns whether key was there.
 */
static bool replace_single(struct config_file *cf, const char *key, const char *value, size_t line)
{
	for (size_t i = 0; i < cf->n; i++)
		if (strcmp(cf->key[i], key) == 0) {
			fprintf(stderr, "natpmp-server: warning: --config '%s' line %zu: %s: also set on line %zu, which "
					"this line overrides; remove one of them\n",
				cf->path, line, key, cf->line[i]);
			cf->value[i] = value;
			cf->line[i] = line;
			return true;
		}
	return false;
}

int config_file_load(const char *path, struct config_file *cf, enum config_key (*kind)(const char *key))
{
	FILE *f = fopen(path, "r");
	size_t len, line = 0;
	struct stat st;
	char *p, *next;

	memset(cf, 0, sizeof(*cf));
	if (!f) {
		fprintf(stderr, "natpmp-server: error: --config '%s': cannot read it: %s\n", path, strerror(errno));
		return -1;
	}
	cf->path = path;
	if (fstat(fileno(f), &st) == 0)
		cf->world_readable = (st.st_mode & S_IROTH) != 0;
	if (!(cf->buf = malloc(CONFIG_FILE_MAX + 1))) {
		fclose(f);
		fprintf(stderr, "natpmp-server: error: --config '%s': out of memory\n", path);
		return -1;
	}
	len = fread(cf->buf, 1, CONFIG_FILE_MAX + 1, f);
	fclose(f);
	if (len > CONFIG_FILE_MAX) {
		fprintf(stderr, "natpmp-server: error: --config '%s': larger than 64 KiB: is this the right file?\n", path);
		return -1;
	}
	cf->buf[len] = '\0';
	p = cf->buf;
	/* A byte-order mark (an editor's) is no part of the first line's name. */
	if (strncmp(p, "\xef\xbb\xbf", 3) == 0)
		p += 3;
	for (; p && *p; p = next) {
		char *eq, *key, *value, *end;
		const char *why = NULL;
		enum config_key k;

		line++;
		if ((next = strchr(p, '\n')))
			*next++ = '\0';
		while (is_blank(*p))
			p++;
		end = p + strlen(p);
		while (end > p && (is_blank(end[-1]) || end[-1] == '\r'))
			*--end = '\0';
		if (*p == '\0' || *p == '#')
			continue;
		/* Files in /etc/default are often shell: "export NAME=value" means NAME=value. */
		if (strncmp(p, "export", 6) == 0 && is_blank(p[6]))
			for (p += 6; is_blank(*p); p++)
				;
		if (!(eq = strchr(p, '=')))
			return file_error(path, line, line_start(p), "not a NAME=value line (the rest of it is not shown: "
								  "it may hold a secret)");
		/* Spaces around the '=' are allowed, as systemd allows them. */
		for (end = eq; end > p && is_blank(end[-1]); end--)
			;
		*end = '\0';
		key = p;
		if (misspelt_case(key))
			return file_error(path, line, line_start(key), "setting names are upper case, e.g. NATPMP_LISTEN_PORT");
		if (strncmp(key, "NATPMP_", 7) != 0)
			continue;
		/* A name with anything but A-Z, 0-9 and _ in it may run into a secret: only its first word is shown. */
		if ((k = kind(key)) == CONFIG_KEY_UNKNOWN)
			return file_error(path, line, strspn(key, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == strlen(key)
							    ? key
							    : line_start(key),
					  "no such setting; see --help for the option names");
		for (value = eq + 1; is_blank(*value); value++)
			;
		/* "NAME= # comment": an empty value, as in a shell. */
		if (*value == '#' && value > eq + 1)
			*value = '\0';
		if (!(value = config_file_value(value, &why)))
			return file_error(path, line, key, why);
		if (k == CONFIG_KEY_SINGLE && replace_single(cf, key, value, line))
			continue;
		if (cf->n == CONFIG_FILE_ENTRIES)
			return file_error(path, line, key, "too many settings");
		cf->key[cf->n] = key;
		cf->value[cf->n] = value;
		cf->line[cf->n++] = line;
	}
	return 0;
}

void config_file_free(struct config_file *cf)
{
	free(cf->buf);
	cf->buf = NULL;
	cf->n = 0;
}
