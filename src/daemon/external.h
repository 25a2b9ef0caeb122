/*
 * external.h - the external address: the external interface's IPv4
 * addresses (kept by rtnetlink events), the address clients are told
 * (RFC 6886 3.2: --external-address, the outer NAT's, or the interface's
 * first), the hairpin set in the kernel, and announcements (RFC 6886
 * 3.2.1).  Addresses in network byte order.
 */
#ifndef NATPMP_DAEMON_EXTERNAL_H
#define NATPMP_DAEMON_EXTERNAL_H

#include "server_impl.h"

/* The address clients are told; 0 when there is none. */
uint32_t external_address(const struct server *s);
/* Re-reads the interface's addresses: 1 when they changed, 0 when not (or the query failed). */
int external_read(struct server *s);
/* Says why there is no external address: the interface does not exist (yet), or has no IPv4 address. */
void external_warn_none(const struct server *s);
/* A private or shared-space address with no outer NAT configured: warns that forwards cannot be reached. */
void external_warn_unreachable(const struct server *s);
/* After a change: logged, the kernel's hairpin set updated, announcements started or stopped. */
void external_changed(struct server *s);
/* One round of announcements on every listen interface (announce.h's callback; arg: the server). */
void external_announce(void *arg);
/* rtnetlink events (arg: the server). */
void external_on_netlink(evutil_socket_t fd, short what, void *arg);

#endif
