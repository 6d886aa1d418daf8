/* SPDX-License-Identifier: MIT */
/* settings.c: the settings table, validation and defaults (settings.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "settings.h"
#include "../cgi/cidr.h"
#include "../cgi/limits.h"
#include "../sandbox/profile.h"
#include "../cgi/banned.h"

#define S(x) #x
#define STR(x) S(x)

static const struct setting_def table[] = {
	{ "timeout_ms", SET_INT, STR(DEFAULT_TIMEOUT_MS), 100, MAX_TIMEOUT_MS,
	  NULL, "wall clock of a run" },
	{ "cpu_ms", SET_INT, "0", 0, MAX_TIMEOUT_MS, NULL,
	  "CPU time of a run (0: the same as timeout_ms)" },
	{ "memory_mb", SET_INT, STR(DEFAULT_MEMORY_MB), 32, MAX_MEMORY_MB,
	  NULL, "address space of a run" },
	{ "output_bytes", SET_INT, "1048576", 1,
	  MAX_OUTPUT_BYTES, NULL, "stdout + stderr kept; past it the run stops" },
	{ "code_bytes", SET_INT, "65536", 1, MAX_CODE_BYTES,
	  NULL, "largest accepted code" },
	{ "input_bytes", SET_INT, "262144", 2, MAX_INPUT_BYTES,
	  NULL, "largest input_data, in bytes as sent" },
	{ "body_bytes", SET_INT, "1048576", 16, MAX_BODY_BYTES,
	  NULL, "largest request body" },
	{ "body_timeout_ms", SET_INT, STR(BODY_READ_TIMEOUT_MS), 100, 600000,
	  NULL, "time a client has to send the body it announced" },
	{ "max_timeout_ms", SET_INT, "300000", 100, MAX_TIMEOUT_MS, NULL,
	  "ceiling of any user's own timeout" },
	{ "max_memory_mb", SET_INT, "4096", 32, MAX_MEMORY_MB, NULL,
	  "ceiling of any user's own memory" },
	{ "default_quota", SET_INT, "10", -1, 1000000000, NULL,
	  "runs per window for users without their own (-1: unlimited)" },
	{ "quota_window_s", SET_INT, "3600", 1, 366L * 86400, NULL,
	  "the sliding window of the quota" },
	{ "anonymous", SET_CHOICE, "allow", 0, 0, "allow|deny",
	  "requests without a token: allowed under the default quota, per "
	  "client address, or refused with 401" },
	{ "audit_code", SET_CHOICE, "full", 0, 0, "full|hash|none",
	  "what the audit log keeps of the code (the hash is always kept)" },
	{ "audit_code_max_bytes", SET_INT, "65536", 0, MAX_CODE_BYTES, NULL,
	  "code kept in the audit log, at most" },
	{ "audit_error_max_bytes", SET_INT, "4096", 0, 1 << 20, NULL,
	  "error message kept in the audit log, at most" },
	{ "max_concurrent", SET_INT, "0", 0, 4096, NULL,
	  "sandboxes running at once on this host (0: twice the cores)" },
	{ "concurrency_wait_ms", SET_INT, "5000", 0, 600000, NULL,
	  "how long a request waits for a free sandbox before 503" },
	{ "max_concurrent_per_identity", SET_INT, "0", 0, 4096, NULL,
	  "sandboxes one identity may hold at once (0: half of "
	  "max_concurrent, at least 1)" },
	{ "anon_ipv6_prefix", SET_INT, "64", 32, 128, NULL,
	  "anonymous IPv6 clients are one identity per network of this "
	  "many bits" },
	{ "trusted_proxies", SET_CIDR, "", 0, 1023, NULL,
	  "reverse proxies (addresses, CIDR blocks, comma-separated) whose "
	  "Forwarded / X-Forwarded-For names the client; empty: none" },
	{ "price_gb_s", SET_PRICE, "0.0000025", 0, 0, NULL,
	  "price of one GB-second, for cost estimates" },
	{ "price_invocation", SET_PRICE, "0.0000004", 0, 0, NULL,
	  "price of one invocation, for cost estimates" },
	{ "allowed_modules", SET_PROFILE, "seed", 0, 0, NULL,
	  "modules a program may import: seed (the reference service's ten), "
	  "compute, or vetted names separated by commas" },
	{ "mcp_allowed_origins", SET_TEXT, "", 0, 0, NULL,
	  "browser origins allowed at /mcp, space separated (none: any "
	  "request with an Origin header is refused)" },
	{ "metrics_allow", SET_CIDR, "", 0, 1023, NULL,
	  "client addresses (addresses, CIDR blocks, comma-separated) that "
	  "may read /metrics without an admin's token; empty: none" },
};
#define NSETTINGS (sizeof(table) / sizeof(table[0]))

const struct setting_def *settings_table(size_t *n)
{
	*n = NSETTINGS;
	return table;
}

const struct setting_def *setting_find(const char *key)
{
	for (size_t i = 0; i < NSETTINGS; i++)
		if (strcmp(table[i].key, key) == 0)
			return &table[i];
	return NULL;
}

int setting_parse_int(const char *s, long min, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_price(const char *s, double *out)
{
	char *end;
	double v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0 && v < 1e6))
		return -1;
	*out = v;
	return 0;
}

static int choice_index(const char *choices, const char *v)
{
	size_t vl = strlen(v);
	int i = 0;

	for (const char *p = choices; *p; i++) {
		const char *bar = strchr(p, '|');
		size_t n = bar ? (size_t)(bar - p) : strlen(p);
		if (n == vl && memcmp(p, v, n) == 0)
			return i;
		p += n + (bar != NULL);
	}
	return -1;
}

static int cidr_setting(const struct setting_def *d, const char *value,
			char *err, size_t errlen);
static int text_ok(const char *v)
{
	size_t n = 0;

	for (; v[n]; n++)
		if ((unsigned char)v[n] < 0x20 || (unsigned char)v[n] > 0x7e)
			return 0;
	return n < SETTING_TEXT_MAX;
}

int setting_validate(const struct setting_def *d, const char *value,
		     char *err, size_t errlen)
{
	long l;
	double p;
	uint64_t m;

	switch (d->kind) {
	case SET_INT:
		if (setting_parse_int(value, d->min, d->max, &l) == 0)
			return 0;
		snprintf(err, errlen, "%s must be an integer from %ld to %ld",
			 d->key, d->min, d->max);
		return -1;
	case SET_PRICE:
		if (parse_price(value, &p) == 0)
			return 0;
		snprintf(err, errlen, "%s must be a non-negative number "
			 "(a price in your currency)", d->key);
		return -1;
	case SET_TEXT:
		if (text_ok(value))
			return 0;
		snprintf(err, errlen, "%s must be at most %d printable ASCII "
			 "characters", d->key, SETTING_TEXT_MAX - 1);
		return -1;
	case SET_CHOICE:
		if (choice_index(d->choices, value) >= 0)
			return 0;
		snprintf(err, errlen, "%s must be one of %s", d->key, d->choices);
		return -1;
	case SET_PROFILE:
		return profile_parse(value, &m, err, errlen);
	case SET_CIDR:
		return cidr_setting(d, value, err, errlen);
	}
	return -1;
}

static int cidr_setting(const struct setting_def *d, const char *value,
			char *err, size_t errlen)
{
	char why[160];

	if (value && strnlen(value, (size_t)d->max + 1) > (size_t)d->max) {
		snprintf(err, errlen, "%s must be at most %ld bytes", d->key,
			 d->max);
		return -1;
	}
	if (value && cidr_list_check(value, why, sizeof(why)) == 0)
		return 0;
	snprintf(err, errlen, "%s must be a comma-separated list of addresses "
		 "and CIDR blocks: %s", d->key, value ? why : "none given");
	return -1;
}

static long ncores(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? n : 1;
}

long settings_identity_cap(const struct settings *s)
{
	long half = s->max_concurrent / 2;

	if (s->max_concurrent_per_identity > 0)
		return s->max_concurrent_per_identity;
	return half > 0 ? half : 1;
}

void settings_defaults(struct settings *s)
{
	memset(s, 0, sizeof(*s));
	for (size_t i = 0; i < NSETTINGS; i++)
		settings_apply(s, table[i].key, table[i].def);
}

int settings_apply(struct settings *s, const char *key, const char *value)
{
	const struct setting_def *d = setting_find(key);
	char err[128];
	long l = 0;
	double p = 0;

	if (!d || setting_validate(d, value, err, sizeof(err)) != 0)
		return -1;
	if (d->kind == SET_INT)
		setting_parse_int(value, d->min, d->max, &l);
	else if (d->kind == SET_PRICE)
		parse_price(value, &p);
#define INT(name) if (strcmp(key, #name) == 0) { s->name = l; return 0; }
	INT(timeout_ms) INT(memory_mb) INT(output_bytes)
	INT(code_bytes) INT(input_bytes) INT(body_bytes) INT(body_timeout_ms)
	INT(max_timeout_ms)
	INT(max_memory_mb) INT(default_quota) INT(quota_window_s)
	INT(audit_code_max_bytes) INT(audit_error_max_bytes)
	INT(concurrency_wait_ms) INT(max_concurrent_per_identity)
	INT(anon_ipv6_prefix)
#undef INT
	if (strcmp(key, "cpu_ms") == 0) {
		s->cpu_ms = l;
	} else if (strcmp(key, "max_concurrent") == 0) {
		s->max_concurrent = l ? l : 2 * ncores();
	} else if (strcmp(key, "anonymous") == 0) {
		s->anonymous = choice_index(d->choices, value) == 0;
	} else if (strcmp(key, "audit_code") == 0) {
		s->audit_code = (enum audit_code)choice_index(d->choices, value);
	} else if (strcmp(key, "trusted_proxies") == 0) {
		snprintf(s->trusted_proxies, sizeof(s->trusted_proxies), "%s",
			 value);
	} else if (strcmp(key, "price_gb_s") == 0) {
		s->price_gb_s = p;
	} else if (strcmp(key, "price_invocation") == 0) {
		s->price_invocation = p;
	} else if (d->kind == SET_PROFILE) {
		profile_parse(value, &s->modules, err, sizeof(err));
	} else if (strcmp(key, "mcp_allowed_origins") == 0) {
		snprintf(s->mcp_allowed_origins, sizeof(s->mcp_allowed_origins),
			 "%s", value);
	} else if (strcmp(key, "metrics_allow") == 0) {
		snprintf(s->metrics_allow, sizeof(s->metrics_allow), "%s", value);
	}
	return 0;
}
