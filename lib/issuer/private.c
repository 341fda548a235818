/* private.c - the consumer registry, consumer authentication and the
 * service-token exchange of the issuer's private API
 * (doc/issuer.md#private-api). */
#include "issuer/private.h"

#include <json-c/json.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "auth/jws_sign.h"
#include "auth/jwt.h"
#include "core/json.h"
#include "core/log.h"
#include "http/http.h"

#define SALT_LEN 16u
#define SALT_MAX 64u
#define DIGEST_LEN crypto_hash_sha256_BYTES
#define REGISTRY_DEPTH 8
#define EXCHANGE_SCOPES_MAX 64u

typedef struct consumer {
    char *id;
    unsigned char salt[SALT_MAX];
    size_t salt_len;
    unsigned char digest[DIGEST_LEN];
    char *scopes[M8_PRIVATE_SCOPES_MAX];
    size_t n_scopes;
} consumer;

static struct {
    consumer *c;
    size_t n;
    consumer dummy;   /* unknown ids are checked against it: equal work */
    m8_sign_key *key; /* PRIVATE_API_SECRET, signs service tokens */
    long long ttl;    /* SERVICE_TOKEN_TTL_SECONDS */
} g_reg;

/* ------------------------------------------------------------ registry */

static void consumer_clear(consumer *c)
{
    free(c->id);
    for (size_t i = 0; i < c->n_scopes; i++)
        free(c->scopes[i]);
    sodium_memzero(c, sizeof *c);
}

void m8_issuer_private_free(m8_app *app, void *data)
{
    (void)app;
    (void)data;
    for (size_t i = 0; i < g_reg.n; i++)
        consumer_clear(&g_reg.c[i]);
    free(g_reg.c);
    consumer_clear(&g_reg.dummy);
    m8_sign_key_free(g_reg.key);
    memset(&g_reg, 0, sizeof g_reg);
}

size_t m8_issuer_private_count(void)
{
    return g_reg.n;
}

static void digest_of(const unsigned char *salt, size_t salt_len, const void *secret, size_t len,
                      unsigned char out[DIGEST_LEN])
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, salt, salt_len);
    crypto_hash_sha256_update(&st, secret, len);
    crypto_hash_sha256_final(&st, out);
    sodium_memzero(&st, sizeof st);
}

int m8_issuer_private_hash(const char *secret, size_t len, char *out, size_t outlen)
{
    unsigned char salt[SALT_LEN], d[DIGEST_LEN];
    char sh[SALT_LEN * 2 + 1], dh[DIGEST_LEN * 2 + 1];
    if (!secret || len == 0 || !out)
        return M8_EINVAL;
    randombytes_buf(salt, sizeof salt);
    digest_of(salt, sizeof salt, secret, len, d);
    sodium_bin2hex(sh, sizeof sh, salt, sizeof salt);
    sodium_bin2hex(dh, sizeof dh, d, sizeof d);
    int n = snprintf(out, outlen, "sha256$%s$%s", sh, dh);
    sodium_memzero(d, sizeof d);
    return n > 0 && (size_t)n < outlen ? 0 : M8_EINVAL;
}

static bool hex_to(const char *s, size_t n, unsigned char *out, size_t cap, size_t *got)
{
    size_t bin = 0;
    const char *end = NULL;
    if (n == 0 || n % 2 != 0 || n / 2 > cap)
        return false;
    if (sodium_hex2bin(out, cap, s, n, NULL, &bin, &end) != 0 || end != s + n)
        return false;
    *got = bin;
    return bin == n / 2;
}

/* The stored secret: the hashed form sha256$<salt hex>$<digest hex>, or a
 * plaintext hashed now with a fresh salt. */
static bool set_secret(consumer *c, const char *v, size_t n)
{
    if (n >= 7 && memcmp(v, "sha256$", 7) == 0) {
        const char *salt = v + 7, *sep = memchr(salt, '$', n - 7);
        size_t got = 0;
        if (!sep || !hex_to(salt, (size_t)(sep - salt), c->salt, sizeof c->salt, &c->salt_len))
            return false;
        return hex_to(sep + 1, n - (size_t)(sep + 1 - v), c->digest, sizeof c->digest, &got) &&
               got == DIGEST_LEN;
    }
    c->salt_len = SALT_LEN;
    randombytes_buf(c->salt, SALT_LEN);
    digest_of(c->salt, c->salt_len, v, n, c->digest);
    return true;
}

static int reg_error(char *err, size_t errlen, const char *id, const char *why)
{
    /* The id is the operator's own configuration, never a secret. */
    snprintf(err, errlen, "PRIVATE_API_CONSUMERS: consumer '%.64s': %s", id, why);
    return 1;
}

static int read_entry(consumer *c, const char *id, json_object *e, char *err, size_t errlen)
{
    if (!json_object_is_type(e, json_type_object))
        return reg_error(err, errlen, id, "must be an object with \"secret\" and \"scopes\"");
    json_object *secret = NULL, *scopes = NULL;
    json_object_object_foreach(e, key, val)
    {
        if (strcmp(key, "secret") == 0)
            secret = val;
        else if (strcmp(key, "scopes") == 0)
            scopes = val;
        else
            return reg_error(err, errlen, id, "unknown member (only \"secret\" and \"scopes\")");
    }
    if (!secret || !json_object_is_type(secret, json_type_string))
        return reg_error(err, errlen, id, "\"secret\" must be a string");
    size_t sl = (size_t)json_object_get_string_len(secret);
    if (sl == 0 || sl > M8_PRIVATE_SECRET_MAX)
        return reg_error(err, errlen, id, "\"secret\" must be 1-1024 bytes");
    if (!set_secret(c, json_object_get_string(secret), sl))
        return reg_error(err, errlen, id,
                         "a \"sha256$\" secret must be sha256$<salt hex>$<64 hex digits>");
    if (!scopes || json_object_is_type(scopes, json_type_null))
        return 0;
    if (!json_object_is_type(scopes, json_type_array))
        return reg_error(err, errlen, id, "\"scopes\" must be a list of strings");
    size_t n = json_object_array_length(scopes);
    if (n > M8_PRIVATE_SCOPES_MAX)
        return reg_error(err, errlen, id, "more than 16 scopes");
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(scopes, i);
        size_t len = s ? (size_t)json_object_get_string_len(s) : 0;
        const char *v = s ? json_object_get_string(s) : NULL;
        if (!json_object_is_type(s, json_type_string) || len == 0 || len > M8_PRIVATE_SCOPE_MAX ||
            strlen(v) != len || strpbrk(v, " \t\r\n"))
            return reg_error(err, errlen, id,
                             "each scope must be a string of 1-64 bytes without spaces");
        if (!(c->scopes[c->n_scopes++] = strdup(v)))
            return reg_error(err, errlen, id, "out of memory");
    }
    return 0;
}

static bool id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > M8_PRIVATE_ID_MAX)
        return false;
    for (const unsigned char *p = (const unsigned char *)id; *p; p++) {
        if (*p < 0x21 || *p == 0x7f)
            return false;
    }
    return true;
}

int m8_issuer_private_load(const m8_settings *s, char *err, size_t errlen, void *data)
{
    (void)data;
    m8_issuer_private_free(NULL, NULL);
    const char *text = s->private_api_consumers ? s->private_api_consumers : "{}";
    const char *why = NULL;
    json_object *o = m8_json_parse(text, strlen(text), REGISTRY_DEPTH, NULL, &why);
    if (!o || !json_object_is_type(o, json_type_object)) {
        json_object_put(o);
        snprintf(err, errlen, "PRIVATE_API_CONSUMERS must be a JSON object");
        return 1;
    }
    size_t n = (size_t)json_object_object_length(o);
    int rc = 0;
    if (n > M8_PRIVATE_CONSUMERS_MAX) {
        snprintf(err, errlen, "PRIVATE_API_CONSUMERS: more than %u consumers",
                 M8_PRIVATE_CONSUMERS_MAX);
        rc = 1;
    } else if (n == 0 && s->auth_strict_mode) {
        snprintf(err, errlen,
                 "PRIVATE_API_CONSUMERS must name at least one consumer when "
                 "AUTH_STRICT_MODE=true");
        rc = 1;
    } else if (n > 0 && !(g_reg.c = calloc(n, sizeof *g_reg.c))) {
        snprintf(err, errlen, "out of memory");
        rc = 1;
    }
    json_object_object_foreach(o, id, entry)
    {
        if (rc != 0)
            break;
        consumer *c = &g_reg.c[g_reg.n++];
        if (!id_ok(id)) {
            snprintf(err, errlen,
                     "PRIVATE_API_CONSUMERS: a consumer id must be 1-%u printable bytes "
                     "without spaces",
                     M8_PRIVATE_ID_MAX);
            rc = 1;
        } else if (!(c->id = strdup(id))) {
            snprintf(err, errlen, "out of memory");
            rc = 1;
        } else {
            rc = read_entry(c, id, entry, err, errlen);
        }
    }
    json_object_put(o);
    static const char dummy[] = "m8-dummy-consumer-credential";
    if (rc == 0)
        set_secret(&g_reg.dummy, dummy, sizeof dummy - 1);
    if (rc == 0 && n > 0) {
        const char *k = s->private_api_secret;
        if (!k || !*k) {
            snprintf(err, errlen, "PRIVATE_API_SECRET is required to sign service tokens");
            rc = 1;
        } else if (!(g_reg.key = m8_sign_key_from_secret(k, strlen(k), err, errlen))) {
            rc = 1;
        }
    }
    g_reg.ttl = s->service_token_ttl_seconds > 0 ? s->service_token_ttl_seconds : 300;
    if (rc != 0)
        m8_issuer_private_free(NULL, NULL);
    return rc;
}

/* ------------------------------------------------------------ auth */

static bool has_scope(char *const *scopes, size_t n, const char *scope)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(scopes[i], scope) == 0)
            return true;
    }
    return false;
}

/* The bootstrap pair: the consumer, or NULL.  An unknown id costs the same
 * hash against the dummy entry; a missing or empty secret never matches. */
static const consumer *bootstrap(const char *cid, const char *tok)
{
    const consumer *c = NULL;
    for (size_t i = 0; cid && i < g_reg.n; i++) {
        if (strcmp(g_reg.c[i].id, cid) == 0)
            c = &g_reg.c[i];
    }
    const consumer *against = c ? c : &g_reg.dummy;
    size_t len = tok ? strlen(tok) : 0;
    unsigned char d[DIGEST_LEN];
    digest_of(against->salt, against->salt_len, tok ? tok : "", len, d);
    bool same = sodium_memcmp(d, against->digest, DIGEST_LEN) == 0;
    sodium_memzero(d, sizeof d);
    return c && same && len > 0 ? c : NULL;
}

static bool num_claim(json_object *pl, const char *name, bool required, long long *out)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(pl, name, &v))
        return !required;
    if (json_object_is_type(v, json_type_int))
        *out = (long long)json_object_get_int64(v);
    else if (json_object_is_type(v, json_type_double))
        *out = (long long)json_object_get_double(v);
    else
        return false;
    return true;
}

static bool aud_ok(json_object *aud)
{
    if (json_object_is_type(aud, json_type_string))
        return strcmp(json_object_get_string(aud), M8_SERVICE_TOKEN_AUD) == 0;
    if (!json_object_is_type(aud, json_type_array))
        return false;
    for (size_t i = 0; i < json_object_array_length(aud); i++) {
        json_object *a = json_object_array_get_idx(aud, i);
        if (json_object_is_type(a, json_type_string) &&
            strcmp(json_object_get_string(a), M8_SERVICE_TOKEN_AUD) == 0)
            return true;
    }
    return false;
}

/* A service token: 1 (valid, *who and *has_scope set), 0 (refused). */
static int service_token(const char *tok, size_t len, const char *scope, m8_private_caller *who,
                         bool *scoped)
{
    m8_jws j;
    if (!g_reg.key || m8_jws_parse(tok, len, &j) != M8_JWT_OK)
        return 0;
    int r = 0;
    long long now = (long long)time(NULL), exp = 0, nbf = 0, iat = 0;
    json_object *pl = NULL, *v = NULL;
    if (!j.alg || strcmp(j.alg, "HS256") != 0 ||
        m8_jws_verify(&j, M8_ALG_HS256, g_reg.key->hmac) != M8_JWT_OK ||
        m8_jws_parse_payload(&j) != M8_JWT_OK)
        goto done;
    pl = j.payload;
    if (!num_claim(pl, "exp", true, &exp) || exp <= now || !num_claim(pl, "iat", false, &iat) ||
        !num_claim(pl, "nbf", false, &nbf) || nbf > now)
        goto done;
    if (!json_object_object_get_ex(pl, "aud", &v) || !aud_ok(v))
        goto done;
    if (!json_object_object_get_ex(pl, "type", &v) || !json_object_is_type(v, json_type_string) ||
        strcmp(json_object_get_string(v), "service") != 0)
        goto done;
    if (!json_object_object_get_ex(pl, "sub", &v) || !json_object_is_type(v, json_type_string) ||
        json_object_get_string_len(v) == 0 ||
        (size_t)json_object_get_string_len(v) > M8_PRIVATE_ID_MAX)
        goto done;
    snprintf(who->id, sizeof who->id, "%s", json_object_get_string(v));
    who->bearer = true;
    *scoped = false;
    if (json_object_object_get_ex(pl, "scope", &v) && json_object_is_type(v, json_type_string)) {
        const char *p = json_object_get_string(v);
        size_t sl = strlen(scope);
        while (*p && !*scoped) {
            size_t w = strcspn(p, " ");
            *scoped = w == sl && memcmp(p, scope, sl) == 0;
            p += w;
            p += strspn(p, " ");
        }
    }
    r = 1;
done:
    m8_jws_free(&j);
    return r;
}

int m8_issuer_private_auth(m8_request *req, const char *scope, m8_private_caller *who)
{
    memset(who, 0, sizeof *who);
    if (g_reg.n == 0)
        return m8_res_error(req, 401, M8_PRIVATE_DETAIL_UNAUTHORIZED), 1;
    const char *tok = NULL;
    size_t len = 0;
    bool scoped = false;
    if (m8_auth_bearer(req, &tok, &len)) {
        /* bearer first: the X-Internal-* headers are then ignored */
        if (!service_token(tok, len, scope, who, &scoped))
            return m8_res_error(req, 401, M8_PRIVATE_DETAIL_UNAUTHORIZED), 1;
    } else {
        const char *cid = m8_req_header(req, "X-Internal-Client");
        const consumer *c = bootstrap(cid, m8_req_header(req, "X-Internal-Token"));
        if (!c) /* also the legacy token-only shape */
            return m8_res_error(req, 401, M8_PRIVATE_DETAIL_UNAUTHORIZED), 1;
        snprintf(who->id, sizeof who->id, "%s", c->id);
        scoped = has_scope(c->scopes, c->n_scopes, scope);
    }
    if (!scoped)
        return m8_res_error(req, 403, M8_PRIVATE_DETAIL_FORBIDDEN), 1;
    return 0;
}

/* ------------------------------------------------------------ exchange */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The 422 of a body member (pydantic's list shape). */
static int unprocessable(m8_request *req, const char *type, const char *msg, json_object *loc,
                         json_object *input)
{
    json_object *e = json_object_new_object(), *list = json_object_new_array(),
                *o = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string(type));
    json_object_object_add(e, "loc", loc);
    json_object_object_add(e, "msg", json_object_new_string(msg));
    json_object_object_add(e, "input", json_object_get(input));
    json_object_array_add(list, e);
    json_object_object_add(o, "detail", list);
    return m8_res_json(req, 422, o);
}

static json_object *loc_of(const char *member, int idx)
{
    json_object *l = json_object_new_array();
    json_object_array_add(l, json_object_new_string("body"));
    if (member)
        json_object_array_add(l, json_object_new_string(member));
    if (idx >= 0)
        json_object_array_add(l, json_object_new_int(idx));
    return l;
}

/* The requested scopes of the exchange body: 0 with *req_scopes (NULL =
 * every granted scope), or 1 after the 422. */
static int requested(m8_request *req, json_object **req_scopes)
{
    size_t blen = 0;
    *req_scopes = NULL;
    m8_req_body(req, &blen);
    if (blen == 0)
        return 0; /* the body is optional */
    if (m8_req_parse_json(req) != 0)
        return 1;
    json_object *b = m8_req_json(req), *s = NULL;
    if (!json_object_is_type(b, json_type_object))
        return unprocessable(req, "model_attributes_type",
                             "Input should be a valid dictionary or object to extract fields from",
                             loc_of(NULL, -1), b),
               1;
    if (!json_object_object_get_ex(b, "scopes", &s) || json_object_is_type(s, json_type_null))
        return 0;
    if (!json_object_is_type(s, json_type_array))
        return unprocessable(req, "list_type", "Input should be a valid list", loc_of("scopes", -1),
                             s),
               1;
    size_t n = json_object_array_length(s);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(s, i);
        if (!json_object_is_type(e, json_type_string))
            return unprocessable(req, "string_type", "Input should be a valid string",
                                 loc_of("scopes", (int)i), e),
                   1;
    }
    *req_scopes = n > 0 ? s : NULL;
    return 0;
}

/* Signs the token of consumer id for the (sorted, distinct) scope text. */
static int mint(const char *id, const char *scope, long long now, m8_buf *out)
{
    char jti[M8_UUID_STR_LEN + 1];
    m8_jti_new(jti);
    json_object *p = json_object_new_object();
    json_object_object_add(p, "sub", json_object_new_string(id));
    json_object_object_add(p, "scope", json_object_new_string(scope));
    json_object_object_add(p, "type", json_object_new_string("service"));
    json_object_object_add(p, "aud", json_object_new_string(M8_SERVICE_TOKEN_AUD));
    json_object_object_add(p, "iat", json_object_new_int64(now));
    json_object_object_add(p, "nbf", json_object_new_int64(now));
    json_object_object_add(p, "exp", json_object_new_int64(now + g_reg.ttl));
    json_object_object_add(p, "jti", json_object_new_string(jti));
    const char *pl =
        json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    static const char hdr[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    int rc = m8_jws_sign(g_reg.key, hdr, sizeof hdr - 1, pl, strlen(pl), out);
    json_object_put(p);
    return rc;
}

int m8_issuer_h_service_token(m8_request *req, void *data)
{
    (void)data;
    if (g_reg.n == 0 || !g_reg.key)
        return m8_res_error(req, 404, M8_PRIVATE_DETAIL_NO_EXCHANGE);
    /* the exchange takes the bootstrap pair only */
    const consumer *c =
        bootstrap(m8_req_header(req, "X-Internal-Client"), m8_req_header(req, "X-Internal-Token"));
    if (!c)
        return m8_res_error(req, 401, M8_PRIVATE_DETAIL_UNAUTHORIZED);
    json_object *want = NULL;
    if (requested(req, &want) != 0)
        return 0;
    const char *pick[EXCHANGE_SCOPES_MAX];
    size_t n = 0;
    size_t nwant = want ? json_object_array_length(want) : c->n_scopes;
    for (size_t i = 0; i < nwant; i++) {
        const char *s =
            want ? json_object_get_string(json_object_array_get_idx(want, i)) : c->scopes[i];
        if (!has_scope(c->scopes, c->n_scopes, s))
            return m8_res_error(req, 403, M8_PRIVATE_DETAIL_FORBIDDEN);
        bool dup = false;
        for (size_t k = 0; k < n && !dup; k++)
            dup = strcmp(pick[k], s) == 0;
        if (!dup)
            pick[n++] = s; /* n <= granted scopes <= 16 */
    }
    if (n == 0)
        return m8_res_error(req, 403, M8_PRIVATE_DETAIL_FORBIDDEN);
    qsort(pick, n, sizeof pick[0], cmp_str);
    char scope[M8_PRIVATE_SCOPES_MAX * (M8_PRIVATE_SCOPE_MAX + 1) + 1];
    size_t at = 0;
    for (size_t i = 0; i < n; i++)
        at += (size_t)snprintf(scope + at, sizeof scope - at, "%s%s", i ? " " : "", pick[i]);
    long long now = (long long)time(NULL);
    m8_buf tok;
    m8_buf_init(&tok, 8192);
    if (mint(c->id, scope, now, &tok) != 0) {
        m8_buf_free(&tok);
        m8_req_fail(req, "issuer: cannot sign a service token");
        return m8_res_error(req, 500, "Internal Server Error");
    }
    json_object *o = json_object_new_object();
    json_object_object_add(o, "access_token", json_object_new_string_len(tok.data, (int)tok.len));
    json_object_object_add(o, "token_type", json_object_new_string("bearer"));
    json_object_object_add(o, "expires_in", json_object_new_int64(g_reg.ttl));
    json_object_object_add(o, "scope", json_object_new_string(scope));
    sodium_memzero(tok.data, tok.len);
    m8_buf_free(&tok);
    m8_log(M8_LOG_INFO, "event=private.service_token consumer=%s scope=\"%s\"", c->id, scope);
    return m8_res_json(req, 200, o);
}
