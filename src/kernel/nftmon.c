/*
 * nftmon.c - a NETLINK_NETFILTER socket in the NFNLGRP_NFTABLES group.
 *
 * Every object message of nf_tables (table, chain, rule, set, element,
 * object, flowtable) carries its table's name as attribute 1; NEWGEN closes
 * each transaction and names the process that made it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/filter.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "kernel/netif.h"
#include "kernel/nftmon.h"

/* NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE, ... are all 1. */
#define NFTMON_TABLE_ATTR 1

struct nftmon {
	struct mnl_socket *nl;
	char table[64];
	uint32_t own_portid;
	uint64_t heard; /* foreign commits heard (their NEWGEN), ever */
};

/*
 * Keeps the daemon's own notifications out of the socket, in the kernel.
 * nf_tables sends one notification per set element, so a transaction of
 * 60,000 elements would otherwise overflow the socket, and an overflow
 * must be taken for a foreign change: each repair would cause the next.
 * Every notification is an skb of its own, so its first header is the one
 * to look at; BPF loads words big-endian, hence htonl() of the port id.
 */
static int nftmon_filter_own(struct nftmon *m)
{
	struct sock_filter code[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct nlmsghdr, nlmsg_pid)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, htonl(m->own_portid), 0, 1),
		BPF_STMT(BPF_RET | BPF_K, 0),
		BPF_STMT(BPF_RET | BPF_K, 0xffffffff),
	};
	struct sock_fprog prog = { .len = sizeof(code) / sizeof(code[0]), .filter = code };

	return setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
}

struct nftmon *nftmon_open(const char *table, uint32_t own_portid)
{
	struct nftmon *m = calloc(1, sizeof(*m));
	int err;

	if (!m)
		return NULL;
	snprintf(m->table, sizeof(m->table), "%s", table);
	m->own_portid = own_portid;
	/* Room for someone else's reload of a large ruleset before it overflows. */
	int rcvbuf = 4 * 1024 * 1024;
	m->nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
	/* The filter goes on before the subscription, so that nothing of ours gets in first. */
	if (!m->nl || mnl_socket_bind(m->nl, 0, MNL_SOCKET_AUTOPID) < 0 || nftmon_filter_own(m) < 0 ||
	    nftmon_resume(m) < 0) {
		err = errno;
		nftmon_close(m);
		errno = err;
		return NULL;
	}
	if (setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		(void)setsockopt(mnl_socket_get_fd(m->nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	return m;
}

int nftmon_pause(struct nftmon *m)
{
	unsigned int group = NFNLGRP_NFTABLES;

	return mnl_socket_setsockopt(m->nl, NETLINK_DROP_MEMBERSHIP, &group, sizeof(group)) < 0 ? -errno : 0;
}

int nftmon_resume(struct nftmon *m)
{
	unsigned int group = NFNLGRP_NFTABLES;

	return mnl_socket_setsockopt(m->nl, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0 ? -errno : 0;
}

uint64_t nftmon_heard(const struct nftmon *m)
{
	return m->heard;
}

void nftmon_close(struct nftmon *m)
{
	if (!m)
		return;
	if (m->nl)
		mnl_socket_close(m->nl);
	free(m);
}

int nftmon_fd(const struct nftmon *m)
{
	return mnl_socket_get_fd(m->nl);
}

struct nftmon_attrs {
	const struct nlattr *table;
	const struct nlattr *pid;
	const struct nlattr *name;
};

static int nftmon_attr(const struct nlattr *attr, void *data)
{
	struct nftmon_attrs *a = data;
	uint16_t type = mnl_attr_get_type(attr);

	if (type == NFTMON_TABLE_ATTR && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		a->table = attr;
	if (type == NFTA_GEN_PROC_PID && mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
		a->pid = attr;
	if (type == NFTA_GEN_PROC_NAME && mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) >= 0)
		a->name = attr;
	return MNL_CB_OK;
}

/* 1 when nlh is someone else's change to our table; records NEWGEN's process in who. */
static int nftmon_message(struct nftmon *m, const struct nlmsghdr *nlh, char *who, size_t wholen)
{
	const struct nfgenmsg *g;
	struct nftmon_attrs a = { 0 };
	uint16_t type;

	if (NFNL_SUBSYS_ID(nlh->nlmsg_type) != NFNL_SUBSYS_NFTABLES ||
	    nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*g)))
		return 0;
	type = NFNL_MSG_TYPE(nlh->nlmsg_type);
	g = mnl_nlmsg_get_payload(nlh);
	mnl_attr_parse(nlh, sizeof(*g), nftmon_attr, &a);
	if (type == NFT_MSG_NEWGEN) {
		if (nlh->nlmsg_pid != m->own_portid) {
			m->heard++;
			/* The kernel puts the pid big-endian (nla_put_be32). */
			if (a.name && a.pid)
				snprintf(who, wholen, "%s (pid %u)", mnl_attr_get_str(a.name),
					 ntohl(mnl_attr_get_u32(a.pid)));
		}
		return 0;
	}
	/* Table ip and table ip6 of that name are both the daemon's. */
	if (nlh->nlmsg_pid == m->own_portid || (g->nfgen_family != NFPROTO_IPV4 && g->nfgen_family != NFPROTO_IPV6) ||
	    !a.table)
		return 0;
	return strcmp(mnl_attr_get_str(a.table), m->table) == 0;
}

struct nftmon_read_ctx {
	struct nftmon *m;
	char *who;
	size_t wholen;
};

static int nftmon_one(const struct nlmsghdr *nlh, void *arg)
{
	struct nftmon_read_ctx *c = arg;

	return nftmon_message(c->m, nlh, c->who, c->wholen);
}

int nftmon_read(struct nftmon *m, char *who, size_t wholen)
{
	char buf[16384];
	struct nftmon_read_ctx c = { m, who, wholen };

	snprintf(who, wholen, "unknown");
	/* Lost notifications (netif_drain() says 1) are taken for the worst. */
	return netif_drain(m->nl, buf, sizeof(buf), nftmon_one, &c);
}
