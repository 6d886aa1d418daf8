/* SPDX-License-Identifier: MIT */
/* mcp_tool.h: the MCP answers: initialize, tools/list and the results. */
#ifndef PYEXEC_MCP_TOOL_H
#define PYEXEC_MCP_TOOL_H

#include "mcp.h"

/* A JSON-RPC result whose text is result (a JSON value), 200. */
void mcp_answer_raw(const struct mcp *m, const char *result,
		    const struct reply *r);
void mcp_answer_initialize(const struct mcp *m, const char *version,
			   const struct settings *cfg, const struct reply *r);
void mcp_answer_tools(const struct mcp *m, const struct settings *cfg,
		      const struct reply *r);

#endif
