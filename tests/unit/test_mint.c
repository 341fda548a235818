/* test_mint.c - the issuer's tokens and JWKS (issuer/mint.h,
 * issuer/jwks_doc.h), checked by independent implementations: PyJWT
 * re-mints every RS256 and HS256 token from the same claims and must produce
 * the same bytes (ES256: the same header and payload, the signature
 * verified), decodes and verifies each one, and reports the claim order;
 * our own verifier (auth/jwt.h) accepts them; Python's json.dumps escapes
 * strings as we do; refresh tokens for the check are signed by
 * tests/unit/hsmint.h (libsodium) or PyJWT; the JWKS bytes and ETag equal
 * what fa-auth-m8's code path (PyJWT to_jwk + use/alg/kid, sorted compact
 * json.dumps) produces for keys made by `openssl genpkey`.  The Python
 * parts are skipped when /usr/bin/python3 lacks jwt/cryptography. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "auth/jwk_export.h"
#include "auth/jwt.h"
#include "hsmint.h"
#include "issuer/jwks_doc.h"
#include "issuer/mint.h"
#include "pyrun.h"
#include "tap.h"

static char dir[64];
static int have_python;
static long long now;

static const char hs_secret[] = "Access-Secret-0123456789abcdefABCDEF!";
static const char rt_secret[] = "Refresh-Secret-0123456789abcdefABCDEF!";
static const char rt_old_secret[] = "Old-Refresh-Secret-0123456789abcdef!";
static const char other_secret[] = "Other-Secret-0123456789abcdefABCDEF!";

static const char uid[] = "0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d";
static const char tid[] = "5f0e8d1c-2b3a-4c5d-8e7f-9a0b1c2d3e4f";
static const char jti0[] = "8e1c6a0b-3f2d-4e5a-9b7c-1d2e3f4a5b6c";

/* An EC P-256 public key whose x coordinate has a leading zero byte. */
static const char ec_short_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEAHSfobd659I6kJ2GXiVA8r/XwuFP\n"
    "PhN0LwYm1Bu6oNBj4XxUAs22n0VHDIu8mGv1Z0T1uWkRW7iIjOZTPiz7CA==\n"
    "-----END PUBLIC KEY-----\n";

/* The independent side: PyJWT, cryptography, json and hashlib. */
static const char py_script[] =
    "import sys, json, base64, hashlib, jwt\n"
    "from jwt.algorithms import RSAAlgorithm, ECAlgorithm\n"
    "from cryptography.hazmat.primitives import serialization as S\n"
    "a = sys.argv[1:]\n"
    "def b64d(s): return base64.urlsafe_b64decode(s + '=' * (-len(s) % 4))\n"
    "def b64e(b): return base64.urlsafe_b64encode(b).rstrip(b'=').decode()\n"
    "def txt(h): return None if h == '-' else bytes.fromhex(h).decode('utf-8')\n"
    "def rd(p): return open(p, 'rb').read()\n"
    "def fail(m): print('FAIL ' + m); sys.exit(1)\n"
    "def check(tok, alg, sign, verify, kid, payload, iss, aud, req):\n"
    "    want = jwt.encode(payload, sign, algorithm=alg, headers={'kid': kid} if kid else None)\n"
    "    g, w = tok.split('.'), want.split('.')\n"
    "    if g[0] != w[0]: fail('header %r, PyJWT %r' % (b64d(g[0]), b64d(w[0])))\n"
    "    if g[1] != w[1]: fail('payload %r, PyJWT %r' % (b64d(g[1]), b64d(w[1])))\n"
    "    if alg != 'ES256' and g[2] != w[2]: fail('signature differs')\n"
    "    c = jwt.decode(tok, verify, algorithms=[alg], audience=aud, issuer=iss,\n"
    "                   options={'require': req})\n"
    "    names = json.loads(b64d(g[1]), object_pairs_hook=lambda kv: [k for k, _ in kv])\n"
    "    if names != list(payload): fail('claim order %r' % names)\n"
    "    if c != payload: fail('decoded claims differ')\n"
    "    print('ok')\n"
    "if a[0] == 'esc':\n"
    "    s = txt(a[1])\n"
    "    sys.stdout.buffer.write((json.dumps(s) + '\\n' + json.dumps(s, ensure_ascii=False)\n"
    "                             + '\\n').encode('utf-8'))\n"
    "elif a[0] == 'access':\n"
    "    alg, sk, vk, kid, tok = a[1], rd(a[2]), rd(a[3]), txt(a[4]), a[5]\n"
    "    t, mins, iss, aud, jti = int(a[6]), int(a[7]), txt(a[8]), txt(a[9]), a[10]\n"
    "    p = {'email': txt(a[11]), 'full_name': txt(a[12]), 'avatar': txt(a[13]),\n"
    "         'is_active': a[14] == '1', 'email_verified': a[15] == '1',\n"
    "         'is_superuser': a[16] == '1', 'role': a[17], 'tenant_id': txt(a[18]),\n"
    "         'sub': a[19], 'type': 'access', 'exp': t + mins * 60, 'iat': t, 'nbf': t,\n"
    "         'jti': jti}\n"
    "    if iss: p['iss'] = iss\n"
    "    if aud: p['aud'] = aud\n"
    "    check(tok, alg, sk, vk, kid, p, iss, aud, ['exp', 'iat', 'nbf', 'sub', 'jti'])\n"
    "elif a[0] == 'refresh':\n"
    "    p = {'sub': a[3], 'type': 'refresh', 'exp': int(a[5]), 'jti': a[4]}\n"
    "    check(a[2], 'HS256', rd(a[1]), rd(a[1]), None, p, None, None,\n"
    "          ['exp', 'sub', 'jti', 'type'])\n"
    "elif a[0] == 'mkrefresh':\n"
    "    print(jwt.encode({'sub': a[2], 'type': 'refresh', 'exp': int(a[4]), 'jti': a[3]},\n"
    "                     rd(a[1]), algorithm='HS256'))\n"
    "elif a[0] == 'kid':\n"
    "    k = S.load_pem_public_key(rd(a[1]))\n"
    "    der = k.public_bytes(S.Encoding.DER, S.PublicFormat.SubjectPublicKeyInfo)\n"
    "    print(hashlib.sha256(der).hexdigest()[:16])\n"
    "elif a[0] == 'jwks':\n"
    "    alg, keys = a[1], []\n"
    "    for i in range(2, len(a), 2):\n"
    "        k = S.load_pem_public_key(rd(a[i]))\n"
    "        der = k.public_bytes(S.Encoding.DER, S.PublicFormat.SubjectPublicKeyInfo)\n"
    "        kid = txt(a[i + 1]) or hashlib.sha256(der).hexdigest()[:16]\n"
    "        cls = ECAlgorithm if alg.startswith('ES') else RSAAlgorithm\n"
    "        j = json.loads(cls.to_jwk(k))\n"
    "        if alg.startswith('ES'):\n"
    "            # current PyJWT writes each coordinate in full (RFC 7518); the\n"
    "            # 2.6 release drops leading zero bytes\n"
    "            n = k.public_numbers()\n"
    "            j['x'], j['y'] = b64e(n.x.to_bytes(32, 'big')), b64e(n.y.to_bytes(32, 'big'))\n"
    "        j['use'], j['alg'], j['kid'] = 'sig', alg, kid\n"
    "        keys.append(j)\n"
    "    body = json.dumps({'keys': keys}, separators=(',', ':'), sort_keys=True,\n"
    "                      ensure_ascii=False).encode()\n"
    "    sys.stdout.buffer.write(body + b'\\n\"' + hashlib.sha256(body).hexdigest().encode()\n"
    "                            + b'\"\\n')\n";

/* Runs the Python helper with the NULL-terminated arguments; its stdout
 * (at most cap - 1 bytes) into out.  The exit status, or -1. */
static int py(char *out, size_t cap, ...)
{
    char script[128];
    snprintf(script, sizeof script, "%s/check.py", dir);
    va_list ap;
    va_start(ap, cap);
    int rc = m8t_py_va(script, out, cap, ap);
    va_end(ap);
    return rc;
}

__attribute__((format(printf, 1, 2))) static int sh(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof cmd)
        return -1;
    int st = system(cmd);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static const char *path(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
    return out;
}

static int write_file(const char *name, const char *text)
{
    char fn[128];
    FILE *f = fopen(path(fn, sizeof fn, name), "wb");
    if (!f)
        return -1;
    size_t n = strlen(text), w = fwrite(text, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static char *slurp(const char *name, size_t *len)
{
    char fn[128], *p = NULL;
    return m8_read_file(path(fn, sizeof fn, name), 1 << 16, true, &p, len) == 0 ? p : NULL;
}

/* The key in file name: kind 's' a signing key, 'p' the EVP_PKEY, 'v' a
 * verification key (an HS256 secret as it is). */
static void *load(const char *name, char kind, m8_alg alg)
{
    char err[256];
    size_t len = 0;
    char *pem = slurp(name, &len);
    void *k = NULL;
    if (pem && kind == 's')
        k = m8_sign_key_from_pem(pem, len, alg, err, sizeof err);
    else if (pem && kind == 'p')
        k = m8_pem_load_pkey(pem, len, false, err, sizeof err);
    else if (pem)
        k = alg == M8_ALG_HS256 ? m8_key_from_secret(pem, len, err, sizeof err)
                                : m8_key_from_pem(pem, len, alg, err, sizeof err);
    free(pem);
    return k;
}

/* Hex of s for the helper's txt(), "-" for NULL (into one of 8 slots). */
static const char *hx(const char *s)
{
    static char slots[8][1024];
    static int next;
    if (!s)
        return "-";
    char *o = slots[next++ % 8];
    sodium_bin2hex(o, sizeof slots[0], (const unsigned char *)s, strlen(s));
    return o;
}

/* The decoded header (part 0) or payload (part 1) of tok into out. */
static const char *part(const char *tok, int which, char *out, size_t cap)
{
    const char *p = tok;
    for (int i = 0; i < which && p; i++)
        p = strchr(p, '.') ? strchr(p, '.') + 1 : NULL;
    const char *e = p ? strchr(p, '.') : NULL;
    long n = e ? m8_b64url_decode(p, (size_t)(e - p), (unsigned char *)out, cap - 1) : -1;
    out[n > 0 ? n : 0] = '\0';
    return out;
}

/* ---- JSON strings ---- */

static void test_pyjson(void)
{
    static const struct {
        const char *in, *ascii, *raw;
    } cases[] = {
        {"plain", "\"plain\"", "\"plain\""},
        {"q\"b\\s/", "\"q\\\"b\\\\s/\"", "\"q\\\"b\\\\s/\""},
        {"\b\f\n\r\t\x01\x1f", "\"\\b\\f\\n\\r\\t\\u0001\\u001f\"",
         "\"\\b\\f\\n\\r\\t\\u0001\\u001f\""},
        {"del\x7f", "\"del\\u007f\"", "\"del\x7f\""},
        {"Jos\xc3\xa9 \xe2\x82\xac", "\"Jos\\u00e9 \\u20ac\"", "\"Jos\xc3\xa9 \xe2\x82\xac\""},
        {"\xf0\x9f\x98\x80!", "\"\\ud83d\\ude00!\"", "\"\xf0\x9f\x98\x80!\""},
        {"\xef\xbf\xbf\xf4\x8f\xbf\xbf", "\"\\uffff\\udbff\\udfff\"",
         "\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\""},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(cases); i++) {
        m8_buf b;
        m8_buf_init(&b, 1024);
        ok(m8_pyjson_str(&b, cases[i].in, strlen(cases[i].in), true) == 0 &&
               strcmp(b.data, cases[i].ascii) == 0,
           "json.dumps escaping (ensure_ascii) of case %zu: %s", i, b.data ? b.data : "");
        m8_buf_reset(&b);
        ok(m8_pyjson_str(&b, cases[i].in, strlen(cases[i].in), false) == 0 &&
               strcmp(b.data, cases[i].raw) == 0,
           "json.dumps escaping (ensure_ascii=False) of case %zu", i);
        if (have_python) {
            char out[2048], want[2048];
            int rc = py(out, sizeof out, "esc", hx(cases[i].in), (char *)NULL);
            snprintf(want, sizeof want, "%s\n%s\n", cases[i].ascii, cases[i].raw);
            ok(rc == 0 && strcmp(out, want) == 0, "Python's json.dumps agrees on case %zu", i);
        }
        m8_buf_free(&b);
    }
    static const char *const bad[] = {"\xc0\x80",         "\xed\xa0\x80", "\xe2\x82",
                                      "\xf5\x80\x80\x80", "\x80",         "a\xff"};
    for (size_t i = 0; i < M8_ARRAY_LEN(bad); i++) {
        m8_buf b;
        m8_buf_init(&b, 1024);
        m8_buf_puts(&b, "keep");
        int rc = m8_pyjson_str(&b, bad[i], strlen(bad[i]), i % 2 == 0);
        ok(rc == M8_EINVAL && strcmp(b.data, "keep") == 0,
           "invalid UTF-8 %zu is refused and the buffer is left as it was", i);
        m8_buf_free(&b);
    }
    char c[M8_UUID_STR_LEN + 1];
    ok(m8_uuid_canon("0B6F3C1E-7A52-4C4E-9A71-2F1D4E5B6C7D", 36, c) && strcmp(c, uid) == 0,
       "an upper-case UUID is lower-cased");
    ok(!m8_uuid_canon("0b6f3c1e7a524c4e9a712f1d4e5b6c7d", 32, c) &&
           !m8_uuid_canon("{b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d", 36, c) &&
           !m8_uuid_canon("0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7g", 36, c),
       "only the 8-4-4-4-12 hex form is a UUID");
}

/* ---- access tokens ---- */

static bool streq0(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static m8_mint_user user(void)
{
    m8_mint_user u = {.id = uid,
                      .email = "jose@example.com",
                      .full_name = "Jos\xc3\xa9 \xe2\x80\x9cQ\xe2\x80\x9d \xf0\x9f\x98\x80 \"x\"",
                      .avatar = NULL,
                      .is_active = true,
                      .email_verified = false,
                      .is_superuser = false,
                      .role = "writer",
                      .tenant_id = tid};
    return u;
}

/* Mints with key files sk (private) / vk (public or secret), checks the
 * header bytes, PyJWT's re-mint and decode, and our verifier. */
static void check_access(m8_alg alg, const char *sk, const char *vk, const char *kid,
                         const char *iss, const char *aud, const m8_mint_user *u, const char *what)
{
    m8_sign_key *k = alg == M8_ALG_HS256
                         ? m8_sign_key_from_secret(hs_secret, strlen(hs_secret), NULL, 0)
                         : load(sk, 's', alg);
    m8_mint_access_cfg cfg = {
        .key = k, .kid = kid, .expire_minutes = 30, .issuer = iss, .audience = aud};
    m8_buf tok;
    m8_buf_init(&tok, 1 << 14);
    char jti[M8_UUID_STR_LEN + 1] = "";
    int rc = m8_mint_access(&cfg, u, now, NULL, jti, &tok);
    ok(k && rc == 0, "%s: minted (%s)", what, m8_strerror(rc));
    if (rc != 0) {
        m8_sign_key_free(k);
        m8_buf_free(&tok);
        return;
    }
    char want_kid[M8_JWK_KID_LEN + 1] = "", hdr[256], want_hdr[256], pl[4096];
    if (alg != M8_ALG_HS256 && !kid)
        m8_jwk_kid(k->pkey, want_kid);
    if (alg == M8_ALG_HS256)
        snprintf(want_hdr, sizeof want_hdr, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    else
        snprintf(want_hdr, sizeof want_hdr, "{\"alg\":\"%s\",\"kid\":\"%s\",\"typ\":\"JWT\"}",
                 alg == M8_ALG_RS256 ? "RS256" : "ES256", kid ? kid : want_kid);
    is_str(part(tok.data, 0, hdr, sizeof hdr), want_hdr, "%s: header bytes", what);
    ok(m8_uuid_canon(jti, strlen(jti), NULL) && jti[14] == '4', "%s: a UUID4 jti", what);
    part(tok.data, 1, pl, sizeof pl);
    ok(strstr(pl, ",\"full_name\":") && !strstr(pl, "\xc3") && !strstr(pl, ": "),
       "%s: compact, ASCII-only payload", what);
    if (!iss)
        ok(!strstr(pl, "\"iss\"") && !strstr(pl, "\"aud\"") && strstr(pl, "\"jti\":\"") &&
               pl[strlen(pl) - 2] == '"',
           "%s: no iss/aud when unset; jti is the last claim", what);

    if (have_python) {
        char out[4096], t[32], sf[128], vf[128];
        snprintf(t, sizeof t, "%lld", now);
        const char *name = alg == M8_ALG_RS256 ? "RS256" : alg == M8_ALG_ES256 ? "ES256" : "HS256";
        int prc = py(out, sizeof out, "access", name, path(sf, sizeof sf, sk),
                     path(vf, sizeof vf, vk), alg == M8_ALG_HS256 ? "-" : hx(kid ? kid : want_kid),
                     tok.data, t, "30", hx(iss && iss[0] ? iss : NULL),
                     hx(aud && aud[0] ? aud : NULL), jti, hx(u->email), hx(u->full_name),
                     hx(u->avatar), u->is_active ? "1" : "0", u->email_verified ? "1" : "0",
                     u->is_superuser ? "1" : "0", u->role, hx(u->tenant_id), uid, (char *)NULL);
        ok(prc == 0 && strcmp(out, "ok\n") == 0,
           "%s: PyJWT re-mints the same %s, verifies it, same claim order", what,
           alg == M8_ALG_ES256 ? "header and payload" : "token");
        if (prc != 0)
            diag("python: %s", out);
    }

    m8_key *vkey = load(vk, 'v', alg);
    m8_jws j;
    m8_principal pr;
    memset(&pr, 0, sizeof pr);
    m8_claims_policy pol = {.strict = iss && aud, .issuer = iss, .audience = aud};
    bool good = vkey && m8_jws_parse(tok.data, tok.len, &j) == M8_JWT_OK;
    good = good && m8_jws_verify(&j, alg, vkey) == M8_JWT_OK &&
           m8_jws_parse_payload(&j) == M8_JWT_OK &&
           m8_claims_check(&j, &pol, (double)now + 1, &pr) == M8_JWT_OK;
    ok(good && strcmp(pr.id, uid) == 0 && strcmp(pr.jti, jti) == 0 &&
           streq0(pr.full_name, u->full_name) && streq0(pr.avatar, u->avatar) &&
           pr.exp == now + 1800,
       "%s: our verifier accepts it and reads the claims back", what);
    if (vkey)
        m8_jws_free(&j);
    m8_principal_clear(&pr);
    m8_key_unref(vkey);
    m8_sign_key_free(k);
    m8_buf_free(&tok);
}

static void test_access(void)
{
    m8_mint_user u = user();
    check_access(M8_ALG_RS256, "rsa.pem", "rsa.pub", NULL, "https://issuer.test", "svc", &u,
                 "RS256 derived kid");
    check_access(M8_ALG_ES256, "ec.pem", "ec.pub", NULL, "https://issuer.test", "svc", &u,
                 "ES256 derived kid");
    check_access(M8_ALG_HS256, "hs.key", "hs.key", "ignored", "https://issuer.test", "svc", &u,
                 "HS256");
    u.full_name = NULL;
    u.avatar = "https://img.test/a.png";
    u.tenant_id = NULL;
    u.role = "superadmin";
    u.is_superuser = true;
    check_access(M8_ALG_RS256, "rsa.pem", "rsa.pub", "configured-kid", NULL, "", &u,
                 "RS256 set kid, no iss/aud, superadmin");
    u.full_name = "";
    check_access(M8_ALG_HS256, "hs.key", "hs.key", NULL, "", NULL, &u, "HS256 no iss/aud");

    char kid[M8_JWK_KID_LEN + 1], pykid[64], f[128];
    EVP_PKEY *pk = load("rsa.pub", 'p', M8_ALG_RS256);
    if (have_python && pk && m8_jwk_kid(pk, kid) == 0) {
        py(pykid, sizeof pykid, "kid", path(f, sizeof f, "rsa.pub"), (char *)NULL);
        pykid[strcspn(pykid, "\n")] = '\0';
        is_str(kid, pykid, "the kid is the first 16 hex of SHA-256 of the SPKI DER");
    }
    EVP_PKEY_free(pk);
}

static void test_access_refusals(void)
{
    m8_sign_key *k = m8_sign_key_from_secret(hs_secret, strlen(hs_secret), NULL, 0);
    m8_mint_access_cfg cfg = {.key = k, .expire_minutes = 30};
    m8_mint_user u = user();
    m8_buf tok;
    m8_buf_init(&tok, 1 << 14);
    u.role = "superadmin";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_MINT_EPRIVILEGE,
           "guard: role superadmin without is_superuser is refused");
    u.role = "admin";
    u.is_superuser = true;
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_MINT_EPRIVILEGE,
           "guard: is_superuser with role admin is refused");
    ok(tok.len == 0, "guard: nothing was written");
    u = user();
    u.role = "root";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "an unknown role");
    u = user();
    u.id = "42";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "a sub that is no UUID");
    u = user();
    u.tenant_id = "t1";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "a tenant_id not a UUID");
    u = user();
    u.email = "";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "an empty email");
    u = user();
    u.full_name = "bad \xff";
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "a name not UTF-8");
    u = user();
    is_int(m8_mint_access(&cfg, &u, now, "nope", NULL, &tok), M8_EINVAL, "a given jti not a UUID");
    cfg.expire_minutes = -1;
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_EINVAL, "a negative lifetime");
    cfg.expire_minutes = 30;
    static char big[M8_MAX_JWT_PART_BYTES];
    memset(big, 'a', sizeof big - 1);
    u.avatar = big;
    is_int(m8_mint_access(&cfg, &u, now, NULL, NULL, &tok), M8_ETOOBIG,
           "a payload past M8_MAX_JWT_PART_BYTES is refused");
    ok(tok.len == 0, "refusals leave the output empty");
    u.avatar = NULL;
    char jti[M8_UUID_STR_LEN + 1], pl[4096];
    int rc = m8_mint_access(&cfg, &u, now, "8E1C6A0B-3F2D-4E5A-9B7C-1D2E3F4A5B6C", jti, &tok);
    ok(rc == 0 && strcmp(jti, jti0) == 0 && strstr(part(tok.data, 1, pl, sizeof pl), jti0),
       "a given jti is used, lower-cased");
    m8_buf_free(&tok);
    m8_sign_key_free(k);
}

/* ---- refresh tokens ---- */

static void test_refresh_mint(void)
{
    m8_sign_key *rk = m8_sign_key_from_secret(rt_secret, strlen(rt_secret), NULL, 0);
    m8_sign_key *ak = m8_sign_key_from_secret(hs_secret, strlen(hs_secret), NULL, 0);
    m8_mint_access_cfg cfg = {.key = ak, .expire_minutes = 30};
    m8_mint_user u = user();
    m8_buf at, rt;
    m8_buf_init(&at, 1 << 14);
    m8_buf_init(&rt, 1 << 14);
    char jti[M8_UUID_STR_LEN + 1], hdr[256], pl[512], want[512];
    int rc = m8_mint_access(&cfg, &u, now, NULL, jti, &at);
    rc = rc ? rc : m8_mint_refresh(rk, 120, uid, jti, now, &rt);
    ok(rc == 0, "refresh: minted with the access token's jti");
    is_str(part(rt.data, 0, hdr, sizeof hdr), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
           "refresh: header bytes");
    snprintf(want, sizeof want, "{\"sub\":\"%s\",\"type\":\"refresh\",\"exp\":%lld,\"jti\":\"%s\"}",
             uid, now + 7200, jti);
    is_str(part(rt.data, 1, pl, sizeof pl), want, "refresh: claims sub, type, exp, jti in order");
    if (have_python) {
        char out[2048], f[128], e[32];
        snprintf(e, sizeof e, "%lld", now + 7200);
        int prc = py(out, sizeof out, "refresh", path(f, sizeof f, "rt.key"), rt.data, uid, jti, e,
                     (char *)NULL);
        ok(prc == 0 && strcmp(out, "ok\n") == 0,
           "refresh: PyJWT re-mints the same token and decodes it with the required claims");
        if (prc)
            diag("python: %s", out);
    }
    m8_refresh_claims c;
    ok(m8_refresh_verify(rt.data, rt.len, rk, NULL, now, &c) == M8_REFRESH_OK &&
           strcmp(c.sub, uid) == 0 && strcmp(c.jti, jti) == 0 && c.exp == now + 7200 && !c.old_key,
       "refresh: our check accepts it and returns sub, jti, exp");
    is_int(m8_mint_refresh(ak, 120, "x", jti, now, &rt), M8_EINVAL, "refresh: a sub not a UUID");
    m8_buf_free(&at);
    m8_buf_free(&rt);
    m8_sign_key_free(rk);
    m8_sign_key_free(ak);
}

/* A refresh payload {"sub","type","exp","jti"} into p. */
static void rp(char *p, size_t cap, const char *sub, const char *type, long long exp,
               const char *jti)
{
    snprintf(p, cap, "{\"sub\":\"%s\",\"type\":\"%s\",\"exp\":%lld,\"jti\":\"%s\"}", sub, type, exp,
             jti);
}

/* tmpl with $S replaced by the user id and $E by now + 60, into p. */
static void subst(char *p, size_t cap, const char *tmpl)
{
    m8_buf b;
    m8_buf_init(&b, cap - 1);
    for (const char *t = tmpl; *t; t++) {
        if (t[0] == '$' && t[1] == 'S')
            m8_buf_puts(&b, uid), t++;
        else if (t[0] == '$' && t[1] == 'E')
            m8_buf_printf(&b, "%lld", now + 60), t++;
        else
            m8_buf_putc(&b, *t);
    }
    snprintf(p, cap, "%s", b.data ? b.data : "");
    m8_buf_free(&b);
}

/* Verdict of the check on a token signed with secret over payload. */
static m8_refresh_verdict rv(const char *secret, const char *payload, const m8_sign_key *k,
                             const m8_sign_key *old, m8_refresh_claims *c)
{
    char tok[2048];
    m8t_hs256_sign(tok, sizeof tok, secret, payload);
    return m8_refresh_verify(tok, strlen(tok), k, old, now, c);
}

static void test_refresh_verify(void)
{
    m8_sign_key *k = m8_sign_key_from_secret(rt_secret, strlen(rt_secret), NULL, 0);
    m8_sign_key *old = m8_sign_key_from_secret(rt_old_secret, strlen(rt_old_secret), NULL, 0);
    m8_refresh_claims c;
    char p[1024];
    is_str(m8_refresh_detail(M8_REFRESH_EXPIRED), "Refresh token expired", "detail: expired");
    is_str(m8_refresh_detail(M8_REFRESH_INVALID), "Invalid refresh token", "detail: invalid");
    is_str(m8_refresh_detail(M8_REFRESH_NOT_REFRESH), "Not a refresh token", "detail: type");
    ok(m8_refresh_detail(M8_REFRESH_OK) == NULL, "detail: none when good");

    rp(p, sizeof p, uid, "refresh", now + 1, jti0);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_OK, "good one second before exp");
    rp(p, sizeof p, uid, "refresh", now, jti0);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_EXPIRED, "expired at exp == now (PyJWT)");
    is_int(rv(rt_secret, p, k, old, &c), M8_REFRESH_EXPIRED,
           "expired with the current key: not retried with the old key");
    ok(c.sub[0] == '\0' && c.jti[0] == '\0', "a refusal leaves the claims empty");
    rp(p, sizeof p, uid, "access", now - 10, jti0);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_EXPIRED, "expiry is checked before type");
    rp(p, sizeof p, uid, "refresh", now + 60, jti0);
    is_int(rv(other_secret, p, k, NULL, &c), M8_REFRESH_INVALID, "bad signature");
    ok(rv(rt_old_secret, p, k, old, &c) == M8_REFRESH_OK && c.old_key && strcmp(c.jti, jti0) == 0,
       "signed with the old key: accepted after the signature failure, old_key set");
    is_int(rv(other_secret, p, k, old, &c), M8_REFRESH_INVALID, "neither key: invalid");
    is_int(rv(rt_old_secret, p, k, NULL, &c), M8_REFRESH_INVALID, "old key not configured");
    rp(p, sizeof p, uid, "refresh", now - 1, jti0);
    is_int(rv(rt_old_secret, p, k, old, &c), M8_REFRESH_EXPIRED, "old key, expired: expired");
    rp(p, sizeof p, uid, "access", now + 60, jti0);
    is_int(rv(rt_secret, p, k, old, &c), M8_REFRESH_NOT_REFRESH, "type access");
    rp(p, sizeof p, "not-a-uuid", "access", now + 60, jti0);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_NOT_REFRESH, "type is checked before sub");
    rp(p, sizeof p, "not-a-uuid", "refresh", now + 60, jti0);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_INVALID, "sub not a UUID");
    rp(p, sizeof p, "0B6F3C1E-7A52-4C4E-9A71-2F1D4E5B6C7D", "refresh", now + 60, jti0);
    ok(rv(rt_secret, p, k, NULL, &c) == M8_REFRESH_OK && strcmp(c.sub, uid) == 0,
       "an upper-case sub is accepted and lower-cased");
    rp(p, sizeof p, uid, "refresh", now + 60, "");
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_INVALID, "empty jti");
    char longjti[M8_REFRESH_MAX_JTI + 2];
    memset(longjti, 'j', sizeof longjti - 1);
    longjti[sizeof longjti - 1] = '\0';
    rp(p, sizeof p, uid, "refresh", now + 60, longjti);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_INVALID, "jti past M8_REFRESH_MAX_JTI");
    longjti[M8_REFRESH_MAX_JTI] = '\0';
    rp(p, sizeof p, uid, "refresh", now + 60, longjti);
    is_int(rv(rt_secret, p, k, NULL, &c), M8_REFRESH_OK, "jti of M8_REFRESH_MAX_JTI bytes");

    static const struct {
        const char *payload;
        m8_refresh_verdict want;
        const char *what;
    } odd[] = {
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"jti\":\"j\"}", M8_REFRESH_INVALID, "no exp"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E}", M8_REFRESH_INVALID, "no jti"},
        {"{\"sub\":\"$S\",\"exp\":$E,\"jti\":\"j\"}", M8_REFRESH_INVALID, "no type"},
        {"{\"sub\":\"$S\",\"type\":null,\"exp\":$E,\"jti\":\"j\"}", M8_REFRESH_INVALID,
         "type null counts as missing"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":\"$E\",\"jti\":\"j\"}", M8_REFRESH_INVALID,
         "exp a string"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E.9,\"jti\":\"j\"}", M8_REFRESH_OK,
         "a float exp is truncated"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E,\"jti\":7}", M8_REFRESH_INVALID,
         "jti a number"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E,\"jti\":\"j\",\"aud\":\"x\"}",
         M8_REFRESH_INVALID, "an aud claim (PyJWT without an audience)"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E,\"jti\":\"j\",\"aud\":\"\"}",
         M8_REFRESH_OK, "an empty aud"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E,\"jti\":\"j\",\"nbf\":9999999999}",
         M8_REFRESH_INVALID, "nbf in the future"},
        {"{\"sub\":\"$S\",\"type\":\"refresh\",\"exp\":$E,\"jti\":\"j\",\"iat\":true}",
         M8_REFRESH_INVALID, "iat not a number"},
        {"[\"$S\",$E]", M8_REFRESH_INVALID, "payload not an object"},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(odd); i++) {
        subst(p, sizeof p, odd[i].payload);
        is_int(rv(rt_secret, p, k, NULL, &c), odd[i].want, "claims: %s", odd[i].what);
    }
    static const char *const junk[] = {"", "a.b", "a.b.c.d", "eyJhbGciOiJub25lIn0.e30."};
    for (size_t i = 0; i < M8_ARRAY_LEN(junk); i++)
        is_int(m8_refresh_verify(junk[i], strlen(junk[i]), k, old, now, &c), M8_REFRESH_INVALID,
               "malformed token %zu", i);

    if (have_python) {
        char tok[2048], f[128], e[32];
        snprintf(e, sizeof e, "%lld", now + 600);
        int prc = py(tok, sizeof tok, "mkrefresh", path(f, sizeof f, "rt.key"), uid, jti0, e,
                     (char *)NULL);
        tok[strcspn(tok, "\n")] = '\0';
        ok(prc == 0 && m8_refresh_verify(tok, strlen(tok), k, NULL, now, &c) == M8_REFRESH_OK &&
               strcmp(c.jti, jti0) == 0,
           "a refresh token minted by PyJWT (as fa-auth-m8 does) is accepted");
    }
    m8_sign_key_free(k);
    m8_sign_key_free(old);
}

/* ---- JWKS ---- */

/* Builds our document and compares it with Python's for the same keys. */
static void check_jwks(m8_alg alg, const char *cur, const char *kid, const char *old,
                       const char *old_kid, const char *what)
{
    EVP_PKEY *c = cur ? load(cur, 'p', alg) : NULL, *o = old ? load(old, 'p', alg) : NULL;
    m8_jwks_doc d, d2;
    char err[256];
    int rc = m8_jwks_doc_build(alg, c, kid, o, old_kid, &d, err, sizeof err);
    if (!ok(rc == 0, "%s: built", what))
        diag("%s", err);
    if (rc == 0 && have_python) {
        char out[8192], want[8192], f1[128], f2[128];
        const char *name = alg == M8_ALG_RS256 ? "RS256" : alg == M8_ALG_ES256 ? "ES256" : "HS256";
        int prc = py(out, sizeof out, "jwks", name, cur ? path(f1, sizeof f1, cur) : NULL, hx(kid),
                     old ? path(f2, sizeof f2, old) : NULL, hx(old_kid), (char *)NULL);
        snprintf(want, sizeof want, "%s\n%s\n", d.body, d.etag);
        is_str(prc == 0 ? out : NULL, want, "%s: body and ETag equal Python's", what);
    }
    ok(rc == 0 && m8_jwks_doc_build(alg, c, kid, o, old_kid, &d2, err, sizeof err) == 0 &&
           d2.body_len == d.body_len && memcmp(d.body, d2.body, d.body_len) == 0 &&
           strcmp(d.etag, d2.etag) == 0,
       "%s: byte-stable", what);
    m8_jwks_doc_clear(&d);
    m8_jwks_doc_clear(&d2);
    EVP_PKEY_free(c);
    EVP_PKEY_free(o);
}

static void test_jwks(void)
{
    check_jwks(M8_ALG_RS256, "rsa.pub", NULL, NULL, NULL, "RSA, derived kid");
    check_jwks(M8_ALG_RS256, "rsa.pub", "kid-now", "rsa_old.pub", NULL, "RSA with the old key");
    check_jwks(M8_ALG_ES256, "ec.pub", NULL, "ec_old.pub", "kid-old", "EC with the old key");
    check_jwks(M8_ALG_ES256, "ec_short.pub", NULL, NULL, NULL, "EC x with a leading zero byte");

    m8_jwks_doc d;
    char err[256];
    EVP_PKEY *rsa = load("rsa.pub", 'p', M8_ALG_RS256),
             *ec = load("ec_short.pub", 'p', M8_ALG_ES256);
    unsigned char h[32];
    char want[80], hex[65];
    crypto_hash_sha256(h, (const unsigned char *)"{\"keys\":[]}", 11);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    snprintf(want, sizeof want, "\"%s\"", hex);
    ok(m8_jwks_doc_build(M8_ALG_HS256, rsa, NULL, NULL, NULL, &d, err, sizeof err) == 0 &&
           strcmp(d.body, "{\"keys\":[]}") == 0 && strcmp(d.etag, want) == 0,
       "HS256: {\"keys\":[]} and the SHA-256 ETag of it");
    m8_jwks_doc_clear(&d);
    ok(m8_jwks_doc_build(M8_ALG_RS256, NULL, NULL, NULL, NULL, &d, err, sizeof err) == 0 &&
           strcmp(d.body, "{\"keys\":[]}") == 0,
       "no public key loaded: {\"keys\":[]}");
    m8_jwks_doc_clear(&d);
    ok(m8_jwks_doc_build(M8_ALG_RS256, ec, NULL, NULL, NULL, &d, err, sizeof err) == M8_EINVAL &&
           d.body == NULL,
       "an EC key under RS256 is refused (%s)", err);
    ok(m8_jwks_doc_build(M8_ALG_ES256, ec, NULL, rsa, NULL, &d, err, sizeof err) == M8_EINVAL,
       "an old key of another type is refused (%s)", err);
    ok(m8_jwks_doc_build(M8_ALG_ES256, ec, "bad\xff", NULL, NULL, &d, err, sizeof err) == M8_EINVAL,
       "a kid that is not UTF-8 is refused");
    ok(m8_jwks_doc_build(M8_ALG_ES256, ec, NULL, NULL, NULL, &d, err, sizeof err) == 0 &&
           strstr(d.body, "\"x\":\"AHSfobd659I6kJ2GXiVA8r_XwuFPPhN0LwYm1Bu6oNA\"") &&
           !strstr(d.body, "key_ops"),
       "EC: x keeps its leading zero byte (32 bytes); no key_ops, as PyJWT's EC to_jwk");
    m8_jwks_doc_clear(&d);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);

    char cc[64];
    ok(m8_jwks_cache_control(300, cc, sizeof cc) == 0 && strcmp(cc, "public, max-age=300") == 0,
       "Cache-Control for 300");
    ok(m8_jwks_cache_control(-5, cc, sizeof cc) == 0 && strcmp(cc, "public, max-age=0") == 0,
       "Cache-Control for a negative TTL is max-age=0");
    ok(m8_jwks_cache_control(300, cc, 8) == M8_ETOOBIG, "Cache-Control: a short buffer");

    const char *etag = "\"0123abcd\"";
    static const struct {
        const char *h;
        bool want;
    } inm[] = {
        {"\"0123abcd\"", true},
        {"W/\"0123abcd\"", true},
        {"w/\"0123abcd\"", true},
        {" W/ \"0123abcd\" ", true},
        {"\"x\", \"0123abcd\"", true},
        {"\"x\",W/\"0123abcd\",\"y\"", true},
        {"*", true},
        {" * ", true},
        {"\"x\", *", true},
        {"\"x\"", false},
        {"0123abcd", false},
        {"W/\"x\"", false},
        {"\"0123ABCD\"", false},
        {"", false},
        {",", false},
        {"\"0123abcd\"x", false},
        {"\t\"0123abcd\"\t", true},
        {"X/\"0123abcd\"", false},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(inm); i++)
        is_int(m8_jwks_if_none_match(inm[i].h, strlen(inm[i].h), etag), inm[i].want,
               "If-None-Match [%s] %s", inm[i].h, inm[i].want ? "matches" : "does not match");
    ok(!m8_jwks_if_none_match(NULL, 0, etag), "If-None-Match absent: no match");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    now = (long long)time(NULL);
    snprintf(dir, sizeof dir, "/tmp/m8-mint-XXXXXX");
    if (!mkdtemp(dir)) {
        printf("Bail out! mkdtemp\n");
        return 1;
    }
    static const char *const gen[][2] = {{"rsa", "RSA -pkeyopt rsa_keygen_bits:2048"},
                                         {"rsa_old", "RSA -pkeyopt rsa_keygen_bits:2048"},
                                         {"ec", "EC -pkeyopt ec_paramgen_curve:P-256"},
                                         {"ec_old", "EC -pkeyopt ec_paramgen_curve:P-256"}};
    for (size_t i = 0; i < M8_ARRAY_LEN(gen); i++) {
        if (sh("cd %s && openssl genpkey -algorithm %s -out %s.pem 2>/dev/null && "
               "openssl pkey -in %s.pem -pubout -out %s.pub 2>/dev/null",
               dir, gen[i][1], gen[i][0], gen[i][0], gen[i][0]) != 0) {
            printf("Bail out! openssl genpkey\n");
            return 1;
        }
    }
    if (write_file("hs.key", hs_secret) || write_file("rt.key", rt_secret) ||
        write_file("ec_short.pub", ec_short_pub) || write_file("check.py", py_script)) {
        printf("Bail out! cannot write the fixtures\n");
        return 1;
    }
    have_python = sh("/usr/bin/python3 -c 'import jwt, cryptography' >/dev/null 2>&1") == 0;
    if (!have_python)
        diag("SKIP the Python parts: /usr/bin/python3 lacks jwt/cryptography");

    test_pyjson();
    test_access();
    test_access_refusals();
    test_refresh_mint();
    test_refresh_verify();
    test_jwks();
    m8_jwt_thread_release();
    sh("rm -rf '%s'", dir);
    return done_testing();
}
