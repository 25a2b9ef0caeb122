/*
 * external.c - the external address: the interface's addresses, the address
 * clients are told, announcements.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server_impl.h"
#include "external.h"
#include "turn.h"
#include "install.h"

/*
 * The address clients are told: the outer NAT's in upstream and STUN mode,
 * else --external-address, else the interface's first; 0 when none.
 */
uint32_t external_address(const struct server *s)
{
	if (s->cfg.upstream_gateway || s->cfg.n_stun)
		return s->outer ? outer_address(s->outer) : 0;
	if (s->cfg.external_address)
		return s->cfg.external_address;
	return s->n_external ? s->external[0] : 0;
}

/* Re-reads the external interface's addresses; 1 when they changed. */
int external_read(struct server *s)
{
	struct netif_addr a[SERVER_MAX_EXTERNAL];
	uint32_t now[SERVER_MAX_EXTERNAL];
	int n = netif_ipv4_all(s->cfg.external_interface, a, SERVER_MAX_EXTERNAL);
	size_t count = n > 0 ? (size_t)n : 0;

	/* A query that failed (out of file descriptors or memory) is no news about the interface. */
	s->external_missing = n == -ENODEV;
	if (n < 0 && n != -ENODEV) {
		log_warnx("cannot read the addresses of %s: %s; keeping the last known", s->cfg.external_interface,
			  strerror(-n));
		return 0;
	}

	for (size_t i = 0; i < count; i++)
		now[i] = a[i].addr;
	if (count == s->n_external && memcmp(now, s->external, count * sizeof(now[0])) == 0)
		return 0;
	memcpy(s->external, now, count * sizeof(now[0]));
	s->n_external = count;
	return 1;
}

/* One round of RFC 6886 3.2.1 announcements: the current address and epoch, from every listen interface. */
void external_announce(void *arg)
{
	static const struct codec *const codecs[] = { &codec_natpmp, &codec_pcp };
	struct server *s = arg;
	uint32_t public = external_address(s);
	uint8_t buf[CODEC_MAX_REPLY];
	int64_t now = server_mono_s();
	size_t len;
	int r;

	if (!public)
		return;
	s->metrics.announcements++;
	/* NAT-PMP's (RFC 6886 3.2.1), then PCP's unsolicited ANNOUNCE (RFC 6887 14.1.3), to the same group and port. */
	for (size_t c = 0; c < sizeof(codecs) / sizeof(codecs[0]); c++) {
		len = codecs[c]->announce(server_epoch(s, now), public, buf);
		for (size_t i = 0; i < s->n_listeners; i++) {
			struct udp_socket *u = &s->listeners[i].sock;
			/* IPv6 carries PCP's alone, to [ff02::1]:5350. */
			if (u->fd < 0 || (u->family == AF_INET6 && codecs[c] != &codec_pcp))
				continue;
			if ((r = udp_announce(u, buf, len, now)) < 0)
				log_debug("announcement on %s: %s", u->ifname, strerror(-r));
		}
	}
}

void external_warn_none(const struct server *s)
{
	/* A PPPoE or WireGuard interface may come up after the daemon; a misspelt name never does. */
	if (s->external_missing)
		log_warnx("external interface %s does not exist (yet): waiting for it; opcode 0 answers result 3 "
			  "until it exists and has an IPv4 address (check the name if it never appears)",
			  s->cfg.external_interface);
	else
		log_warnx("external interface %s has no IPv4 address or is down: opcode 0 answers result 3 until "
			  "it has one",
			  s->cfg.external_interface);
}

/* What kind of address addr (network order) is when not one the Internet reaches: NULL for a public one. */
static const char *external_unreachable_kind(uint32_t addr)
{
	uint32_t a = ntohl(addr);

	if ((a & 0xffc00000u) == 0x64400000u)
		return "in the shared address space of carrier-grade NAT (100.64.0.0/10, RFC 6598)";
	if ((a & 0xff000000u) == 0x0a000000u || (a & 0xfff00000u) == 0xac100000u || (a & 0xffff0000u) == 0xc0a80000u)
		return "a private address (RFC 1918)";
	return NULL;
}

void external_warn_unreachable(const struct server *s)
{
	char addr[INET_ADDRSTRLEN];
	/* Behind another NAT, what the clients are told is nobody's address on the Internet: say so. */
	const char *kind = s->n_external ? external_unreachable_kind(s->external[0]) : NULL;

	if (kind && !s->cfg.external_address && !s->outer)
		log_warnx("external address %s of %s is %s: another NAT stands between it and the Internet, and the "
			  "forwards made here cannot be reached from outside; if that NAT speaks NAT-PMP, "
			  "--upstream-gateway maps every port there too; if it is a full-cone carrier-grade NAT, "
			  "--stun-server opens and keeps each port through it",
			  netif_addr_str(s->external[0], addr), s->cfg.external_interface, kind);
}

void external_changed(struct server *s)
{
	char addr[INET_ADDRSTRLEN];
	int r;

	/* Which sockets count as the router's own depends on these addresses. */
	s->busy_valid = 0;
	if (s->n_external)
		log_info("external interface %s has address %s%s", s->cfg.external_interface,
			 netif_addr_str(s->external[0], addr), s->n_external > 1 ? " (and more)" : "");
	else
		external_warn_none(s);
	external_warn_unreachable(s);
	/* Hairpinning follows the interface's addresses. */
	nft_begin(s->nft);
	if ((r = nft_set_external(s->nft, s->external, s->n_external)) < 0 || (r = install_commit(s)) < 0) {
		log_warnx("cannot update the external addresses in table ip %s: %s", s->cfg.nat_table, strerror(-r));
		install_schedule_repair(s, SERVER_REPAIR_DELAY_MS);
	}
	/*
	 * RFC 6886 3.2.1: a new or changed address is announced; an override
	 * does not change, and behind an outer NAT the address is the outer
	 * NAT's: STUN mode looks at it again, and announces what changed.
	 */
	if (s->outer && s->n_external)
		outer_recheck(s->outer);
	if (s->cfg.external_address || s->outer)
		return;
	if (s->n_external)
		announce_restart(s->announce);
	else
		announce_stop(s->announce);
}

void external_on_netlink(evutil_socket_t fd, short what, void *arg)
{
	struct server *s = arg;
	int r;

	(void)fd;
	(void)what;
	if ((r = netif_watch_read(s->netwatch)) < 0)
		log_warnx("reading interface events: %s", strerror(-r));
	if (r <= 0)
		return;
	if (external_read(s))
		external_changed(s);
	turn_retry_listeners(s);
}
