/*
 * nft.h - the daemon's own nftables table, written over netlink.
 *
 * Layout (family ip, names from the configuration):
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
/* Seconds added to a mapping's remaining lifetime for its kernel timeout. */
#define NFT_TIMEOUT_SLACK 30

struct nft_config {
	const char *table;
	const char *chain;
	const char *external_interface;
};

struct nft;

/* Opens the netlink socket; NULL with errno set on failure. */
struct nft *nft_open(const struct nft_config *cfg);
void nft_close(struct nft *n);
/* The socket's netlink port id: the kernel's notifications of our own changes carry it. */
uint32_t nft_portid(const struct nft *n);

void nft_begin(struct nft *n);
/* Replaces the daemon's table (if any) with an empty one of the layout above. */
int nft_install(struct nft *n);
/* Adds the element of a new mapping; timeout in seconds. */
int nft_put(struct nft *n, const struct table_mapping *m, uint32_t timeout);
/* Gives m's element a new timeout, adding it if the kernel lost it. */
int nft_renew(struct nft *n, const struct table_mapping *m, uint32_t timeout);
/* Removes m's element; one that is already gone is not an error. */
int nft_del(struct nft *n, const struct table_mapping *m);
/* Replaces the contents of the external set (addresses in network byte order). */
int nft_set_external(struct nft *n, const uint32_t *addrs, size_t n_addrs);
int nft_commit(struct nft *n);

/*
 * Asks the kernel, with a probe element in the installed table, whether
 * re-adding an element updates its timeout (Linux 6.10 and later); if so,
 * nft_renew() sends one element operation instead of three.  1, 0, or
 * -errno (renewals then keep the three operations).
 */
int nft_probe_timeout_update(struct nft *n);

/* Deletes the daemon's table in a transaction of its own; a missing table is not an error. */
int nft_remove(struct nft *n);

#endif
