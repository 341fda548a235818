#!/usr/bin/python3
"""A small JWKS server for the tests (loopback only, stdlib + cryptography).

  jwks_server.py serve DIR [--port N] [--tls CERT KEY]
      Serves DIR/jwks.json on 127.0.0.1:N (0 = any free port), over TLS
      with CERT and KEY (PEM files) when --tls is given, re-reading it
      on every request.  Writes the port to DIR/port once listening (written
      to a temporary name, then renamed, so a reader sees all or nothing).
      Knobs, read from DIR on every request:
        status  an HTTP status code to answer with (default 200)
        delay   seconds to wait before answering (float)
        down    when present, the connection is closed without an answer
        nolength  when present, no Content-Length: the body ends when the
                connection closes (so a client cannot refuse it up front)
      After each request (before answering) DIR/hits holds the number of
      requests seen so far.  Paths:
        /hop/N      302 to /hop/N-1; /hop/0 serves the JWKS
        /to?URL     302 to URL
        anything else serves the JWKS
      Exits when its parent process goes away or on SIGTERM.

  jwks_server.py gencert DIR
      Writes DIR/cert.pem, a self-signed certificate for IP 127.0.0.1 (it is
      its own CA: clients trust it by that file), and DIR/certkey.pem.

  jwks_server.py genkeys DIR
      Writes public JWKs (no kid) to DIR: rsa2048.json, rsa2048b.json,
      rsa1024.json, ec256.json, ec256b.json, ec384.json, and rsa2048_priv.json,
      ec256_priv.json carrying their private members.
"""
import base64
import http.server
import json
import os
import socketserver
import sys
import threading
import time


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def int_bytes(n, size=None):
    size = size or (n.bit_length() + 7) // 8
    return n.to_bytes(size, "big")


def rsa_jwk(bits, private=False):
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pub = key.public_key().public_numbers()
    jwk = {"kty": "RSA", "n": b64u(int_bytes(pub.n)), "e": b64u(int_bytes(pub.e))}
    if private:
        priv = key.private_numbers()
        jwk.update({"d": b64u(int_bytes(priv.d)), "p": b64u(int_bytes(priv.p)),
                    "q": b64u(int_bytes(priv.q))})
    return jwk


def ec_jwk(curve_name, private=False):
    from cryptography.hazmat.primitives.asymmetric import ec

    curve, crv, size = {
        "P-256": (ec.SECP256R1(), "P-256", 32),
        "P-384": (ec.SECP384R1(), "P-384", 48),
    }[curve_name]
    key = ec.generate_private_key(curve)
    pub = key.public_key().public_numbers()
    jwk = {"kty": "EC", "crv": crv, "x": b64u(int_bytes(pub.x, size)),
           "y": b64u(int_bytes(pub.y, size))}
    if private:
        jwk["d"] = b64u(int_bytes(key.private_numbers().private_value, size))
    return jwk


def genkeys(d):
    keys = {
        "rsa2048": rsa_jwk(2048),
        "rsa2048b": rsa_jwk(2048),
        "rsa1024": rsa_jwk(1024),
        "ec256": ec_jwk("P-256"),
        "ec256b": ec_jwk("P-256"),
        "ec384": ec_jwk("P-384"),
        "rsa2048_priv": rsa_jwk(2048, private=True),
        "ec256_priv": ec_jwk("P-256", private=True),
    }
    for name, jwk in keys.items():
        with open(os.path.join(d, name + ".json"), "w") as f:
            json.dump(jwk, f)


def gencert(d):
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    with open(os.path.join(d, "cert.pem"), "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(os.path.join(d, "certkey.pem"), "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))


def read_knob(d, name):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read().strip()
    except FileNotFoundError:
        return None


def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        srv = self.server
        with srv.lock:
            srv.hits += 1
            write_atomic(os.path.join(srv.dir, "hits"), str(srv.hits))
        d = srv.dir
        if os.path.exists(os.path.join(d, "down")):
            self.close_connection = True
            self.connection.shutdown(2)
            return
        delay = read_knob(d, "delay")
        if delay:
            time.sleep(float(delay))
        path = self.path
        if path.startswith("/hop/"):
            n = int(path[5:])
            if n > 0:
                self.redirect("/hop/%d" % (n - 1))
                return
        elif path.startswith("/to?"):
            self.redirect(path[4:])
            return
        status = int(read_knob(d, "status") or "200")
        try:
            with open(os.path.join(d, "jwks.json"), "rb") as f:
                body = f.read()
        except FileNotFoundError:
            body = b'{"keys":[]}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if os.path.exists(os.path.join(d, "nolength")):
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients hang up on purpose (body caps, timeouts)


def serve(d, port, tls=None):
    srv = Server(("127.0.0.1", port), Handler)
    if tls:
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tls[0], tls[1])
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    srv.dir = d
    srv.hits = 0
    srv.lock = threading.Lock()
    parent = os.getppid()

    def watch_parent():
        while True:
            if os.getppid() != parent:
                os._exit(0)
            time.sleep(0.2)

    threading.Thread(target=watch_parent, daemon=True).start()
    write_atomic(os.path.join(d, "port"), str(srv.server_address[1]))
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


def main(argv):
    if len(argv) >= 3 and argv[1] == "genkeys":
        genkeys(argv[2])
        return 0
    if len(argv) >= 3 and argv[1] == "gencert":
        gencert(argv[2])
        return 0
    if len(argv) >= 3 and argv[1] == "serve":
        port, tls, rest = 0, None, argv[3:]
        while rest:
            if rest[0] == "--port" and len(rest) >= 2:
                port, rest = int(rest[1]), rest[2:]
            elif rest[0] == "--tls" and len(rest) >= 3:
                tls, rest = (rest[1], rest[2]), rest[3:]
            else:
                sys.stderr.write(__doc__)
                return 2
        serve(argv[2], port, tls)
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
