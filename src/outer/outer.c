/*
 * outer.c - the outer-NAT interface's dispatch: the daemon holds a struct
 * outer, whatever kind of outer NAT is behind it.
 */
#include <stdlib.h>

#include "base/log.h"

#include "outer/outer.h"
#include "outer/stunkeep.h"
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

/* A gateway is asked, never bound to: it has nothing to check again, no socket on a forwarded port. */
static void natpmp_recheck(void *impl)
{
	(void)impl;
}

static bool natpmp_owns(const void *impl, uint8_t protocol, uint16_t port)
{
	(void)impl;
	(void)protocol;
	(void)port;
	return false;
}

static void natpmp_status(const void *impl, struct outer_status *st)
{
	(void)impl;
	*st = (struct outer_status){ .kind = "natpmp", .forwarding = true };
}

static const struct outer_ops natpmp_ops = {
	.keep = natpmp_keep,
	.drop = natpmp_drop,
	.granted = natpmp_granted,
	.address = natpmp_address,
	.remapping = natpmp_remapping,
	.stats = natpmp_stats,
	.recheck = natpmp_recheck,
	.owns = natpmp_owns,
	.status = natpmp_status,
	.close = natpmp_close,
};

/* STUN mode picks no ports outside (the outer NAT does), and has no reset to count down. */
static int stun_keep(void *impl, uint8_t protocol, uint16_t local_port, uint16_t suggested, int64_t until_s)
{
	(void)suggested;
	return stunkeep_keep(impl, protocol, local_port, until_s);
}

static void stun_drop(void *impl, uint8_t protocol, uint16_t local_port)
{
	stunkeep_drop(impl, protocol, local_port);
}

static uint16_t stun_granted(const void *impl, uint8_t protocol, uint16_t local_port)
{
	return stunkeep_granted(impl, protocol, local_port);
}

static uint32_t stun_address(const void *impl)
{
	return stunkeep_address(impl);
}

static size_t stun_remapping(const void *impl)
{
	(void)impl;
	return 0;
}

static const struct outer_stats *stun_stats(const void *impl)
{
	return stunkeep_stats(impl);
}

static void stun_recheck(void *impl)
{
	stunkeep_recheck(impl);
}

static bool stun_owns(const void *impl, uint8_t protocol, uint16_t port)
{
	return stunkeep_owns(impl, protocol, port);
}

static void stun_status(const void *impl, struct outer_status *st)
{
	stunkeep_status(impl, st);
}

static void stun_close(void *impl)
{
	stunkeep_close(impl);
}

static const struct outer_ops stun_ops = {
	.keep = stun_keep,
	.drop = stun_drop,
	.granted = stun_granted,
	.address = stun_address,
	.remapping = stun_remapping,
	.stats = stun_stats,
	.recheck = stun_recheck,
	.owns = stun_owns,
	.status = stun_status,
	.close = stun_close,
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

struct outer *outer_open_stun(struct event_base *base, const struct outer_stun_config *cfg,
			      const struct outer_events *ev)
{
	struct outer *o = calloc(1, sizeof(*o));

	if (!o) {
		log_error("stun: out of memory");
		return NULL;
	}
	o->ops = &stun_ops;
	if (!(o->impl = stunkeep_open(base, cfg, ev))) {
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

void outer_recheck(struct outer *o)
{
	o->ops->recheck(o->impl);
}

bool outer_owns(const struct outer *o, uint8_t protocol, uint16_t port)
{
	return o->ops->owns(o->impl, protocol, port);
}

void outer_status(const struct outer *o, struct outer_status *st)
{
	o->ops->status(o->impl, st);
}
