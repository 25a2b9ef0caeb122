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

/* A.B.C.D or A.B.C.D/PREFIX (what names the word in messages) into net and mask: 0, or -1 with *why. */
static int rule_net(char *word, const char *what, uint32_t *net, uint32_t *mask, const char **why)
{
	static char msg[96];
	unsigned long prefix = 32;
	struct in_addr a;
	char *slash, *end;

	if ((slash = strchr(word, '/'))) {
		*slash = '\0';
		if (!isdigit((unsigned char)slash[1]) || (prefix = strtoul(slash + 1, &end, 10)) > 32 || *end) {
			snprintf(msg, sizeof(msg), "the %s is A.B.C.D or A.B.C.D/PREFIX with a prefix of 0 to 32", what);
			*why = msg;
			return -1;
		}
	}
	if (inet_pton(AF_INET, word, &a) != 1) {
		snprintf(msg, sizeof(msg), "the %s is an IPv4 address or network, e.g. 192.168.1.0/24", what);
		*why = msg;
		return -1;
	}
	*mask = prefix ? htonl(~0u << (32 - prefix)) : 0;
	*net = a.s_addr & *mask;
	return 0;
}

/* Splits s into exactly n words (in buf, 128 bytes): 0, or -1 for another count or a line too long. */
static int rule_words(const char *s, char buf[128], char **word, int n)
{
	char *save = NULL;
	int got = 0;

	if (strlen(s) >= 128)
		return -1;
	strcpy(buf, s);
	for (char *w = strtok_r(buf, " \t", &save); w; w = strtok_r(NULL, " \t", &save))
		if (got == n)
			return -1;
		else
			word[got++] = w;
	return got == n ? 0 : -1;
}

int config_rule_parse(const char *s, struct table_rule *r, const char **why)
{
	char buf[128], *word[4];

	*why = "write allow|deny EXTERNAL CLIENT[/PREFIX] INTERNAL, e.g. allow 1024-65535 192.168.1.0/24 1024-65535";
	if (rule_words(s, buf, word, 4) < 0)
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
	return rule_net(word[2], "client", &r->net, &r->mask, why);
}

int config_third_party_parse(const char *s, struct config_third_party *t, const char **why)
{
	char buf[128], *word[3];

	*why = "write third-party SENDER[/PREFIX] HOST[/PREFIX], e.g. third-party 192.168.1.2 192.168.1.0/24";
	if (rule_words(s, buf, word, 3) < 0 || strcmp(word[0], "third-party") != 0)
		return -1;
	if (rule_net(word[1], "sender", &t->sender_net, &t->sender_mask, why) < 0)
		return -1;
	return rule_net(word[2], "host", &t->host_net, &t->host_mask, why);
}

bool config_third_party_allows(const struct config_third_party *t, size_t n, uint32_t sender, uint32_t host)
{
	for (size_t i = 0; i < n; i++)
		if ((sender & t[i].sender_mask) == t[i].sender_net && (host & t[i].host_mask) == t[i].host_net)
			return true;
	return false;
}

void config_third_party_format(const struct config_third_party *t, char *out, size_t len)
{
	char s[INET_ADDRSTRLEN], h[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = t->sender_net }, b = { .s_addr = t->host_net };

	inet_ntop(AF_INET, &a, s, sizeof(s));
	inet_ntop(AF_INET, &b, h, sizeof(h));
	snprintf(out, len, "third-party %s/%d %s/%d", s, __builtin_popcount(ntohl(t->sender_mask)), h,
		 __builtin_popcount(ntohl(t->host_mask)));
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
