/* SPDX-License-Identifier: MIT */
/*
 * job.c: from request body to struct job. Order: UTF-8 of the whole body,
 * depth, \u0000 and stray bytes (jsonscan), syntax (cJSON with the exact
 * length), then the fields against the table, and where input_data's bytes
 * lie in the body.
 */
#include <stdlib.h>
#include <string.h>
#include "job.h"
#include "jsonscan.h"
#include "limits.h"
#include "utf8.h"
#include "banned.h"

enum ftype { F_STRING, F_ANY };

static const struct field {
	const char *name;
	enum ftype type;
	int required;
} fields[] = {
	{ "code", F_STRING, 1 },
	{ "input_data", F_ANY, 0 },
	{ "token", F_STRING, 0 },	/* the MCP tool's shape */
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static int check_fields(const cJSON *root, const cJSON *seen[NFIELDS],
			struct http_error *e)
{
	for (const cJSON *it = root->child; it; it = it->next) {
		size_t i;
		for (i = 0; i < NFIELDS; i++)
			if (strcmp(it->string, fields[i].name) == 0)
				break;
		if (i == NFIELDS)
			return http_fail(e, 400, "unknown field '%.64s' (expected "
					 "code, input_data, token)", it->string);
		if (seen[i])
			return http_fail(e, 400, "duplicate field '%s'",
					 fields[i].name);
		if (fields[i].type == F_STRING && !cJSON_IsString(it))
			return http_fail(e, 400, "field '%s' must be a string",
					 fields[i].name);
		seen[i] = it;
	}
	for (size_t i = 0; i < NFIELDS; i++)
		if (fields[i].required && !seen[i])
			return http_fail(e, 400, "field '%s' is required",
					 fields[i].name);
	return 0;
}

static size_t member_index(const cJSON *root, const cJSON *member)
{
	size_t k = 0;

	for (const cJSON *it = root->child; it && it != member; it = it->next)
		k++;
	return k;
}

/* input_data as received: its bytes are what the limit counts and what the
 * child decodes, nothing else of the body (not the token). */
static int check_input(struct job *j, const char *body, size_t len,
		       const cJSON *in, const struct settings *cfg,
		       struct http_error *e)
{
	size_t off = 0;

	j->input_empty = !in || (cJSON_IsObject(in) && !in->child);
	if (j->input_empty)
		return 0;
	if (json_member_span(body, len, member_index(j->root, in), &off,
			     &j->input_len) != 0)
		return http_fail(e, 400, "field 'input_data' could not be "
				 "located in the request body");
	j->input = body + off;
	if ((long)j->input_len > cfg->input_bytes)
		return http_fail(e, 400, "field 'input_data' is %zu bytes, "
				 "over the limit of %ld", j->input_len,
				 cfg->input_bytes);
	return 0;
}

int job_parse(struct job *j, const char *body, size_t len,
	      const struct settings *cfg, struct http_error *e)
{
	const cJSON *seen[NFIELDS] = { 0 };
	const char *end = NULL, *problem;

	memset(j, 0, sizeof(*j));
	if (!utf8_valid(body, len))
		return http_fail(e, 400, "request body is not valid UTF-8");
	if ((problem = json_scan_problem(json_scan(body, len,
						     JSON_MAX_DEPTH))) != NULL)
		return http_fail(e, 400, "%s", problem);
	j->root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
	if (!j->root)
		return http_fail(e, 400, "request body is not valid JSON");
	while (end < body + len && (*end == ' ' || *end == '\t' ||
				    *end == '\n' || *end == '\r'))
		end++;
	if (end != body + len)
		return http_fail(e, 400, "trailing data after the JSON object "
				 "(at byte %zu)", (size_t)(end - body));
	if (!cJSON_IsObject(j->root))
		return http_fail(e, 400, "request body must be a JSON object");
	if (check_fields(j->root, seen, e) != 0)
		return -1;
	j->code = seen[0]->valuestring;
	j->code_len = strlen(j->code);
	if (!utf8_valid(j->code, j->code_len))	/* escapes decode to bytes */
		return http_fail(e, 400, "field 'code' is not valid UTF-8");
	if ((long)j->code_len > cfg->code_bytes)
		return http_fail(e, 400, "field 'code' is %zu bytes, over the "
				 "limit of %ld", j->code_len, cfg->code_bytes);
	j->token = seen[2] ? seen[2]->valuestring : NULL;
	return check_input(j, body, len, seen[1], cfg, e);
}

void job_release(struct job *j)
{
	cJSON_Delete(j->root);
	memset(j, 0, sizeof(*j));
}
