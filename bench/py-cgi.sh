#!/bin/sh
# The unsandboxed baseline: the same runner under python3 -I -S, nothing else.
exec /usr/bin/python3 -I -S "$(dirname "$0")/cgi_runner.py"
