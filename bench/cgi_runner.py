# cgi_runner.py: the CGI an operator would write without pyexec, run by
# py-cgi.sh (no sandbox) and bwrap-cgi.sh (in bubblewrap) under
# `python3 -I -S`. Same contract as pyexec: a JSON body {"code": ...,
# "input_data": ...} in, {"success", "output", "error"} out.
import io
import json
import os
import sys
import traceback

body = sys.stdin.buffer.read(int(os.environ.get("CONTENT_LENGTH") or 0))
req = json.loads(body)
out = io.StringIO()
sys.stdout = sys.stderr = out
ok, err = True, None
try:
    exec(compile(req["code"], "<code>", "exec"),
         {"__name__": "__main__", "input_data": req.get("input_data", {})})
except BaseException:
    ok, err = False, traceback.format_exc()
sys.stdout = sys.__stdout__
answer = json.dumps({"success": ok, "output": out.getvalue(), "error": err})
sys.stdout.write("Status: 200 OK\r\nContent-Type: application/json\r\n"
                 "Content-Length: %d\r\n\r\n%s" % (len(answer.encode()), answer))
