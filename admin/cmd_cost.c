/* SPDX-License-Identifier: MIT */
/* cmd_cost.c: placeholder until the command is written. */
#include "admin.h"
#include "../cgi/banned.h"

int cmd_cost_estimate(int argc, char **argv, struct admin_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return error("not implemented yet");
}

int cmd_cost_report(int argc, char **argv, struct admin_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return error("not implemented yet");
}
