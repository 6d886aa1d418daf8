/* SPDX-License-Identifier: MIT */
/* cmd_stats.c: placeholder until the command is written. */
#include "admin.h"
#include "../cgi/banned.h"

int cmd_stats(int argc, char **argv, struct admin_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return error("not implemented yet");
}
