/*
 * config_rule.c - --rule's text (config_rule.h).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_rule.h"

/* A port or a range, the whole word: 0, or -1. */
static int rule_ports(const char *word, struct port_range *r)
{
	char *end;
	unsigned long from, to;

	if (!isdigit((unsigned char)word[0]))
		return -1;
	from = strtoul(word, &end, 10);
	to = from;
	if (*end == '-') {
		if (!isdigit((unsigned char)end[1]))
			return -1;
		to = strtoul(end + 1, &end, 10);
	}
	/* 0 is allowed, as in miniupnpd's "deny 0-65535 0.0.0.0/0 0-65535". */
	if (*end || to > 65535 || to < from)
		return -1;
	*r = (struct port_range){ (uint16_t)from, (uint16_t)to };
	return 0;
}

int config_rule_parse(const char *s, struct table_rule *r, const char **why)
{
	char buf[128], *word[5], *save = NULL, *slash, *end;
	unsigned long prefix = 32;
	struct in_addr a;
	int n = 0;

	*why = "write allow|deny EXTERNAL CLIENT[/PREFIX] INTERNAL, e.g. allow 1024-65535 192.168.1.0/24 1024-65535";
	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		if (n < 5)
			word[n++] = w;
		else
			return -1;
	if (n != 4)
		return -1;
	if (strcmp(word[0], "allow") != 0 && strcmp(word[0], "deny") != 0) {
		*why = "a rule starts with allow or deny";
		return -1;
	}
	r->allow = word[0][0] == 'a';
	if (rule_ports(word[1], &r->external) < 0 || rule_ports(word[3], &r->internal) < 0) {
		*why = "ports are N or N-M, 0 to 65535, e.g. 1024-65535";
		return -1;
	}
	if ((slash = strchr(word[2], '/'))) {
		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]) || (prefix = strtoul(slash + 1, &end, 10)) > 32 || *end) {
			*why = "the client is A.B.C.D or A.B.C.D/PREFIX with a prefix of 0 to 32";
			return -1;
		}
	}
	if (inet_pton(AF_INET, word[2], &a) != 1) {
		*why = "the client is an IPv4 address or network, e.g. 192.168.1.0/24";
		return -1;
	}
	r->mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	r->net = a.s_addr & r->mask;
	return 0;
}

static const char *rule_ports_str(const struct port_range *p, char buf[16])
{
	if (p->from == p->to)
		snprintf(buf, 16, "%u", p->from);
	else
		snprintf(buf, 16, "%u-%u", p->from, p->to);
	return buf;
}

void config_rule_format(const struct table_rule *r, char *out, size_t len)
{
	char net[INET_ADDRSTRLEN], ext[16], in[16];
	struct in_addr a = { .s_addr = r->net };
	int prefix = __builtin_popcount(ntohl(r->mask));

	inet_ntop(AF_INET, &a, net, sizeof(net));
	snprintf(out, len, "%s %s %s/%d %s", r->allow ? "allow" : "deny", rule_ports_str(&r->external, ext), net, prefix,
		 rule_ports_str(&r->internal, in));
}
