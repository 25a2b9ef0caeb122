/*
 * nft_rules.c - the tables nft_install() writes: table ip <table> (the
 * forwards of IPv4 mappings) and table ip6 <table> (the pinholes of IPv6
 * ones), with their sets, chains and rules, as kernel/nft.h draws them.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tuple_common.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>

#include "nft_impl.h"

const struct nft_set_def nft_sets[NFT_N_SETS] = {
	[NFT_SET_EXTERNAL] = { NFT_EXTERNAL_NAME, NFPROTO_IPV4, 0, NFT_TYPE_IPADDR, 4, 0, 0 },
	[NFT_SET_MAPPINGS] = { NFT_MAP_NAME, NFPROTO_IPV4, NFT_SET_MAP | NFT_SET_TIMEOUT,
			       NFT_CONCAT2(NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE), 2 * NFT_REG_LEN,
			       NFT_CONCAT2(NFT_TYPE_IPADDR, NFT_TYPE_INET_SERVICE), 2 * NFT_REG_LEN },
	[NFT_SET_SOURCES] = { NFT_SOURCES_NAME, NFPROTO_IPV4, NFT_SET_MAP | NFT_SET_TIMEOUT,
			      NFT_CONCAT3(NFT_TYPE_IPADDR, NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE),
			      3 * NFT_REG_LEN, NFT_TYPE_INET_SERVICE, 2 },
	/* An IPv6 address takes four registers, then protocol and port one each. */
	[NFT_SET_PINHOLES] = { NFT_PINHOLE_SET, NFPROTO_IPV6, NFT_SET_TIMEOUT,
			       NFT_CONCAT3(NFT_TYPE_IP6ADDR, NFT_TYPE_INET_PROTOCOL, NFT_TYPE_INET_SERVICE),
			       6 * NFT_REG_LEN, 0, 0 },
};

/* --- the table --- */

int nft_table_msg(struct nft *n, uint16_t family, uint16_t type, uint16_t flags)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *nlh;

	if (!t)
		return n->error = -ENOMEM;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, n->table);
	if ((nlh = nft_msg(n, family, type, flags)) != NULL) {
		nftnl_table_nlmsg_build_payload(nlh, t);
		nft_push(n, nlh);
	}
	nftnl_table_free(t);
	return n->error;
}

static int nft_set_msg(struct nft *n, size_t set)
{
	const struct nft_set_def *d = &nft_sets[set];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *nlh;

	if (!s)
		return n->error = -ENOMEM;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, n->table);
	nftnl_set_set_str(s, NFTNL_SET_NAME, d->name);
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, d->family);
	nftnl_set_set_u32(s, NFTNL_SET_ID, (uint32_t)set + 1);
	nftnl_set_set_u32(s, NFTNL_SET_FLAGS, d->flags);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, d->key_type);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, d->key_len);
	/* A size is also the most a set may hold: given only where nothing more could ever come. */
	if (n->presize && (set == NFT_SET_MAPPINGS || set == NFT_SET_SOURCES))
		nftnl_set_set_u32(s, NFTNL_SET_DESC_SIZE, n->presize);
	if (d->flags & NFT_SET_MAP) {
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, d->data_type);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, d->data_len);
	}
	if ((nlh = nft_msg(n, d->family, NFT_MSG_NEWSET, NLM_F_CREATE)) != NULL) {
		nftnl_set_nlmsg_build_payload(nlh, s);
		nft_push(n, nlh);
	}
	nftnl_set_free(s);
	return n->error;
}

static int nft_chain_msg(struct nft *n, uint16_t family, const char *name, const char *type, uint32_t hook,
			 int32_t priority)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *nlh;

	if (!c)
		return n->error = -ENOMEM;
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, n->table);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, type);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, hook);
	nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, priority);
	nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	if ((nlh = nft_msg(n, family, NFT_MSG_NEWCHAIN, NLM_F_CREATE)) != NULL) {
		nftnl_chain_nlmsg_build_payload(nlh, c);
		nft_push(n, nlh);
	}
	nftnl_chain_free(c);
	return n->error;
}

/* --- rules: each helper appends one expression; a failed allocation is remembered in n->error --- */

static struct nftnl_expr *expr(struct nft *n, struct nftnl_rule *r, const char *name)
{
	struct nftnl_expr *e = nftnl_expr_alloc(name);

	if (!e) {
		n->error = -ENOMEM;
		return NULL;
	}
	nftnl_rule_add_expr(r, e);
	return e;
}

static void expr_meta(struct nft *n, struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = expr(n, r, "meta");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	}
}

static void expr_cmp(struct nft *n, struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = expr(n, r, "cmp");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
		nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	}
}

/* iifname/oifname ==/!= the external interface. */
static void expr_ifname(struct nft *n, struct nftnl_rule *r, uint32_t key, uint32_t op)
{
	char ifname[IFNAMSIZ] = { 0 };

	memcpy(ifname, n->ifname, strnlen(n->ifname, IFNAMSIZ - 1));
	expr_meta(n, r, key, NFT_REG_1);
	expr_cmp(n, r, op, ifname, sizeof(ifname));
}

static void expr_payload(struct nft *n, struct nftnl_rule *r, uint32_t base, uint32_t offset, uint32_t len,
			 uint32_t dreg)
{
	struct nftnl_expr *e = expr(n, r, "payload");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, offset);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
		nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, dreg);
	}
}

/* A set lookup on register 1; a map's value goes to register 1 too. */
static void expr_lookup(struct nft *n, struct nftnl_rule *r, size_t set)
{
	struct nftnl_expr *e = expr(n, r, "lookup");

	if (e) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
		if (nft_sets[set].flags & NFT_SET_MAP)
			nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1);
		nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, nft_sets[set].name);
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, (uint32_t)set + 1);
	}
}

/* meta l4proto . th dport, in registers 1 and 9 as nft lays out a concatenation. */
static void expr_proto_dport(struct nft *n, struct nftnl_rule *r)
{
	expr_meta(n, r, NFT_META_L4PROTO, NFT_REG_1);
	expr_payload(n, r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
}

static void expr_dnat_map(struct nft *n, struct nftnl_rule *r)
{
	struct nftnl_expr *e;

	expr_proto_dport(n, r);
	expr_lookup(n, r, NFT_SET_MAPPINGS);
	if ((e = expr(n, r, "nat")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS | NF_NAT_RANGE_PROTO_SPECIFIED);
	}
}

static void expr_masquerade(struct nft *n, struct nftnl_rule *r, int port_from_reg1)
{
	struct nftnl_expr *e = expr(n, r, "masq");

	if (e && port_from_reg1) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_REG_PROTO_MIN, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_MASQ_FLAGS, NF_NAT_RANGE_PROTO_SPECIFIED);
	}
}

/* oifname "<ext>" meta l4proto <proto> masquerade to :ip saddr . meta l4proto . th sport map @sources */
static void rule_snat(struct nft *n, struct nftnl_rule *r, uint8_t protocol)
{
	expr_ifname(n, r, NFT_META_OIFNAME, NFT_CMP_EQ);
	expr_meta(n, r, NFT_META_L4PROTO, NFT_REG_1);
	expr_cmp(n, r, NFT_CMP_EQ, &protocol, sizeof(protocol));
	expr_payload(n, r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG_1); /* ip saddr */
	expr_meta(n, r, NFT_META_L4PROTO, NFT_REG32_01);
	expr_payload(n, r, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 2, NFT_REG32_02); /* source port */
	expr_lookup(n, r, NFT_SET_SOURCES);
	expr_masquerade(n, r, 1);
}

/*
 * iifname != "<ext>" oifname != "<ext>" ct status dnat ct original ip daddr @external masquerade
 *
 * Only connections that came from the LAN side: those from the WAN were
 * DNATed from the same external address, and must keep their source.
 */
static void rule_hairpin_masquerade(struct nft *n, struct nftnl_rule *r)
{
	uint32_t mask = IPS_DST_NAT, zero = 0;
	struct nftnl_expr *e;

	expr_ifname(n, r, NFT_META_IIFNAME, NFT_CMP_NEQ);
	expr_ifname(n, r, NFT_META_OIFNAME, NFT_CMP_NEQ);
	if ((e = expr(n, r, "ct")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_STATUS);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	if ((e = expr(n, r, "bitwise")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof(mask));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof(zero));
	}
	expr_cmp(n, r, NFT_CMP_NEQ, &zero, sizeof(zero));
	if ((e = expr(n, r, "ct")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, NFT_CT_DST_IP);
		nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
		nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	}
	expr_lookup(n, r, NFT_SET_EXTERNAL);
	expr_masquerade(n, r, 0);
}

/*
 * iifname "<ext>" ip6 daddr . meta l4proto . th dport @pinholes meta mark set meta mark & ~MASK | MARK
 *
 * What a pinhole admits is marked, not accepted: an accept here would not
 * get past a drop in the owner's own forward chain, which is another base
 * chain; the owner's chain accepts the mark (README: PCP and IPv6).
 */
static void rule_pinhole_mark(struct nft *n, struct nftnl_rule *r)
{
	uint32_t keep = ~n->pinhole_mask, mark = n->pinhole_mark & n->pinhole_mask;
	struct nftnl_expr *e;

	expr_ifname(n, r, NFT_META_IIFNAME, NFT_CMP_EQ);
	expr_payload(n, r, NFT_PAYLOAD_NETWORK_HEADER, 24, 16, NFT_REG_1); /* ip6 daddr: registers 1-4 */
	expr_meta(n, r, NFT_META_L4PROTO, NFT_REG32_04);
	expr_payload(n, r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_05);
	expr_lookup(n, r, NFT_SET_PINHOLES);
	expr_meta(n, r, NFT_META_MARK, NFT_REG_1);
	if ((e = expr(n, r, "bitwise")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
		nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, sizeof(keep));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &keep, sizeof(keep));
		nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &mark, sizeof(mark));
	}
	if ((e = expr(n, r, "meta")) != NULL) {
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, NFT_META_MARK);
		nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	}
}

enum nft_rule_kind {
	RULE_DNAT,
	RULE_HAIRPIN_DNAT,
	RULE_SNAT_TCP,
	RULE_SNAT_UDP,
	RULE_HAIRPIN_MASQ,
	RULE_PINHOLE, /* table ip6's */
	RULE_COUNT
};

static int nft_rule_msg(struct nft *n, enum nft_rule_kind kind)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	uint16_t family = kind == RULE_PINHOLE ? NFPROTO_IPV6 : NFPROTO_IPV4;
	uint32_t local = RTN_LOCAL;
	struct nlmsghdr *nlh;

	if (!r)
		return n->error = -ENOMEM;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, n->table);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, kind <= RULE_HAIRPIN_DNAT ? n->chain
						: kind == RULE_PINHOLE ? NFT_PINHOLE_CHAIN
									: NFT_POSTROUTING_CHAIN);
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, family);
	switch (kind) {
	case RULE_DNAT: {
		/* iifname "<ext>" fib daddr type local dnat ip to meta l4proto . th dport map @mappings */
		struct nftnl_expr *e;
		expr_ifname(n, r, NFT_META_IIFNAME, NFT_CMP_EQ);
		if ((e = expr(n, r, "fib")) != NULL) {
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
			nftnl_expr_set_u32(e, NFTNL_EXPR_FIB_DREG, NFT_REG_1);
		}
		expr_cmp(n, r, NFT_CMP_EQ, &local, sizeof(local));
		expr_dnat_map(n, r);
		break;
	}
	case RULE_HAIRPIN_DNAT:
		/* iifname != "<ext>" ip daddr @external dnat ip to meta l4proto . th dport map @mappings */
		expr_ifname(n, r, NFT_META_IIFNAME, NFT_CMP_NEQ);
		expr_payload(n, r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4, NFT_REG_1);
		expr_lookup(n, r, NFT_SET_EXTERNAL);
		expr_dnat_map(n, r);
		break;
	case RULE_SNAT_TCP:
	case RULE_SNAT_UDP:
		rule_snat(n, r, kind == RULE_SNAT_TCP ? IPPROTO_TCP : IPPROTO_UDP);
		break;
	case RULE_HAIRPIN_MASQ:
		rule_hairpin_masquerade(n, r);
		break;
	case RULE_PINHOLE:
	case RULE_COUNT:
		rule_pinhole_mark(n, r);
		break;
	}
	if (!n->error && (nlh = nft_msg(n, family, NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND)) != NULL) {
		nftnl_rule_nlmsg_build_payload(nlh, r);
		nft_push(n, nlh);
	}
	nftnl_rule_free(r);
	return n->error;
}

void nft_presize(struct nft *n, size_t count)
{
	n->presize = count >= NFT_PRESIZE_MIN ? NFT_PRESIZE : 0;
}

int nft_install(struct nft *n)
{
	static const uint16_t families[] = { NFPROTO_IPV4, NFPROTO_IPV6 };

	nft_flush_all(n);
	/* Create-if-missing then delete: replaces any table of ours, never fails on absence. */
	for (size_t f = 0; f < sizeof(families) / sizeof(families[0]); f++)
		if (nft_table_msg(n, families[f], NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0 ||
		    nft_table_msg(n, families[f], NFT_MSG_DELTABLE, 0) < 0 ||
		    nft_table_msg(n, families[f], NFT_MSG_NEWTABLE, NLM_F_CREATE) < 0)
			return n->error;
	for (size_t i = 0; i < NFT_N_SETS; i++)
		if (nft_set_msg(n, i) < 0)
			return n->error;
	if (nft_chain_msg(n, NFPROTO_IPV4, n->chain, "nat", NF_INET_PRE_ROUTING, NF_IP_PRI_NAT_DST) < 0 ||
	    nft_chain_msg(n, NFPROTO_IPV4, NFT_POSTROUTING_CHAIN, "nat", NF_INET_POST_ROUTING, NF_IP_PRI_NAT_SRC - 10) < 0 ||
	    nft_chain_msg(n, NFPROTO_IPV6, NFT_PINHOLE_CHAIN, "filter", NF_INET_FORWARD, NF_IP6_PRI_FILTER - 10) < 0)
		return n->error;
	for (int kind = 0; kind < RULE_COUNT; kind++)
		if (nft_rule_msg(n, (enum nft_rule_kind)kind) < 0)
			return n->error;
	return 0;
}
