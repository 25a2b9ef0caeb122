/*
 * nft.h - the daemon's own nftables tables, written over netlink.
 *
 * Layout (names from the configuration):
 *
 *   table ip <table> {
 *     set external { type ipv4_addr; }      the external interface's addresses
 *     map mappings { type inet_proto . inet_service : ipv4_addr . inet_service; flags timeout; }
 *     map sources { type ipv4_addr . inet_proto . inet_service : inet_service; flags timeout; }
 *     chain <chain> {
 *       type nat hook prerouting priority dstnat; policy accept;
 *       iifname "<ext>" fib daddr type local dnat ip to meta l4proto . th dport map @mappings
 *       iifname != "<ext>" ip daddr @external dnat ip to meta l4proto . th dport map @mappings
 *     }
 *     chain postrouting {
 *       type nat hook postrouting priority srcnat - 10; policy accept;
 *       oifname "<ext>" meta l4proto tcp masquerade to :ip saddr . meta l4proto . tcp sport map @sources
 *       oifname "<ext>" meta l4proto udp masquerade to :ip saddr . meta l4proto . udp sport map @sources
 *       iifname != "<ext>" oifname != "<ext>" ct status dnat ct original ip daddr @external masquerade
 *     }
 *   }
 *   table ip6 <table> {
 *     set pinholes { type ipv6_addr . inet_proto . inet_service; flags timeout; }
 *     chain forward {
 *       type filter hook forward priority filter - 10; policy accept;
 *       iifname "<ext>" ip6 daddr . meta l4proto . th dport @pinholes meta mark set meta mark & ~MASK | MARK
 *     }
 *   }
 *
 * An IPv6 client's mapping is a pinhole (RFC 6887 11.1, no NAT66): one
 * element of "pinholes", which marks the inbound packets it admits; the
 * owner's own forward chain accepts that mark (an accept here would not
 * override a drop in another base chain).  Both tables change in one batch.
 *
 * A mapping is one element in each map: "mappings" forwards (protocol,
 * external port) to (client, internal port); "sources" makes what the
 * client sends from its internal port leave from the external port (RFC
 * 6886 3.9).  The second prerouting rule and the last postrouting rule are
 * hairpinning: a LAN host that connects to the external address reaches
 * the mapped client, masqueraded so the answers come back through the
 * router.  Elements carry a kernel timeout a little above their lifetime,
 * so that a daemon that dies leaves nothing open for long.  The postrouting
 * chain runs before the usual masquerade at srcnat, which would otherwise
 * pick the source port.  Only the daemon's table is ever touched.
 *
 * Usage: nft_begin(), any number of nft_install(), nft_put(), nft_renew()
 * and nft_del(), then nft_commit(), which sends everything as one batch (one
 * atomic kernel transaction) and waits for the kernel's answer.  Functions
 * return 0 or -errno; a failure while building (out of memory) is also
 * returned by nft_commit(), which then sends nothing.
 */
#ifndef NATPMP_NFT_H
#define NATPMP_NFT_H

#include <stddef.h>
#include <stdint.h>

#include "engine/table.h"

#define NFT_MAP_NAME "mappings"
#define NFT_SOURCES_NAME "sources"
#define NFT_EXTERNAL_NAME "external"
#define NFT_POSTROUTING_CHAIN "postrouting"
#define NFT_PINHOLE_SET "pinholes"
#define NFT_PINHOLE_CHAIN "forward"
/* Seconds added to a mapping's remaining lifetime for its kernel timeout. */
#define NFT_TIMEOUT_SLACK 30

struct nft_config {
	const char *table; /* both tables' name: table ip and table ip6 */
	const char *chain;
	const char *external_interface;
	uint32_t pinhole_mark, pinhole_mask; /* the bits a pinhole sets in a packet's mark (host order) */
};

struct nft;

/* Opens the netlink socket; NULL with errno set on failure. */
struct nft *nft_open(const struct nft_config *cfg);
void nft_close(struct nft *n);
/* The socket's netlink port id: the kernel's notifications of our own changes carry it. */
uint32_t nft_portid(const struct nft *n);

void nft_begin(struct nft *n);
/* Replaces the daemon's tables (if any) with empty ones of the layout above. */
int nft_install(struct nft *n);
/*
 * The next nft_install() is to hold count IPv4 mappings: from
 * NFT_PRESIZE_MIN on, its maps are created sized for the most they can
 * ever hold (NFT_PRESIZE: every port of both protocols), so that the
 * kernel's hash table is made once instead of growing through the one
 * transaction that fills it (a tenth of a restart with 60,000 mappings);
 * that costs about 2 MB of kernel memory per map, so smaller tables let
 * the kernel grow them as usual.
 */
void nft_presize(struct nft *n, size_t count);
#define NFT_PRESIZE_MIN 16384
#define NFT_PRESIZE 131072
/* Adds the element(s) of a new mapping (IPv4: forward and source; IPv6: pinhole); timeout in seconds. */
int nft_put(struct nft *n, const struct table_mapping *m, uint32_t timeout);
/* Gives m's element a new timeout, adding it if the kernel lost it. */
int nft_renew(struct nft *n, const struct table_mapping *m, uint32_t timeout);
/* Removes m's element; one that is already gone is not an error. */
int nft_del(struct nft *n, const struct table_mapping *m);
/* Replaces the contents of the external set (addresses in network byte order). */
int nft_set_external(struct nft *n, const uint32_t *addrs, size_t n_addrs);
int nft_commit(struct nft *n);
/* How many element operations the batch begun by nft_begin() holds so far. */
size_t nft_queued(const struct nft *n);
/*
 * The kernel's nftables generation id (host order, never 0), which every
 * transaction that changes anything, anyone's, moves on by one (skipping
 * 0): 0 or -errno; one GETGEN round trip.
 */
int nft_generation(struct nft *n, uint32_t *gen);

/*
 * Asks the kernel, with a probe element in the installed table, whether
 * re-adding an element updates its timeout (Linux 6.10 and later); if so,
 * nft_renew() sends one element operation instead of three.  1, 0, or
 * -errno (renewals then keep the three operations).
 */
int nft_probe_timeout_update(struct nft *n);

/* Deletes the daemon's tables in a transaction of its own; a missing table is not an error. */
int nft_remove(struct nft *n);
/* Whether both of the daemon's tables exist: 1, 0 when one is missing, or -errno. */
int nft_installed(struct nft *n);

#endif
