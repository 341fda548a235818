#!/usr/bin/python3
"""A test OpenID provider for the SSO tests (loopback only; stdlib + PyJWT +
cryptography), doc/issuer.md#sso-oidc-and-google.

  oidc_provider.py DIR [--client-id ID] [--client-secret SECRET]
                       [--redirect-uri URI]... [--port N]

Listens on 127.0.0.1:N (0 = any free port) and writes the port to DIR/port
(through a temporary name: a reader sees all or nothing).  The issuer is
http://127.0.0.1:PORT.  Endpoints:

  GET  /.well-known/openid-configuration   discovery (RS256)
  GET  /jwks                                the public key (kid "k1")
  GET  /authorize?response_type=code&client_id&redirect_uri&scope&state
       &code_challenge&code_challenge_method=S256&nonce[&m8_fault=F]
       checks the client and the exact redirect URI (one of --redirect-uri), approves the configured
       user at once and answers 302 to redirect_uri?code=...&state=...
  POST /token   (form: grant_type=authorization_code, code, redirect_uri,
       client_id + client_secret in the form or HTTP Basic, code_verifier)
       checks the client, the code (single use), the redirect URI it was
       issued for, and PKCE S256; answers id_token, access_token,
       refresh_token.  Errors are 400/401 {"error": ...}.
  POST /control  JSON {"fault": F or null, "user": {...},
       "discovery_redirect": bool}: the fault of every later code (unless
       the authorize call names one), the user approved (sub, email,
       email_verified, name, picture), and whether the discovery document
       answers 302 to a copy of itself under /moved/ (a relying party must
       not follow it).
  GET  /hits     JSON counts of authorize and token calls.
  GET  /last-tokens  JSON {"access_token", "refresh_token", "expires_in"} of
       the last successful token answer (what a relying party that keeps
       the provider's tokens must have stored).

Faults (per run with /control, per code with m8_fault on /authorize):
  wrong_nonce, wrong_aud, expired, unknown_kid, wrong_iss,
  email_unverified, token_500, redirect_mismatch (the token endpoint
  refuses the redirect URI), no_id_token, hs256 (the ID token signed with
  HS256 under the client secret: the algorithm confusion).
Exits when its parent process goes away or on SIGTERM.
"""
import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import socketserver
import sys
import threading
import time
import urllib.parse

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

FAULTS = {"wrong_nonce", "wrong_aud", "expired", "unknown_kid", "wrong_iss",
          "email_unverified", "token_500", "redirect_mismatch", "no_id_token", "hs256"}


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def new_key():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    pub = k.public_key().public_numbers()
    n = pub.n.to_bytes((pub.n.bit_length() + 7) // 8, "big")
    e = pub.e.to_bytes((pub.e.bit_length() + 7) // 8, "big")
    return pem, {"kty": "RSA", "use": "sig", "alg": "RS256", "n": b64u(n), "e": b64u(e)}


class State:
    def __init__(self, args):
        self.lock = threading.Lock()
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.redirect_uris = args.redirect_uri or ["http://127.0.0.1/user/google-auth/oauth-callback/"]
        self.key_pem, jwk = new_key()
        jwk["kid"] = "k1"
        self.jwks = {"keys": [jwk]}
        self.other_pem, _ = new_key()  # signs the unknown_kid tokens
        self.codes = {}
        self.fault = None
        self.discovery_redirect = False
        self.user = {"sub": "g-100001", "email": "sso.user@example.com", "email_verified": True,
                     "name": "Sso User", "picture": "https://example.com/a.png"}
        self.hits = {"authorize": 0, "token": 0}
        self.last_tokens = {}
        self.issuer = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # quiet
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 65536:
            return b""
        return self.rfile.read(n)

    def do_GET(self):
        st = self.server.st
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/.well-known/openid-configuration" and st.discovery_redirect:
            return self.send(302, b"", "text/plain",
                             [("Location", st.issuer + "/moved/.well-known/openid-configuration")])
        if u.path in ("/.well-known/openid-configuration",
                      "/moved/.well-known/openid-configuration"):
            return self.send(200, {
                "issuer": st.issuer,
                "authorization_endpoint": st.issuer + "/authorize",
                "token_endpoint": st.issuer + "/token",
                "jwks_uri": st.issuer + "/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
            })
        if u.path == "/jwks":
            return self.send(200, st.jwks)
        if u.path == "/hits":
            with st.lock:
                return self.send(200, dict(st.hits))
        if u.path == "/last-tokens":
            with st.lock:
                return self.send(200, dict(st.last_tokens))
        if u.path == "/authorize":
            return self.authorize(urllib.parse.parse_qs(u.query, keep_blank_values=True))
        return self.send(404, {"error": "not_found"})

    def authorize(self, q):
        st = self.server.st
        one = {k: v[0] for k, v in q.items() if len(v) == 1}
        with st.lock:
            st.hits["authorize"] += 1
        if one.get("response_type") != "code" or one.get("client_id") != st.client_id:
            return self.send(400, {"error": "unauthorized_client"})
        if one.get("redirect_uri") not in st.redirect_uris:
            return self.send(400, {"error": "invalid_request",
                                   "error_description": "redirect_uri mismatch"})
        if one.get("code_challenge_method") != "S256" or not one.get("code_challenge"):
            return self.send(400, {"error": "invalid_request",
                                   "error_description": "PKCE S256 required"})
        if "openid" not in one.get("scope", "").split(" "):
            return self.send(400, {"error": "invalid_scope"})
        fault = one.get("m8_fault") or st.fault
        code = secrets.token_urlsafe(24)
        with st.lock:
            st.codes[code] = {"nonce": one.get("nonce"), "challenge": one["code_challenge"],
                              "redirect_uri": one["redirect_uri"], "fault": fault,
                              "user": dict(st.user), "at": time.time()}
        loc = one["redirect_uri"] + ("&" if "?" in one["redirect_uri"] else "?") + \
            urllib.parse.urlencode({"code": code, "state": one.get("state", "")})
        return self.send(302, b"", "text/plain", [("Location", loc)])

    def do_POST(self):
        st = self.server.st
        u = urllib.parse.urlsplit(self.path)
        if u.path == "/control":
            try:
                c = json.loads(self.body() or b"{}")
            except ValueError:
                return self.send(400, {"error": "bad json"})
            with st.lock:
                if "fault" in c:
                    if c["fault"] is not None and c["fault"] not in FAULTS:
                        return self.send(400, {"error": "unknown fault"})
                    st.fault = c["fault"]
                if "user" in c:
                    st.user.update(c["user"])
                if "discovery_redirect" in c:
                    st.discovery_redirect = bool(c["discovery_redirect"])
            return self.send(200, {"ok": True})
        if u.path == "/token":
            return self.token()
        return self.send(404, {"error": "not_found"})

    def token(self):
        st = self.server.st
        with st.lock:
            st.hits["token"] += 1
        if "application/x-www-form-urlencoded" not in (self.headers.get("Content-Type") or ""):
            return self.send(400, {"error": "invalid_request"})
        f = {k: v[0] for k, v in urllib.parse.parse_qs(self.body().decode("utf-8", "replace"),
                                                       keep_blank_values=True).items()}
        cid, csec = f.get("client_id"), f.get("client_secret")
        auth = self.headers.get("Authorization") or ""
        if auth.startswith("Basic "):
            try:
                cid, _, csec = base64.b64decode(auth[6:]).decode().partition(":")
            except ValueError:
                return self.send(401, {"error": "invalid_client"})
        if cid != st.client_id or csec != st.client_secret:
            return self.send(401, {"error": "invalid_client"})
        if f.get("grant_type") != "authorization_code":
            return self.send(400, {"error": "unsupported_grant_type"})
        with st.lock:
            c = st.codes.pop(f.get("code", ""), None)
        if not c or time.time() - c["at"] > 60:
            return self.send(400, {"error": "invalid_grant", "error_description": "bad code"})
        fault = c["fault"]
        if fault == "token_500":
            return self.send(500, {"error": "server_error"})
        expected = c["redirect_uri"] + ("/mismatch" if fault == "redirect_mismatch" else "")
        if f.get("redirect_uri") != expected:
            return self.send(400, {"error": "invalid_grant",
                                   "error_description": "redirect_uri mismatch"})
        v = f.get("code_verifier", "")
        if b64u(hashlib.sha256(v.encode()).digest()) != c["challenge"]:
            return self.send(400, {"error": "invalid_grant", "error_description": "PKCE failed"})
        now = int(time.time())
        user = c["user"]
        claims = {"iss": st.issuer, "azp": st.client_id, "aud": st.client_id,
                  "sub": user["sub"], "email": user.get("email"),
                  "email_verified": user.get("email_verified", True),
                  "name": user.get("name"), "picture": user.get("picture"),
                  "iat": now, "exp": now + 3600, "nonce": c["nonce"]}
        claims = {k: v for k, v in claims.items() if v is not None}
        key, kid = st.key_pem, "k1"
        if fault == "wrong_nonce":
            claims["nonce"] = "not-the-nonce-" + secrets.token_urlsafe(8)
        elif fault == "wrong_aud":
            claims["aud"] = "someone-else.apps.example.com"
            claims["azp"] = "someone-else.apps.example.com"
        elif fault == "expired":
            claims["iat"] = now - 7200
            claims["exp"] = now - 3600
        elif fault == "unknown_kid":
            key, kid = st.other_pem, "k-unknown"
        elif fault == "wrong_iss":
            claims["iss"] = "https://evil.example.com"
        elif fault == "email_unverified":
            claims["email_verified"] = False
        if fault == "hs256":
            idt = jwt.encode(claims, st.client_secret, algorithm="HS256", headers={"kid": kid})
        else:
            idt = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        out = {"access_token": "ya29." + secrets.token_urlsafe(24), "token_type": "Bearer",
               "expires_in": 3599, "refresh_token": "1//" + secrets.token_urlsafe(24),
               "scope": "openid email profile", "id_token": idt}
        if fault == "no_id_token":
            del out["id_token"]
        with st.lock:
            st.last_tokens = {k: out[k] for k in ("access_token", "refresh_token", "expires_in")}
        return self.send(200, out)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def watch_parent(ppid, srv):
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            srv.shutdown()
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--client-id", default="test-client.apps.example.com")
    ap.add_argument("--client-secret", default="test-client-secret-0123456789")
    ap.add_argument("--redirect-uri", action="append", help="an allowed redirect URI (repeatable)")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.st = State(args)
    port = srv.server_address[1]
    srv.st.issuer = "http://127.0.0.1:%d" % port
    tmp = os.path.join(args.dir, "port.tmp")
    with open(tmp, "w") as f:
        f.write(str(port))
    os.rename(tmp, os.path.join(args.dir, "port"))
    threading.Thread(target=watch_parent, args=(os.getppid(), srv), daemon=True).start()
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
