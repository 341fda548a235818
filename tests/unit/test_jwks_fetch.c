/* test_jwks_fetch.c - key set parsing, and fetching over HTTP
 * (net/httpc.h) from the local key server. */

#include "config.h"

#include "test_jwks.h"

typedef struct skips {
    size_t n;
    char reasons[1024];
} skips;

static void on_skip(void *data, size_t index, const char *kid, const char *reason)
{
    (void)index;
    (void)kid;
    skips *s = data;
    s->n++;
    size_t used = strlen(s->reasons);
    snprintf(s->reasons + used, sizeof s->reasons - used, "%s|", reason);
}

static int parse(const char *d, m8_alg alg, m8_keyset *ks, size_t *skipped, skips *sk)
{
    if (sk)
        memset(sk, 0, sizeof *sk);
    return m8_jwks_parse_ex(d, strlen(d), alg, ks, skipped, sk ? on_skip : NULL, sk);
}

static bool has_kid(const m8_keyset *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++) {
        if (ks->keys[i]->kid && strcmp(ks->keys[i]->kid, kid) == 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------------ parsing */

void test_parse(void)
{
    m8_keyset ks;
    size_t skipped = 99;
    skips sk;
    char *d;

    d = doc(jwk("rsa2048", "a", NULL), NULL);
    is_int(parse(d, M8_ALG_RS256, &ks, &skipped, NULL), 0, "parse: RSA 2048 JWK accepted (RS256)");
    ok(ks.n == 1 && skipped == 0 && ks.keys[0]->kid && strcmp(ks.keys[0]->kid, "a") == 0 &&
           ks.keys[0]->pkey && ks.keys[0]->alg == M8_ALG_RS256,
       "parse: the key keeps its kid and is labelled RS256");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("rsa1024", "weak", NULL), jwk("rsa2048", "good", NULL), NULL);
    is_int(parse(d, M8_ALG_RS256, &ks, &skipped, &sk), 0, "parse: set with an RSA 1024 key");
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "good") && !has_kid(&ks, "weak"),
       "parse: RSA 1024 skipped (doc/wire.md#key-filtering), the 2048 key in the same set kept");
    like(sk.reasons, "2048", "parse: the skip reason names the 2048-bit minimum");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec256", "e1", NULL), NULL);
    is_int(parse(d, M8_ALG_ES256, &ks, &skipped, NULL), 0, "parse: EC P-256 JWK (ES256)");
    ok(ks.n == 1 && skipped == 0 && has_kid(&ks, "e1"), "parse: EC P-256 kept");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec384", "e384", NULL), jwk("ec256", "e256", NULL), NULL);
    parse(d, M8_ALG_ES256, &ks, &skipped, &sk);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "e256"), "parse: EC P-384 skipped under ES256");
    like(sk.reasons, "P-256", "parse: the P-384 skip reason names P-256");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("rsa2048", "enc", "enc"), jwk("rsa2048b", "sig", "sig"), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "sig") && !has_kid(&ks, "enc"),
       "parse: use=enc skipped, use=sig kept");
    m8_keyset_clear(&ks);
    free(d);

    json_object *priv = jwk("rsa2048_priv", "p", NULL);
    char dval[64];
    snprintf(dval, sizeof dval, "%.40s", json_object_get_string(json_object_object_get(priv, "d")));
    d = doc(priv, jwk("ec256_priv", "pe", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, &sk);
    ok(ks.n == 0 && skipped == 2, "parse: JWKs with private members are skipped");
    ok(strstr(sk.reasons, dval) == NULL && strstr(sk.reasons, "private"),
       "parse: the skip reason says private and never carries the key material");
    m8_keyset_clear(&ks);
    free(d);

    d = doc(jwk("ec256", "wrongkty", NULL), jwk("rsa2048", "r", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 1 && has_kid(&ks, "r"),
       "parse: an EC JWK under RS256 is skipped, one bad JWK does not abort the set");
    m8_keyset_clear(&ks);
    free(d);
    d = doc(jwk("rsa2048", "r", NULL), NULL);
    parse(d, M8_ALG_ES256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: an RSA JWK under ES256 is skipped");
    m8_keyset_clear(&ks);
    free(d);

    is_int(parse("{\"other\":1}", M8_ALG_RS256, &ks, &skipped, NULL), 0,
           "parse: a document without \"keys\" succeeds");
    ok(ks.n == 0 && ks.keys == NULL && skipped == 0, "parse: ... as an empty set");
    is_int(parse("{\"keys\":[]}", M8_ALG_RS256, &ks, &skipped, NULL), 0, "parse: keys [] is empty");
    is_int(parse("[]", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: an array is not a JWKS");
    is_int(parse("\"keys\"", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: a string is not a JWKS");
    is_int(parse("not json", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: non-JSON fails");
    is_int(parse("", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE, "parse: empty body fails");
    is_int(parse("{\"keys\":[]} x", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: trailing garbage fails");
    is_int(parse("{\"keys\":[]} \n", M8_ALG_RS256, &ks, NULL, NULL), 0,
           "parse: trailing whitespace is fine");
    is_int(m8_jwks_parse("{\"keys\":[]}\0", 12, M8_ALG_RS256, &ks, NULL), M8_EPARSE,
           "parse: a NUL byte in the document fails");
    is_int(parse("{\"keys\":{}}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys as an object fails");
    is_int(parse("{\"keys\":null}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys null fails");
    is_int(parse("{\"keys\":\"x\"}", M8_ALG_RS256, &ks, NULL, NULL), M8_EPARSE,
           "parse: keys as a string fails");
    is_int(parse("{\"keys\":[]}", M8_ALG_HS256, &ks, NULL, NULL), M8_EINVAL,
           "parse: HS256 has no JWKS");
    is_int(parse("{\"keys\":[1,\"x\",null,[]]}", M8_ALG_RS256, &ks, &skipped, NULL), 0,
           "parse: entries that are not objects ...");
    ok(ks.n == 0 && skipped == 4, "parse: ... are skipped one by one");

    /* Duplicate kid: the last one wins. */
    d = doc(jwk("rsa2048", "dup", NULL), jwk("rsa2048b", "dup", NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    m8_keyset only_b;
    char *db = doc(jwk("rsa2048b", "dup", NULL), NULL);
    parse(db, M8_ALG_RS256, &only_b, NULL, NULL);
    ok(ks.n == 1 && skipped == 0 && only_b.n == 1 &&
           EVP_PKEY_eq(ks.keys[0]->pkey, only_b.keys[0]->pkey) == 1,
       "parse: duplicate kid, the last JWK wins");
    m8_keyset_clear(&ks);
    m8_keyset_clear(&only_b);
    free(d);
    free(db);

    d = doc(jwk("rsa2048", NULL, NULL), jwk("rsa2048b", NULL, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 2 && ks.keys[0]->kid == NULL && ks.keys[1]->kid == NULL,
       "parse: JWKs without kid are kept apart (never merged)");
    m8_keyset_clear(&ks);
    free(d);

    /* kid length: M8_MAX_KID_BYTES accepted, one more skipped. */
    char kid[M8_MAX_KID_BYTES + 2];
    memset(kid, 'k', sizeof kid - 1);
    kid[M8_MAX_KID_BYTES] = '\0';
    d = doc(jwk("rsa2048", kid, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 1 && skipped == 0 && strlen(ks.keys[0]->kid) == M8_MAX_KID_BYTES,
       "parse: a kid of exactly %u bytes is kept", M8_MAX_KID_BYTES);
    m8_keyset_clear(&ks);
    free(d);
    kid[M8_MAX_KID_BYTES] = 'k';
    kid[M8_MAX_KID_BYTES + 1] = '\0';
    d = doc(jwk("rsa2048", kid, NULL), NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: a kid of %u bytes is skipped", M8_MAX_KID_BYTES + 1);
    m8_keyset_clear(&ks);
    free(d);
    json_object *numkid = jwk("rsa2048", NULL, NULL);
    json_object_object_add(numkid, "kid", json_object_new_int(7));
    d = doc(numkid, NULL);
    parse(d, M8_ALG_RS256, &ks, &skipped, NULL);
    ok(ks.n == 0 && skipped == 1, "parse: a kid that is not a string is skipped");
    m8_keyset_clear(&ks);
    free(d);

    /* M8_MAX_JWKS_KEYS kept, the next one skipped. */
    for (unsigned total = M8_MAX_JWKS_KEYS; total <= M8_MAX_JWKS_KEYS + 1; total++) {
        json_object *arr = json_object_new_array();
        for (unsigned i = 0; i < total; i++) {
            char k[16];
            snprintf(k, sizeof k, "k%u", i);
            json_object_array_add(arr, jwk("rsa2048", k, NULL));
        }
        json_object *o = json_object_new_object();
        json_object_object_add(o, "keys", arr);
        const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        parse(s, M8_ALG_RS256, &ks, &skipped, NULL);
        char last[16];
        snprintf(last, sizeof last, "k%u", total - 1);
        if (total == M8_MAX_JWKS_KEYS)
            ok(ks.n == M8_MAX_JWKS_KEYS && skipped == 0 && has_kid(&ks, last),
               "parse: exactly %u keys are all kept", M8_MAX_JWKS_KEYS);
        else
            ok(ks.n == M8_MAX_JWKS_KEYS && skipped == 1 && has_kid(&ks, "k0") &&
                   !has_kid(&ks, last),
               "parse: %u keys keep the first %u, the last is skipped", total, M8_MAX_JWKS_KEYS);
        m8_keyset_clear(&ks);
        json_object_put(o);
    }

    /* Document size: M8_MAX_JWKS_BYTES accepted, one more refused. */
    char *big = malloc(M8_MAX_JWKS_BYTES + 2);
    memset(big, ' ', M8_MAX_JWKS_BYTES + 1);
    memcpy(big, "{\"keys\":[]}", 11);
    is_int(m8_jwks_parse(big, M8_MAX_JWKS_BYTES, M8_ALG_RS256, &ks, NULL), 0,
           "parse: a document of exactly %u bytes is parsed", M8_MAX_JWKS_BYTES);
    is_int(m8_jwks_parse(big, M8_MAX_JWKS_BYTES + 1, M8_ALG_RS256, &ks, NULL), M8_ETOOBIG,
           "parse: a document of %u bytes is refused", M8_MAX_JWKS_BYTES + 1);
    free(big);
}

/* ------------------------------------------------------------ httpc */

void test_httpc(void)
{
    char u[256];
    m8_http_result res;
    const char *body = "{\"keys\":[]}";
    write_file(jwks_srv.dir, "jwks.json", body, strlen(body));

    url(u, sizeof u, "/jwks.json");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: GET answers");
    ok(res.status == 200 && res.body.len == strlen(body) && strcmp(res.body.data, body) == 0,
       "httpc: status 200 and the body");
    m8_buf_free(&res.body);

    knob("status", "404");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: a 404 is a response, not a transport error");
    is_int(res.status, 404, "httpc: the status is reported");
    m8_buf_free(&res.body);
    knob("status", NULL);

    size_t len = strlen(body);
    is_int(m8_http_get(u, 5, len, &res), 0, "httpc: a body of exactly max bytes is accepted");
    is_int(res.body.len, len, "httpc: ... whole");
    m8_buf_free(&res.body);
    is_int(m8_http_get(u, 5, len - 1, &res), M8_ETOOBIG, "httpc: max+1 bytes is M8_ETOOBIG");
    ok(res.body.data == NULL && res.status == 0, "httpc: ... and nothing is handed back");
    m8_buf_free(&res.body);
    /* Without Content-Length the cap is enforced while reading. */
    knob("nolength", "1");
    is_int(m8_http_get(u, 5, len, &res), 0, "httpc: streamed body of exactly max bytes accepted");
    is_int(res.body.len, len, "httpc: ... whole");
    m8_buf_free(&res.body);
    is_int(m8_http_get(u, 5, len - 1, &res), M8_ETOOBIG,
           "httpc: streamed body of max+1 bytes is M8_ETOOBIG");
    like(res.error, "byte cap", "httpc: ... with a cap error text");
    m8_buf_free(&res.body);
    knob("nolength", NULL);

    url(u, sizeof u, "/hop/3");
    is_int(m8_http_get(u, 5, 1024, &res), 0, "httpc: 3 redirects are followed");
    ok(res.status == 200 && res.body.len == len, "httpc: ... to the final answer");
    m8_buf_free(&res.body);
    url(u, sizeof u, "/hop/4");
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "httpc: a 4th redirect is refused");
    m8_buf_free(&res.body);

    url(u, sizeof u, "/to?file:///etc/passwd");
    is_int(m8_http_get(u, 5, 1 << 16, &res), M8_EIO, "httpc: a redirect to file:// is refused");
    ok(res.body.data == NULL || strstr(res.body.data, "root:") == NULL,
       "httpc: ... and no local file is read");
    m8_buf_free(&res.body);
    is_int(m8_http_get("file:///etc/passwd", 5, 1 << 16, &res), M8_EIO,
           "httpc: a file:// URL is refused");
    m8_buf_free(&res.body);
    is_int(m8_http_get("ftp://127.0.0.1:1/x", 5, 1 << 16, &res), M8_EIO,
           "httpc: an ftp:// URL is refused");
    m8_buf_free(&res.body);

    knob("delay", "2");
    url(u, sizeof u, "/jwks.json");
    double t0 = m8_now_mono();
    is_int(m8_http_get(u, 0.3, 1024, &res), M8_EIO, "httpc: a slow server times out");
    double took = m8_now_mono() - t0;
    ok(took < 1.5, "httpc: ... after about the timeout (%.2f s)", took);
    ok(res.error[0] != '\0', "httpc: ... with an error text (%s)", res.error);
    m8_buf_free(&res.body);
    knob("delay", NULL);

    knob("down", "1");
    is_int(m8_http_get(u, 5, 1024, &res), M8_EIO, "httpc: a connection closed unanswered fails");
    m8_buf_free(&res.body);
    knob("down", NULL);

    /* A port nobody listens on, with credentials in the URL. */
    is_int(m8_http_get("http://alice:s3cret-pw@127.0.0.1:1/x", 2, 1024, &res), M8_EIO,
           "httpc: connection refused is a transport error");
    ok(strstr(res.error, "s3cret") == NULL && strstr(res.error, "alice") == NULL,
       "httpc: the error text has no userinfo (%s)", res.error);
    m8_buf_free(&res.body);

    is_int(m8_http_get(u, 0, 1024, &res), M8_EINVAL, "httpc: timeout 0 is invalid");
    is_int(m8_http_get(NULL, 1, 1024, &res), M8_EINVAL, "httpc: no URL is invalid");

    char out[128];
    m8_http_display_url("https://u:p@host:1/a@b?c@d", out, sizeof out);
    is_str(out, "https://host:1/a@b?c@d", "display URL: userinfo removed, path kept");
    m8_http_display_url("https://a:b@c@host/x", out, sizeof out);
    is_str(out, "https://host/x", "display URL: up to the last @ of the authority");
    m8_http_display_url("http://host/x", out, sizeof out);
    is_str(out, "http://host/x", "display URL: no userinfo, unchanged");
}
