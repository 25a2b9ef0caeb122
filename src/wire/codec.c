/*
 * codec.c - the dispatch on the version byte (RFC 6887 9).
 */
#include "wire/codec.h"

const struct codec *codec_for(const uint8_t *buf, size_t len)
{
	return len > 0 && buf[0] != NATPMP_VERSION ? &codec_pcp : &codec_natpmp;
}
