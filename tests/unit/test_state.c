/* test_state.c - the state file: round trips, atomic saves, and every way a file can be bad. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "store/state.h"
#include "../../src/store/state_impl.h"

#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

static char dir[64];
static char path[128];

static void write_bytes(const char *p, const void *data, size_t len)
{
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	CHECK(fd >= 0);
	if (fd < 0)
		exit(1);
	CHECK_EQ(write(fd, data, len), (long long)len);
	CHECK_EQ(close(fd), 0);
}

static char *read_all(const char *p, size_t *lenp)
{
	struct stat sb;
	char *buf;
	int fd = open(p, O_RDONLY);

	CHECK(fd >= 0);
	if (fd < 0 || fstat(fd, &sb) < 0)
		exit(1);
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		exit(1);
	CHECK_EQ(read(fd, buf, (size_t)sb.st_size), sb.st_size);
	buf[sb.st_size] = '\0';
	close(fd);
	*lenp = (size_t)sb.st_size;
	return buf;
}

static int exists(const char *p)
{
	struct stat sb;

	return lstat(p, &sb) == 0;
}

/* Entries in the test directory, not counting "." and "..". */
static int dir_entries(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	int n = 0;

	CHECK(dp != NULL);
	if (!dp)
		return -1;
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			n++;
	closedir(dp);
	return n;
}

static void remove_tree(const char *d)
{
	DIR *dp = opendir(d);
	struct dirent *de;
	char p[512];

	if (!dp)
		return;
	while ((de = readdir(dp)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(p, sizeof(p), "%s/%s", d, de->d_name);
		if (de->d_type == DT_DIR)
			remove_tree(p);
		else
			unlink(p);
	}
	closedir(dp);
	rmdir(d);
}

/* The file at path must be rejected as -EBADMSG, with a reason that mentions word. */
static void expect_bad_at(int line, const void *data, size_t len, const char *word)
{
	struct state st;
	char err[256];
	int r;

	write_bytes(path, data, len);
	memset(err, 'x', sizeof(err));
	r = state_load(path, &st, err, sizeof(err));
	if (r != -EBADMSG || err[0] == '\0' || strlen(err) >= sizeof(err) || !strstr(err, word) ||
	    st.n_mappings != 0 || st.mappings != NULL) {
		fprintf(stderr, "%s:%d: expected -EBADMSG mentioning \"%s\", got %d \"%.*s\"\n", __FILE__, line, word,
			r, (int)sizeof(err) - 1, err);
		check_failures++;
	}
}

#define BAD(json, word) expect_bad_at(__LINE__, json, strlen(json), word)
#define BADN(data, word) expect_bad_at(__LINE__, data, sizeof(data) - 1, word)

static void expect_same(const struct state *a, const struct state *b)
{
	CHECK_EQ(a->epoch_start, b->epoch_start);
	CHECK(strcmp(a->boot_id, b->boot_id) == 0);
	CHECK_EQ(a->epoch_start_boot, b->epoch_start_boot);
	CHECK_EQ(a->n_mappings, b->n_mappings);
	if (a->n_mappings != b->n_mappings)
		return;
	for (size_t i = 0; i < a->n_mappings; i++) {
		const struct state_mapping *x = &a->mappings[i], *y = &b->mappings[i];
		if (x->client != y->client || x->protocol != y->protocol || x->internal_port != y->internal_port ||
		    x->external_port != y->external_port || x->lifetime != y->lifetime || x->expires != y->expires ||
		    x->origin != y->origin || x->upstream_port != y->upstream_port || x->expires_boot != y->expires_boot ||
		    memcmp(x->nonce, y->nonce, sizeof(x->nonce)) != 0 || x->ipv6 != y->ipv6 ||
		    memcmp(x->client6, y->client6, sizeof(x->client6)) != 0) {
			fprintf(stderr, "%s:%d: mapping %zu differs\n", __FILE__, __LINE__, i);
			check_failures++;
			return;
		}
	}
}

static struct state_mapping sample[] = {
	{ 0, TCP, 51413, 51413, 3600, 1700003600, 0, 0, 0, { 0 }, false, { 0 } },
	{ 0, UDP, 51413, 40000, 7200, 1700007200, 0, 40001, 86400, { 0 }, false, { 0 } },
	/* The longest line there can be: every field at its widest, every optional member (a PCP nonce). */
	{ 0, TCP, 65535, 65535, 4294967295u, INT64_MAX, 2, 65535, INT64_MAX,
	  { 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8, 0xf7, 0xf6, 0xf5, 0xf4 }, false, { 0 } },
	{ 0, UDP, 65535, 1, 0, 0, 0, 0, 0, { 0 }, false, { 0 } },
	{ 0, TCP, 8080, 1024, 1, 4102444800, 1, 1, 1, { 0 }, false, { 0 } },
	/* An IPv6 client's pinhole, made by PCP: the longest client there is. */
	{ 0, UDP, 6881, 6881, 2400, 1700002400, 2, 0, 2400, { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 }, true,
	  { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02 } },
};

static void test_round_trip(void)
{
	struct state in = { .epoch_start = 1700000000, .boot_id = "0123abcd-4567-89ab-cdef-0123456789ab",
			    .epoch_start_boot = 12345, .n_mappings = 6, .mappings = sample }, out;
	struct stat sb;
	char err[256];

	sample[0].client = inet_addr("192.168.1.10");
	sample[1].client = inet_addr("192.168.1.10");
	sample[2].client = inet_addr("0.0.0.0");
	sample[3].client = inet_addr("255.255.255.255");
	sample[4].client = inet_addr("10.0.0.1");
	CHECK_EQ(state_save(path, &in, NULL), 0);
	CHECK_EQ(dir_entries(dir), 1);
	CHECK_EQ(stat(path, &sb), 0);
	CHECK_EQ(sb.st_mode & 07777, STATE_FILE_MODE);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	expect_same(&in, &out);
	state_free(&out);
	CHECK_EQ(out.n_mappings, 0);
	CHECK(out.mappings == NULL);
	CHECK_EQ(out.epoch_start, 0);

	/* No mappings at all. */
	in = (struct state){ .epoch_start = 0 };
	CHECK_EQ(state_save(path, &in, NULL), 0);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.n_mappings, 0);
	CHECK(out.mappings == NULL);
	CHECK_EQ(out.epoch_start, 0);
	state_free(&out);

	/* The format as documented, written by something else, with keys in another order. */
	const char *doc = "{ \"mappings\": [ { \"protocol\": \"udp\", \"client\": \"192.168.1.10\", \"expires\": 99,\n"
			  "\"internal_port\": 51413, \"external_port\": 51414, \"lifetime\": 3600 } ],\n"
			  "\"epoch_start\": 12, \"version\": 1 }\n";
	write_bytes(path, doc, strlen(doc));
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	CHECK_EQ(out.epoch_start, 12);
	CHECK_EQ(out.n_mappings, 1);
	if (out.n_mappings == 1) {
		CHECK_EQ(out.mappings[0].client, inet_addr("192.168.1.10"));
		CHECK_EQ(out.mappings[0].protocol, UDP);
		CHECK_EQ(out.mappings[0].internal_port, 51413);
		CHECK_EQ(out.mappings[0].external_port, 51414);
		CHECK_EQ(out.mappings[0].lifetime, 3600);
		CHECK_EQ(out.mappings[0].expires, 99);
	}
	state_free(&out);
}

static void test_save_replaces(void)
{
	struct state a = { .epoch_start = 1, .n_mappings = 6, .mappings = sample };
	struct state b = { .epoch_start = 2, .n_mappings = 1, .mappings = sample + 1 }, out;
	char err[256];

	CHECK_EQ(state_save(path, &a, NULL), 0);
	CHECK_EQ(state_save(path, &b, NULL), 0);
	CHECK_EQ(dir_entries(dir), 1);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	expect_same(&b, &out);
	state_free(&out);
}

static void test_save_errors(void)
{
	struct state a = { .epoch_start = 1, .n_mappings = 6, .mappings = sample }, out;
	struct state_mapping m = sample[0];
	struct state bad = { .epoch_start = 1, .n_mappings = 1, .mappings = &m };
	char p[256], sub[160], err[256];

	/* Into a directory that does not exist: an error, and nothing is created. */
	snprintf(sub, sizeof(sub), "%s/missing", dir);
	snprintf(p, sizeof(p), "%s/state.json", sub);
	CHECK_EQ(state_save(p, &a, NULL), -ENOENT);
	CHECK(!exists(sub));
	CHECK_EQ(dir_entries(dir), 0);

	/* The rename fails (a non-empty directory is in the way): the temporary file goes. */
	snprintf(sub, sizeof(sub), "%s/blocker", dir);
	CHECK_EQ(mkdir(sub, 0755), 0);
	snprintf(p, sizeof(p), "%s/x", sub);
	write_bytes(p, "x", 1);
	CHECK(state_save(sub, &a, NULL) < 0);
	CHECK_EQ(dir_entries(dir), 1);
	CHECK_EQ(dir_entries(sub), 1);
	CHECK_EQ(state_load(sub, &out, err, sizeof(err)), -EISDIR);
	CHECK(out.mappings == NULL);
	unlink(p);
	rmdir(sub);

	/* What could not be read back is not written, and the old file stays. */
	CHECK_EQ(state_save(path, &a, NULL), 0);
	m.protocol = 1;
	CHECK_EQ(state_save(path, &bad, NULL), -EINVAL);
	m = sample[0];
	m.internal_port = 0;
	CHECK_EQ(state_save(path, &bad, NULL), -EINVAL);
	m = sample[0];
	m.expires = -1;
	CHECK_EQ(state_save(path, &bad, NULL), -EINVAL);
	bad.mappings = sample;
	bad.epoch_start = -1;
	CHECK_EQ(state_save(path, &bad, NULL), -EINVAL);
	CHECK_EQ(dir_entries(dir), 1);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	expect_same(&a, &out);
	state_free(&out);
	unlink(path);
}

static void test_missing(void)
{
	struct state st;
	char err[256];

	unlink(path);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), -ENOENT);
	CHECK_EQ(st.n_mappings, 0);
	CHECK(st.mappings == NULL);
}

/* Every prefix of a good file: no crash, and each one cut before the closing brace is refused. */
static void test_truncated(void)
{
	struct state in = { .epoch_start = 1700000000, .n_mappings = 6, .mappings = sample }, out;
	char err[256], whole[256];
	size_t len, end;
	char *buf;
	int r;

	snprintf(whole, sizeof(whole), "%s/whole", dir);
	CHECK_EQ(state_save(whole, &in, NULL), 0);
	buf = read_all(whole, &len);
	unlink(whole);
	end = len;
	while (end > 0 && buf[end - 1] != '}')
		end--;
	CHECK(end > 0 && end < len);
	for (size_t n = 0; n <= len; n++) {
		write_bytes(path, buf, n);
		err[0] = '\0';
		r = state_load(path, &out, err, sizeof(err));
		if (n < end) {
			if (r != -EBADMSG || err[0] == '\0' || out.mappings || out.n_mappings) {
				fprintf(stderr, "%s:%d: prefix of %zu bytes: %d \"%s\"\n", __FILE__, __LINE__, n, r,
					err);
				check_failures++;
			}
		} else {
			CHECK_EQ(r, 0);
			expect_same(&in, &out);
		}
		state_free(&out);
	}
	/* Cut inside the object, the reason says so. */
	write_bytes(path, buf, end / 2);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "truncated") != NULL);
	free(buf);
}

#define MAPPING_FIELDS 6
static const char *const field_names[MAPPING_FIELDS] = { "client",   "protocol", "internal_port",
							  "external_port", "lifetime", "expires" };
static const char *const good_values[MAPPING_FIELDS] = { "\"192.168.1.10\"", "\"tcp\"", "51413", "51413", "3600",
							  "1700003600" };

/* A file of one good mapping, then one whose field i is missing (value NULL) or replaced by value. */
static void bad_mapping(int line, int field, const char *value, const char *word)
{
	char json[1024];
	size_t o;

	o = (size_t)snprintf(json, sizeof(json),
			     "{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":"
			     "\"udp\",\"internal_port\":1,\"external_port\":2,\"lifetime\":3,\"expires\":4},{");
	for (int i = 0, first = 1; i < MAPPING_FIELDS; i++) {
		const char *v = i == field ? value : good_values[i];
		if (!v)
			continue;
		o += (size_t)snprintf(json + o, sizeof(json) - o, "%s\"%s\":%s", first ? "" : ",", field_names[i], v);
		first = 0;
	}
	snprintf(json + o, sizeof(json) - o, "}]}\n");
	expect_bad_at(line, json, strlen(json), word);
}

static void test_bad_fields(void)
{
	static const char *const wrong_for_int[] = { "\"3600\"", "3600.0", "1e3", "null", "true", "{}", "[]" };
	static const char *const wrong_for_string[] = { "3", "null", "false", "[\"tcp\"]", "{}" };

	for (int i = 0; i < MAPPING_FIELDS; i++) {
		bad_mapping(__LINE__, i, NULL, field_names[i]);
		bad_mapping(__LINE__, i, NULL, "missing");
		bad_mapping(__LINE__, i, NULL, "mappings[1]");
		if (i < 2) {
			for (size_t j = 0; j < sizeof(wrong_for_string) / sizeof(wrong_for_string[0]); j++)
				bad_mapping(__LINE__, i, wrong_for_string[j], "not a string");
		} else {
			for (size_t j = 0; j < sizeof(wrong_for_int) / sizeof(wrong_for_int[0]); j++)
				bad_mapping(__LINE__, i, wrong_for_int[j], "not an integer");
			bad_mapping(__LINE__, i, "-1", field_names[i]);
			bad_mapping(__LINE__, i, "18446744073709551616", "too large");
		}
	}
	bad_mapping(__LINE__, 2, "0", "internal_port: 0 is not a port");
	bad_mapping(__LINE__, 2, "70000", "internal_port: 70000 is not a port");
	bad_mapping(__LINE__, 3, "0", "external_port: 0 is not a port");
	bad_mapping(__LINE__, 3, "65536", "external_port: 65536 is not a port");
	bad_mapping(__LINE__, 4, "-1", "lifetime: -1");
	bad_mapping(__LINE__, 4, "4294967296", "lifetime: 4294967296");
	bad_mapping(__LINE__, 5, "-1", "expires: -1 is negative");
	bad_mapping(__LINE__, 5, "9223372036854775808", "expires: number is too large");
	bad_mapping(__LINE__, 0, "\"300.1.1.1\"", "mappings[1].client: \"300.1.1.1\" is not an IPv4 or IPv6 address");
	bad_mapping(__LINE__, 0, "\"192.168.1\"", "IPv4");
	bad_mapping(__LINE__, 0, "\"2001:db8::1::2\"", "IPv6");
	bad_mapping(__LINE__, 0, "\"\"", "IPv4");
	bad_mapping(__LINE__, 0, "\" 10.0.0.1\"", "IPv4");
	bad_mapping(__LINE__, 0, "\"10.0.0.1\\u0000x\"", "IPv4");
	bad_mapping(__LINE__, 1, "\"sctp\"", "mappings[1].protocol: \"sctp\" is not tcp or udp");
	bad_mapping(__LINE__, 1, "\"TCP\"", "protocol");
	bad_mapping(__LINE__, 1, "\"tcp\\u0000\"", "protocol");
	bad_mapping(__LINE__, 1, "\"\"", "protocol");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"origin\":\"ftp\"}]}",
	    "mappings[0].origin: \"ftp\" is not natpmp, pcp or http");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"2001:db8::g\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1}]}",
	    "mappings[0].client: \"2001:db8::g\" is not an IPv4 or IPv6 address");
	/* A PCP mapping without its nonce could be taken by any other nonce: the file is damaged. */
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"origin\":\"pcp\"}]}",
	    "mappings[0]: missing \"nonce\"");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"origin\":\"pcp\","
	    "\"nonce\":\"0123456789abcdef0123456g\"}]}",
	    "mappings[0].nonce: \"0123456789abcdef0123456g\" is not 24 hex digits");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"origin\":7}]}",
	    "mappings[0].origin: an integer is not natpmp, pcp or http");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"upstream_port\":0}]}",
	    "mappings[0].upstream_port: 0 is not a port (1-65535)");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"expires_boot\":-4}]}",
	    "mappings[0].expires_boot");
	BAD("{\"version\":1,\"epoch_start\":5,\"boot_id\":\"0123\",\"mappings\":[]}", "boot_id");
	BAD("{\"version\":1,\"epoch_start\":5,\"boot_id\":7,\"mappings\":[]}", "boot_id");
	BAD("{\"version\":1,\"epoch_start\":5,\"boot_id\":\"0123abcd-4567-89ab-cdef-0123456789ab\","
	    "\"epoch_start_boot\":-1,\"mappings\":[]}",
	    "epoch_start_boot");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
	    "\"internal_port\":1,\"external_port\":1,\"lifetime\":1,\"expires\":1,\"upstream_port\":\"80\"}]}",
	    "mappings[0].upstream_port");

	/* Top-level fields. */
	BAD("{\"epoch_start\":5,\"mappings\":[]}", "missing \"version\"");
	BAD("{\"version\":1,\"mappings\":[]}", "missing \"epoch_start\"");
	BAD("{\"version\":1,\"epoch_start\":5}", "missing \"mappings\"");
	BAD("{\"version\":\"1\",\"epoch_start\":5,\"mappings\":[]}", "\"version\" is a string, not an integer");
	BAD("{\"version\":1.0,\"epoch_start\":5,\"mappings\":[]}", "version");
	BAD("{\"version\":7,\"epoch_start\":5,\"mappings\":[]}", "\"version\" is 7: this daemon reads version 1");
	BAD("{\"version\":0,\"epoch_start\":5,\"mappings\":[]}", "version");
	BAD("{\"version\":-1,\"epoch_start\":5,\"mappings\":[]}", "version");
	BAD("{\"version\":1,\"epoch_start\":\"5\",\"mappings\":[]}", "epoch_start");
	BAD("{\"version\":1,\"epoch_start\":null,\"mappings\":[]}", "epoch_start");
	BAD("{\"version\":1,\"epoch_start\":-5,\"mappings\":[]}", "epoch_start");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":{}}", "\"mappings\" is an object, not an array");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":null}", "mappings");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[1]}", "mappings[0] is an integer, not an object");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[[]]}", "mappings[0]");
	/* A newer version is reported as such, even when its fields are unknown. */
	BAD("{\"version\":2,\"format\":\"other\"}", "version 1");
}

static void test_not_json(void)
{
	static const char garbage[] = "\x7f" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0\xff\xfe";
	static const char high[] = "\xff\xfe\xfd\x80\x81{}";
	static const char nul_after[] = "{\"version\":1,\"epoch_start\":5,\"mappings\":[]}\n\0";
	static const char bad_utf8[] = "{\"version\":1,\"epoch_start\":5,\"mappings\":[],\"x\":\"\xc3\x28\"}";

	BAD("", "empty");
	BAD(" \n\t\n", "empty");
	BADN(garbage, "not JSON");
	BADN(high, "not JSON");
	BADN(nul_after, "NUL");
	BADN(bad_utf8, "not JSON");
	BAD("[]", "top level is an array, not an object");
	BAD("[{\"version\":1,\"epoch_start\":5,\"mappings\":[]}]", "array");
	BAD("5", "top level is an integer");
	BAD("\"state\"", "top level is a string");
	BAD("null", "top level is null");
	BAD("true", "top level");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[]} x", "trailing data after the JSON object");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[]}{}", "trailing data");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[]}\n\n}", "line 3");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[],}", "not JSON");
	BAD("{\"version\":1,\n\"epoch_start\":5,\n\"mappings\":[}", "line 3");
	BAD("{version:1,\"epoch_start\":5,\"mappings\":[]}", "not JSON");
	BAD("{\"version\":1,\"epoch_start\":05,\"mappings\":[]}", "not JSON");
	BAD("{\"version\":1,\"epoch_start\":NaN,\"mappings\":[]}", "epoch_start");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[", "truncated");
	BAD("{\"version\":1,\"epoch_start\":5,\"mappings\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]"
	    "]]]]]]]]]]]]]]]]]]]]]}",
	    "not JSON");
	/* Accepted: whitespace around the object, and a repeated key (the last one counts). */
	const char *ok = "\n  {\"version\":1,\"epoch_start\":5,\"epoch_start\":6,\"mappings\":[]}  \n\n";
	struct state st;
	char err[256];
	write_bytes(path, ok, strlen(ok));
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(st.epoch_start, 6);
	state_free(&st);
}

static void test_size_limit(void)
{
	struct state st;
	char err[256];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	/* Sparse: costs no disk space. */
	CHECK(fd >= 0);
	CHECK_EQ(ftruncate(fd, 64 * 1024 * 1024 + 1), 0);
	close(fd);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "64 MiB") != NULL);
	CHECK(st.mappings == NULL);
	unlink(path);
}

/* A table as large as the daemon allows: saved and read back whole. */
static void test_scale(void)
{
	size_t n = 65535;
	struct state_mapping *m = calloc(n, sizeof(*m));
	struct state in = { .epoch_start = 1700000000, .n_mappings = n, .mappings = m }, out;
	char err[256];

	if (!m)
		exit(1);
	for (size_t i = 0; i < n; i++)
		m[i] = (struct state_mapping){ htonl(0x0a000000u + (uint32_t)(i / 100)), i % 2 ? TCP : UDP,
					       (uint16_t)(i % 65535 + 1), (uint16_t)(65535 - i % 65535),
					       (uint32_t)(i * 65537u), 1700000000 + (int64_t)i, 0, 0, 0, { 0 }, false, { 0 } };
	CHECK_EQ(state_save(path, &in, NULL), 0);
	CHECK_EQ(state_load(path, &out, err, sizeof(err)), 0);
	expect_same(&in, &out);
	state_free(&out);
	free(m);
	unlink(path);
}

static void test_quarantine(void)
{
	char moved1[256], moved2[256], moved3[256], prefix[192], taken[2][256], tiny[8];
	size_t len;
	char *buf;
	time_t now;

	snprintf(prefix, sizeof(prefix), "%s.corrupt.", path);
	CHECK_EQ(state_quarantine(path, moved1, sizeof(moved1)), -ENOENT);

	write_bytes(path, "one", 3);
	CHECK_EQ(state_quarantine(path, moved1, sizeof(moved1)), 0);
	CHECK(!exists(path));
	CHECK(exists(moved1));
	CHECK(strncmp(moved1, prefix, strlen(prefix)) == 0);
	CHECK(strtoll(moved1 + strlen(prefix), NULL, 10) >= (long long)time(NULL) - 5);

	write_bytes(path, "two", 3);
	CHECK_EQ(state_quarantine(path, moved2, sizeof(moved2)), 0);
	CHECK(!exists(path));
	CHECK(exists(moved1));
	CHECK(exists(moved2));
	CHECK(strcmp(moved1, moved2) != 0);
	buf = read_all(moved1, &len);
	CHECK(len == 3 && memcmp(buf, "one", 3) == 0);
	free(buf);
	buf = read_all(moved2, &len);
	CHECK(len == 3 && memcmp(buf, "two", 3) == 0);
	free(buf);

	/* Names already taken for this second and the next are never overwritten. */
	now = time(NULL);
	for (int i = 0; i < 2; i++) {
		snprintf(taken[i], sizeof(taken[i]), "%s%lld", prefix, (long long)now + i);
		if (!exists(taken[i]))
			write_bytes(taken[i], "old", 3);
	}
	write_bytes(path, "three", 5);
	CHECK_EQ(state_quarantine(path, moved3, sizeof(moved3)), 0);
	CHECK(exists(moved3));
	CHECK(strcmp(moved3, taken[0]) != 0 && strcmp(moved3, taken[1]) != 0);
	CHECK(strncmp(moved3, prefix, strlen(prefix)) == 0);
	buf = read_all(moved3, &len);
	CHECK(len == 5 && memcmp(buf, "three", 5) == 0);
	free(buf);

	/* No room for the new name: nothing is moved. */
	write_bytes(path, "four", 4);
	CHECK_EQ(state_quarantine(path, tiny, sizeof(tiny)), -ENAMETOOLONG);
	CHECK(exists(path));
	unlink(path);
}

static struct state_change change(enum state_op op, const char *client, uint8_t protocol, uint16_t iport,
				  uint16_t eport, int64_t expires)
{
	struct state_change c = { .op = op };

	inet_pton(AF_INET, client, &c.m.client);
	c.m.protocol = protocol;
	c.m.internal_port = iport;
	c.m.external_port = eport;
	c.m.lifetime = 3600;
	c.m.expires = expires;
	return c;
}

static const struct state_mapping *find(const struct state *st, uint8_t protocol, uint16_t iport)
{
	for (size_t i = 0; i < st->n_mappings; i++)
		if (st->mappings[i].protocol == protocol && st->mappings[i].internal_port == iport)
			return &st->mappings[i];
	return NULL;
}

static void test_journal(void)
{
	char jpath[160], err[256];
	struct state snap = { .epoch_start = 100, .generation = 5, .n_mappings = 2, .mappings = sample };
	struct state st;
	struct state_change c[] = {
		change(STATE_PUT, "10.0.0.1", IPPROTO_TCP, 1000, 41000, 5000), /* new */
		change(STATE_PUT, "192.168.1.10", IPPROTO_TCP, 51413, 51413, 9999), /* renews sample[0] */
		change(STATE_DEL, "10.0.0.9", IPPROTO_UDP, 7, 7, 0),                /* nothing to delete */
		change(STATE_DEL, "10.0.0.1", IPPROTO_TCP, 1000, 41000, 5000),      /* deletes the new one */
		change(STATE_PUT, "10.0.0.1", IPPROTO_TCP, 1000, 42000, 6000),      /* and puts it back */
	};
	size_t applied, len;
	off_t end, start;
	int fd;

	snprintf(jpath, sizeof(jpath), "%s/%s", dir, STATE_JOURNAL_NAME);
	CHECK_EQ(state_save(path, &snap, NULL), 0);
	/* No journal: the snapshot as it is. */
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(st.generation, 5);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	CHECK_EQ(applied, 0);
	CHECK_EQ(st.n_mappings, 2);
	state_free(&st);

	c[4].m.upstream_port = 61000;
	CHECK_EQ(state_journal_start(jpath, 5, &fd, &end), 0);
	start = end;
	CHECK(end > 0);
	CHECK_EQ(state_journal_append(fd, &end, c, 3), 0);
	CHECK(end > start);
	CHECK_EQ(state_journal_append(fd, &end, c + 3, 2), 0);
	CHECK_EQ(lseek(fd, 0, SEEK_END), end);
	close(fd);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	CHECK_EQ(applied, 5);
	CHECK_EQ(st.n_mappings, 3);
	CHECK(find(&st, IPPROTO_TCP, 51413) && find(&st, IPPROTO_TCP, 51413)->expires == 9999);
	CHECK(find(&st, IPPROTO_TCP, 1000) && find(&st, IPPROTO_TCP, 1000)->external_port == 42000);
	CHECK(find(&st, IPPROTO_TCP, 1000) && find(&st, IPPROTO_TCP, 1000)->upstream_port == 61000);
	state_free(&st);

	/* A journal of another generation (a crash during compaction) is ignored. */
	snap.generation = 6;
	CHECK_EQ(state_save(path, &snap, NULL), 0);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	CHECK_EQ(applied, 0);
	CHECK_EQ(st.n_mappings, 2);
	state_free(&st);

	/* A last line cut short by a crash is dropped; everything before it counts. */
	snap.generation = 5;
	CHECK_EQ(state_save(path, &snap, NULL), 0);
	char *text = read_all(jpath, &len);
	CHECK(text != NULL);
	for (size_t cut = 1; text && cut < 40; cut += 7) {
		write_bytes(jpath, text, len - cut);
		CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
		CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
		CHECK_EQ(applied, 4);
		CHECK(find(&st, IPPROTO_TCP, 1000) == NULL);
		state_free(&st);
	}
	/* Damage in the middle is reported, with what came before it applied. */
	if (text) {
		char *second = strchr(strchr(text, '\n') + 1, '\n') + 1;
		memcpy(second, "{garbage", 8);
		write_bytes(jpath, text, len);
	}
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), -EBADMSG);
	CHECK(strstr(err, "journal line 3") != NULL);
	CHECK_EQ(applied, 1);
	state_free(&st);
	free(text);
	/* Appending refuses what the loader would reject, and writes nothing. */
	CHECK_EQ(state_journal_start(jpath, 5, &fd, &end), 0);
	start = end;
	struct state_change bad = change(STATE_PUT, "10.0.0.1", 0, 1, 1, 1);
	CHECK_EQ(state_journal_append(fd, &end, &bad, 1), -EINVAL);
	CHECK_EQ(end, start);
	CHECK_EQ(lseek(fd, 0, SEEK_END), start);
	/* A cut takes back what was appended since. */
	CHECK_EQ(state_journal_append(fd, &end, c, 2), 0);
	CHECK_EQ(state_journal_cut(fd, start), 0);
	CHECK_EQ(lseek(fd, 0, SEEK_END), start);
	close(fd);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	CHECK_EQ(applied, 0);
	state_free(&st);
	/* Two objects run together on one line (a cut that fell after a '}', then an append): damage. */
	{
		char two[600];
		int n = snprintf(two, sizeof(two),
				 "{\"journal\": 1, \"generation\": 5}\n"
				 "{\"op\": \"put\", \"client\": \"10.0.0.1\", \"protocol\": \"tcp\", \"internal_port\": 1, "
				 "\"external_port\": 40001, \"lifetime\": 60, \"expires\": 100}"
				 "{\"op\": \"put\", \"client\": \"10.0.0.1\", \"protocol\": \"tcp\", \"internal_port\": 2, "
				 "\"external_port\": 40002, \"lifetime\": 60, \"expires\": 100}\n");
		write_bytes(jpath, two, (size_t)n);
		CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
		CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), -EBADMSG);
		CHECK(strstr(err, "journal line 2: not exactly one JSON object") != NULL);
		CHECK_EQ(applied, 0);
		state_free(&st);
		/* The header too. */
		{ const char *h = "{\"journal\": 1, \"generation\": 5} x\n"; write_bytes(jpath, h, strlen(h)); }
		CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
		CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), -EBADMSG);
		state_free(&st);
	}
	/* A journal whose fd cannot be written: the append fails and leaves the length as it was. */
	CHECK_EQ(state_journal_start(jpath, 5, &fd, &end), 0);
	start = end;
	int ro = open(jpath, O_RDONLY | O_CLOEXEC);
	CHECK(ro >= 0);
	CHECK(state_journal_append(ro, &end, c, 1) < 0);
	CHECK_EQ(end, -1); /* nor could it be cut back through that descriptor: never append to it again */
	CHECK_EQ(state_journal_append(ro, &end, c, 1), -EINVAL);
	close(ro);
	close(fd);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	CHECK_EQ(applied, 0);
	state_free(&st);
	unlink(jpath);
	unlink(path);
}

/* 60,000 saved mappings and 60,000 journal lines: what a restart replays at worst. */
static void test_journal_scale(void)
{
	enum { N = 60000 };
	char jpath[160], err[256];
	struct state snap = { .generation = 1, .n_mappings = N };
	struct state_change *c = calloc(N, sizeof(*c));
	struct state st;
	struct timespec t0, t1;
	size_t applied;
	int fd;

	snap.mappings = calloc(N, sizeof(*snap.mappings));
	CHECK(c && snap.mappings);
	if (!c || !snap.mappings)
		return;
	for (uint32_t i = 0; i < N; i++) {
		snap.mappings[i] = (struct state_mapping){ htonl(0x0a000000 + i / 1000), IPPROTO_TCP,
							   (uint16_t)(1024 + i % 1000), (uint16_t)(1024 + i % 60000),
							   3600, 1000, 0, 0, 0, { 0 }, false, { 0 } };
		c[i].op = i % 3 ? STATE_PUT : STATE_DEL;
		c[i].m = snap.mappings[i];
		c[i].m.expires = 2000;
	}
	snprintf(jpath, sizeof(jpath), "%s/%s", dir, STATE_JOURNAL_NAME);
	CHECK_EQ(state_save(path, &snap, NULL), 0);
	off_t end;
	CHECK_EQ(state_journal_start(jpath, 1, &fd, &end), 0);
	CHECK_EQ(state_journal_append(fd, &end, c, N), 0);
	close(fd);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(state_load(path, &st, err, sizeof(err)), 0);
	CHECK_EQ(state_journal_replay(jpath, &st, &applied, err, sizeof(err)), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK_EQ(applied, N);
	CHECK_EQ(st.n_mappings, N - N / 3);
	printf("unit-state: loaded 60,000 mappings and replayed 60,000 journal lines in %.0f ms\n",
	       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	state_free(&st);
	free(snap.mappings);
	free(c);
	unlink(jpath);
	unlink(path);
}

/* Every field of two mappings (not their padding). */
static bool same_mapping(const struct state_mapping *x, const struct state_mapping *y)
{
	return x->client == y->client && x->protocol == y->protocol && x->internal_port == y->internal_port &&
	       x->external_port == y->external_port && x->lifetime == y->lifetime && x->expires == y->expires &&
	       x->origin == y->origin && x->upstream_port == y->upstream_port && x->expires_boot == y->expires_boot &&
	       memcmp(x->nonce, y->nonce, sizeof(x->nonce)) == 0 && x->ipv6 == y->ipv6 &&
	       memcmp(x->client6, y->client6, sizeof(x->client6)) == 0;
}

/* Two readings agree on everything a state holds. */
static void expect_identical(const struct state *a, const struct state *b)
{
	CHECK(a->epoch_start == b->epoch_start && a->epoch_start_boot == b->epoch_start_boot &&
	      a->generation == b->generation && strcmp(a->boot_id, b->boot_id) == 0);
	CHECK_EQ(a->n_mappings, b->n_mappings);
	for (size_t i = 0; i < a->n_mappings && i < b->n_mappings; i++)
		CHECK(same_mapping(&a->mappings[i], &b->mappings[i]));
}

/*
 * A restart reads the daemon's own snapshot without json-c's tree
 * (state_fast.c): what state_format() writes must be that shape, or every
 * restart pays json-c's 200 ms again without a word.  Files of another
 * shape (edited by hand, or damaged) are json-c's, with the same values
 * or the same error.
 */
static void test_own_shape(void)
{
	struct state_mapping m[4] = {
		{ .client = inet_addr("192.168.77.10"), .protocol = TCP, .internal_port = 2000, .external_port = 41000,
		  .lifetime = 3600, .expires = 1795003600, .expires_boot = 3612 },
		{ .client = inet_addr("192.168.77.11"), .protocol = UDP, .internal_port = 51413, .external_port = 51413,
		  .lifetime = 4294967295u, .expires = INT64_MAX, .origin = STATE_ORIGIN_HTTP, .upstream_port = 40001 },
		{ .protocol = TCP, .internal_port = 8080, .external_port = 8080, .lifetime = 120,
		  .origin = STATE_ORIGIN_PCP, .nonce = { 0, 0x11, 0xff, 3, 4, 5, 6, 7, 8, 9, 0xab, 0xcd }, .ipv6 = true,
		  .client6 = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x77, [15] = 2 } },
		{ .client = inet_addr("10.0.0.1"), .protocol = UDP, .internal_port = 1, .external_port = 65535 },
	};
	struct state in = { .epoch_start = 1795000000, .epoch_start_boot = 12, .generation = 9, .n_mappings = 4,
			    .mappings = m },
		     fast, tree;
	static const char *const others[] = {
		/* Valid JSON of other shapes: json-c's reader takes them. */
		"{\"version\": 1, \"epoch_start\": 5, \"mappings\": []}",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": []}\r\n",
		"{\"version\":1,\"epoch_start\":5,\"generation\":2,\"mappings\":[{\"client\":\"10.0.0.1\",\"protocol\":\"tcp\","
		"\"internal_port\":80,\"external_port\":8080,\"lifetime\":60,\"expires\":70}]}",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"\\u0031\\u0030.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70, "
		"\"origin\": \"natpmp\"}\n]}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"protocol\": \"udp\", "
		"\"client\": \"10.0.0.1\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70}\n]}\n  ",
		/* The daemon's shape, damaged: json-c's reader words the error. */
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.256\", "
		"\"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70}\n]}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 080, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70}\n]}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 65536, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70}\n]}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 9223372036854775808}\n]}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70, "
		"\"origin\": \"pcp\", \"nonce\": \"0011\"}\n]}\n",
		"{\"version\": 2, \"epoch_start\": 5, \"generation\": 2, \"mappings\": []}\n",
		"{\"version\": 1, \"epoch_start\": 5, \"generation\": 2, \"mappings\": [\n  {\"client\": \"10.0.0.1\", "
		"\"protocol\": \"tcp\", \"internal_port\": 80, \"external_port\": 8080, \"lifetime\": 60, \"expires\": 70}\n]}\n{}",
	};
	char err[256], err2[256], *text;
	size_t len;

	strcpy(in.boot_id, "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0");
	CHECK_EQ(state_format(&in, &text, &len), 0);
	CHECK_EQ(state_fast_snapshot(text, len, &fast), 1);
	CHECK_EQ(state_parse_json(text, len, &tree, err, sizeof(err)), 0);
	expect_identical(&fast, &tree);
	expect_identical(&fast, &in);
	state_free(&fast);
	state_free(&tree);
	free(text);

	/* The journal's lines too: each one the writer wrote is read directly, to json-c's values. */
	char jpath[160], *buf = NULL;
	struct state_change changes[4];
	off_t end;
	int fd;

	for (size_t i = 0; i < 4; i++)
		changes[i] = (struct state_change){ .op = i % 2 ? STATE_DEL : STATE_PUT, .m = m[i] };
	snprintf(jpath, sizeof(jpath), "%s/%s", dir, STATE_JOURNAL_NAME);
	CHECK_EQ(state_journal_start(jpath, 9, &fd, &end), 0);
	CHECK_EQ(state_journal_append(fd, &end, changes, 4), 0);
	close(fd);
	FILE *f = fopen(jpath, "r");
	size_t cap = 0, lines = 0;
	ssize_t got;

	CHECK(f != NULL);
	while (f && (got = getline(&buf, &cap, f)) > 0) {
		struct state_change a, b;

		buf[--got] = '\0';
		if (lines++ == 0)
			continue; /* the header */
		CHECK_EQ(state_fast_change(buf, (size_t)got, &a), 1);
		CHECK_EQ(state_journal_line_json(buf, (size_t)got, &b), 0);
		CHECK(a.op == b.op && a.op == changes[lines - 2].op);
		CHECK(same_mapping(&a.m, &b.m) && same_mapping(&a.m, &changes[lines - 2].m));
	}
	CHECK_EQ(lines, 5);
	if (f)
		fclose(f);
	free(buf);
	unlink(jpath);

	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		size_t n = strlen(others[i]);
		int rc = state_parse(others[i], n, &fast, err, sizeof(err));

		CHECK_EQ(state_fast_snapshot(others[i], n, &tree), 0);
		CHECK_EQ(state_parse_json(others[i], n, &tree, err2, sizeof(err2)), rc);
		CHECK(strcmp(err, err2) == 0);
		CHECK_EQ(rc, i < 5 ? 0 : -EBADMSG);
		expect_identical(&fast, &tree);
		state_free(&fast);
		state_free(&tree);
	}
}

int main(void)
{
	strcpy(dir, "/tmp/natpmp-test-state.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, STATE_FILE_NAME);
	test_round_trip();
	test_save_replaces();
	unlink(path);
	test_save_errors();
	test_missing();
	test_truncated();
	test_bad_fields();
	test_not_json();
	test_size_limit();
	test_scale();
	test_own_shape();
	test_quarantine();
	test_journal();
	test_journal_scale();
	remove_tree(dir);
	CHECK(!exists(dir));
	return check_exit();
}
