"""A FastCGI client (the responder role, one request per connection), as
a web server talks to pyexec-fcgi: the tests' way to give pyexec-fcgi the
very request they give pyexec.cgi. Returns what the responder wrote on
FCGI_STDOUT: CGI headers and the body, as pyexec.cgi writes them."""
import socket
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1
REQUEST_ID = 1
CHUNK = 65535


def _record(kind, content):
    pad = (8 - len(content) % 8) % 8
    return struct.pack(">BBHHBx", VERSION, kind, REQUEST_ID, len(content),
                       pad) + content + b"\0" * pad


def _records(kind, data):
    out = b"".join(_record(kind, data[i:i + CHUNK])
                   for i in range(0, len(data), CHUNK))
    return out + _record(kind, b"")


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def _params(env):
    out = b""
    for k, v in env.items():
        k, v = k.encode(), v.encode()
        out += _length(len(k)) + _length(len(v)) + k + v
    return out


def _read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("pyexec-fcgi closed the connection")
        buf += chunk
    return buf


def request(address, env, body, timeout=120):
    """Sends one request to address (a (host, port) pair or a socket path);
    returns (stdout bytes, stderr bytes, app status)."""
    family = socket.AF_UNIX if isinstance(address, str) else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(address)
        s.sendall(_record(BEGIN_REQUEST, struct.pack(">HB5x", RESPONDER, 0))
                  + _records(PARAMS, _params(env)) + _records(STDIN, body))
        out, err = [], []
        while True:
            head = _read_exact(s, 8)
            _, kind, _, length, pad = struct.unpack(">BBHHBx", head)
            content = _read_exact(s, length + pad)[:length]
            if kind == STDOUT:
                out.append(content)
            elif kind == STDERR:
                err.append(content)
            elif kind == END_REQUEST:
                return b"".join(out), b"".join(err), \
                    struct.unpack(">I", content[:4])[0]
