/* SPDX-License-Identifier: MIT */
/*
 * unit.h: a minimal harness for the unit tests: CHECK macros that record
 * file:line on failure, and the one list of test functions (UNIT_TESTS)
 * from which test_main.c builds its table.
 */
#ifndef PYEXEC_UNIT_H
#define PYEXEC_UNIT_H

#include <stddef.h>

/* A string literal and its length, embedded NULs included. */
#define S(lit) (lit), (sizeof(lit) - 1)

/* A heap copy of exactly n bytes, so ASan sees any read past the end;
 * exits on allocation failure. The caller frees it. */
char *unit_exact(const void *s, size_t n);

/* Records one failed check of the running test and prints it. */
void unit_fail(const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define CHECK(cond)							\
	do {								\
		if (!(cond))						\
			unit_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
	} while (0)

/* CHECK with a printf-style message instead of the expression. */
#define CHECKF(cond, ...)						\
	do {								\
		if (!(cond))						\
			unit_fail(__FILE__, __LINE__, __VA_ARGS__);	\
	} while (0)

/* Integers compared as long long, both values printed on failure. */
#define CHECK_EQ(a, b)							\
	do {								\
		long long a_ = (long long)(a), b_ = (long long)(b);	\
		if (a_ != b_)						\
			unit_fail(__FILE__, __LINE__,			\
				  "CHECK_EQ(%s, %s): %lld != %lld",	\
				  #a, #b, a_, b_);			\
	} while (0)

/* NUL-terminated strings (either may be NULL). */
#define CHECK_STR(a, b)							\
	unit_check_str(__FILE__, __LINE__, #a, (a), (b))

/* haystack (may be NULL) contains needle. */
#define CHECK_CONTAINS(hay, needle)					\
	unit_check_contains(__FILE__, __LINE__, #hay, (hay), (needle))

void unit_check_str(const char *file, int line, const char *expr,
		    const char *got, const char *want);
void unit_check_contains(const char *file, int line, const char *expr,
			 const char *hay, const char *needle);

/* Every test function, in the order they run. A function defined but not
 * listed fails to compile (-Wmissing-prototypes), a listed one that is not
 * defined fails to link. */
#define UNIT_TESTS(X)							\
	/* test_cgi.c */						\
	X(utf8_seq_ascii)						\
	X(json_member_raw_text)						\
	X(mcp_error_codes)						\
	X(utf8_seq_multibyte)						\
	X(utf8_seq_overlong)						\
	X(utf8_seq_surrogate_and_range)					\
	X(utf8_seq_truncated)						\
	X(utf8_seq_stray_continuation)					\
	X(utf8_valid_strings)						\
	X(utf8_valid_exhaustive)					\
	X(jsonw_single_bytes)						\
	X(jsonw_special_strings)					\
	X(jsonw_invalid_utf8)						\
	X(jsonw_random_bytes)						\
	X(jsonw_random_valid_utf8)					\
	X(jsonw_members)						\
	X(jsonw_ms)							\
	X(jsonw_long)							\
	X(jsonscan_depth)						\
	X(jsonscan_strings)						\
	X(jsonscan_nul)							\
	X(jsonscan_syntax)						\
	X(jsonscan_stray)						\
	X(jsonscan_member_span)						\
	X(content_type)							\
	X(request_method)						\
	X(request_content_type)						\
	X(request_length)						\
	X(request_too_large_not_read)					\
	X(request_short_body)						\
	X(request_timeout)						\
	X(request_exact_read)						\
	X(request_discard)						\
	X(parse_long_cases)						\
	X(config_defaults)						\
	X(config_each_variable)						\
	X(config_overrides)						\
	X(config_out_of_range)						\
	X(job_refused_before_parse)					\
	X(job_invalid_json)						\
	X(job_trailing_data)						\
	X(job_root_not_object)						\
	X(job_fields)							\
	X(job_code)							\
	X(job_token)							\
	X(job_input)							\
	X(http_fail_fields)						\
	X(http_reason_names)						\
	X(cidr_check)							\
	X(cidr_match)							\
	X(client_address)						\
	X(client_group)							\
	X(settings_identity)						\
	/* test_sandbox.c */						\
	X(allowlist_exact)						\
	X(profile_parse)						\
	X(profile_refused)						\
	X(allowlist_compute)						\
	X(allowlist_codecs)						\
	X(allowlist_loaded)						\
	X(allowlist_preload_words)					\
	X(allowlist_preload_lazy_once)					\
	X(allowlist_preload_stops)					\
	X(rec_ready_then_final)						\
	X(rec_truncated)						\
	X(rec_bad_magic)						\
	X(rec_oversized_lengths)					\
	X(rec_last_final_wins)						\
	X(rec_write_roundtrip)						\
	X(rec_scan_resyncs)						\
	X(rec_scan_swallowing_header)					\
	X(rec_key)							\
	X(rec_scan_skips_foreign_records)				\
	X(handoff_carries_the_record_key)				\
	X(handoff_roundtrip)						\
	X(handoff_refused)						\
	X(handoff_damaged)						\
	/* test_sql.c */						\
	X(settings_defaults_valid)					\
	X(settings_documented)						\
	X(settings_validate)						\
	X(settings_apply)						\
	X(settings_apply_refused)					\
	X(store_schema_sections)					\
	X(store_open_new)						\
	X(store_open_schema_mismatch)					\
	X(store_open_ro)						\
	X(store_open_unwritable_dir)					\
	X(store_open_concurrent)					\
	X(store_open_migrated_meanwhile)				\
	X(store_open_wal_switch_waits)					\
	X(store_allocator_installed)					\
	X(store_default_path)						\
	X(store_settings)						\
	X(store_settings_invalid_rows)					\
	X(users_add_and_find)						\
	X(users_token_not_stored)					\
	X(users_names)							\
	X(users_quota)							\
	X(identity_users)						\
	X(runs_quota)							\
	X(runs_unlimited)						\
	X(runs_reset_and_window)					\
	X(runs_lowered_limit_reset)					\
	X(runs_finish)							\
	X(runs_reject)							\
	X(runs_audit_code)						\
	X(text_clean)							\
	X(text_keep)							\
	X(runs_busy)							\
	X(runs_view_abandoned)						\
	X(digest_sha256)						\
	X(digest_tokens)						\
	X(slots)

#define UNIT_DECLARE(name) void test_##name(void);
UNIT_TESTS(UNIT_DECLARE)
#undef UNIT_DECLARE

#endif
