/*
 * config_rule.h - --rule's text, miniupnpd's form, for config.c:
 *
 *   allow|deny EXTERNAL CLIENT[/PREFIX] INTERNAL
 *
 * EXTERNAL and INTERNAL are a port N or a range N-M (0 to 65535), CLIENT
 * an IPv4 address, PREFIX 0 to 32 (32 without one); e.g.
 * "allow 1024-65535 192.168.1.0/24 1024-65535".  See engine/table.h's
 * struct table_rule for what a rule means.  And PCP's THIRD_PARTY (RFC
 * 6887 13.1), prohibited unless a rule names the sender and the host:
 *
 *   third-party SENDER[/PREFIX] HOST[/PREFIX]
 */
#ifndef NATPMP_DAEMON_CONFIG_RULE_H
#define NATPMP_DAEMON_CONFIG_RULE_H

#include <stdbool.h>
#include <stddef.h>

#include "daemon/config.h"
#include "engine/table.h"

/* Parses s into r: 0, or -1 with *why saying what is wrong and what to write. */
int config_rule_parse(const char *s, struct table_rule *r, const char **why);
/* r as config_rule_parse() reads it, into out (at most len bytes). */
void config_rule_format(const struct table_rule *r, char *out, size_t len);
/* A third-party rule: 0, or -1 with *why. */
int config_third_party_parse(const char *s, struct config_third_party *t, const char **why);
/* Whether one of the n rules lets sender map for host (IPv4, network byte order). */
bool config_third_party_allows(const struct config_third_party *t, size_t n, uint32_t sender, uint32_t host);
void config_third_party_format(const struct config_third_party *t, char *out, size_t len);

#endif
