/*
 * codec.c - the dispatch on the version byte (RFC 6887 9).
 */
#include "wire/codec.h"

const struct codec *codec_for(const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	/* PCP (version 2) will be the one other line here. */
	return &codec_natpmp;
}
