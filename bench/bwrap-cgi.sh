#!/bin/sh
# The alternative an operator would otherwise pick: python3 -I -S inside
# bubblewrap, with every namespace new (no network), only /usr read-only,
# and a memory limit (address space, as pyexec's memory_mb: 512 MB).
dir=$(dirname "$0")
ulimit -v 524288
exec /usr/bin/bwrap --unshare-all --die-with-parent --new-session \
	--ro-bind /usr /usr --symlink usr/lib /lib --symlink usr/lib64 /lib64 \
	--symlink usr/bin /bin --proc /proc --dev /dev --tmpfs /tmp \
	--ro-bind "$dir/cgi_runner.py" /runner.py \
	--clearenv --setenv CONTENT_LENGTH "${CONTENT_LENGTH:-0}" \
	/usr/bin/python3 -I -S /runner.py
