/*
 * notify.h - telling the service manager where the daemon stands
 * (systemd's Type=notify): READY=1 once it answers requests, STOPPING=1
 * when it shuts down, with a STATUS= line.  The protocol is one datagram
 * to the unix socket named by $NOTIFY_SOCKET, so no library is needed;
 * without that variable nothing is sent.  notify_send() returns 0 (also
 * when there is no manager to tell) or -errno.
 */
#ifndef NATPMP_NOTIFY_H
#define NATPMP_NOTIFY_H

int notify_send(const char *state);

#endif
