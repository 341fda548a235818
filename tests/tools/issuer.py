#!/usr/bin/python3
"""A test issuer for the integration tests: the issuer side of the wire formats in
doc/wire.md (loopback only; stdlib + python3-jwt + python3-cryptography).

  issuer.py serve DIR [options]       run the issuer (below)
  issuer.py canon [--sign KEY]        read JSON on stdin, print its canonical
                                      form (doc/wire.md#canonical-json), or with --sign the hex
                                      HMAC-SHA256 of it under KEY
  issuer.py vectors                   check the canonical writer against the
                                      canonical JSON vectors (doc/wire.md#canonical-json) and Python's repr (TAP)

serve DIR
  Listens on 127.0.0.1:PORT (--port, 0 = any free port), threaded, so a held
  event stream blocks nothing else.  Writes, each atomically (temporary name,
  then rename), DIR/urls.json and then DIR/port once listening.  Exits when
  its parent process goes away or on SIGTERM (open streams are ended
  cleanly first, as the issuer does on shutdown).
  Files in DIR:
    access_key.pem / access_key.pub  the token signing key (RS256 or ES256),
                    generated on first start, loaded on the next ones
    event_signing.key  the event signing key (doc/wire.md#signed-envelope), as configured
    state.json      users, sessions, API keys and consumer clients, rewritten
                    on every change and reloaded on start (--fresh ignores it),
                    so a restart on the same --port keeps issued tokens valid
                    and starts a new event epoch, like the real issuer
    urls.json       {"base","jwks","introspection","events","service_token",
                    "apikey","control","public_key_file","event_signing_key_file",
                    "alg","kid","iss","aud","prefix","pid"}
    port            the port, written last

  Options:
    --port N                 (0)
    --key-alg RS256|ES256|HS256   access-token algorithm (default: the type of
                             DIR/access_key.pem, else RS256; HS256 signs with
                             --access-secret and serves an empty JWKS)
    --kid KID                (default: the RFC 7638 thumbprint of the key)
    --access-secret S        HS256 secret (the tests' ACCESS_SECRET_KEY)
    --iss ISS / --aud AUD    claims of minted tokens ("" = omitted); defaults
                             https://auth.example.com / item-service
    --prefix P               private API prefix (/private/v1; e.g. /user/private/v1)
    --jwks-path P            (/.well-known/jwks.json)
    --private-secret S       the issuer's own PRIVATE_API_SECRET: the legacy
                             X-Internal-Token and the HS256 service-token key
    --client ID=SECRET       register a consumer (repeatable); without any,
                             there is no consumer registry
                             (doc/wire.md#service-token-exchange)
    --client-scopes ID=a,b   scopes granted to ID (default: all four of doc/wire.md#private-api-auth)
    --no-legacy              refuse legacy token-only callers (401), as the
                             current issuer does; default: accepted, all scopes
    --event-signing-key K / --event-signing-key-file F
                             (default: the tests' base EVENT_SIGNING_KEY)
    --no-event-signing       send bare payloads (EVENT_SIGNING_ENABLED=false)
    --heartbeat S            seconds of idleness before ": ping" (15.0)
    --buffer-size N          resume ring size (256)
    --max-queue N            per-stream queue; overflow ends the stream (64)
    --token-ttl S            access-token lifetime (1800)
    --service-token-ttl S    service-token lifetime, expires_in (300)
    --mode stateful|stateless   jti-status decision (doc/wire.md#jti-status-request) (stateful)
    --no-event-stream        the stream answers 404 "Event stream disabled"
    --no-service-token       the exchange answers 404
    --apikey-rate-limit N    API-key introspections per consumer per minute
                             (0 = off); over it: 429 with Retry-After: 60
    --fresh                  ignore DIR/state.json
    --verbose                log requests to stderr

Issuer endpoints (P = --prefix)
  GET  <jwks-path>           {"keys":[JWK with kid, use "sig", alg]}
  POST P/jti-status          doc/wire.md#jti-status: scope introspection.  Body
        {"jti","expected_user_id","schema_version":"2"} -> {"active":true,
        "user_id","auth_generation","schema_version":"2"} or the generic
        {"active":false,"schema_version":"2"}.  No expected_user_id -> v1
        {"active":bool}; schema_version other than "2" (or absent) -> inactive;
        expected_user_id not a UUID / no string jti / body not JSON -> 422.
        stateful: inactive when the jti was never issued, revoked, expired,
        its user deleted, the subject differs, the user is inactive, or the
        user's generation moved past the token's.  stateless: active with the
        user's generation while the user exists.
  GET  P/events/stream       doc/wire.md#event-stream: scope event-stream; 200 text/event-stream,
        chunked, flushed per frame: "id: <epoch>-<seq>", "event:", "data:"
        (the signed envelope {"payload":...,"sig":...} in json.dumps default
        form); ": ping" after --heartbeat seconds without a frame.
        Last-Event-ID resume (doc/wire.md#sse-framing): malformed, other epoch, or older than
        the ring -> "event: gap" + "data: {}" first, no replay; else the
        buffered events after it.  No Last-Event-ID: live events only.
  POST P/service-token       doc/wire.md#service-token-exchange: bootstrap headers only; body {"scopes":[..]}
        -> {"access_token","token_type":"bearer","expires_in","scope"}; 404
        without a registry or with --no-service-token, 401 bad pair, 403 empty
        scopes or not granted.  HS256 over --private-secret, claims sub,
        scope, type "service", aud "fa-auth-m8/internal-service", iat, nbf,
        exp, jti.
  POST P/api-keys/introspect doc/wire.md#introspection-request: scope api-key-introspection.  Body
        {"api_key","schema_version":"1"}; schema_version other than "1" ->
        503 "Introspection temporarily unavailable"; per-consumer limit -> 429
        "Introspection rate limit exceeded" + Retry-After: 60; then the key
        (see /_test/apikey).
  Internal auth (doc/wire.md#private-api-auth), checked in this order: "Authorization: Bearer <service
  token>" (signature, aud, type, expiry, not invalidated, client still
  registered); "X-Internal-Client" + "X-Internal-Token" (salted SHA-256,
  constant-time, a dummy hash for unknown ids); "X-Internal-Token" alone
  (legacy, --private-secret).  Failure: 401 {"detail":"Unauthorized"};
  missing scope: 403 {"detail":"Forbidden"}.
  Unknown path: 404 {"detail":"Not Found"}; wrong method: 405 + Allow.

Control endpoints (JSON bodies; every answer is JSON unless said otherwise)
  GET  /_test/               this text (text/plain)
  POST /_test/mint           claim overrides -> {"token","jti","sub","exp",
        "auth_generation","claims"}; ?raw=1 answers the token as text/plain.
        Defaults (doc/wire.md#token-claims): sub and jti fresh UUIDs, type "access", email,
        full_name, avatar null, is_active, email_verified, is_superuser,
        role "user" (role "superadmin" alone also sets is_superuser),
        tenant_id null, iat = nbf = now, exp = now + token ttl, iss/aud from
        the flags.  Special members: "_ttl": S (exp = now + S, may be
        negative), "_drop": [names], "_session": false (no session row: the
        jti was never issued), "_allow_inconsistent": true (else an
        inconsistent role/is_superuser pair is 500 "Could not issue token.",
        as the issuer), "_kid": header kid.  The user (sub) is created
        active at generation 1 when unknown; the session records the user's
        generation.
  POST /_test/revoke         {"jti"} revokes one session and emits a v1
        session-revoked (jti set, auth_generation/event_id null; "version":
        "v2" sends the generation and an event_id instead).
        {"user_id"} revokes every token of the user issued so far (its
        generation goes up) and emits the v2 user-wide event (jti null,
        event_id "<uid>:<gen>:publish:user-wide"; "version":"v1" sends the
        v1 shape).  Both: "emit": false revokes silently; "omit_nulls": true
        drops the null members (2.x SDK issuers).  -> {"payload", "event":
        {"id","streams","published_at"} or null}
  POST /_test/delete_user    {"user_id"[, "emit"]} tombstones the user and
        emits user-deleted {"event_type":"user.deleted","version":"v1","user_id"}
  POST /_test/user           {"user_id"[, "is_active", "generation"]} create/update
  POST /_test/event          send anything on the stream: {"event": NAME,
        "payload": VALUE} (signed as configured; "sign": "forged"|"unsigned"
        overrides), or {"event": NAME, "data": TEXT} (data as is; newlines make
        several data lines), "id": false (no id line, not in the ring);
        {"event":"gap"} sends "event: gap / data: {}" now; {"frame": TEXT}
        writes TEXT raw to every open stream.  "repeat": N sends it N times.
  POST /_test/epoch          a simulated restart: new epoch, seq back to 0,
        ring emptied, open streams ended cleanly ("keep_streams": true keeps them)
  GET  /_test/ring           [{"seq","frame"}] the resume buffer
  POST /_test/apikey         register or replace a key: {"key" (default: a
        fresh one), "user_id"/"owner" (default: a fresh active user), "role"
        (reader), "is_superuser" (role == superadmin), "access_mode"
        read_only|read_write (or "capabilities"/"scopes": a list, "write" in
        it = read_write), "audiences": [client ids] (default ["*"] = any
        consumer; the caller's id not in it -> inactive), "state": active |
        revoked | expired | rate_limited | owner_inactive | owner_missing,
        "expires_at": ISO-8601 or null, "expires_in": S, "retry_after": for
        rate_limited (default "30"; null = no Retry-After header), "quota":
        {"limit": N, "period": second|minute|hour|day} (the key's own 429
        "Rate limit exceeded for period: <period>" with a computed
        Retry-After), "auth_generation" (default: the owner's), "audience_id"
        (echo this instead of the caller's id: audience_mismatch),
        "override": {...} merged over the active answer (e.g.
        {"schema_version":"2"}, {"principal":null}), "pad": BYTES (the answer
        padded to that size: response_too_large), "status"+"body"+"headers"
        (answer exactly that), "delete": true}.  -> the stored record.
        The rows of doc/wire.md#interpretation-order: inactive (unknown, revoked, expired, owner
        missing/inactive, audience not bound), 429 with/without Retry-After,
        audience_mismatch, malformed (override, inconsistent role pair),
        too large (pad), 401/403 (credentials, scopes), and through /_test/fault:
        5xx, 3xx/204/4xx, transport (down, slow), malformed.
  POST /_test/client         {"client_id","secret"[, "scopes"], "delete"}: the registry
  POST /_test/revoke_service_tokens   every service token issued so far -> 401
  POST /_test/rotate_key     {"keep_old": true, "same_kid": false}: a new
        signing key (and kid); the old public key stays in the JWKS unless
        keep_old is false; same_kid reuses the old kid (replacing the old key)
  POST /_test/config         change at run time any of: heartbeat,
        buffer_size, max_queue, token_ttl, service_token_ttl, legacy,
        event_stream, service_token_exchange, mode, sign_events, signing_key,
        apikey_rate_limit, iss, aud.  GET /_test/config shows them.
  POST /_test/fault          {"target", "mode", "count"}: see below.
        GET /_test/fault lists the active faults.
  GET  /_test/stats          {"requests":{target: n}, "responses":{target:
        {status: n}}, "auth":{mode: n}, "faults_fired", "streams_open",
        "events_published", "service_tokens_minted", "epoch", "seq",
        "last_event_ids" (the Last-Event-ID of each stream request, null
        when absent), "stream_connects" (their times), "last": {target:
        {"method","path","headers" (secrets redacted),"body","time"}}}
        Targets: jwks, introspection, events, token, apikey, control, other.
  GET  /_test/stats/TARGET   the request count of TARGET as text/plain
  POST /_test/reset_stats    zero the counters

Faults: POST /_test/fault {"target": T, "mode": M, "count": N}
  T: jwks | introspection | events | token | apikey, or "private" (the four
  private endpoints) or "all".  Without "count" a fault stays until mode
  "ok" (which on "private"/"all" clears every target under it); with it, it
  applies to the next N requests (for the event modes: the next N events).
  M, for every target:
    ok               clear
    slow:SECONDS     wait, then answer normally (events: before the headers)
    down             read the request, close the connection without answering
    status:CODE      answer CODE: 401 "Unauthorized", 403 "Forbidden", 404
                     (events "Event stream disabled"), 429 (+ Retry-After: 60),
                     503 "Introspection temporarily unavailable", 3xx with a
                     Location, 204 without a body, others {"detail":"Test fault"}
    malformed[:KIND] a 200 the client must refuse.  KIND: json (default, not
                     JSON); introspection: schema ({"active":true} alone),
                     version ("3"), subject (another user_id), type ("true"),
                     generation (0); apikey: schema (no principal), version
                     ("2"), inconsistent (superadmin without the flag), method
                     (authentication_method "password"); token: schema (no
                     access_token), expires (expires_in "soon"); jwks: schema
    big:BYTES        the answer padded to BYTES (a "pad" member)
  events only:
    drop_stream      cut every open stream now (connection reset, no end
                     chunk); with count N also the next N streams right after
                     their headers.  end_stream: the same with a clean end.
    silent           open streams send nothing (no heartbeat, events withheld
                     from the wire but kept in the ring) until mode ok
    forged_event     events signed with a wrong key
    unsigned_event   events sent as the bare payload
    malformed        event data that is not JSON (cut in half)
    big:BYTES        an event whose data value is exactly BYTES long (signed)
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import math
import os
import random
import select
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import uuid
from collections import deque
from fractions import Fraction
from urllib.parse import parse_qs, urlsplit

SCOPES = ("introspection", "event-stream", "user-create", "api-key-introspection")
SERVICE_AUD = "fa-auth-m8/internal-service"
ROLES = ("superadmin", "admin", "writer", "reader", "user")
MAX_BODY = 1 << 20
DEFAULT_EVENT_KEY = "Test-Event-Signing-Key-0123456789abcdef!"
DEFAULT_PRIVATE_SECRET = "Test-Private-Api-Secret-0123456789abcdef!"
DEFAULT_ACCESS_SECRET = "Test-Access-Secret-Key-0123456789abcdef!"
TARGETS = ("jwks", "introspection", "events", "token", "apikey")
PRIVATE_TARGETS = ("introspection", "events", "token", "apikey")
GAP_FRAME = b"event: gap\ndata: {}\n\n"
PING_FRAME = b": ping\n\n"
PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


# ---------------------------------------------------------------------------
# Canonical JSON (doc/wire.md#canonical-json), written from the rules, not with json.dumps.
# ---------------------------------------------------------------------------
_SHORT_ESC = {0x22: '\\"', 0x5C: "\\\\", 0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n",
              0x0D: "\\r", 0x09: "\\t"}


def _canon_str(s):
    out = ['"']
    for ch in s:
        c = ord(ch)
        if c in _SHORT_ESC:
            out.append(_SHORT_ESC[c])
        elif 0x20 <= c <= 0x7E:
            out.append(ch)
        elif c > 0xFFFF:
            c -= 0x10000
            out.append("\\u%04x\\u%04x" % (0xD800 | (c >> 10), 0xDC00 | (c & 0x3FF)))
        else:
            out.append("\\u%04x" % c)
    out.append('"')
    return "".join(out)


def _shortest_digits(x):
    """For a finite x > 0: (digits, exp10) with x ~ d.ddd * 10**exp10, the
    shortest digit string that reads back as x, the closest to x among those
    (exact arithmetic over the rounding interval of x)."""
    X = Fraction(x)
    below = math.nextafter(x, 0.0)
    lo = (X + Fraction(below)) / 2
    above = math.nextafter(x, math.inf)
    hi = X + Fraction(math.ulp(x)) / 2 if math.isinf(above) else (X + Fraction(above)) / 2
    # Round-half-even: the interval ends belong to x when its mantissa is even.
    inclusive = (X / Fraction(math.ulp(x))).numerator % 2 == 0
    e = math.floor(math.log10(x))
    while Fraction(10) ** e > X:
        e -= 1
    while Fraction(10) ** (e + 1) <= X:
        e += 1
    for p in range(1, 18):
        scale = Fraction(10) ** (e - p + 1)
        a, b = lo / scale, hi / scale
        k_lo = math.ceil(a)
        if k_lo == a and not inclusive:
            k_lo += 1
        k_hi = math.floor(b)
        if k_hi == b and not inclusive:
            k_hi -= 1
        if k_lo > k_hi:
            continue
        t = X / scale
        k = min(max(round(t), k_lo), k_hi)  # round() ties to even
        digits = str(k).rstrip("0") or "0"
        return digits, len(str(k)) - 1 + (e - p + 1)
    raise AssertionError("no digit string of 17 digits for %r" % x)


def _canon_float(x):
    if x != x:
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0.0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    d, exp = _shortest_digits(abs(x))
    if -4 <= exp < 16:
        if exp >= 0:
            ip = (d[:exp + 1]).ljust(exp + 1, "0")
            fp = d[exp + 1:] or "0"
        else:
            ip, fp = "0", "0" * (-exp - 1) + d
        return "%s%s.%s" % (sign, ip, fp)
    mant = d[0] + ("." + d[1:] if len(d) > 1 else "")
    return "%s%se%s%02d" % (sign, mant, "-" if exp < 0 else "+", abs(exp))


def canonical(v):
    """The canonical text (pure ASCII) of a parsed JSON value."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(int(v))
    if isinstance(v, float):
        return _canon_float(v)
    if isinstance(v, str):
        return _canon_str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(canonical(x) for x in v) + "]"
    if isinstance(v, dict):
        for k in v:
            if not isinstance(k, str):
                raise TypeError("canonical JSON: object keys must be strings")
        return "{" + ",".join(_canon_str(k) + ":" + canonical(v[k]) for k in sorted(v)) + "}"
    raise TypeError("canonical JSON: unsupported type %s" % type(v).__name__)


def sign_payload(key, payload):
    return hmac.new(key.encode("utf-8"), canonical(payload).encode("ascii"),
                    hashlib.sha256).hexdigest()


# The worked examples of doc/wire.md#canonical-json: (input JSON text, canonical text, sig or None).
VECTOR_KEY = "Example-Event-Signing-Key_2026!xyz"
VECTORS = [
    ('{"event_type": "session.revoked", "version": "v2", "user_id": '
     '"550e8400-e29b-41d4-a716-446655440000", "jti": null, "auth_generation": 3, '
     '"event_id": "550e8400-e29b-41d4-a716-446655440000:3:publish:user-wide"}',
     '{"auth_generation":3,"event_id":"550e8400-e29b-41d4-a716-446655440000:3:publish:'
     'user-wide","event_type":"session.revoked","jti":null,"user_id":'
     '"550e8400-e29b-41d4-a716-446655440000","version":"v2"}',
     "35e54bd7e735594b02d4120a69d66f454a94a1352b4c20e9be5c4460ace9130c"),
    ('{"event_type":"user.deleted","version":"v1","user_id":'
     '"550e8400-e29b-41d4-a716-446655440000"}',
     '{"event_type":"user.deleted","user_id":"550e8400-e29b-41d4-a716-446655440000",'
     '"version":"v1"}',
     "50491c60ee726cedbee7eb15ac01df5786588429297f5f9c30ee2ef8034403fb"),
    ('{"event_type":"session.revoked","version":"v1","user_id":"u-1","jti":"jti-0001",'
     '"auth_generation":null,"event_id":null}',
     '{"auth_generation":null,"event_id":null,"event_type":"session.revoked",'
     '"jti":"jti-0001","user_id":"u-1","version":"v1"}',
     "0b12bad4936d9af100ea1b3a51e7f5a4ef9efdd81d13a920fb49ca4349684220"),
    ('{"b":"\\u00e9\\u2603\\ud83d\\ude00\\u0001\\u007f/\\"\\\\\\n\\t",'
     '"a":[1.0,1e-7,0.0001,1e16,123456789012345678.0,2.5,-0.0,true,false,null,'
     '100000000000000000000],"B":{"z":1,"y":2},"\\u00e9":1,"_":0}',
     '{"B":{"y":2,"z":1},"_":0,"a":[1.0,1e-07,0.0001,1e+16,1.2345678901234568e+17,2.5,'
     '-0.0,true,false,null,100000000000000000000],"b":"\\u00e9\\u2603\\ud83d\\ude00'
     '\\u0001\\u007f/\\"\\\\\\n\\t","\\u00e9":1}',
     "c80cdf8a008141320af3bf04250f5b7f6180b80dfc82e85dd81a4469119a834a"),
    ("{}", "{}", "791cb9f2afd2b29aae435dc0153fff509a380e75d2df603fb3738b6f4a748bc3"),
    ('{"event_type":"session.revoked","user_id":"u1","jti":"j1"}',
     '{"event_type":"session.revoked","jti":"j1","user_id":"u1"}',
     "88d5cc7640c46e2cc13a44c129b9c7f94f466bb11b8d274a187c772d3e957eb4"),
    # The re-parsing rules of 1.8.
    ("1E2", "100.0", None), ("1.10", "1.1", None), ("5e0", "5.0", None),
    ('"\\u00E9"', '"\\u00e9"', None), ('{"a":1,"a":2}', '{"a":2}', None),
    ("-0", "0", None), ("1e400", "Infinity", None), ("-1e400", "-Infinity", None),
    ("NaN", "NaN", None), ("[1e-5,1e-7,5e-324,100.0,1000000000000000.0,1e16]",
                           "[1e-05,1e-07,5e-324,100.0,1000000000000000.0,1e+16]", None),
]
VECTOR_F_KEY = "Abcdef-1234_XYZ-abcdef-ghijkl-mnopqr-stuvwx"


def run_vectors():
    n = fails = 0

    def check(cond, name):
        nonlocal n, fails
        n += 1
        fails += 0 if cond else 1
        print("%sok %d - %s" % ("" if cond else "not ", n, name))

    for i, (text, want, sig) in enumerate(VECTORS):
        value = json.loads(text)
        got = canonical(value)
        check(got == want, "1.8 vector %d canonical: %s" % (i, want[:50]))
        if sig:
            key = VECTOR_F_KEY if i == 5 else VECTOR_KEY
            check(sign_payload(key, value) == sig, "1.8 vector %d sig %s" % (i, sig[:16]))
    rnd = random.Random(1808)
    specials = [5e-324, 2.2250738585072014e-308, 2.225073858507201e-308, 1.7976931348623157e308,
                0.1, 0.3, 1 / 3, 2.0 ** 63, 2.0 ** -1074 * 3, 9007199254740993.0, 1e15, 1e16,
                9.999999999999999e15, 1e-4, 9.9999e-5, 123456789012345678.0, 4.35, 2.0 ** 1000]
    bad = []
    for i in range(20000):
        if i < len(specials):
            x = specials[i]
        elif i % 3 == 0:
            x = struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
        elif i % 3 == 1:
            x = rnd.uniform(-1e6, 1e6)
        else:
            mag = rnd.uniform(0, 1) * 10.0 ** rnd.randint(-30, 30)
            x = float("%.*g" % (rnd.randint(1, 17), mag))
        if x != x or math.isinf(x):
            continue
        if _canon_float(x) != json.dumps(x):
            bad.append(x)
    check(not bad, "floats agree with Python's repr over 20000 doubles" +
          ("" if not bad else " (first: %r -> %s)" % (bad[0], _canon_float(bad[0]))))
    bad = 0
    for _ in range(2000):
        v = _random_value(rnd, 3)
        if canonical(v) != json.dumps(v, sort_keys=True, separators=(",", ":")):
            bad += 1
    check(bad == 0, "2000 random values agree with json.dumps(sort_keys=True) (%d differ)" % bad)
    print("1..%d" % n)
    return 0 if fails == 0 else 1


def _random_value(rnd, depth):
    k = rnd.randint(0, 8 if depth > 0 else 5)
    if k == 0:
        return None
    if k == 1:
        return rnd.random() < 0.5
    if k == 2:
        return rnd.randint(-2 ** 70, 2 ** 70)
    if k == 3:
        return rnd.choice([rnd.uniform(-1e20, 1e20), rnd.random() * 1e-8,
                           float(rnd.randint(0, 99))])
    if k in (4, 5):
        return "".join(chr(rnd.choice([rnd.randint(0, 0x7F), rnd.randint(0x80, 0xD7FF),
                                       rnd.randint(0xE000, 0x10FFFF)]))
                       for _ in range(rnd.randint(0, 8)))
    if k == 6:
        return [_random_value(rnd, depth - 1) for _ in range(rnd.randint(0, 4))]
    keys = ["".join(chr(rnd.randint(0x20, 0x2FF)) for _ in range(rnd.randint(0, 4)))
            for _ in range(rnd.randint(0, 4))]
    return {k: _random_value(rnd, depth - 1) for k in keys}


# ---------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------
def write_atomic(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def is_uuid(s):
    if not isinstance(s, str):
        return False
    try:
        uuid.UUID(s)
        return True
    except ValueError:
        return False


def same_user(a, b):
    if is_uuid(a) and is_uuid(b):
        return uuid.UUID(a) == uuid.UUID(b)
    return a == b


def role_consistent(role, is_superuser):
    return (role == "superadmin") == (is_superuser is True)


def hash_secret(secret):
    salt = os.urandom(16)
    return "sha256$%s$%s" % (salt.hex(), hashlib.sha256(salt + secret.encode("utf-8")).hexdigest())


DUMMY_HASH = hash_secret("dummy-credential-for-unknown-clients")


def check_secret(stored, presented):
    try:
        _, salt, digest = stored.split("$")
        got = hashlib.sha256(bytes.fromhex(salt) + presented).hexdigest()
    except ValueError:
        return False
    return hmac.compare_digest(got, digest)


def iso_utc(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def parse_iso(s):
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


class BadRequest(Exception):
    def __init__(self, status, detail):
        super().__init__(detail)
        self.status = status
        self.detail = detail


# ---------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------
def load_or_make_key(d, alg):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    path = os.path.join(d, "access_key.pem")
    key = None
    if os.path.exists(path):
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), password=None)
        have = "RS256" if isinstance(key, rsa.RSAPrivateKey) else "ES256"
        if alg and alg != have:
            raise SystemExit("issuer.py: %s holds an %s key, not %s" % (path, have, alg))
        return key, have
    alg = alg or "RS256"
    key = new_key(alg)
    save_key(d, key)
    return key, alg


def new_key(alg):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if alg == "RS256":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return ec.generate_private_key(ec.SECP256R1())


def save_key(d, key):
    from cryptography.hazmat.primitives import serialization
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    write_atomic(os.path.join(d, "access_key.pem"), pem.decode())
    write_atomic(os.path.join(d, "access_key.pub"), pub.decode())


def public_jwk(key, alg):
    from jwt.algorithms import ECAlgorithm, RSAAlgorithm
    algo = RSAAlgorithm if alg == "RS256" else ECAlgorithm
    jwk = algo.to_jwk(key.public_key())
    jwk = json.loads(jwk) if isinstance(jwk, str) else dict(jwk)
    jwk.pop("key_ops", None)  # PyJWT adds it; an issuer's JWKS carries use/alg/kid
    if jwk["kty"] == "EC":
        # RFC 7518 6.2.1.2: x and y are the full coordinate length (32 bytes
        # for P-256).  PyJWT 2.6's to_jwk drops leading zero bytes (about one
        # key in 128), which its own from_jwk then refuses.
        nums = key.public_key().public_numbers()
        jwk["x"] = b64u(nums.x.to_bytes(32, "big"))
        jwk["y"] = b64u(nums.y.to_bytes(32, "big"))
    return jwk


def thumbprint(jwk):
    members = ("e", "kty", "n") if jwk["kty"] == "RSA" else ("crv", "kty", "x", "y")
    text = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64u(hashlib.sha256(text.encode()).digest())


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------
EVENT_MODES = ("malformed", "forged_event", "unsigned_event", "big")
STREAM_ONLY = ("drop_stream", "end_stream", "silent", "forged_event", "unsigned_event")


def mode_class(mode, target):
    if target == "events":
        if mode in EVENT_MODES:
            return "event"
        if mode == "silent":
            return "silent"
        return "conn"
    return "request"


def parse_mode(text):
    if not isinstance(text, str):
        raise BadRequest(422, "mode must be a string")
    name, _, arg = text.partition(":")
    if name in ("ok", "down", "drop_stream", "end_stream", "silent", "forged_event",
                "unsigned_event") and not arg:
        return name, None
    try:
        if name == "slow":
            v = float(arg)
            if not (0 <= v <= 3600):
                raise ValueError
            return name, v
        if name == "status":
            v = int(arg)
            if not (100 <= v <= 599):
                raise ValueError
            return name, v
        if name == "big":
            v = int(arg)
            if not (0 < v <= 64 << 20):
                raise ValueError
            return name, v
    except ValueError:
        raise BadRequest(422, "bad argument in mode %r" % text)
    if name == "malformed":
        kinds = ("json", "schema", "version", "subject", "type", "generation", "inconsistent",
                 "method", "expires")
        if arg and arg not in kinds:
            raise BadRequest(422, "unknown malformed kind %r" % arg)
        return name, arg or "json"
    raise BadRequest(422, "unknown mode %r" % text)


class Faults:
    def __init__(self):
        self.lock = threading.Lock()
        self.table = {}  # target -> [mode, arg, remaining or None]

    def set(self, target, mode, arg, count):
        with self.lock:
            if mode == "ok":
                under = {"all": TARGETS + ("private", "all"), "private": PRIVATE_TARGETS +
                         ("private",)}.get(target, (target,))
                for t in under:
                    self.table.pop(t, None)
                return
            if count == 0:
                self.table.pop(target, None)
                return
            self.table[target] = [mode, arg, count]

    def _chain(self, target):
        yield target
        if target in PRIVATE_TARGETS:
            yield "private"
        yield "all"

    def take(self, target, classes):
        with self.lock:
            for t in self._chain(target):
                e = self.table.get(t)
                if not e or mode_class(e[0], target) not in classes:
                    continue
                if e[0] in STREAM_ONLY and target != "events":
                    continue
                if e[2] is not None:
                    e[2] -= 1
                    if e[2] <= 0:
                        del self.table[t]
                return e[0], e[1]
        return None

    def active(self, target, mode):
        with self.lock:
            return any(self.table.get(t, [None])[0] == mode for t in self._chain(target))

    def listing(self):
        with self.lock:
            return {t: {"mode": e[0] + ("" if e[1] is None else ":%s" % e[1]), "remaining": e[2]}
                    for t, e in self.table.items()}


# ---------------------------------------------------------------------------
# Event hub: epoch, sequence, ring buffer, subscribers (doc/wire.md#sse-framing)
# ---------------------------------------------------------------------------
class Sub:
    END, DROP = "end", "drop"  # states; frames are bytes, so never equal to these

    def __init__(self, max_queue):
        self.cond = threading.Condition()
        self.items = deque()
        self.max_queue = max_queue
        self.state = None

    def push(self, frame):
        with self.cond:
            if self.state:
                return False
            if len(self.items) >= self.max_queue:
                self.state = Sub.END  # slow consumer: the response ends cleanly
                self.items.clear()
            else:
                self.items.append(frame)
            self.cond.notify()
            return self.state is None

    def stop(self, how):
        with self.cond:
            if not self.state:
                self.state = how
                self.items.clear()
            self.cond.notify()

    def get(self, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.items or self.state, timeout)
            if self.state:
                return self.state
            if self.items:
                return self.items.popleft()
            return None


class Hub:
    def __init__(self, buffer_size):
        self.lock = threading.Lock()
        self.epoch = str(time.time_ns())
        self.seq = 0
        self.ring = deque(maxlen=buffer_size)
        self.subs = set()
        self.published = 0

    def resize(self, n):
        with self.lock:
            self.ring = deque(self.ring, maxlen=n)

    def new_epoch(self, keep_streams=False):
        with self.lock:
            e = time.time_ns()
            if str(e) <= self.epoch:
                e = int(self.epoch) + 1
            self.epoch = str(e)
            self.seq = 0
            self.ring.clear()
            subs = list(self.subs)
        if not keep_streams:
            for s in subs:
                s.stop(Sub.END)
        return self.epoch

    def stop_all(self, how):
        with self.lock:
            subs = list(self.subs)
        for s in subs:
            s.stop(how)
        return len(subs)

    def _resume(self, lei):
        """(gap, replay frames) for a Last-Event-ID value (None = absent)."""
        if lei is None:
            return False, []
        epoch, sep, seq = lei.strip().rpartition("-")
        if not sep or not seq or not all("0" <= c <= "9" for c in seq):
            return True, []
        n = int(seq)
        if epoch != self.epoch:
            return True, []
        if not self.ring:
            return (False, []) if n >= self.seq else (True, [])
        if n + 1 < self.ring[0][0]:
            return True, []
        return False, [f for s, f in self.ring if s > n]

    def subscribe(self, sub, lei):
        with self.lock:
            self.subs.add(sub)
            return self._resume(lei)

    def unsubscribe(self, sub):
        with self.lock:
            self.subs.discard(sub)

    def open_streams(self):
        with self.lock:
            return len(self.subs)

    def publish(self, name, make_data, with_id=True):
        """make_data() -> the data text; returns (id or None, streams reached, time)."""
        with self.lock:
            ev_id = None
            if with_id:
                self.seq += 1
                ev_id = "%s-%d" % (self.epoch, self.seq)
            data = make_data()
            lines = [] if ev_id is None else ["id: " + ev_id]
            lines.append("event: " + name)
            lines += ["data: " + part for part in data.split("\n")]
            frame = ("\n".join(lines) + "\n\n").encode("utf-8")
            if with_id:
                self.ring.append((self.seq, frame))
            n = sum(1 for s in list(self.subs) if s.push(frame))
            self.published += 1
            return ev_id, n, time.time()

    def push_raw(self, frame):
        with self.lock:
            return sum(1 for s in list(self.subs) if s.push(frame))

    def ring_dump(self):
        with self.lock:
            return [{"seq": s, "frame": f.decode("utf-8", "replace")} for s, f in self.ring]


# ---------------------------------------------------------------------------
# Stats
# ---------------------------------------------------------------------------
REDACT = ("x-internal-token", "authorization")


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = {t: 0 for t in TARGETS + ("control", "other")}
        self.responses = {}
        self.auth = {"legacy": 0, "bootstrap": 0, "service_token": 0, "refused": 0}
        self.faults_fired = {}
        self.last = {}
        self.last_event_ids = deque(maxlen=100)
        self.stream_connects = deque(maxlen=200)
        self.service_tokens_minted = 0

    def request(self, target, handler, body):
        with self.lock:
            self.requests[target] = self.requests.get(target, 0) + 1
            if target == "control":
                return
            headers = {}
            for k, v in handler.headers.items():
                if k.lower() in REDACT:
                    v = "<redacted %d bytes>" % len(v)
                headers[k] = v
            self.last[target] = {"method": handler.command, "path": handler.path,
                                 "headers": headers, "time": time.time(),
                                 "body": (body or b"")[:4096].decode("utf-8", "replace")}

    def response(self, target, status):
        if target is None:
            return
        with self.lock:
            r = self.responses.setdefault(target, {})
            r[str(status)] = r.get(str(status), 0) + 1

    def bump(self, what, key):
        with self.lock:
            d = getattr(self, what)
            d[key] = d.get(key, 0) + 1


# ---------------------------------------------------------------------------
# The issuer's state
# ---------------------------------------------------------------------------
class Issuer:
    def __init__(self, args):
        self.dir = args.dir
        self.verbose = args.verbose
        self.prefix = "/" + args.prefix.strip("/") if args.prefix.strip("/") else ""
        self.jwks_path = args.jwks_path
        self.lock = threading.RLock()
        signing_key = args.event_signing_key
        if args.event_signing_key_file:
            with open(args.event_signing_key_file) as f:
                signing_key = f.read().strip()
        self.cfg = {
            "heartbeat": args.heartbeat, "buffer_size": args.buffer_size,
            "max_queue": args.max_queue, "token_ttl": args.token_ttl,
            "service_token_ttl": args.service_token_ttl, "legacy": not args.no_legacy,
            "legacy_client_id": "legacy", "event_stream": not args.no_event_stream,
            "service_token_exchange": not args.no_service_token, "mode": args.mode,
            "sign_events": not args.no_event_signing, "signing_key": signing_key,
            "apikey_rate_limit": args.apikey_rate_limit, "iss": args.iss, "aud": args.aud,
        }
        self.private_secret = args.private_secret
        self.access_secret = args.access_secret
        self.alg = args.key_alg
        self.old_keys = []  # (kid, jwk) still served after a rotation
        if self.alg == "HS256":
            self.key, self.kid = None, None
        else:
            self.key, self.alg = load_or_make_key(self.dir, self.alg)
            self.kid = args.kid or thumbprint(public_jwk(self.key, self.alg))
        write_atomic(os.path.join(self.dir, "event_signing.key"), signing_key)
        self.users = {}      # user_id -> {"generation", "active", "deleted"}
        self.sessions = {}   # jti -> {"user_id", "generation", "exp", "revoked"}
        self.apikeys = {}    # key -> record
        self.clients = {}    # client_id -> {"hash", "scopes"}
        self.quota = {}      # key -> [window_start, count]
        self.limiter = {}    # consumer -> [window_start, count]
        self.service_jtis = set()
        self.revoked_service_jtis = set()
        state = os.path.join(self.dir, "state.json")
        if os.path.exists(state) and not args.fresh:
            with open(state) as f:
                st = json.load(f)
            self.users = st.get("users", {})
            self.sessions = st.get("sessions", {})
            self.apikeys = st.get("apikeys", {})
            self.clients = st.get("clients", {})
        scopes = {}
        for spec in args.client_scopes:
            cid, _, s = spec.partition("=")
            scopes[cid] = [x for x in s.split(",") if x]
        for spec in args.client:
            cid, sep, secret = spec.partition("=")
            if not sep or not cid:
                raise SystemExit("issuer.py: --client wants ID=SECRET")
            self.clients[cid] = {"hash": hash_secret(secret),
                                 "scopes": scopes.get(cid, list(SCOPES))}
        self.faults = Faults()
        self.stats = Stats()
        self.hub = Hub(self.cfg["buffer_size"])
        self.save()

    # -- persistence
    def save(self):
        with self.lock:
            text = json.dumps({"users": self.users, "sessions": self.sessions,
                               "apikeys": self.apikeys, "clients": self.clients})
            write_atomic(os.path.join(self.dir, "state.json"), text)

    # -- users and tokens
    def user(self, uid, create=True):
        u = self.users.get(uid)
        if u is None and create:
            u = self.users[uid] = {"generation": 1, "active": True, "deleted": False}
        return u

    def jwks(self):
        keys = []
        if self.key is not None:
            jwk = dict(public_jwk(self.key, self.alg), kid=self.kid, use="sig", alg=self.alg)
            keys.append(jwk)
        keys += [j for _, j in self.old_keys if j["kid"] != self.kid]
        return {"keys": keys}

    def rotate(self, keep_old, same_kid):
        with self.lock:
            if self.key is None:
                raise BadRequest(409, "HS256 issuers have no key to rotate")
            old = dict(public_jwk(self.key, self.alg), kid=self.kid, use="sig", alg=self.alg)
            self.key = new_key(self.alg)
            save_key(self.dir, self.key)
            if same_kid:
                self.old_keys = [(k, j) for k, j in self.old_keys if k != self.kid]
            else:
                self.kid = thumbprint(public_jwk(self.key, self.alg))
                if keep_old:
                    self.old_keys.append((old["kid"], old))
            if not keep_old:
                self.old_keys = []
            return self.kid

    def mint(self, over):
        import jwt
        over = dict(over)
        ttl = over.pop("_ttl", None)
        drop = over.pop("_drop", [])
        make_session = over.pop("_session", True)
        allow_bad = over.pop("_allow_inconsistent", False)
        kid = over.pop("_kid", self.kid)
        now = int(time.time())
        with self.lock:
            cfg = self.cfg
            sub = over.get("sub", str(uuid.uuid4()))
            c = {"sub": sub, "type": "access",
                 "email": "user-%s@example.com" % str(sub)[:8].lower(),
                 "full_name": "Test User", "avatar": None, "is_active": True,
                 "email_verified": True, "is_superuser": False, "role": "user",
                 "tenant_id": None,
                 "exp": now + (cfg["token_ttl"] if ttl is None else int(ttl)),
                 "iat": now, "nbf": now, "jti": str(uuid.uuid4())}
            if cfg["iss"]:
                c["iss"] = cfg["iss"]
            if cfg["aud"]:
                c["aud"] = cfg["aud"]
            if over.get("role") == "superadmin" and "is_superuser" not in over:
                c["is_superuser"] = True
            c.update(over)
            for k in drop:
                c.pop(k, None)
            if not allow_bad and not role_consistent(c.get("role", "user"),
                                                     c.get("is_superuser", False)):
                raise BadRequest(500, "Could not issue token.")
            uid = str(c.get("sub"))
            u = self.user(uid)
            jti = c.get("jti")
            if make_session and isinstance(jti, str):
                exp = c.get("exp")
                self.sessions[jti] = {"user_id": uid, "generation": u["generation"],
                                      "exp": exp if isinstance(exp, (int, float)) else None,
                                      "revoked": False}
            self.save()
        if self.alg == "HS256":
            token = jwt.encode(c, self.access_secret, algorithm="HS256")
        else:
            headers = {"kid": kid} if kid is not None else None
            token = jwt.encode(c, self.key, algorithm=self.alg, headers=headers)
        if isinstance(token, bytes):
            token = token.decode()
        return {"token": token, "jti": jti, "sub": sub, "exp": c.get("exp"),
                "auth_generation": u["generation"], "claims": c}

    def decide(self, jti, expected):
        """The stateful jti-status decision: (user_id, generation) or None."""
        now = time.time()
        with self.lock:
            if self.cfg["mode"] != "stateful":
                u = self.users.get(expected) if expected is not None else None
                if u is None and expected is not None:
                    u = next((v for k, v in self.users.items() if same_user(k, expected)), None)
                if u is None or u["deleted"]:
                    return None
                return expected, u["generation"]
            s = self.sessions.get(jti)
            if s is None or s["revoked"]:
                return None
            u = self.users.get(s["user_id"])
            if u is None or u["deleted"] or not u["active"]:
                return None
            if s["exp"] is not None and s["exp"] <= now:
                return None
            if expected is not None and not same_user(expected, s["user_id"]):
                return None
            if s["generation"] != u["generation"]:
                return None
            return s["user_id"], u["generation"]

    # -- events
    def event_data(self, payload, sign=None):
        fault = None
        if sign is None:
            fault = self.faults.take("events", ("event",))
            if fault:
                self.stats.bump("faults_fired", "events")
        mode, arg = fault if fault else (sign or "auto", None)
        with self.lock:
            key = self.cfg["signing_key"] if self.cfg["sign_events"] else ""

        def encode(p):
            if mode in ("unsigned_event", "unsigned") or not key:
                return json.dumps(p)
            k = key if mode not in ("forged_event", "forged") else "forged-" + key
            return json.dumps({"payload": p, "sig": sign_payload(k, p)})

        data = encode(payload)
        if mode == "malformed":
            data = data[: max(1, len(data) // 2)]
        elif mode == "big" and isinstance(payload, dict):
            p = dict(payload, pad="")
            short = len(encode(p))
            if arg > short:
                p["pad"] = "x" * (arg - short)
            data = encode(p)
        return data

    def emit(self, name, payload):
        ev_id, n, t = self.hub.publish(name, lambda: self.event_data(payload))
        return {"id": ev_id, "streams": n, "published_at": t}

    # -- service tokens
    def mint_service_token(self, client_id, scopes):
        import jwt
        now = int(time.time())
        with self.lock:
            ttl = int(self.cfg["service_token_ttl"])
        jti = str(uuid.uuid4())
        claims = {"sub": client_id, "scope": " ".join(sorted(scopes)), "type": "service",
                  "aud": SERVICE_AUD, "iat": now, "nbf": now, "exp": now + ttl, "jti": jti}
        token = jwt.encode(claims, self.private_secret, algorithm="HS256")
        with self.lock:
            self.service_jtis.add(jti)
        with self.stats.lock:
            self.stats.service_tokens_minted += 1
        return {"access_token": token if isinstance(token, str) else token.decode(),
                "token_type": "bearer", "expires_in": ttl, "scope": claims["scope"]}

    def verify_service_token(self, token):
        import jwt
        try:
            c = jwt.decode(token, self.private_secret, algorithms=["HS256"], audience=SERVICE_AUD,
                           options={"require": ["exp", "iat", "nbf", "sub", "jti"]})
        except Exception:
            return None
        with self.lock:
            if c.get("type") != "service" or c.get("jti") in self.revoked_service_jtis:
                return None
            if c.get("sub") not in self.clients or not isinstance(c.get("scope"), str):
                return None
        return c


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY a kept
    # connection's second answer waits for the client's delayed ACK (~40 ms).
    disable_nagle_algorithm = True
    server_version = "m8-test-issuer/1"
    sys_version = ""

    def log_message(self, fmt, *args):
        if self.server.issuer.verbose:
            sys.stderr.write("issuer: %s %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self.dispatch()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    # -- plumbing
    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            parts, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise BadRequest(400, "bad chunk")
                if n == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += n
                if total > MAX_BODY:
                    self.close_connection = True
                    raise BadRequest(413, "Request body too large")
                parts.append(self.rfile.read(n))
                self.rfile.readline(1024)
            return b"".join(parts)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        try:
            n = int(cl)
            if n < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            raise BadRequest(400, "bad Content-Length")
        if n > MAX_BODY:
            self.close_connection = True
            raise BadRequest(413, "Request body too large")
        return self.rfile.read(n)

    def send_bytes(self, status, body, ctype="application/json", headers=()):
        self.send_response(status)
        if status not in (204, 304):
            if ctype:
                self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if body and status not in (204, 304):
            self.wfile.write(body)
        self.server.issuer.stats.response(self.target, status)

    def send_json(self, status, obj, headers=()):
        dump = lambda o: json.dumps(o, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        body = dump(obj)
        if self.pad_to and isinstance(obj, dict):
            padded = dict(obj, pad="")
            short = len(dump(padded))
            if self.pad_to > short:
                padded["pad"] = "x" * (self.pad_to - short)
            body = dump(padded)
        self.send_bytes(status, body, "application/json", headers)

    def detail(self, status, text, headers=()):
        self.send_json(status, {"detail": text}, headers)

    def json_body(self, body, required=True):
        if not body.strip():
            if required:
                raise BadRequest(422, [{"type": "missing", "loc": ["body"],
                                        "msg": "Field required", "input": None}])
            return {}
        try:
            v = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise BadRequest(422, [{"type": "json_invalid", "loc": ["body", 0],
                                    "msg": "JSON decode error", "input": {},
                                    "ctx": {"error": str(e)[:80]}}])
        if not isinstance(v, dict):
            raise BadRequest(422, [{"type": "model_attributes_type", "loc": ["body"],
                                    "msg": "Input should be a valid dictionary or object to "
                                           "extract fields from", "input": v}])
        return v

    def hang_up(self, reset=False):
        self.close_connection = True
        try:
            if reset:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            else:
                self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # -- routing
    def dispatch(self):
        iss = self.server.issuer
        self.target = None
        self.pad_to = 0
        self.cut = None
        u = urlsplit(self.path)
        path, query = u.path, parse_qs(u.query)
        p = iss.prefix
        routes = {iss.jwks_path: ("jwks", "GET", self.h_jwks),
                  p + "/jti-status": ("introspection", "POST", self.h_jti_status),
                  p + "/events/stream": ("events", "GET", self.h_events),
                  p + "/service-token": ("token", "POST", self.h_service_token),
                  p + "/api-keys/introspect": ("apikey", "POST", self.h_apikey)}
        if path in routes:
            target, method, fn = routes[path]
        elif path == "/_test" or path.startswith("/_test/"):
            target, method, fn = "control", None, self.h_control
        else:
            target, method, fn = "other", None, None
        self.target = target
        try:
            body = None
            try:
                body = self.read_body()
            finally:
                iss.stats.request(target, self, body)
            if fn is None:
                return self.detail(404, "Not Found")
            if method is not None and self.command != method:
                return self.detail(405, "Method Not Allowed", [("Allow", method)])
            if target in TARGETS and self.request_fault(target):
                return
            fn(body, path, query)
        except BadRequest as e:
            self.detail(e.status, e.detail)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def request_fault(self, target):
        iss = self.server.issuer
        classes = ("conn",) if target == "events" else ("request",)
        f = iss.faults.take(target, classes)
        if f is None:
            return False
        iss.stats.bump("faults_fired", target)
        mode, arg = f
        if mode == "slow":
            time.sleep(arg)
            return False
        if mode == "down":
            self.hang_up()
            return True
        if mode == "status":
            self.fault_status(target, arg)
            return True
        if mode == "malformed":
            self.fault_malformed(target, arg)
            return True
        if mode == "big":
            self.pad_to = arg
            return False
        if mode in ("drop_stream", "end_stream"):
            self.cut = mode
            return False
        return False

    def fault_status(self, target, code):
        if code == 204:
            return self.send_bytes(204, b"")
        if 300 <= code < 400:
            return self.detail(code, "Moved", [("Location", urlsplit(self.path).path + "/moved")])
        headers = []
        text = {401: "Unauthorized", 403: "Forbidden", 500: "Internal Server Error"}.get(code)
        if code == 404:
            text = {"events": "Event stream disabled",
                    "token": "Service-token exchange not enabled"}.get(target, "Not Found")
        elif code == 429:
            text = "Introspection rate limit exceeded"
            headers.append(("Retry-After", "60"))
        elif code == 503:
            text = "Introspection temporarily unavailable"
        self.detail(code, text or "Test fault", headers)

    def fault_malformed(self, target, kind):
        if kind == "json":
            return self.send_bytes(200, b'{"active": tru', "application/json")
        uid = str(uuid.uuid4())
        bodies = {
            "introspection": {
                "schema": {"active": True},
                "version": {"active": True, "user_id": uid, "auth_generation": 1,
                            "schema_version": "3"},
                "subject": {"active": True, "user_id": uid, "auth_generation": 1,
                            "schema_version": "2"},
                "type": {"active": "true", "user_id": uid, "auth_generation": 1,
                         "schema_version": "2"},
                "generation": {"active": True, "user_id": uid, "auth_generation": 0,
                               "schema_version": "2"}},
            "apikey": {
                "schema": {"active": True, "schema_version": "1", "audience_id": "x"},
                "version": {"active": False, "schema_version": "2"},
                "inconsistent": self.apikey_answer(
                    {"role": "superadmin", "is_superuser": False, "user_id": uid,
                     "access_mode": "read_only"}, "x", 1),
                "method": self.apikey_answer(
                    {"role": "reader", "is_superuser": False, "user_id": uid,
                     "access_mode": "read_only"}, "x", 1, method="password")},
            "token": {"schema": {"token_type": "bearer", "expires_in": 60, "scope": ""},
                      "expires": {"access_token": "x.y.z", "token_type": "bearer",
                                  "expires_in": "soon", "scope": "introspection"}},
            "jwks": {"schema": {"keys": "none"}},
        }
        obj = bodies.get(target, {}).get(kind)
        if obj is None:
            return self.send_bytes(200, b"not json at all", "application/json")
        self.send_json(200, obj)

    # -- internal auth (doc/wire.md#private-api-auth)
    def authenticate(self, scope):
        iss = self.server.issuer
        h = self.headers
        authz = h.get("Authorization")
        cid = h.get("X-Internal-Client")
        tok = h.get("X-Internal-Token")
        who = None
        if authz is not None and authz[:7].lower() == "bearer ":
            c = iss.verify_service_token(authz[7:].strip())
            if c is not None:
                who = ("service_token", c["sub"], set(c["scope"].split()))
        elif cid is not None:
            with iss.lock:
                rec = iss.clients.get(cid)
            secret = (tok or "").encode("latin-1", "replace")
            good = check_secret(rec["hash"] if rec else DUMMY_HASH, secret)
            if rec and good and tok:
                who = ("bootstrap", cid, set(rec["scopes"]))
        elif tok is not None:
            with iss.lock:
                legacy = iss.cfg["legacy"]
                lid = iss.cfg["legacy_client_id"]
            if legacy and tok and hmac.compare_digest(tok.encode("latin-1", "replace"),
                                                      iss.private_secret.encode("utf-8")):
                who = ("legacy", lid, set(SCOPES))
        if who is None:
            iss.stats.bump("auth", "refused")
            self.detail(401, "Unauthorized")
            return None
        iss.stats.bump("auth", who[0])
        if scope not in who[2]:
            self.detail(403, "Forbidden")
            return None
        return {"mode": who[0], "consumer": who[1], "scopes": who[2]}

    # -- issuer endpoints
    def h_jwks(self, body, path, query):
        self.send_json(200, self.server.issuer.jwks())

    def h_jti_status(self, body, path, query):
        iss = self.server.issuer
        if self.authenticate("introspection") is None:
            return
        req = self.json_body(body)
        jti = req.get("jti")
        if not isinstance(jti, str):
            raise BadRequest(422, [{"type": "string_type", "loc": ["body", "jti"],
                                    "msg": "Input should be a valid string", "input": jti}])
        expected = req.get("expected_user_id")
        if expected is None:
            return self.send_json(200, {"active": iss.decide(jti, None) is not None})
        if not is_uuid(expected):
            raise BadRequest(422, [{"type": "uuid_parsing", "loc": ["body", "expected_user_id"],
                                    "msg": "Input should be a valid UUID", "input": expected}])
        inactive = {"active": False, "schema_version": "2"}
        if req.get("schema_version") != "2":
            return self.send_json(200, inactive)
        r = iss.decide(jti, expected)
        if r is None:
            return self.send_json(200, inactive)
        self.send_json(200, {"active": True, "user_id": r[0], "auth_generation": r[1],
                             "schema_version": "2"})

    def h_service_token(self, body, path, query):
        iss = self.server.issuer
        with iss.lock:
            enabled = iss.cfg["service_token_exchange"] and bool(iss.clients)
        if not enabled:
            return self.detail(404, "Service-token exchange not enabled")
        cid = self.headers.get("X-Internal-Client")
        tok = self.headers.get("X-Internal-Token")
        with iss.lock:
            rec = iss.clients.get(cid) if cid is not None else None
        good = check_secret(rec["hash"] if rec else DUMMY_HASH,
                            (tok or "").encode("latin-1", "replace"))
        if not (rec and good and tok):
            iss.stats.bump("auth", "refused")
            return self.detail(401, "Unauthorized")
        iss.stats.bump("auth", "bootstrap")
        req = self.json_body(body, required=False)
        scopes = req.get("scopes")
        if scopes is None:
            scopes = []
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise BadRequest(422, [{"type": "list_type", "loc": ["body", "scopes"],
                                    "msg": "Input should be a valid list", "input": scopes}])
        if not scopes or not set(scopes) <= set(rec["scopes"]):
            return self.detail(403, "Forbidden")
        self.send_json(200, iss.mint_service_token(cid, set(scopes)))

    def apikey_answer(self, rec, audience, generation, method="api_key"):
        return {"active": True, "schema_version": "1", "audience_id": audience,
                "principal": {"user_id": rec["user_id"], "role": rec["role"],
                              "is_superuser": rec["is_superuser"],
                              "access_mode": rec["access_mode"],
                              "authentication_method": method,
                              "auth_generation": generation},
                "key_expires_at": rec.get("expires_at")}

    def h_apikey(self, body, path, query):
        iss = self.server.issuer
        who = self.authenticate("api-key-introspection")
        if who is None:
            return
        now = time.time()
        with iss.lock:
            limit = iss.cfg["apikey_rate_limit"]
            if limit:
                w = iss.limiter.setdefault(who["consumer"], [now, 0])
                if now - w[0] >= 60:
                    w[0], w[1] = now, 0
                w[1] += 1
                if w[1] > limit:
                    return self.detail(429, "Introspection rate limit exceeded",
                                       [("Retry-After", "60")])
        req = self.json_body(body)
        key = req.get("api_key")
        if not isinstance(key, str):
            raise BadRequest(422, [{"type": "string_type", "loc": ["body", "api_key"],
                                    "msg": "Input should be a valid string", "input": None}])
        if req.get("schema_version", "1") != "1":
            return self.detail(503, "Introspection temporarily unavailable")
        inactive = {"active": False, "schema_version": "1"}
        with iss.lock:
            rec = iss.apikeys.get(key)
            if rec is None:
                return self.send_json(200, inactive)
            rec = dict(rec)
            owner = iss.users.get(rec["user_id"])
            if rec.get("quota"):
                q = rec["quota"]
                span = PERIODS[q.get("period", "minute")]
                w = iss.quota.setdefault(key, [now, 0])
                if now - w[0] >= span:
                    w[0], w[1] = now, 0
                w[1] += 1
                if w[1] > int(q.get("limit", 0)):
                    ra = max(1, math.ceil(w[0] + span - now))
                    return self.detail(429, "Rate limit exceeded for period: %s" %
                                       q.get("period", "minute"), [("Retry-After", str(ra))])
        if rec.get("status") is not None:
            hdrs = list((rec.get("headers") or {}).items())
            b = rec.get("body")
            if isinstance(b, str):
                return self.send_bytes(int(rec["status"]), b.encode(), "application/json", hdrs)
            return self.send_json(int(rec["status"]), b if b is not None else {}, hdrs)
        state = rec.get("state", "active")
        if state == "rate_limited":
            ra = rec.get("retry_after", "30")
            hdrs = [] if ra is None else [("Retry-After", str(ra))]
            return self.detail(429, "Rate limit exceeded for period: minute", hdrs)
        if state in ("revoked", "expired", "owner_inactive", "owner_missing"):
            return self.send_json(200, inactive)
        if rec.get("expires_at") and parse_iso(rec["expires_at"]) <= now:
            return self.send_json(200, inactive)
        if owner is None or owner["deleted"] or not owner["active"]:
            return self.send_json(200, inactive)
        auds = rec.get("audiences") or ["*"]
        if "*" not in auds and who["consumer"] not in auds:
            return self.send_json(200, inactive)
        gen = rec.get("auth_generation") or owner["generation"]
        ans = self.apikey_answer(rec, rec.get("audience_id") or who["consumer"], gen)
        ans.update(rec.get("override") or {})
        if rec.get("pad"):
            self.pad_to = int(rec["pad"])
        self.send_json(200, ans)

    def h_events(self, body, path, query):
        iss = self.server.issuer
        if self.authenticate("event-stream") is None:
            return
        with iss.lock:
            if not iss.cfg["event_stream"]:
                return self.detail(404, "Event stream disabled")
            max_queue = iss.cfg["max_queue"]
        lei = self.headers.get("Last-Event-ID")
        with iss.stats.lock:
            iss.stats.last_event_ids.append(lei)
            iss.stats.stream_connects.append(time.time())
        sub = Sub(max_queue)
        gap, replay = iss.hub.subscribe(sub, lei)
        self.close_connection = True
        chunked = self.request_version == "HTTP/1.1"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "keep-alive")
            self.send_header("X-Accel-Buffering", "no")
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            iss.stats.response("events", 200)

            def write(data):
                if chunked:
                    data = b"%x\r\n%s\r\n" % (len(data), data)
                self.wfile.write(data)
                self.wfile.flush()

            def end():
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()

            if self.cut:
                self.wfile.flush()
                time.sleep(0.2)  # let the headers arrive before the cut
                return end() if self.cut == "end_stream" else self.hang_up(reset=True)
            if gap:
                write(GAP_FRAME)
            for f in replay:
                write(f)
            idle_since = time.monotonic()
            while True:
                with iss.lock:
                    hb = iss.cfg["heartbeat"]
                wait = max(0.0, min(0.25, idle_since + hb - time.monotonic()))
                item = sub.get(wait)
                silent = iss.faults.active("events", "silent")
                if item is None:
                    if self.peer_gone():
                        return None
                    if time.monotonic() - idle_since >= hb:
                        if not silent:
                            write(PING_FRAME)
                        idle_since = time.monotonic()
                    continue
                idle_since = time.monotonic()
                if item == Sub.END:
                    return end()
                elif item == Sub.DROP:
                    return self.hang_up(reset=True)
                elif not silent:
                    write(item)
        except OSError:
            pass
        finally:
            iss.hub.unsubscribe(sub)
            self.close_connection = True  # send_header("Connection", ...) reset it

    def peer_gone(self):
        """True when the client closed its end (EOF or error on a readable socket)."""
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if not r:
                return False
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- control
    def h_control(self, body, path, query):
        iss = self.server.issuer
        name = path[len("/_test"):].strip("/")
        get = self.command == "GET"
        if name == "" and get:
            return self.send_bytes(200, __doc__.encode(), "text/plain; charset=utf-8")
        if name == "stats" and get:
            return self.send_json(200, self.stats_body())
        if name.startswith("stats/") and get:
            with iss.stats.lock:
                n = iss.stats.requests.get(name[6:])
            if n is None:
                return self.detail(404, "Not Found")
            return self.send_bytes(200, str(n).encode(), "text/plain")
        if name == "ring" and get:
            return self.send_json(200, iss.hub.ring_dump())
        if name == "fault" and get:
            return self.send_json(200, iss.faults.listing())
        if name == "config" and get:
            with iss.lock:
                return self.send_json(200, {k: v for k, v in iss.cfg.items()
                                            if k != "signing_key"})
        fn = CONTROL_POST.get(name)
        if fn is None:
            return self.detail(404, "Not Found")
        if self.command != "POST":
            return self.detail(405, "Method Not Allowed", [("Allow", "POST")])
        req = self.json_body(body, required=False)
        fn(self, iss, req, query)

    def stats_body(self):
        iss = self.server.issuer
        st = iss.stats
        with st.lock:
            out = {"requests": dict(st.requests), "responses": json.loads(json.dumps(st.responses)),
                   "auth": dict(st.auth), "faults_fired": dict(st.faults_fired),
                   "service_tokens_minted": st.service_tokens_minted,
                   "last_event_ids": list(st.last_event_ids),
                   "stream_connects": list(st.stream_connects),
                   "last": json.loads(json.dumps(st.last))}
        with iss.hub.lock:
            out.update(epoch=iss.hub.epoch, seq=iss.hub.seq, events_published=iss.hub.published,
                       streams_open=len(iss.hub.subs))
        return out


def c_mint(h, iss, req, query):
    r = iss.mint(req)
    if query.get("raw"):
        return h.send_bytes(200, r["token"].encode(), "text/plain")
    h.send_json(200, r)


def _flag(req, name, default):
    v = req.get(name, default)
    if not isinstance(v, bool):
        raise BadRequest(422, "%s must be a boolean" % name)
    return v


def c_revoke(h, iss, req, query):
    version = req.get("version")
    emit = _flag(req, "emit", True)
    with iss.lock:
        if req.get("jti") is not None:
            jti = req["jti"]
            if not isinstance(jti, str):
                raise BadRequest(422, "jti must be a string")
            s = iss.sessions.get(jti)
            if s is None:
                if not isinstance(req.get("user_id"), str):
                    raise BadRequest(404, "Unknown jti (give user_id to revoke it anyway)")
                s = iss.sessions[jti] = {"user_id": req["user_id"], "generation": 1,
                                         "exp": None, "revoked": False}
            s["revoked"] = True
            uid = s["user_id"]
            gen = iss.user(uid)["generation"]
            if version == "v2":
                payload = {"event_type": "session.revoked", "version": "v2", "user_id": uid,
                           "jti": jti, "auth_generation": gen,
                           "event_id": "%s:%d:publish:%s" % (uid, gen, jti)}
            else:
                payload = {"event_type": "session.revoked", "version": "v1", "user_id": uid,
                           "jti": jti, "auth_generation": None, "event_id": None}
        elif isinstance(req.get("user_id"), str):
            uid = req["user_id"]
            u = iss.user(uid)
            u["generation"] += 1
            gen = u["generation"]
            if version == "v1":
                payload = {"event_type": "session.revoked", "version": "v1", "user_id": uid,
                           "jti": None, "auth_generation": None, "event_id": None}
            else:
                payload = {"event_type": "session.revoked", "version": "v2", "user_id": uid,
                           "jti": None, "auth_generation": gen,
                           "event_id": "%s:%d:publish:user-wide" % (uid, gen)}
        else:
            raise BadRequest(422, "give jti or user_id")
        iss.save()
    if _flag(req, "omit_nulls", False):
        payload = {k: v for k, v in payload.items() if v is not None}
    ev = iss.emit("session-revoked", payload) if emit else None
    h.send_json(200, {"payload": payload, "event": ev})


def c_delete_user(h, iss, req, query):
    uid = req.get("user_id")
    if not isinstance(uid, str):
        raise BadRequest(422, "user_id must be a string")
    with iss.lock:
        iss.user(uid)["deleted"] = True
        iss.save()
    payload = {"event_type": "user.deleted", "version": "v1", "user_id": uid}
    ev = iss.emit("user-deleted", payload) if _flag(req, "emit", True) else None
    h.send_json(200, {"payload": payload, "event": ev})


def c_user(h, iss, req, query):
    uid = req.get("user_id")
    if not isinstance(uid, str):
        raise BadRequest(422, "user_id must be a string")
    with iss.lock:
        u = iss.user(uid)
        if "is_active" in req:
            u["active"] = _flag(req, "is_active", True)
        if "deleted" in req:
            u["deleted"] = _flag(req, "deleted", False)
        if "generation" in req:
            g = req["generation"]
            if not isinstance(g, int) or isinstance(g, bool) or g < 1:
                raise BadRequest(422, "generation must be an integer >= 1")
            u["generation"] = g
        iss.save()
        h.send_json(200, dict(u, user_id=uid))


def c_event(h, iss, req, query):
    repeat = req.get("repeat", 1)
    if not isinstance(repeat, int) or not (1 <= repeat <= 100000):
        raise BadRequest(422, "repeat must be 1..100000")
    out = []
    for _ in range(repeat):
        if "frame" in req:
            if not isinstance(req["frame"], str):
                raise BadRequest(422, "frame must be a string")
            out.append({"streams": iss.hub.push_raw(req["frame"].encode("utf-8"))})
            continue
        name = req.get("event", "session-revoked")
        if not isinstance(name, str) or "\n" in name or "\r" in name:
            raise BadRequest(422, "event must be a one-line string")
        if name == "gap" and "data" not in req and "payload" not in req:
            out.append({"streams": iss.hub.push_raw(GAP_FRAME)})
            continue
        with_id = _flag(req, "id", True)
        if "data" in req:
            data = req["data"]
            if not isinstance(data, str):
                raise BadRequest(422, "data must be a string")
            make = lambda d=data: d
        else:
            sign = req.get("sign")
            if sign not in (None, "forged", "unsigned"):
                raise BadRequest(422, "sign must be forged or unsigned")
            payload = req.get("payload", {})
            make = lambda p=payload, s=sign: iss.event_data(p, s)
        ev_id, n, t = iss.hub.publish(name, make, with_id)
        out.append({"id": ev_id, "streams": n, "published_at": t})
    h.send_json(200, out[0] if repeat == 1 else out)


def c_epoch(h, iss, req, query):
    h.send_json(200, {"epoch": iss.hub.new_epoch(_flag(req, "keep_streams", False))})


def c_apikey(h, iss, req, query):
    key = req.get("key") or "m8k_" + b64u(os.urandom(24))
    if not isinstance(key, str):
        raise BadRequest(422, "key must be a string")
    with iss.lock:
        if _flag(req, "delete", False):
            iss.apikeys.pop(key, None)
            iss.save()
            return h.send_json(200, {"deleted": key})
        uid = req.get("user_id") or req.get("owner") or str(uuid.uuid4())
        role = req.get("role", "reader")
        state = req.get("state", "active")
        if state not in ("active", "revoked", "expired", "rate_limited", "owner_inactive",
                         "owner_missing"):
            raise BadRequest(422, "unknown state %r" % state)
        caps = req.get("capabilities", req.get("scopes"))
        access_mode = req.get("access_mode")
        if access_mode is None:
            access_mode = "read_write" if isinstance(caps, list) and "write" in caps \
                else "read_only"
        if "expires_in" in req:
            expires_at = iso_utc(time.time() + float(req["expires_in"]))
        else:
            expires_at = req.get("expires_at")
        if state == "expired" and expires_at is None:
            expires_at = iso_utc(time.time() - 60)
        if expires_at is not None:
            try:
                parse_iso(expires_at)
            except (ValueError, AttributeError):
                raise BadRequest(422, "expires_at must be ISO-8601")
        quota = req.get("quota")
        if quota is not None and (not isinstance(quota, dict) or
                                  quota.get("period", "minute") not in PERIODS):
            raise BadRequest(422, "quota wants {limit, period: second|minute|hour|day}")
        rec = {"key": key, "user_id": uid, "role": role,
               "is_superuser": req.get("is_superuser", role == "superadmin"),
               "access_mode": access_mode, "audiences": req.get("audiences") or ["*"],
               "state": state, "expires_at": expires_at,
               "retry_after": req.get("retry_after", "30"), "quota": quota,
               "auth_generation": req.get("auth_generation"),
               "audience_id": req.get("audience_id"), "override": req.get("override"),
               "pad": req.get("pad"), "status": req.get("status"), "body": req.get("body"),
               "headers": req.get("headers")}
        u = iss.user(uid)
        if state == "owner_missing":
            iss.users.pop(uid, None)
        elif state == "owner_inactive":
            u["active"] = False
        iss.apikeys[key] = rec
        iss.quota.pop(key, None)
        iss.save()
    h.send_json(200, rec)


def c_client(h, iss, req, query):
    cid = req.get("client_id")
    if not isinstance(cid, str) or not cid:
        raise BadRequest(422, "client_id must be a non-empty string")
    with iss.lock:
        if _flag(req, "delete", False):
            iss.clients.pop(cid, None)
        else:
            secret = req.get("secret")
            if not isinstance(secret, str):
                raise BadRequest(422, "secret must be a string")
            scopes = req.get("scopes", list(SCOPES))
            iss.clients[cid] = {"hash": hash_secret(secret), "scopes": list(scopes)}
        iss.save()
        h.send_json(200, {"clients": {k: v["scopes"] for k, v in iss.clients.items()}})


def c_revoke_service_tokens(h, iss, req, query):
    with iss.lock:
        n = len(iss.service_jtis)
        iss.revoked_service_jtis |= iss.service_jtis
        iss.service_jtis = set()
    h.send_json(200, {"invalidated": n})


def c_rotate_key(h, iss, req, query):
    kid = iss.rotate(_flag(req, "keep_old", True), _flag(req, "same_kid", False))
    h.send_json(200, {"kid": kid, "jwks": iss.jwks()})


CONFIG_TYPES = {"heartbeat": (int, float), "buffer_size": int, "max_queue": int,
                "token_ttl": int, "service_token_ttl": int, "legacy": bool,
                "event_stream": bool, "service_token_exchange": bool, "mode": str,
                "sign_events": bool, "signing_key": str, "apikey_rate_limit": int,
                "iss": str, "aud": str}


def c_config(h, iss, req, query):
    for k, v in req.items():
        t = CONFIG_TYPES.get(k)
        if t is None:
            raise BadRequest(422, "unknown setting %r" % k)
        if not isinstance(v, t) or (t is not bool and isinstance(v, bool)):
            raise BadRequest(422, "bad value for %s" % k)
        if k == "mode" and v not in ("stateful", "stateless", "hybrid"):
            raise BadRequest(422, "mode is stateful, stateless or hybrid")
        if (k == "heartbeat" and v <= 0) or (k in ("buffer_size", "max_queue") and v < 1):
            raise BadRequest(422, "%s out of range" % k)
    if "buffer_size" in req:
        iss.hub.resize(req["buffer_size"])  # not under iss.lock: publish takes hub, then iss
    with iss.lock:
        iss.cfg.update(req)
        if "signing_key" in req:
            write_atomic(os.path.join(iss.dir, "event_signing.key"), req["signing_key"])
        cfg = {k: v for k, v in iss.cfg.items() if k != "signing_key"}
    h.send_json(200, cfg)


def c_fault(h, iss, req, query):
    target = req.get("target")
    if target not in TARGETS + ("private", "all"):
        raise BadRequest(422, "target is one of %s, private, all" % ", ".join(TARGETS))
    mode, arg = parse_mode(req.get("mode"))
    count = req.get("count")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise BadRequest(422, "count must be an integer >= 0")
    if mode in STREAM_ONLY and target != "events":
        raise BadRequest(422, "mode %s applies to target events only" % mode)
    cut = 0
    if mode in ("drop_stream", "end_stream"):
        cut = iss.hub.stop_all(Sub.DROP if mode == "drop_stream" else Sub.END)
        count = count or 0
    iss.faults.set(target, mode, arg, count)
    h.send_json(200, {"faults": iss.faults.listing(), "streams_cut": cut})


def c_reset_stats(h, iss, req, query):
    with iss.stats.lock:
        iss.stats.reset()
    h.send_json(200, {"reset": True})


CONTROL_POST = {"mint": c_mint, "revoke": c_revoke, "delete_user": c_delete_user,
                "user": c_user, "event": c_event, "epoch": c_epoch, "apikey": c_apikey,
                "client": c_client, "revoke_service_tokens": c_revoke_service_tokens,
                "rotate_key": c_rotate_key, "config": c_config, "fault": c_fault,
                "reset_stats": c_reset_stats}


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        if self.issuer.verbose:
            super().handle_error(request, client_address)


def serve(args):
    d = args.dir
    os.makedirs(d, exist_ok=True)
    iss = Issuer(args)
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.issuer = iss
    base = "http://127.0.0.1:%d" % srv.server_address[1]
    p = base + iss.prefix
    urls = {"base": base, "jwks": base + iss.jwks_path, "introspection": p + "/jti-status",
            "events": p + "/events/stream", "service_token": p + "/service-token",
            "apikey": p + "/api-keys/introspect", "control": base + "/_test",
            "public_key_file": os.path.join(d, "access_key.pub") if iss.key else None,
            "event_signing_key_file": os.path.join(d, "event_signing.key"),
            "alg": iss.alg, "kid": iss.kid, "iss": iss.cfg["iss"], "aud": iss.cfg["aud"],
            "prefix": iss.prefix, "pid": os.getpid()}
    write_atomic(os.path.join(d, "urls.json"), json.dumps(urls, indent=1) + "\n")
    parent = os.getppid()

    def shutdown(*_):
        iss.hub.stop_all(Sub.END)
        time.sleep(0.2)
        os._exit(0)

    def watch_parent():
        while True:
            if os.getppid() != parent:
                shutdown()
            time.sleep(0.2)

    signal.signal(signal.SIGTERM, shutdown)
    threading.Thread(target=watch_parent, daemon=True).start()
    write_atomic(os.path.join(d, "port"), str(srv.server_address[1]))
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


def main(argv):
    ap = argparse.ArgumentParser(prog="issuer.py", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sp = ap.add_subparsers(dest="cmd")
    s = sp.add_parser("serve", help="run the issuer (see above)",
                      description="Every option, endpoint, control and fault: issuer.py --help")
    s.add_argument("dir")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--key-alg", choices=("RS256", "ES256", "HS256"))
    s.add_argument("--kid")
    s.add_argument("--access-secret", default=DEFAULT_ACCESS_SECRET)
    s.add_argument("--iss", default="https://auth.example.com")
    s.add_argument("--aud", default="item-service")
    s.add_argument("--prefix", default="/private/v1")
    s.add_argument("--jwks-path", default="/.well-known/jwks.json")
    s.add_argument("--private-secret", default=DEFAULT_PRIVATE_SECRET)
    s.add_argument("--client", action="append", default=[])
    s.add_argument("--client-scopes", action="append", default=[])
    s.add_argument("--no-legacy", action="store_true")
    s.add_argument("--event-signing-key", default=DEFAULT_EVENT_KEY)
    s.add_argument("--event-signing-key-file")
    s.add_argument("--no-event-signing", action="store_true")
    s.add_argument("--heartbeat", type=float, default=15.0)
    s.add_argument("--buffer-size", type=int, default=256)
    s.add_argument("--max-queue", type=int, default=64)
    s.add_argument("--token-ttl", type=int, default=1800)
    s.add_argument("--service-token-ttl", type=int, default=300)
    s.add_argument("--mode", choices=("stateful", "stateless", "hybrid"), default="stateful")
    s.add_argument("--no-event-stream", action="store_true")
    s.add_argument("--no-service-token", action="store_true")
    s.add_argument("--apikey-rate-limit", type=int, default=0)
    s.add_argument("--fresh", action="store_true")
    s.add_argument("--verbose", action="store_true")
    c = sp.add_parser("canon", help="canonical JSON of stdin (doc/wire.md#canonical-json)")
    c.add_argument("--sign", metavar="KEY")
    sp.add_parser("vectors", help="check the canonical writer (TAP)")
    args = ap.parse_args(argv[1:])
    if args.cmd == "serve":
        if args.heartbeat <= 0 or args.buffer_size < 1 or args.max_queue < 1:
            ap.error("--heartbeat > 0, --buffer-size >= 1 and --max-queue >= 1")
        serve(args)
        return 0
    if args.cmd == "canon":
        value = json.loads(sys.stdin.buffer.read())
        out = sign_payload(args.sign, value) if args.sign is not None else canonical(value)
        sys.stdout.write(out)
        return 0
    if args.cmd == "vectors":
        return run_vectors()
    ap.print_help(sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
