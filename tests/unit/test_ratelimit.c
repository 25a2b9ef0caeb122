/* test_ratelimit.c - token buckets on a fake clock. */
#include <arpa/inet.h>

#include "check.h"
#include "engine/ratelimit.h"

static int burst(struct ratelimit *r, uint32_t client, int64_t now, int tries)
{
	int allowed = 0;

	for (int i = 0; i < tries; i++)
		allowed += ratelimit_allow(r, client, now);
	return allowed;
}

int main(void)
{
	struct ratelimit *r = ratelimit_new(10), *off = ratelimit_new(0);
	uint32_t a = inet_addr("192.168.1.10"), b = inet_addr("192.168.1.11");

	CHECK(r && off);
	if (!r || !off)
		return check_exit();
	/* A burst of twice the rate, then nothing. */
	CHECK_EQ(burst(r, a, 0, 100), 20);
	/* Another client is not affected. */
	CHECK_EQ(burst(r, b, 0, 5), 5);
	/* 10 a second: 100 ms buys one request, 1 s buys ten. */
	CHECK_EQ(burst(r, a, 100, 5), 1);
	CHECK_EQ(burst(r, a, 1100, 50), 10);
	/* The bucket never holds more than the burst, however long the pause. */
	CHECK_EQ(burst(r, a, 1000000, 100), 20);
	/* A steady 10 a second is always served. */
	int served = 0;
	for (int t = 0; t < 10000; t += 100)
		served += ratelimit_allow(r, b, 2000000 + t);
	CHECK_EQ(served, 100);
	/* Idle buckets are forgotten, active ones kept. */
	for (uint32_t i = 0; i < 5000; i++)
		ratelimit_allow(r, htonl(0x0a000000 + i), 3000000);
	CHECK(ratelimit_clients(r) >= 5000);
	CHECK(ratelimit_allow(r, a, 3000000 + 20000));
	CHECK(ratelimit_clients(r) <= 2);
	/* rate 0: no limit. */
	CHECK_EQ(burst(off, a, 0, 100000), 100000);
	ratelimit_free(r);
	ratelimit_free(off);
	return check_exit();
}
