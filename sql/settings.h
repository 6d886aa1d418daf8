/* SPDX-License-Identifier: MIT */
/*
 * settings.h: the operator's settings, as a table: name, unit, default,
 * bounds. The database's settings table holds only the values an operator
 * changed; everything else takes the default here. Values are validated
 * when written and again when read.
 */
#ifndef PYEXEC_SETTINGS_H
#define PYEXEC_SETTINGS_H

#include <stddef.h>
#include <stdint.h>

enum audit_code { AUDIT_CODE_FULL, AUDIT_CODE_HASH, AUDIT_CODE_NONE };

#define SETTING_TEXT_MAX 512

struct settings {
	long timeout_ms, cpu_ms, memory_mb, output_bytes;
	long code_bytes, input_bytes, body_bytes, body_timeout_ms;
	long max_timeout_ms, max_memory_mb;	/* ceilings for per-user limits */
	long default_quota, quota_window_s;
	int anonymous;				/* 1: allowed */
	enum audit_code audit_code;
	long audit_code_max_bytes, audit_error_max_bytes;
	long max_concurrent, concurrency_wait_ms;
	long max_concurrent_per_identity;	/* 0: half of max_concurrent */
	long anon_ipv6_prefix;			/* bits grouping IPv6 clients */
	char trusted_proxies[1024];		/* a CIDR list, "" for none */
	double price_gb_s, price_invocation;
	char metrics_allow[1024];		/* a CIDR list, "": none */
	uint64_t modules;	/* allowed_modules: sandbox/profile.h's mask */
	char mcp_allowed_origins[SETTING_TEXT_MAX];	/* space separated */
};

enum setting_kind { SET_INT, SET_PRICE, SET_CHOICE, SET_PROFILE, SET_CIDR,
		    SET_TEXT };

struct setting_def {
	const char *key;
	enum setting_kind kind;
	const char *def;	/* default, as text */
	long min, max;		/* SET_INT */
	const char *choices;	/* SET_CHOICE: "a|b|c" */
				/* SET_CIDR: a list of addresses and CIDR
				 * blocks (cgi/cidr.h), max bytes at most */
	const char *help;
};

const struct setting_def *settings_table(size_t *n);
const struct setting_def *setting_find(const char *key);

/* Checks value for key; returns 0, or -1 with a message in err. */
int setting_validate(const struct setting_def *d, const char *value,
		     char *err, size_t errlen);

/* Parses a decimal (a leading '-' allowed) in [min, max]; 0 or -1. */
int setting_parse_int(const char *s, long min, long max, long *out);

/* The per-identity cap in force: the setting, or half of max_concurrent
 * (at least 1) for 0. */
long settings_identity_cap(const struct settings *s);

/* Fills s with the defaults. */
void settings_defaults(struct settings *s);

/* Applies one validated key/value to s; returns 0 or -1 (unknown key or
 * invalid value: the caller keeps the default). */
int settings_apply(struct settings *s, const char *key, const char *value);

#endif
