/* SPDX-License-Identifier: MIT */
/* cmd_logs.c: placeholder until the command is written. */
#include "admin.h"
#include "../cgi/banned.h"

int cmd_logs(int argc, char **argv, struct admin_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return error("not implemented yet");
}

int cmd_logs_show(int argc, char **argv, struct admin_ctx *ctx)
{
	(void)argc;
	(void)argv;
	(void)ctx;
	return error("not implemented yet");
}
