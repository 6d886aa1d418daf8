// client.mjs: the official MCP TypeScript SDK as a client of pyexec, for
// tests/test_mcp_sdk.py. Connects over Streamable HTTP (a URL) or stdio (a
// command), lists the tools and calls execute-python-code with each
// program of the JSON array in the PYEXEC_MCP_CALLS environment variable;
// prints one JSON object: {server, tools, results}.
//
//   node client.mjs http URL
//   node client.mjs stdio COMMAND
// PYEXEC_MCP_BEARER: a token sent as "Authorization: Bearer" (http only).
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";

const [mode, target] = process.argv.slice(2);
const calls = JSON.parse(process.env.PYEXEC_MCP_CALLS || "[]");

function transport() {
  if (mode === "http") {
    const bearer = process.env.PYEXEC_MCP_BEARER;
    const headers = bearer ? { Authorization: `Bearer ${bearer}` } : {};
    return new StreamableHTTPClientTransport(new URL(target), { requestInit: { headers } });
  }
  if (mode === "stdio") {
    const env = {};
    for (const k of ["PATH", "PYEXEC_DB", "PYEXEC_TOKEN", "PYEXEC_TIMEOUT_MS", "PYEXEC_MEMORY_MB"]) {
      if (process.env[k] !== undefined) env[k] = process.env[k];
    }
    return new StdioClientTransport({ command: target, args: [], env, stderr: "inherit" });
  }
  throw new Error(`unknown mode ${mode}`);
}

const client = new Client({ name: "pyexec-tests", version: "1.0.0" });
await client.connect(transport());
const tools = await client.listTools();
const results = [];
for (const args of calls) {
  results.push(await client.callTool({ name: "execute-python-code", arguments: args }));
}
const out = {
  server: client.getServerVersion(),
  protocol: client.transport?.protocolVersion ?? null,
  instructions: client.getInstructions(),
  tools: tools.tools,
  results,
};
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
