#!/usr/bin/python3
"""rawpath_backend.py - a backend that routes on the raw request target, for
tests/integration/t_gate_paths.sh (loopback only).

It stands for the backends a gate in front of them must not misjudge: nginx
proxy_pass without a URI part, a PHP front controller routing on
REQUEST_URI, Apache with AllowEncodedSlashes NoDecode.  It serves its admin
area when ANY way of reading the raw path lands under /admin: as sent,
%-decoded once or twice, '\\' taken as '/', ";..." path parameters cut off,
empty segments merged, dot segments resolved, in any order.  So a request
the gate let through without an admin token must never get "area":"admin".

  rawpath_backend.py serve PORTFILE
      HTTP on 127.0.0.1, an ephemeral port written to PORTFILE; answers
      every GET with JSON {"area", "raw_hex", "uri_hex", "role"}: uri_hex is
      the X-Nginx-Uri request header (nginx's $uri), role X-Auth-Role.
  rawpath_backend.py  (with GATEWAY_INTERFACE set)
      the same answer as a CGI program (REQUEST_URI, HTTP_X_AUTH_ROLE).
  rawpath_backend.py table HOST PORT TARGETS IDPREFIX [HEADER...]
      sends each line of the file TARGETS (bytes, sent as is) as
      "GET <target> HTTP/1.1" with the given "Name: value" headers and an
      X-Request-ID of "IDPREFIX-<line number>", one connection each; prints one line
      per target: status, area ("-" when the backend did not answer),
      uri_hex, request id, the target with non-printable bytes as \\xNN.
  rawpath_backend.py differential TABLE GATELOG
      for every row of a table's output that the backend answered (the gate
      let it through): the gate's path (its gate.decision log line with that
      request id) must equal nginx's $uri.  Prints "same|differ|nolog TARGET
      GATE NGINX" per row.
"""
import json
import os
import re
import socket
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROTECTED = b"/admin"


def remove_dots(p):
    """RFC 3986 remove_dot_segments on an absolute path."""
    if not p.startswith(b"/"):
        return p
    parts = p.split(b"/")[1:]
    out = []
    for i, s in enumerate(parts):
        last = i == len(parts) - 1
        if s in (b".", b".."):
            if s == b".." and out:
                out.pop()
            if last:
                out.append(b"")
        else:
            out.append(s)
    return b"/" + b"/".join(out)


OPS = (
    urllib.parse.unquote_to_bytes,
    lambda p: p.replace(b"\\", b"/"),
    lambda p: b"/".join(s.split(b";")[0] for s in p.split(b"/")),
    lambda p: re.sub(b"/+", b"/", p),
    remove_dots,
)


def readings(raw):
    """Every path a backend may make of the raw path, in any order of OPS."""
    seen = {raw}
    todo = [raw]
    for _ in range(8):
        nxt = []
        for p in todo:
            for op in OPS:
                q = op(p)
                if q not in seen and len(seen) < 4096:
                    seen.add(q)
                    nxt.append(q)
        if not nxt:
            break
        todo = nxt
    return seen


def area(target):
    path = target.split(b"?", 1)[0]
    m = re.match(rb"(?i)https?://[^/]*", path)
    if m:
        path = path[m.end():] or b"/"
    for r in readings(path):
        if r == PROTECTED or r.startswith(PROTECTED + b"/"):
            return "admin"
    if path.startswith(b"/public/"):
        return "public"
    return "other"


def answer(target, nginx_uri, role):
    return json.dumps({"area": area(target), "raw_hex": target.hex(),
                       "uri_hex": nginx_uri.hex() if nginx_uri is not None else "",
                       "role": role or ""}).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        target = self.path.encode("latin-1")
        uri = self.headers.get("X-Nginx-Uri")
        body = answer(target, uri.encode("latin-1") if uri is not None else None,
                      self.headers.get("X-Auth-Role"))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def serve(portfile):
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, portfile)
    srv.serve_forever()


def cgi():
    target = os.environb.get(b"REQUEST_URI", b"")
    body = answer(target, None, os.environ.get("HTTP_X_AUTH_ROLE"))
    out = sys.stdout.buffer
    out.write(b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body))
    out.write(body)


def shown(b):
    return "".join(chr(c) if 0x21 <= c < 0x7f and c != 0x5c else "\\x%02x" % c for c in b)


def dechunk(b):
    out = b""
    while b:
        size, _, rest = b.partition(b"\r\n")
        try:
            n = int(size.split(b";")[0], 16)
        except ValueError:
            return b""
        if n == 0:
            break
        out += rest[:n]
        b = rest[n + 2:]
    return out


def fetch(host, port, target, headers):
    req = b"GET " + target + b" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    for h in headers:
        req += h.encode() + b"\r\n"
    req += b"\r\n"
    s = socket.create_connection((host, port), timeout=10)
    try:
        s.sendall(req)
        data = b""
        while len(data) < (1 << 20):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    status = m.group(1).decode() if m else "000"
    if re.search(rb"(?im)^transfer-encoding:\s*chunked", head):
        body = dechunk(body)
    try:
        j = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        j = None
    if isinstance(j, dict) and "area" in j and "raw_hex" in j:
        return status, j["area"], j["uri_hex"] or "-"
    if status == "200":
        sys.stderr.write("a 200 that is no backend answer: %r\n" % data[:2000])
    return status, "-", "-"


def table(host, port, path, prefix, headers):
    with open(path, "rb") as f:
        lines = [l.rstrip(b"\n") for l in f if l.strip()]
    for i, t in enumerate(lines, 1):
        rid = "%s-%d" % (prefix, i)
        status, ar, uri = fetch(host, int(port), t, headers + ["X-Request-ID: " + rid])
        print("\t".join((status, ar, uri, rid, shown(t))))


def differential(tablefile, gatelog):
    paths = {}
    with open(gatelog, "rb") as f:
        for line in f:
            try:
                j = json.loads(line.decode("utf-8", "replace"))
            except ValueError:
                continue
            if isinstance(j, dict) and j.get("msg") == "gate.decision":
                paths[j.get("request_id")] = j.get("path")
    with open(tablefile) as f:
        for row in f:
            status, ar, uri, rid, shown_t = row.rstrip("\n").split("\t")
            if ar == "-":
                continue  # refused: the backend never saw it
            gate = paths.get(rid)
            nginx = bytes.fromhex(uri) if uri != "-" else None
            if gate is None or nginx is None:
                print("nolog\t%s\t-\t-" % shown_t)
                continue
            g = gate.encode("utf-8")
            print("%s\t%s\t%s\t%s" % ("same" if g == nginx else "differ", shown_t, shown(g),
                                      shown(nginx)))


def main():
    a = sys.argv[1:]
    if os.environ.get("GATEWAY_INTERFACE"):
        cgi()  # a CGI program: argv may hold words of the query string
    elif a[:1] == ["serve"] and len(a) == 2:
        serve(a[1])
    elif a[:1] == ["table"] and len(a) >= 5:
        table(a[1], a[2], a[3], a[4], a[5:])
    elif a[:1] == ["differential"] and len(a) == 3:
        differential(a[1], a[2])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
