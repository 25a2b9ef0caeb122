/*
 * netif.c - IPv4 addresses of an interface.
 *
 * getifaddrs() asks the kernel over rtnetlink, which is what the daemon
 * needs here; no command is run.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>

#include "netif.h"

int netif_name_valid(const char *ifname)
{
	size_t len = strlen(ifname);

	if (len == 0 || len >= IFNAMSIZ || strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (ifname[i] == '/' || ifname[i] == ':' || ifname[i] <= ' ' || ifname[i] == 0x7f)
			return 0;
	return 1;
}

int netif_ipv4_all(const char *ifname, struct netif_addr *out, int max)
{
	struct ifaddrs *list, *ifa;
	unsigned int ifindex = if_nametoindex(ifname);
	size_t len = strlen(ifname);
	int n = 0;

	if (ifindex == 0)
		return -ENODEV;
	if (getifaddrs(&list) < 0)
		return -errno;
	for (ifa = list; ifa && n < max; ifa = ifa->ifa_next) {
		/* ifa_name is the address label ("eth0:1" for aliases); compare the device. */
		if (!ifa->ifa_addr || ifa->ifa_addr->sa_family != AF_INET || strncmp(ifa->ifa_name, ifname, len) != 0 ||
		    (ifa->ifa_name[len] != '\0' && ifa->ifa_name[len] != ':'))
			continue;
		out[n].addr = ((struct sockaddr_in *)(void *)ifa->ifa_addr)->sin_addr.s_addr;
		out[n].mask = ifa->ifa_netmask ? ((struct sockaddr_in *)(void *)ifa->ifa_netmask)->sin_addr.s_addr
					       : 0xffffffff;
		out[n].ifindex = ifindex;
		n++;
	}
	freeifaddrs(list);
	return n;
}

int netif_ipv4(const char *ifname, struct netif_addr *out)
{
	int n = netif_ipv4_all(ifname, out, 1);

	if (n < 0)
		return n;
	return n == 0 ? -EADDRNOTAVAIL : 0;
}
