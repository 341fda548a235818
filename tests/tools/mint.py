#!/usr/bin/python3
"""mint.py OUTDIR NOW - test keys and tokens for tests/unit/test_jwt.c, made
independently of fcgi-m8: PyJWT (python3-jwt 2.6), python3-cryptography, the
openssl command, and hand-built JWS for what PyJWT refuses to produce.

mint.py catalogue KEYDIR ISS AUD - the adversarial catalogue that
tests/integration/t_auth.sh sends through nginx and fcgim8-token verify,
for the current time; see catalogue() below.

Writes into OUTDIR:
  *.pem / *.pub      keys (openssl genpkey and python3-cryptography)
  hs.secret          the HS256 secret
  tokens.tsv         NAME<TAB>TOKEN, one a line
  jwks.tsv           NAME<TAB>JWK-JSON, one a line
Claims are relative to NOW (seconds since the epoch).  The issuer is ISS,
the audience AUD (see below); the C test uses the same values."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISS = "https://auth.example.com"
AUD = "item-service"
SECRET = b"AuthSdkM8-Fixture_TrustedTestKey-2026-DoNotUseInProd!"
SUB = "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d"
TENANT = "5d3c2b1a-0f9e-4d8c-b7a6-958473625140"
JTI = "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c"
DROP = object()  # claims(name=DROP) removes the claim


def path(name):
    return os.path.join(out, name)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def compact(obj):
    if isinstance(obj, (bytes, str)):
        return obj.encode() if isinstance(obj, str) else obj
    return json.dumps(obj, separators=(",", ":")).encode()


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def load_priv(name):
    with open(path(name), "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def write_pub(name, priv):
    with open(path(name), "wb") as f:
        f.write(priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def write_priv(name, priv):
    with open(path(name), "wb") as f:
        f.write(priv.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption()))


# ---- the adversarial catalogue for t_auth.sh -------------------------------
def catalogue(keydir, iss, aud):
    """Prints BACKEND<TAB>NAME<TAB>REASON<TAB>TOKEN lines, one per token.
    BACKEND is the t_auth.sh service that must refuse it: R (RS256 from
    rsa.pem, strict, iss/aud), E (ES256 from ec.pem, strict, iss/aud), H
    (HS256 with hs.secret, permissive, AUTH_INVALID_TOKEN_STATUS=403), J
    (RS256 from a JWKS with kid k1 = rsa.pem and k2 = rsa2.pem).  REASON is
    what `fcgim8-token verify` prints after "invalid: " (doc/wire.md#failure-reasons)."""
    import time
    import uuid

    now = int(time.time())

    def key(name):
        with open(os.path.join(keydir, name), "rb") as f:
            return f.read()

    rsa_k = serialization.load_pem_private_key(key("rsa.pem"), None)
    rsa2_k = serialization.load_pem_private_key(key("rsa2.pem"), None)
    ec_k = serialization.load_pem_private_key(key("ec.pem"), None)
    rsa_other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p384_k = ec.generate_private_key(ec.SECP384R1())
    k256_k = ec.generate_private_key(ec.SECP256K1())
    rsa_pub_pem = key("rsa.pub")
    secret = key("hs.secret")
    lines = []

    def good(**over):
        c = {"sub": str(uuid.uuid4()), "type": "access", "email": "mallory@example.com",
             "full_name": None, "avatar": None, "is_active": True, "email_verified": True,
             "is_superuser": False, "role": "user", "tenant_id": None, "exp": now + 600,
             "iat": now, "nbf": now, "jti": str(uuid.uuid4()), "iss": iss, "aud": aud}
        for k, v in over.items():
            if v is DROP:
                c.pop(k, None)
            else:
                c[k] = v
        return c

    def jws(header, payload, signer):
        si = (b64(compact(header)) + "." + b64(compact(payload))).encode()
        return si.decode() + "." + b64(signer(si))

    def hs(k=secret):
        return lambda si: hmac.new(k, si, hashlib.sha256).digest()

    def rs(k=rsa_k, h=hashes.SHA256(), pss=False):
        if pss:
            return lambda si: k.sign(si, padding.PSS(padding.MGF1(h), 32), h)
        return lambda si: k.sign(si, padding.PKCS1v15(), h)

    def es(k=ec_k, der=False, h=hashes.SHA256()):
        def f(si):
            sig = k.sign(si, ec.ECDSA(h))
            if der:
                return sig
            r, s_ = decode_dss_signature(sig)
            n = (k.curve.key_size + 7) // 8
            return r.to_bytes(n, "big") + s_.to_bytes(n, "big")
        return f

    def add(backend, name, reason, token):
        assert "\t" not in name and "\t" not in token and "\n" not in token
        lines.append("\t".join((backend, name, reason, token)))

    def r(name, reason, **over):
        """An R token from PyJWT with claims changed by over."""
        add("R", name, reason, jwt.encode(good(**over), rsa_k, algorithm="RS256"))

    RS = {"alg": "RS256", "typ": "JWT"}
    ok_r = jwt.encode(good(), rsa_k, algorithm="RS256")
    h_, p_, s_ = ok_r.split(".")

    # algorithm
    for alg in ("none", "None", "NONE", ""):
        add("R", 'alg "%s", empty signature' % alg, "invalid",
            jws({"alg": alg, "typ": "JWT"}, good(), lambda si: b""))
    add("R", "alg none with a valid RS256 signature", "invalid",
        jws({"alg": "none"}, good(), rs()))
    add("R", "no alg header, valid RS256 signature", "invalid", jws({"typ": "JWT"}, good(), rs()))
    add("R", "alg rs256 (case-sensitive), valid signature", "invalid",
        jws({"alg": "rs256"}, good(), rs()))
    add("R", "HS256 signed with the RSA public key PEM", "invalid",
        jws({"alg": "HS256", "typ": "JWT"}, good(), hs(rsa_pub_pem)))
    add("R", "RS512 under the RS256 pin (same key)", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS512"))
    add("R", "PS256 under the RS256 pin (same key)", "invalid",
        jwt.encode(good(), rsa_k, algorithm="PS256"))
    add("R", "HS256 token under the RS256 pin", "invalid",
        jwt.encode(good(), secret, algorithm="HS256"))
    add("R", "RS256 signed by another key", "invalid",
        jwt.encode(good(), rsa_other, algorithm="RS256"))
    add("E", "ES256 header, signed on P-384", "invalid", jws({"alg": "ES256"}, good(), es(p384_k)))
    add("E", "ES256 header, signed on secp256k1", "invalid",
        jws({"alg": "ES256"}, good(), es(k256_k)))
    add("E", "ES256 with a DER signature", "invalid", jws({"alg": "ES256"}, good(), es(der=True)))
    add("E", "ES384 under the ES256 pin", "invalid", jwt.encode(good(), p384_k, algorithm="ES384"))
    add("E", "RS256 token under the ES256 pin", "invalid", ok_r)
    add("H", "alg none under HS256 (403 status)", "invalid",
        jws({"alg": "none"}, good(), lambda si: b""))
    add("H", "HS256 signed with another secret (403 status)", "invalid",
        jwt.encode(good(), secret + b"x", algorithm="HS256"))
    add("H", "HS512 under the HS256 pin (403 status)", "invalid",
        jwt.encode(good(), secret, algorithm="HS512"))
    # kid
    add("J", "kid unknown to the JWKS", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256", headers={"kid": "k-unknown"}))
    add("R", "kid of 257 bytes", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256", headers={"kid": "k" * 257}))
    add("J", "kid with path characters (../../etc/passwd)", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256", headers={"kid": "../../etc/passwd"}))
    add("J", "kid with URL characters (k1/../k1?x=%00#)", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256", headers={"kid": "k1/../k1?x=%00#"}))
    add("J", "no kid against a JWKS of two keys", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256"))
    add("J", "kid k2 but signed by the key of k1", "invalid",
        jwt.encode(good(), rsa_k, algorithm="RS256", headers={"kid": "k2"}))
    add("R", "kid a number", "invalid", jws({"alg": "RS256", "kid": 7}, good(), rs()))
    # header
    add("R", "crit header", "invalid", jws({"alg": "RS256", "crit": ["exp"], "exp": 1}, good(), rs()))
    add("R", "b64 false header", "invalid", jws({"alg": "RS256", "b64": False}, good(), rs()))
    add("R", "header not JSON", "invalid", jws(b"{alg:RS256}", good(), rs()))
    add("R", "header a JSON array", "invalid", jws(b'["alg","RS256"]', good(), rs()))
    add("R", "duplicate header key alg (RS256, then none)", "invalid",
        jws(b'{"alg":"RS256","alg":"none"}', good(), rs()))
    add("R", "header nesting bomb (600 objects)", "invalid",
        jws(b'{"alg":"RS256","a":' + b'{"a":' * 600 + b"1" + b"}" * 601, good(), rs()))
    # structure
    add("R", "truncated signature", "invalid", ok_r[:-10])
    add("R", "altered signature", "invalid", ok_r[:-5] + ("A" if ok_r[-5] != "A" else "B") + ok_r[-4:])
    add("R", "altered payload", "invalid",
        h_ + "." + b64(compact(good(role="admin"))) + "." + s_)
    add("R", "empty signature", "invalid", h_ + "." + p_ + ".")
    add("R", "extra dot and part", "invalid", ok_r + ".e30")
    add("R", "extra trailing dot", "invalid", ok_r + ".")
    add("R", "missing dot (two parts)", "invalid", h_ + "." + p_ + s_)
    add("R", "header only", "invalid", h_)
    add("R", "bad base64url ('+' and '/')", "invalid",
        h_ + "." + p_[:5] + "+/" + p_[7:] + "." + s_)
    add("R", "base64 '=' padding on the signature", "invalid", ok_r + "==")
    add("R", "payload not JSON", "invalid", jws(RS, b"exp=1", rs()))
    add("R", "payload nesting bomb (2000 arrays)", "invalid",
        jws(RS, b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}", rs()))
    base = json.dumps(good(), separators=(",", ":"))
    add("R", "duplicate claim role (user, then superadmin)", "invalid",
        jws(RS, (base[:-1] + ',"role":"superadmin"}').encode(), rs()))
    add("R", "duplicate claim exp", "invalid",
        jws(RS, (base[:-1] + ',"exp":%d}' % (now + 99999)).encode(), rs()))
    # claims
    r("exp missing", "invalid", exp=DROP)
    r("exp a string", "invalid", exp=str(now + 600))
    r("exp null", "invalid", exp=None)
    r("exp an hour ago", "expired", exp=now - 3600)
    r("nbf 5 minutes ahead", "invalid", nbf=now + 300)
    r("iat 60 s ahead (past the 2 s leeway)", "invalid", iat=now + 60)
    r("iss another issuer", "invalid", iss="https://evil.example.com")
    r("iss with a trailing slash", "invalid", iss=iss + "/")
    r("iss missing (strict)", "invalid", iss=DROP)
    r("aud another audience", "invalid", aud="other-service")
    r("aud list without ours", "invalid", aud=["a", "b"])
    r("aud missing (strict)", "invalid", aud=DROP)
    r("type refresh", "wrong_type", type="refresh")
    r("type missing", "invalid", type=DROP)
    r("jti missing", "invalid", jti=DROP)
    r("role admin with is_superuser true", "inconsistent_privilege_claims", role="admin",
      is_superuser=True)
    r("role superadmin with is_superuser false", "inconsistent_privilege_claims",
      role="superadmin", is_superuser=False)
    r("sub not a UUID", "invalid_payload", sub="user-42")
    r("email not an address", "invalid_payload", email="not-an-email")
    r("role unknown (root)", "invalid_payload", role="root")
    add("H", "HS256 expired past the 5 s leeway (403 status)", "expired",
        jwt.encode(good(exp=now - 60), secret, algorithm="HS256"))
    print("\n".join(lines))


if len(sys.argv) >= 2 and sys.argv[1] == "catalogue":
    catalogue(*sys.argv[2:5])
    sys.exit(0)

out = sys.argv[1]
NOW = int(sys.argv[2])
tokens = []
jwks = []


# ---- keys -----------------------------------------------------------------
openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out",
        path("rsa_ossl.pem"))
openssl("pkey", "-in", path("rsa_ossl.pem"), "-pubout", "-out", path("rsa_ossl.pub"))
openssl("genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:4096", "-out",
        path("rsa4096.pem"))
openssl("pkey", "-in", path("rsa4096.pem"), "-pubout", "-out", path("rsa4096.pub"))
openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out",
        path("ec_ossl.pem"))
openssl("pkey", "-in", path("ec_ossl.pem"), "-pubout", "-out", path("ec_ossl.pub"))
for curve, name in (("P-384", "p384"), ("secp256k1", "k256")):
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:" + curve, "-out",
            path(name + ".pem"))
    openssl("pkey", "-in", path(name + ".pem"), "-pubout", "-out", path(name + ".pub"))

rsa_py = rsa.generate_private_key(public_exponent=65537, key_size=2048)
write_priv("rsa_py.pem", rsa_py)
write_pub("rsa_py.pub", rsa_py)
rsa1024 = rsa.generate_private_key(public_exponent=65537, key_size=1024)
write_pub("rsa1024.pub", rsa1024)
ec_py = ec.generate_private_key(ec.SECP256R1())
write_priv("ec_py.pem", ec_py)
write_pub("ec_py.pub", ec_py)
with open(path("hs.secret"), "wb") as f:
    f.write(SECRET)

rsa_ossl = load_priv("rsa_ossl.pem")
rsa4096 = load_priv("rsa4096.pem")
ec_ossl = load_priv("ec_ossl.pem")
p384 = load_priv("p384.pem")
k256 = load_priv("k256.pem")
with open(path("rsa_ossl.pub"), "rb") as f:
    RSA_PUB_PEM = f.read()


# ---- signers (hand-built JWS) --------------------------------------------
def sign_hs(key=SECRET):
    return lambda si: hmac.new(key, si, hashlib.sha256).digest()


def sign_rs(priv, h=hashes.SHA256()):
    return lambda si: priv.sign(si, padding.PKCS1v15(), h)


def sign_es(priv, raw=True, h=hashes.SHA256()):
    def f(si):
        der = priv.sign(si, ec.ECDSA(h))
        if not raw:
            return der
        r, s = decode_dss_signature(der)
        n = (priv.curve.key_size + 7) // 8
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")
    return f


def raw(header, payload, signer):
    si = (b64(compact(header)) + "." + b64(compact(payload))).encode()
    return si.decode() + "." + b64(signer(si))


def add(name, token):
    assert "\t" not in token and "\n" not in token
    tokens.append((name, token))


def claims(**over):
    c = {
        "sub": SUB, "type": "access", "email": "alice@example.com", "full_name": "Alice",
        "avatar": None, "is_active": True, "email_verified": True, "is_superuser": False,
        "role": "writer", "tenant_id": TENANT, "exp": NOW + 1800, "iat": NOW, "nbf": NOW,
        "jti": JTI, "iss": ISS, "aud": AUD,
    }
    for k, v in over.items():
        if v is DROP:
            c.pop(k, None)
        else:
            c[k] = v
    return c


HS = {"alg": "HS256", "typ": "JWT"}


def hs_claims(name, **over):
    """An HS256 token from PyJWT with claims changed by over."""
    add(name, jwt.encode(claims(**over), SECRET, algorithm="HS256"))


# ---- interoperability: valid tokens --------------------------------------
add("hs256_pyjwt", jwt.encode(claims(), SECRET, algorithm="HS256"))
add("rs256_pyjwt_pykey", jwt.encode(claims(), rsa_py, algorithm="RS256",
                                    headers={"kid": "rsa-py"}))
add("rs256_pyjwt_osslkey", jwt.encode(claims(), rsa_ossl, algorithm="RS256",
                                      headers={"kid": "rsa-ossl"}))
add("rs256_pyjwt_4096", jwt.encode(claims(), rsa4096, algorithm="RS256"))
add("es256_pyjwt_pykey", jwt.encode(claims(), ec_py, algorithm="ES256",
                                    headers={"kid": "ec-py"}))
add("es256_pyjwt_osslkey", jwt.encode(claims(), ec_ossl, algorithm="ES256"))


def openssl_dgst(key_file, header, payload, der_to_raw=False):
    si = (b64(compact(header)) + "." + b64(compact(payload))).encode()
    with open(path("si.bin"), "wb") as f:
        f.write(si)
    openssl("dgst", "-sha256", "-sign", path(key_file), "-out", path("sig.bin"), path("si.bin"))
    with open(path("sig.bin"), "rb") as f:
        sig = f.read()
    if der_to_raw:
        r, s = decode_dss_signature(sig)
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    os.unlink(path("si.bin"))
    os.unlink(path("sig.bin"))
    return si.decode() + "." + b64(sig)


add("rs256_openssl_dgst", openssl_dgst("rsa_ossl.pem", {"alg": "RS256", "typ": "JWT"}, claims()))
add("es256_openssl_dgst", openssl_dgst("ec_ossl.pem", {"alg": "ES256", "typ": "JWT"}, claims(),
                                       der_to_raw=True))
# The authorization-matrix shape (doc/design.md#testing): no iss/aud/iat/nbf, valid only permissively.
add("hs256_permissive", jwt.encode(claims(iss=DROP, aud=DROP, iat=DROP, nbf=DROP), SECRET,
                                   algorithm="HS256"))
hs_claims("email_trim", email="  Alice.Smith@Example.COM ")
hs_claims("superadmin_ok", role="superadmin", is_superuser=True)
hs_claims("aud_list_ours", aud=["other", AUD])
hs_claims("exp_double_whole", exp=float(NOW + 1800))
hs_claims("times_double", iat=NOW + 0.9, nbf=NOW + 0.5)
hs_claims("tenant_null", tenant_id=None, full_name=None)
hs_claims("defaults", role=DROP, is_active=DROP, email_verified=DROP, is_superuser=DROP,
          full_name=DROP, avatar=DROP, tenant_id=DROP)
hs_claims("inactive", is_active=False)
hs_claims("uuid_upper", sub=SUB.upper())
hs_claims("exp_in_leeway", exp=NOW - 1)
hs_claims("nbf_in_leeway", nbf=NOW + 2)
hs_claims("iat_in_leeway", iat=NOW + 2)
add("kid_256", jwt.encode(claims(), SECRET, algorithm="HS256", headers={"kid": "k" * 256}))

# ---- adversarial: algorithm ----------------------------------------------
for name, alg in (("alg_none", "none"), ("alg_None", "None"), ("alg_NONE", "NONE"),
                  ("alg_empty", "")):
    add(name, raw({"alg": alg, "typ": "JWT"}, claims(), lambda si: b""))
add("alg_missing", raw({"typ": "JWT"}, claims(), sign_hs()))
add("alg_none_hmac", raw({"alg": "none"}, claims(), sign_hs()))
add("alg_lowercase", raw({"alg": "hs256"}, claims(), sign_hs()))
add("alg_number", raw({"alg": 256}, claims(), sign_hs()))
# HS/RS confusion: the RSA public key PEM as the HMAC secret.
add("hs256_rsa_pem_secret", raw(HS, claims(), sign_hs(RSA_PUB_PEM)))
add("rs512", jwt.encode(claims(), rsa_ossl, algorithm="RS512"))
add("ps256", jwt.encode(claims(), rsa_ossl, algorithm="PS256"))
add("hs512", jwt.encode(claims(), SECRET, algorithm="HS512"))
add("es384", jwt.encode(claims(), p384, algorithm="ES384"))
add("es256_on_p384", raw({"alg": "ES256"}, claims(), sign_es(p384)))
add("es256_on_k256", raw({"alg": "ES256"}, claims(), sign_es(k256)))
add("es256_der", raw({"alg": "ES256"}, claims(), sign_es(ec_ossl, raw=False)))
add("rs256_as_es256", raw({"alg": "ES256"}, claims(), sign_rs(rsa_ossl)))
add("rs256_other_key", jwt.encode(claims(), rsa_py, algorithm="RS256"))
add("es256_other_key", jwt.encode(claims(), ec_py, algorithm="ES256"))
add("hs256_other_secret", jwt.encode(claims(), SECRET + b"x", algorithm="HS256"))

# ---- adversarial: header -------------------------------------------------
add("kid_number", raw({"alg": "HS256", "kid": 7}, claims(), sign_hs()))
add("kid_huge", raw({"alg": "HS256", "kid": "k" * 257}, claims(), sign_hs()))
add("kid_null", raw({"alg": "HS256", "kid": None}, claims(), sign_hs()))
add("crit_exp", raw({"alg": "HS256", "crit": ["exp"], "exp": 1}, claims(), sign_hs()))
add("crit_b64", raw({"alg": "HS256", "crit": ["b64"], "b64": False}, claims(), sign_hs()))
add("crit_empty", raw({"alg": "HS256", "crit": []}, claims(), sign_hs()))
add("b64_false", raw({"alg": "HS256", "b64": False}, claims(), sign_hs()))
add("b64_true", raw({"alg": "HS256", "b64": True}, claims(), sign_hs()))
add("header_not_json", raw(b"{alg:HS256}", claims(), sign_hs()))
add("header_array", raw(b'["alg","HS256"]', claims(), sign_hs()))
add("header_trailing", raw(b'{"alg":"HS256"}x', claims(), sign_hs()))
add("header_two_objects", raw(b'{"alg":"HS256"}{}', claims(), sign_hs()))
add("header_dup_alg", raw(b'{"alg":"HS256","alg":"none"}', claims(), sign_hs()))
add("header_dup_nested", raw(b'{"alg":"HS256","x":{"a":1,"a":2}}', claims(), sign_hs()))
add("header_trailing_ws", raw(b'{"alg":"HS256"} \n', claims(), sign_hs()))

# ---- adversarial: payload ------------------------------------------------
base = claims()
dup = json.dumps(base, separators=(",", ":"))[:-1] + ',"role":"superadmin"}'
add("payload_dup_role", raw(HS, dup.encode(), sign_hs()))
dup = json.dumps(base, separators=(",", ":"))[:-1] + ',"exp":' + str(NOW + 99999) + "}"
add("payload_dup_exp", raw(HS, dup.encode(), sign_hs()))
add("payload_dup_escaped", raw(HS, json.dumps(base, separators=(",", ":"))[:-1].encode() +
                               b',"r\\u006fle":"admin"}', sign_hs()))
add("payload_array", raw(HS, b"[1,2]", sign_hs()))
add("header_single_quotes", raw(b"{'alg':'HS256'}", claims(), sign_hs()))
add("payload_single_quotes", raw(HS, b"{'x':1," + compact(claims())[1:], sign_hs()))
hs_claims("full_name_apostrophe", full_name="O'Brien: \"Al\" {x}")
add("payload_control_char", raw(HS, compact(claims(full_name="A\tB")).replace(b"\\t", b"\t"),
                                sign_hs()))
add("exp_nan", raw(HS, compact(claims()).replace(b'"exp":%d' % (NOW + 1800), b'"exp":NaN'),
                   sign_hs()))
add("exp_infinity", raw(HS, compact(claims()).replace(b'"exp":%d' % (NOW + 1800), b'"exp":1e400'),
                        sign_hs()))
add("exp_far_future", raw(HS, compact(claims()).replace(b'"exp":%d' % (NOW + 1800),
                                                        b'"exp":99999999999999999999'), sign_hs()))
add("payload_not_json", raw(HS, b"exp=1", sign_hs()))
add("payload_trailing", raw(HS, compact(base) + b"]", sign_hs()))

hs_claims("exp_missing", exp=DROP)
hs_claims("exp_string", exp=str(NOW + 1800))
hs_claims("exp_null", exp=None)
hs_claims("exp_bool", exp=True)
hs_claims("exp_at_leeway", exp=NOW - 2)
hs_claims("exp_past", exp=NOW - 3600)
hs_claims("perm_exp_at_leeway", exp=NOW - 5)
hs_claims("perm_exp_in_leeway", exp=NOW - 4)
hs_claims("perm_nbf_in_leeway", nbf=NOW + 5)
hs_claims("perm_nbf_future", nbf=NOW + 6)
hs_claims("exp_fraction", exp=NOW + 1800.5)
hs_claims("nbf_future", nbf=NOW + 3)
hs_claims("nbf_string", nbf=str(NOW))
hs_claims("iat_future", iat=NOW + 3)
hs_claims("iat_null", iat=None)
hs_claims("iat_missing", iat=DROP)
hs_claims("nbf_missing", nbf=DROP)
hs_claims("immature_and_expired", nbf=NOW + 60, exp=NOW - 60)
hs_claims("iss_mismatch", iss="https://evil.example.com")
hs_claims("iss_slash", iss=ISS + "/")
hs_claims("iss_missing", iss=DROP)
hs_claims("iss_list", iss=[ISS])
hs_claims("aud_mismatch", aud="other-service")
hs_claims("aud_list_without", aud=["a", "b"])
hs_claims("aud_empty_list", aud=[])
hs_claims("aud_empty_string", aud="")
hs_claims("aud_list_number", aud=[AUD, 7])
hs_claims("aud_missing", aud=DROP)
hs_claims("sub_missing", sub=DROP)
hs_claims("sub_number", sub=12345)
hs_claims("jti_number", jti=12345)
hs_claims("jti_missing", jti=DROP)
hs_claims("type_refresh", type="refresh")
hs_claims("type_Access", type="Access")
hs_claims("type_missing", type=DROP)
hs_claims("superadmin_no_flag", role="superadmin", is_superuser=False)
hs_claims("admin_superuser", role="admin", is_superuser=True)
hs_claims("user_superuser", role="user", is_superuser=True)
hs_claims("sub_not_uuid", sub="user-42")
hs_claims("sub_uuid_nohyphen", sub=SUB.replace("-", ""))
hs_claims("email_invalid", email="not-an-email")
hs_claims("email_two_at", email="a@b@example.com")
hs_claims("email_no_tld", email="alice@localhost")
hs_claims("email_missing", email=DROP)
hs_claims("email_numeric_tld", email="alice@example.123")
hs_claims("email_test_domain", email="alice@corp.test")
hs_claims("email_double_dot", email="alice..smith@example.com")
hs_claims("email_leading_dot", email=".alice@example.com")
hs_claims("email_hyphen_label", email="alice@-example.com")
hs_claims("email_space", email="alice smith@example.com")
hs_claims("email_local_65", email="a" * 65 + "@example.com")
hs_claims("email_local_64", email="a" * 64 + "@example.com")
hs_claims("email_plus_tag", email="alice+tag@mail.example.co.uk")
hs_claims("email_unicode", email="jos\u00e9@exampl\u00e9.com")
hs_claims("email_null", email=None)
hs_claims("role_unknown", role="root")
hs_claims("role_upper", role="Admin")
hs_claims("role_null", role=None)
hs_claims("is_active_string", is_active="true")
hs_claims("is_superuser_int", is_superuser=1)
hs_claims("tenant_not_uuid", tenant_id="acme")
hs_claims("full_name_number", full_name=7)
hs_claims("avatar_object", avatar={"url": "x"})
hs_claims("invalid_email_and_inconsistent", email="nope", role="admin", is_superuser=True)


# ---- limits --------------------------------------------------------------
def exact(obj, n):
    """obj as compact JSON of exactly n bytes, padded with a "pad" member."""
    obj = dict(obj)
    obj["pad"] = ""
    short = len(compact(obj))
    assert short <= n, (short, n)
    obj["pad"] = "p" * (n - short)
    text = compact(obj)
    assert len(text) == n
    return text


def nested(obj, depth):
    """obj with a chain of objects so that the whole is depth levels deep."""
    obj = dict(obj)
    inner = {}
    for _ in range(depth - 2):
        inner = {"d": inner}
    obj["deep"] = inner
    return obj


add("header_4096", raw(exact(HS, 4096), claims(), sign_hs()))
add("header_4097", raw(exact(HS, 4097), claims(), sign_hs()))
add("payload_4096", raw(HS, exact(claims(), 4096), sign_hs()))
add("payload_4097", raw(HS, exact(claims(), 4097), sign_hs()))
add("header_depth_8", raw(nested(HS, 8), claims(), sign_hs()))
add("header_depth_9", raw(nested(HS, 9), claims(), sign_hs()))
add("payload_depth_8", raw(HS, nested(claims(), 8), sign_hs()))
add("payload_depth_9", raw(HS, nested(claims(), 9), sign_hs()))
# Depth bombs that fit the part size (4006 bytes decoded).
add("depth_bomb", raw(HS, b'{"a":' + b"[" * 2000 + b"]" * 2000 + b"}", sign_hs()))
add("header_depth_bomb", raw(b'{"alg":"HS256","a":' + b"{\"a\":" * 600 + b"1" + b"}" * 601,
                             claims(), sign_hs()))
# Whole-token size: header 3000 B (4000 chars) + payload 3110 B (4147 chars)
# + 43 signature chars + 2 dots = 8192; one more payload byte = 8193.
t = raw(exact(HS, 3000), exact(claims(), 3110), sign_hs())
assert len(t) == 8192, len(t)
add("token_8192", t)
t = raw(exact(HS, 3000), exact(claims(), 3111), sign_hs())
assert len(t) == 8193, len(t)
add("token_8193", t)

# ---- JWKs ----------------------------------------------------------------
def jwk(name, obj):
    jwks.append((name, json.dumps(obj, separators=(",", ":"))))


def ec_to_jwk(key):
    """PyJWT's to_jwk with x, y (and d) at the curve's full length: RFC 7518
    6.2.1.2; PyJWT 2.6 drops leading zero bytes (about one key in 128),
    which the strict loader refuses."""
    j = json.loads(ECAlgorithm.to_jwk(key))
    pub = key.public_key() if hasattr(key, "private_numbers") else key
    n = (pub.curve.key_size + 7) // 8
    nums = pub.public_numbers()
    j["x"] = b64(nums.x.to_bytes(n, "big"))
    j["y"] = b64(nums.y.to_bytes(n, "big"))
    if "d" in j:
        j["d"] = b64(key.private_numbers().private_value.to_bytes(n, "big"))
    return j


rsa_jwk = json.loads(RSAAlgorithm.to_jwk(rsa_ossl.public_key()))
ec_jwk = ec_to_jwk(ec_ossl.public_key())
jwk("rsa", dict(rsa_jwk, kid="rsa-ossl", use="sig", alg="RS256"))
jwk("rsa_nokid", rsa_jwk)
jwk("rsa_4096", json.loads(RSAAlgorithm.to_jwk(rsa4096.public_key())))
jwk("ec", dict(ec_jwk, kid="ec-ossl", use="sig"))
jwk("ec_py", ec_to_jwk(ec_py.public_key()))
jwk("rsa_private", dict(json.loads(RSAAlgorithm.to_jwk(rsa_ossl)), kid="priv"))
jwk("ec_private", ec_to_jwk(ec_ossl))
jwk("rsa_use_enc", dict(rsa_jwk, use="enc"))
jwk("rsa_1024", json.loads(RSAAlgorithm.to_jwk(rsa1024.public_key())))
jwk("ec_p384", ec_to_jwk(p384.public_key()))
jwk("ec_k256", dict(ec_jwk, crv="secp256k1",
                    x=b64(k256.public_key().public_numbers().x.to_bytes(32, "big")),
                    y=b64(k256.public_key().public_numbers().y.to_bytes(32, "big"))))
jwk("rsa_kty_missing", {k: v for k, v in rsa_jwk.items() if k != "kty"})
jwk("rsa_kid_number", dict(rsa_jwk, kid=7))
jwk("rsa_e_even", dict(rsa_jwk, e=b64((65536).to_bytes(3, "big"))))
jwk("ec_off_curve", dict(ec_jwk, y=b64(((ec_ossl.public_key().public_numbers().y + 1) %
                                        (2**256)).to_bytes(32, "big"))))
jwk("ec_short_x", dict(ec_jwk, x=b64(b"\x01" * 31)))
jwk("oct", {"kty": "oct", "k": b64(SECRET)})

with open(path("tokens.tsv"), "w") as f:
    for name, tok in tokens:
        f.write(name + "\t" + tok + "\n")
with open(path("jwks.tsv"), "w") as f:
    for name, text in jwks:
        f.write(name + "\t" + text + "\n")
