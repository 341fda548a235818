/* test_jwks_limits.c - the JWKS resolver's limits: the body cap, a
 * reused kid, no downgrade from https, the maximum staleness. */

#include "config.h"

#include "test_jwks.h"

void test_body_cap(void)
{
    /* A real document of exactly M8_MAX_JWKS_BYTES, then one byte more. */
    char *d = doc(jwk("rsa2048", "a", NULL), NULL);
    size_t dl = strlen(d);
    char *big = malloc(M8_MAX_JWKS_BYTES + 1);
    memcpy(big, d, dl);
    memset(big + dl, ' ', M8_MAX_JWKS_BYTES + 1 - dl);
    free(d);
    write_file(jwks_srv.dir, "jwks.json", big, M8_MAX_JWKS_BYTES);
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, "a", 1), M8_JWKS_FOUND, "cap: a JWKS of exactly %u bytes is accepted",
           M8_MAX_JWKS_BYTES);
    m8_jwks_free(r);
    write_file(jwks_srv.dir, "jwks.json", big, M8_MAX_JWKS_BYTES + 1);
    r = resolver(60, 10);
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_UNAVAILABLE, "cap: %u bytes is a failed fetch",
           M8_MAX_JWKS_BYTES + 1);
    char *log = log_release();
    like(log, "byte cap", "cap: ... logged as over the byte cap");
    free(log);
    m8_jwks_free(r);
    free(big);

    /* The test hook: a smaller cap, at and one past. */
    d = doc(jwk("ec256", "e", NULL), NULL);
    dl = strlen(d);
    serve_doc(d);
    char u[128];
    url(u, sizeof u, "/jwks.json");
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 5, dl);
    is_int(find(r, "e", 1), M8_JWKS_FOUND, "cap hook: a body of exactly the cap is accepted");
    m8_jwks_free(r);
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 5, dl - 1);
    is_int(find(r, "e", 1), M8_JWKS_UNAVAILABLE, "cap hook: one byte over the cap fails");
    m8_jwks_free(r);

    /* A slow issuer times out as a failed fetch. */
    knob("delay", "2");
    r = m8_jwks_new(u, M8_ALG_ES256, 60, 10);
    m8_jwks_set_fetch_limits(r, 0.3, 0);
    double t0 = m8_now_mono();
    is_int(find(r, "e", 1), M8_JWKS_UNAVAILABLE, "timeout: a slow issuer is a failed fetch");
    ok(m8_now_mono() - t0 < 1.5, "timeout: ... bounded by the fetch timeout");
    knob("delay", NULL);
    m8_jwks_free(r);
}

/* ------------------------------------------------------------ kid re-use */

/* A public RSA JWK for a key made here with OpenSSL. */
static json_object *rsa_jwk_of(EVP_PKEY *k, const char *kid)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "kty", json_object_new_string("RSA"));
    json_object_object_add(o, "kid", json_object_new_string(kid));
    const char *names[] = {OSSL_PKEY_PARAM_RSA_N, OSSL_PKEY_PARAM_RSA_E};
    const char *members[] = {"n", "e"};
    for (int i = 0; i < 2; i++) {
        BIGNUM *bn = NULL;
        unsigned char bin[512];
        m8_buf b;
        m8_buf_init(&b, 1024);
        if (!EVP_PKEY_get_bn_param(k, names[i], &bn) || BN_num_bytes(bn) > (int)sizeof bin) {
            diag("cannot read the RSA key");
            exit(1);
        }
        int n = BN_bn2bin(bn, bin);
        m8_b64url_encode(&b, bin, (size_t)n);
        json_object_object_add(o, members[i], json_object_new_string(b.data));
        m8_buf_free(&b);
        BN_free(bn);
    }
    return o;
}

/* An RS256 JWS under kid signed by k with OpenSSL (not through lib/). */
static char *rs256_signed(EVP_PKEY *k, const char *alg, const char *kid)
{
    char hdr[128];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
    const char *payload = "{\"sub\":\"0b6f3c1e-7a52-4c4e-9a71-2f1d4e5b6c7d\"}";
    m8_buf b;
    m8_buf_init(&b, 4096);
    m8_b64url_encode(&b, (const unsigned char *)hdr, strlen(hdr));
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, (const unsigned char *)payload, strlen(payload));
    unsigned char sig[512];
    size_t sl = sizeof sig;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || EVP_DigestSignInit(c, NULL, EVP_sha256(), NULL, k) != 1 ||
        EVP_DigestSign(c, sig, &sl, (const unsigned char *)b.data, b.len) != 1) {
        diag("cannot sign");
        exit(1);
    }
    EVP_MD_CTX_free(c);
    m8_buf_putc(&b, '.');
    m8_b64url_encode(&b, sig, sl);
    char *t = strdup(b.data);
    m8_buf_free(&b);
    return t;
}

/* m8_jwks_verify on a token at now: its result, the signature checks in *checks. */
static int jverify(m8_jwks *r, const char *tok, double now, unsigned *checks)
{
    m8_jws j;
    *checks = 0;
    if (m8_jws_parse(tok, strlen(tok), &j) != M8_JWT_OK) {
        diag("the test token does not parse");
        return -2;
    }
    int rc = m8_jwks_verify(r, &j, M8_ALG_RS256, now, checks);
    m8_jws_free(&j);
    return rc;
}

/* The issuer replaces the key under an unchanged kid (doc/wire.md#jwks); after a
 * bad signature the kid is re-resolved once (same cooldown) and the
 * signature checked again only when the key material changed. */
void test_kid_reuse(void)
{
    EVP_PKEY *k1 = EVP_RSA_gen(2048), *k2 = EVP_RSA_gen(2048);
    if (!k1 || !k2) {
        diag("cannot generate RSA keys");
        exit(1);
    }
    char *t1 = rs256_signed(k1, "RS256", "k"), *t2 = rs256_signed(k2, "RS256", "k");
    unsigned checks = 0;
    serve_doc(doc(rsa_jwk_of(k1, "k"), NULL));
    m8_jwks *r = resolver(300, 10);
    long h0 = hits();

    is_int(jverify(r, t1, 1000, &checks), M8_JWT_OK,
           "kid re-use: a token under k (key 1) verifies");
    ok(checks == 1 && m8_jwks_fetches(r) == 1, "kid re-use: ... with one check and one fetch");

    /* The issuer now signs with key 2 under the same kid k. */
    serve_doc(doc(rsa_jwk_of(k2, "k"), NULL));
    is_int(jverify(r, t2, 1005, &checks), M8_JWT_INVALID,
           "kid re-use: within the cooldown a token of key 2 is refused (cached key 1) ...");
    ok(checks == 1 && m8_jwks_fetches(r) == 1 && hits() == h0 + 1,
       "kid re-use: ... the throttled re-resolve fetches nothing and checks nothing more");
    is_int(jverify(r, t2, 1011, &checks), M8_JWT_OK,
           "kid re-use: after the cooldown the bad signature re-resolves k and the token verifies");
    ok(checks == 2 && m8_jwks_fetches(r) == 2 && hits() == h0 + 2 && m8_jwks_generation(r) == 2,
       "kid re-use: ... one refetch, a second check with the new key (checks %u)", checks);
    is_int(jverify(r, t2, 1012, &checks), M8_JWT_OK, "kid re-use: key 2 is now the cached key");
    ok(checks == 1 && m8_jwks_fetches(r) == 2, "kid re-use: ... one check, no fetch");
    is_int(jverify(r, t1, 1013, &checks), M8_JWT_INVALID,
           "kid re-use: a token of the replaced key 1 is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 2, "kid re-use: ... its re-resolve is throttled");

    /* Forged signatures under a good kid: one fetch per cooldown at most, and
     * unchanged material is never checked twice. */
    char *forged = strdup(t2);
    size_t fl = strlen(forged);
    forged[fl - 2] = forged[fl - 2] == 'A' ? 'B' : 'A';
    unsigned max_checks = 0;
    int refused = 0;
    for (int i = 0; i < 200; i++) {
        refused += jverify(r, forged, 1030 + i * 0.01, &checks) == M8_JWT_INVALID;
        max_checks = checks > max_checks ? checks : max_checks;
    }
    ok(refused == 200 && max_checks == 1 && m8_jwks_fetches(r) == 3,
       "forged: 200 bad signatures under kid k over 2 s: all refused, 1 check each, 1 fetch");
    is_int(jverify(r, t2, 1032, &checks), M8_JWT_OK, "forged: the real key still verifies");

    /* A failed refetch keeps the key: the same material, no second check. */
    knob("down", "1");
    is_int(jverify(r, forged, 1050, &checks), M8_JWT_INVALID, "down: a forged token is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 4 && m8_jwks_generation(r) == 3,
       "down: ... the re-resolve tried one fetch, which failed, and checked nothing more");
    is_int(jverify(r, t2, 1051, &checks), M8_JWT_OK, "down: the cached key 2 still verifies");
    knob("down", NULL);

    /* The kid disappears from the set: the re-resolve finds nothing. */
    serve_doc(doc(rsa_jwk_of(k1, "other"), NULL));
    is_int(jverify(r, t1, 1070, &checks), M8_JWT_INVALID,
           "gone: a token of key 1 under k after k left the set is refused");
    ok(checks == 1 && m8_jwks_fetches(r) == 5, "gone: ... one refetch, no second check");
    is_int(jverify(r, t2, 1071, &checks), M8_JWT_INVALID, "gone: k no longer resolves at all");

    /* m8_jwks_refresh itself. */
    serve_doc(doc(rsa_jwk_of(k2, "k"), NULL));
    is_int(jverify(r, t2, 1090, &checks), M8_JWT_OK, "refresh: k is back (unknown kid refetched)");
    unsigned long f = m8_jwks_fetches(r);
    m8_key *key = NULL;
    is_int(m8_jwks_refresh(r, "k", 1095, &key), M8_JWKS_NOT_FOUND,
           "refresh: within the cooldown -> NULL (throttled)");
    ok(key == NULL && m8_jwks_fetches(r) == f, "refresh: ... no key, no fetch");
    is_int(m8_jwks_refresh(r, "k", 1100, &key), M8_JWKS_FOUND, "refresh: after the cooldown");
    ok(key && key->kid && strcmp(key->kid, "k") == 0 && m8_jwks_fetches(r) == f + 1,
       "refresh: ... one fetch, the key of kid k");
    m8_key_unref(key);
    key = NULL;
    is_int(m8_jwks_refresh(r, "zz", 1200, &key), M8_JWKS_NOT_FOUND,
           "refresh: a kid not in the set -> NULL");
    m8_key_unref(key);

    /* A wrong alg is no bad signature: no re-resolve. */
    f = m8_jwks_fetches(r);
    char *wrong = rs256_signed(k1, "RS512", "k");
    is_int(jverify(r, wrong, 1300, &checks), M8_JWT_INVALID, "alg: RS512 under kid k is refused");
    ok(m8_jwks_fetches(r) == f, "alg: ... without a re-resolve (no fetch)");
    free(wrong);

    m8_jwks_free(r);
    free(forged);
    free(t1);
    free(t2);
    EVP_PKEY_free(k1);
    EVP_PKEY_free(k2);
}

/* ------------------------------------------------------------ https -> http */

static m8t_py tls = {.pid = -1}; /* its directory: the knobs, certificate and served file */

static void tls_stop(void)
{
    m8t_py_stop(&tls);
}

/* A second jwks_server.py over TLS with a self-signed certificate for
 * 127.0.0.1 (trusted through m8_httpc_set_ca_file); its port, or -1. */
static int tls_start(void)
{
    const char *gen[] = {"gencert", M8T_PY_DIR, NULL};
    if (m8t_py_mkdir(&tls, "jwks-tls") != 0 || m8t_py_run(&tls, "jwks_server.py", gen) != 0)
        return -1;
    char cert[PATH_MAX + 16], key[PATH_MAX + 16];
    path_in(cert, sizeof cert, tls.dir, "cert.pem");
    path_in(key, sizeof key, tls.dir, "certkey.pem");
    m8_httpc_set_ca_file(cert);
    const char *args[] = {"serve", M8T_PY_DIR, "--tls", cert, key, NULL};
    if (m8t_py_spawn(&tls, "jwks_server.py", args, 15000) != 0) /* up to 15 s */
        return -1;
    return tls.port;
}

void test_no_https_downgrade(void)
{
    int tp = tls_start();
    if (!ok(tp >= 0, "https: a TLS jwks_server.py starts")) {
        tls_stop();
        m8_httpc_set_ca_file(NULL);
        return;
    }
    const char *body = "{\"keys\":[]}";
    write_file(tls.dir, "jwks.json", body, strlen(body));
    write_file(jwks_srv.dir, "jwks.json", body, strlen(body));
    char u[512], plain[256];
    m8_http_result res;
    snprintf(u, sizeof u, "https://127.0.0.1:%d/jwks.json", tp);
    is_int(m8_http_get(u, 5, 1024, &res), 0, "https: a GET over TLS answers (the test CA works)");
    is_int(res.status, 200, "https: ... 200");
    m8_buf_free(&res.body);
    snprintf(u, sizeof u, "https://127.0.0.1:%d/to?https://127.0.0.1:%d/jwks.json", tp, tp);
    is_int(m8_http_get(u, 5, 1024, &res) == 0 ? (int)res.status : -1, 200,
           "https: a redirect to another https URL is followed");
    m8_buf_free(&res.body);

    url(plain, sizeof plain, "/jwks.json");
    snprintf(u, sizeof u, "https://127.0.0.1:%d/to?%s", tp, plain);
    long h0 = hits();
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "https: a redirect to http:// is not followed");
    is_int(hits(), h0, "https: ... the http server never sees the request");
    m8_buf_free(&res.body);

    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = m8_jwks_new(u, M8_ALG_RS256, 60, 10);
    log_capture();
    is_int(find(r, "a", 100), M8_JWKS_UNAVAILABLE,
           "https: a JWKS_URI whose https answer redirects to http gives no keys (503)");
    free(log_release());
    is_int(hits(), h0, "https: ... and no request goes out over plain http");
    m8_jwks_free(r);
    tls_stop();
    m8_httpc_set_ca_file(NULL);
}

/* ------------------------------------------------------------ JWKS_MAX_STALE_SECONDS */

void test_max_stale(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    m8_jwks_set_max_stale(r, 100);
    ok(m8_jwks_age(r, 50) < 0, "stale: the age is -1 before the first fetch");
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "stale: first fetch at t=1000");
    knob("down", "1");
    is_int(find(r, "a", 1070), M8_JWKS_FOUND,
           "stale: issuer down, set 70 s old (max 100): the last good key answers");
    is_int(find(r, "a", 1100), M8_JWKS_FOUND, "stale: ... at exactly the limit too");
    ok(m8_jwks_age(r, 1100) == 100.0, "stale: m8_jwks_age says 100 s");
    log_capture();
    is_int(find(r, "a", 1101), M8_JWKS_UNAVAILABLE,
           "stale: one second past JWKS_MAX_STALE_SECONDS and the fetch fails: UNAVAILABLE (503)");
    char *log = log_release();
    like(log, "JWKS_MAX_STALE_SECONDS", "stale: ... logged, naming the setting");
    free(log);
    is_int(find(r, "a", 1105), M8_JWKS_UNAVAILABLE,
           "stale: ... also while throttled (no fetch, the set is not used)");
    m8_key *k = NULL;
    is_int(m8_jwks_refresh(r, "a", 1200, &k), M8_JWKS_UNAVAILABLE,
           "stale: the re-resolve after a bad signature does not use it either");
    m8_key_unref(k);
    knob("down", NULL);
    is_int(find(r, "a", 1215), M8_JWKS_FOUND, "stale: the issuer back: a new set answers");
    ok(m8_jwks_age(r, 1215) == 0.0, "stale: ... and its age starts again at 0");
    m8_jwks_free(r);

    /* The default: a day. */
    r = resolver(60, 10);
    m8_shm *shm = m8_shm_private();
    m8_jwks_report_to(r, shm);
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "stale default: first fetch");
    ok(shm && atomic_load(&shm->jwks.fetched_ns) != 0,
       "stale default: a resolver fetching alone reports its fetch time for the age gauge");
    knob("down", "1");
    is_int(find(r, "a", 1000 + M8_JWKS_MAX_STALE_S), M8_JWKS_FOUND,
           "stale default: a day old, the set still answers");
    is_int(find(r, "a", 1000 + M8_JWKS_MAX_STALE_S + 1), M8_JWKS_UNAVAILABLE,
           "stale default: a day and a second: UNAVAILABLE");
    knob("down", NULL);
    m8_jwks_free(r);
    m8_shm_unmap(shm);
}
