/*
 * conntrack.h - removing the connection-tracking entries of a mapping.
 *
 * RFC 6886 3.4: once a mapping is deleted or expires, the flows through it
 * must stop.  Removing the nftables element only stops new connections; an
 * established one keeps its NAT binding in its conntrack entry, so those
 * entries are deleted too, over ctnetlink.
 *
 * A mapping (protocol, external port) -> (client, internal port) produces
 * entries of two shapes, both IPv4 and of the mapping's protocol:
 *   inbound (DNAT):  original dst port == external port,
 *                    reply src == client:internal port;
 *   outbound (SNAT): original src == client:internal port,
 *                    reply dst port == external port.
 * An entry whose reply tuple is the plain inverse of its original was not
 * translated at all (a client talking to the router from its internal port,
 * when that equals the external one); it is left alone.  An IPv6 pinhole
 * translates nothing: its entries are those of the IPv6 table whose
 * original destination is the client's address and port.
 *
 * Call after the kernel's mapping is gone (nft_commit()), so that no new entry
 * can be created through it behind the dump.  The flush is bounded: every
 * read waits at most CT_RECV_TIMEOUT_SEC, and an interrupted or overflowing
 * dump is retried a fixed number of times.  Functions return a count or
 * -errno; the socket stays usable after any failure.
 */
#ifndef NATPMP_CONNTRACK_H
#define NATPMP_CONNTRACK_H

#include <stddef.h>

#include "engine/table.h"

/* Longest wait for any one answer from the kernel. */
#define CT_RECV_TIMEOUT_SEC 2

struct ct;

/* Opens the netlink socket; NULL with errno set on failure. */
struct ct *ct_open(void);
void ct_close(struct ct *c);

/*
 * Deletes every entry (of any conntrack zone) that one of the n mappings
 * translated, in one dump of the table however large n is.  Returns the
 * number of entries deleted (entries that vanished meanwhile do not count
 * and are no error), or -errno: -ETIMEDOUT when the kernel did not answer in
 * time, -EINTR when every dump attempt was interrupted.  Entries deleted
 * before a failure stay deleted.  n == 0 returns 0 without a dump.
 */
int ct_flush_mappings(struct ct *c, const struct table_mapping *ms, size_t n);

/* ct_flush_mappings() for one mapping. */
int ct_flush_mapping(struct ct *c, const struct table_mapping *m);

#endif
