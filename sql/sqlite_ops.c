/* SPDX-License-Identifier: MIT */
/* sqlite_ops.c: the SQLite backend's table of operations (backend.h). */
#include "store_int.h"

#define SQ_ENTRY(name, params, args) .name = sq_##name,

const struct store_ops store_sqlite_ops = {
	.name = "SQLite",
	.open = sq_open,
	.close = sq_close,
	.reuse = sq_reuse,
	.idle = sq_idle,
	.schema_version = store_schema_version,
	STORE_OPS(SQ_ENTRY)
};
