/*
 * nftmon.h - news of changes to the daemon's nftables table made by anyone
 * else: `nft flush ruleset`, a firewall reload, `nft delete table ...`, an
 * element added or removed by hand.
 *
 * The kernel stamps each notification with the netlink port id of the
 * socket whose transaction caused it; the daemon's own (nft_portid()) are
 * skipped.  Functions return 0/1 or -errno.
 */
#ifndef NATPMP_NFTMON_H
#define NATPMP_NFTMON_H

#include <stddef.h>
#include <stdint.h>

struct nftmon;

/* Watches table ip <table>; NULL with errno set. */
struct nftmon *nftmon_open(const char *table, uint32_t own_portid);
void nftmon_close(struct nftmon *m);
int nftmon_fd(const struct nftmon *m);
/*
 * Drains the socket: 1 when someone else touched the table, or when
 * notifications were lost (the table may have been touched); 0 when not.
 * who gets the name and pid of the last process whose transaction touched
 * it, as the kernel reported them, or "unknown".
 */
int nftmon_read(struct nftmon *m, char *who, size_t wholen);
/*
 * Leaves and joins the group again, around the daemon's own large commits:
 * while anyone listens, nf_tables builds a notification for every set
 * element of a transaction (a third of a restart with 60,000 mappings, a
 * tenth of a busy turn), only for the filter to drop them as ours.  What
 * someone else commits while the socket is out goes unheard: the caller
 * compares generation ids (nft_generation()) and nftmon_heard().  0 or
 * -errno.
 */
int nftmon_pause(struct nftmon *m);
int nftmon_resume(struct nftmon *m);
/* How many commits by someone else nftmon_read() has heard, whatever they touched. */
uint64_t nftmon_heard(const struct nftmon *m);

#endif
