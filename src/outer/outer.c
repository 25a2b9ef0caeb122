/*
 * outer.c - the outer-NAT interface's dispatch: the daemon holds a struct
 * outer, whatever kind of outer NAT is behind it.
 */
#include <stdlib.h>

#include "base/log.h"

#include "outer/outer.h"
#include "outer/upstream.h"

struct outer {
	const struct outer_ops *ops;
	void *impl;
};

static int natpmp_keep(void *impl, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s)
{
	return upstream_keep(impl, protocol, local_port, suggested, until_s);
}

static void natpmp_drop(void *impl, uint8_t protocol, uint16_t local_port)
{
	upstream_drop(impl, protocol, local_port);
}

static uint16_t natpmp_granted(const void *impl, uint8_t protocol, uint16_t local_port)
{
	return upstream_granted(impl, protocol, local_port);
}

static uint32_t natpmp_address(const void *impl)
{
	return upstream_address(impl);
}

static size_t natpmp_remapping(const void *impl)
{
	return upstream_remapping(impl);
}

static const struct outer_stats *natpmp_stats(const void *impl)
{
	return upstream_stats(impl);
}

static void natpmp_close(void *impl)
{
	upstream_close(impl);
}

static const struct outer_ops natpmp_ops = {
	.keep = natpmp_keep,
	.drop = natpmp_drop,
	.granted = natpmp_granted,
	.address = natpmp_address,
	.remapping = natpmp_remapping,
	.stats = natpmp_stats,
	.close = natpmp_close,
};

struct outer *outer_open_natpmp(struct event_base *base, uint32_t gateway, const char *ifname,
				const struct outer_events *ev)
{
	struct outer *o = calloc(1, sizeof(*o));

	if (!o) {
		log_error("upstream: out of memory");
		return NULL;
	}
	o->ops = &natpmp_ops;
	if (!(o->impl = upstream_open(base, gateway, ifname, ev))) {
		free(o);
		return NULL;
	}
	return o;
}

void outer_close(struct outer *o)
{
	if (!o)
		return;
	o->ops->close(o->impl);
	free(o);
}

int outer_keep(struct outer *o, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s)
{
	return o->ops->keep(o->impl, protocol, local_port, suggested, until_s);
}

void outer_drop(struct outer *o, uint8_t protocol, uint16_t local_port)
{
	o->ops->drop(o->impl, protocol, local_port);
}

uint16_t outer_granted(const struct outer *o, uint8_t protocol, uint16_t local_port)
{
	return o->ops->granted(o->impl, protocol, local_port);
}

uint32_t outer_address(const struct outer *o)
{
	return o->ops->address(o->impl);
}

size_t outer_remapping(const struct outer *o)
{
	return o->ops->remapping(o->impl);
}

const struct outer_stats *outer_stats(const struct outer *o)
{
	return o->ops->stats(o->impl);
}
