#!/usr/bin/python3
"""A scripted HTTP/1.1 stub for the unit tests (loopback only, stdlib only).

  stub_http.py DIR

Listens on 127.0.0.1 (any free port, keep-alive, one thread per
connection) and writes the port to DIR/port (a temporary name renamed, so a
reader sees all or nothing).

Script: DIR/script.json, re-read on every request:

  {"routes": {"/path": [RESPONSE, ...], "*": [RESPONSE, ...]}}

The n-th request to a path (counted since the script's bytes last changed)
gets the n-th RESPONSE of its list, the last one repeating; "*" serves paths
without a list of their own; no match is a 404.  A RESPONSE is an object:

  status   HTTP status (default 200)
  body     the body as text, or
  json     any JSON value, sent compact as the body
  headers  {"Name": "value"} added to the answer
  delay    seconds to wait before answering (float)
  drop     true: close the connection without an answer
  close    true: answer with "Connection: close" and close
  trickle  seconds between the bytes of the body (a slow body)

Every request is appended to DIR/log.jsonl before it is answered, as
{"n", "method", "path", "headers" (names lower-cased), "body", "conn"}
where conn numbers the TCP connections (keep-alive shows as one conn).
Exits on SIGTERM or when its parent process goes away.
"""
import hashlib
import http.server
import itertools
import json
import os
import socketserver
import sys
import threading
import time

LOCK = threading.Lock()
STATE = {"digest": None, "counts": {}, "n": 0}
CONN_IDS = itertools.count(1)


def load_script(d):
    try:
        with open(os.path.join(d, "script.json"), "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raw = b'{"routes": {}}'
    digest = hashlib.sha256(raw).hexdigest()
    return digest, json.loads(raw.decode("utf-8") or "{}")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        self.conn_id = next(CONN_IDS)

    def log_message(self, *args):
        pass

    def handle_any(self):
        d = self.server.dir
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path = self.path.split("?", 1)[0]
        with LOCK:
            digest, script = load_script(d)
            if digest != STATE["digest"]:
                STATE["digest"] = digest
                STATE["counts"] = {}
            routes = script.get("routes", {})
            key = path if path in routes else "*"
            lst = routes.get(key)
            n = STATE["counts"].get(key, 0)
            STATE["counts"][key] = n + 1
            STATE["n"] += 1
            entry = {
                "n": STATE["n"],
                "method": self.command,
                "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "body": body.decode("utf-8", "replace"),
                "conn": self.conn_id,
            }
            with open(os.path.join(d, "log.jsonl"), "a") as f:
                f.write(json.dumps(entry) + "\n")
        if not lst:
            resp = {"status": 404, "json": {"detail": "Not Found"}}
        else:
            resp = lst[min(n, len(lst) - 1)]
        if resp.get("delay"):
            time.sleep(float(resp["delay"]))
        if resp.get("drop"):
            self.close_connection = True
            try:
                self.connection.shutdown(2)
            except OSError:
                pass
            return
        if "json" in resp:
            out = json.dumps(resp["json"], separators=(",", ":")).encode("utf-8")
            ctype = "application/json"
        else:
            out = str(resp.get("body", "")).encode("utf-8")
            ctype = "text/plain"
        self.send_response(int(resp.get("status", 200)))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(out)))
        for k, v in resp.get("headers", {}).items():
            self.send_header(k, v)
        if resp.get("close"):
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        trickle = float(resp.get("trickle") or 0)
        try:
            if trickle > 0:
                for i in range(len(out)):
                    self.wfile.write(out[i:i + 1])
                    self.wfile.flush()
                    time.sleep(trickle)
            else:
                self.wfile.write(out)
        except OSError:
            self.close_connection = True

    do_GET = handle_any
    do_POST = handle_any
    do_PUT = handle_any
    do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    if len(sys.argv) != 2:
        sys.stderr.write(__doc__)
        return 2
    d = sys.argv[1]
    srv = Server(("127.0.0.1", 0), Handler)
    srv.dir = d
    parent = os.getppid()

    def watch():
        while True:
            time.sleep(0.2)
            if os.getppid() != parent:
                os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    tmp = os.path.join(d, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, os.path.join(d, "port"))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
