/* auth.c - per-route access decisions (auth.h). */
#include "auth/auth.h"

#include <json-c/json.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/alg.h"
#include "auth/apikey.h"
#include "auth/credential.h"
#include "auth/jwk_export.h"
#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/revocation.h"
#include "builtin/issuer_metrics.h"
#include "core/log.h"

/* Entries per serving thread (M8_TOKEN_CACHE_ENTRIES; doc/settings.md):
 * each holds a token's bytes and its principal's strings, about 1 kB, so
 * the default bounds a thread's cache near 256 kB. */
#define CACHE_ENTRIES_DEFAULT 256u
#define CACHE_ENTRIES_MAX 65536u
#define CACHE_WAYS 2u

typedef struct cache_entry {
    uint64_t hash;
    unsigned long generation;
    char *mem; /* the whole token (a hit needs the exact bytes), then the principal's strings */
    size_t token_len;
    size_t strings_len;
    m8_principal p; /* strings point into mem; p.mem is NULL */
} cache_entry;

typedef struct token_cache {
    const m8_auth *owner;
    size_t n_sets; /* a power of two */
    unsigned next_way;
    cache_entry e[][CACHE_WAYS];
} token_cache;

struct m8_auth {
    m8_alg alg;
    m8_key *key; /* static key (secret or PEM), or NULL with jwks */
    /* fcgim8-issuer during a key rotation: the other published key
     * (ACCESS_PUBLIC_KEY_OLD_FILE), used for tokens whose kid is kid_old */
    m8_key *key_old;
    char kid_old[80];          /* ACCESS_KEY_ID_OLD, or 16 hex digits */
    m8_jwks *jwks;             /* JWKS_URI resolver, or NULL */
    struct m8_revocation *rev; /* stateful mode; owned by the app */
    struct m8_apikey *apikey;  /* API_KEY_INTROSPECTION_ENABLED; owned by the app */
    m8_claims_policy policy;
    char *issuer, *audience;
    char *cookie;       /* ACCESS_TOKEN_COOKIE_NAME, or NULL (no cookie kind) */
    int invalid_status; /* AUTH_INVALID_TOKEN_STATUS; 403 in fcgim8-issuer */
    /* m8_auth_use_issuer (doc/issuer.md#own-routes) */
    m8_auth_revoked_fn issuer_revoked;
    void *issuer_revoked_data;
    bool issuer_fail_open;
    bool is_issuer; /* m8_auth_use_issuer was called */
    m8_auth_hooks hooks;
    unsigned char hash_key[crypto_shorthash_KEYBYTES]; /* SipHash-2-4, random per process */
    pthread_key_t tls;
    size_t cache_sets; /* per thread; 0: no cache */
    atomic_ulong verifications, cache_hits;
};

static void cache_destroy(void *p)
{
    token_cache *c = p;
    if (!c)
        return;
    for (size_t i = 0; i < c->n_sets; i++)
        for (size_t w = 0; w < CACHE_WAYS; w++)
            free(c->e[i][w].mem);
    sodium_memzero(c->e, c->n_sets * sizeof c->e[0]);
    free(c);
}

/* fcgim8-issuer: the second published key of a rotation, so that tokens
 * signed with it keep working on the issuer's own routes while consumers
 * accept them too (doc/issuer.md#key-rotation).  Its kid is ACCESS_KEY_ID_OLD,
 * else derived as the JWKS derives it. */
static int load_old_key(m8_auth *a, const m8_settings *s, char *err, size_t errlen)
{
    char *pem = NULL;
    size_t len = 0;
    if (m8_read_file(s->access_public_key_old_file, 64u << 10, true, &pem, &len) != 0) {
        snprintf(err, errlen, "ACCESS_PUBLIC_KEY_OLD_FILE: cannot read %s",
                 s->access_public_key_old_file);
        return M8_EINVAL;
    }
    a->key_old = m8_key_from_pem(pem, len, a->alg, err, errlen);
    free(pem);
    if (!a->key_old)
        return M8_EINVAL;
    if (s->access_key_id_old && *s->access_key_id_old) {
        snprintf(a->kid_old, sizeof a->kid_old, "%s", s->access_key_id_old);
    } else if (m8_jwk_kid(a->key_old->pkey, a->kid_old) != 0) {
        snprintf(err, errlen, "ACCESS_PUBLIC_KEY_OLD_FILE: cannot derive its key id");
        return M8_EINVAL;
    }
    return 0;
}

const struct evp_pkey_st *m8_auth_old_key(const m8_auth *a, const char **kid)
{
    if (kid)
        *kid = a && a->key_old ? a->kid_old : NULL;
    return a && a->key_old ? a->key_old->pkey : NULL;
}

m8_auth *m8_auth_new(const m8_settings *s, char *err, size_t errlen)
{
    m8_auth *a = calloc(1, sizeof *a);
    if (!a) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (sodium_init() < 0 || pthread_key_create(&a->tls, cache_destroy) != 0) {
        snprintf(err, errlen, "cannot initialise the token cache");
        free(a);
        return NULL;
    }
    randombytes_buf(a->hash_key, sizeof a->hash_key);
    long long entries = CACHE_ENTRIES_DEFAULT;
    const char *ce = getenv("M8_TOKEN_CACHE_ENTRIES");
    if (ce && m8_parse_ll(ce, 0, CACHE_ENTRIES_MAX, &entries) != 0)
        entries = CACHE_ENTRIES_DEFAULT; /* not a number in range: the default */
    size_t sets = 0;
    while (entries >= 2 && (sets ? sets * 2 : 1) * CACHE_WAYS <= (size_t)entries)
        sets = sets ? sets * 2 : 1;
    a->cache_sets = sets;
    a->alg = s->access_token_algorithm;
    a->invalid_status = s->auth_invalid_token_status == 403 ? 403 : 401;
    a->issuer = m8_strdup0(s->token_issuer);
    a->audience = m8_strdup0(s->token_audience);
    if (s->access_token_cookie_name && *s->access_token_cookie_name)
        a->cookie = m8_strdup0(s->access_token_cookie_name);
    a->policy.strict = s->token_strict_validation;
    a->policy.issuer = a->issuer;
    a->policy.audience = a->audience;
    if (a->alg == M8_ALG_HS256) {
        const char *k = s->access_secret_key;
        if (k)
            a->key = m8_key_from_secret(k, strlen(k), err, errlen);
    } else if (s->jwks_uri && *s->jwks_uri && !s->issuer) {
        /* fcgim8-issuer checks its own tokens with its own key, never a JWKS */
        a->jwks =
            m8_jwks_new(s->jwks_uri, a->alg, (double)s->jwks_cache_ttl_seconds, M8_JWKS_COOLDOWN_S);
        if (!a->jwks)
            snprintf(err, errlen, "JWKS_URI: cannot create the resolver");
        else
            m8_jwks_set_max_stale(a->jwks, (double)s->jwks_max_stale_seconds);
    } else if (s->access_public_key) {
        a->key = m8_key_from_pem(s->access_public_key, strlen(s->access_public_key), a->alg, err,
                                 errlen);
    }
    if (a->key && s->issuer && a->alg != M8_ALG_HS256 && s->access_public_key_old_file &&
        *s->access_public_key_old_file && load_old_key(a, s, err, errlen) != 0) {
        m8_auth_free(a);
        return NULL;
    }
    if (!a->key && !a->jwks) {
        if (!*err)
            snprintf(err, errlen, "no key source for %s tokens", m8_alg_name(a->alg));
        m8_auth_free(a);
        return NULL;
    }
    return a;
}

void m8_auth_free(m8_auth *a)
{
    if (!a)
        return;
    /* The calling thread's cache; other threads' caches go with them. */
    token_cache *c = pthread_getspecific(a->tls);
    if (c) {
        pthread_setspecific(a->tls, NULL);
        cache_destroy(c);
    }
    pthread_key_delete(a->tls);
    m8_jwt_thread_release(); /* this thread's contexts and their key references */
    m8_key_unref(a->key);
    m8_key_unref(a->key_old);
    m8_jwks_free(a->jwks);
    free(a->issuer);
    free(a->audience);
    free(a->cookie);
    sodium_memzero(a->hash_key, sizeof a->hash_key);
    free(a);
}

void m8_auth_use_shared_jwks(m8_auth *a, struct m8_shm *shm)
{
    if (a && a->jwks)
        m8_jwks_use_shared(a->jwks, shm);
}

void m8_auth_report_jwks(m8_auth *a, struct m8_shm *shm)
{
    if (a && a->jwks)
        m8_jwks_report_to(a->jwks, shm);
}

void m8_auth_set_hooks(m8_auth *a, const m8_auth_hooks *hooks)
{
    a->hooks = *hooks;
}

unsigned long m8_auth_verifications(const m8_auth *a)
{
    return atomic_load(&a->verifications);
}

unsigned long m8_auth_cache_hits(const m8_auth *a)
{
    return atomic_load(&a->cache_hits);
}

bool m8_auth_bearer(const m8_request *req, const char **tok, size_t *len)
{
    /* The bearer credential kind (credential.h): an empty Authorization
     * counts as absent, REDIRECT_HTTP_AUTHORIZATION is Apache's copy. */
    m8_credential c;
    m8_credential_bearer(req, &c);
    if (c.kind != M8_CRED_BEARER)
        return false;
    *tok = c.value;
    *len = c.len;
    return true;
}

/* ------------------------------------------------------------ cache */

static token_cache *thread_cache(m8_auth *a)
{
    token_cache *c = pthread_getspecific(a->tls);
    if (!c) {
        if (!a->cache_sets)
            return NULL;
        c = calloc(1, sizeof *c + a->cache_sets * sizeof c->e[0]);
        if (!c || pthread_setspecific(a->tls, c) != 0) {
            free(c);
            return NULL;
        }
        c->owner = a;
        c->n_sets = a->cache_sets;
    }
    return c;
}

static unsigned long key_generation(m8_auth *a)
{
    return a->jwks ? m8_jwks_generation(a->jwks) : 0;
}

static void entry_clear(cache_entry *e)
{
    free(e->mem);
    memset(e, 0, sizeof *e);
}

static cache_entry *cache_set(token_cache *c, uint64_t h)
{
    return c->e[h & (c->n_sets - 1)];
}

/* The index of a token in the cache: a keyed SipHash of its last
 * CACHE_HASH_BYTES bytes.  Only verified tokens are stored, and those bytes
 * are signature bytes nobody can choose without the signing key, so they
 * spread entries as well as the whole token would, at a fraction of the
 * cost; a hit still needs the exact bytes of the whole token. */
#define CACHE_HASH_BYTES 32

static uint64_t token_hash(const m8_auth *a, const char *tok, size_t len)
{
    size_t n = len < CACHE_HASH_BYTES ? len : CACHE_HASH_BYTES;
    unsigned char hb[crypto_shorthash_BYTES];
    crypto_shorthash(hb, (const unsigned char *)tok + len - n, n, a->hash_key);
    uint64_t h;
    memcpy(&h, hb, sizeof h);
    return h;
}

static const cache_entry *cache_get(m8_auth *a, token_cache *c, uint64_t h, const char *tok,
                                    size_t len, double now)
{
    cache_entry *set = cache_set(c, h);
    for (size_t w = 0; w < CACHE_WAYS; w++) {
        cache_entry *e = &set[w];
        if (!e->mem || e->hash != h || e->token_len != len || memcmp(e->mem, tok, len) != 0)
            continue;
        if (e->generation != key_generation(a) || now >= (double)e->p.exp ||
            (a->jwks && !m8_jwks_current(a->jwks))) {
            /* keys changed or may have (a newer or an expired set: the
             * full check fetches it), or the token expired: never served
             * again */
            entry_clear(e);
            return NULL;
        }
        return e;
    }
    return NULL;
}

static void cache_put(m8_auth *a, token_cache *c, uint64_t h, const char *tok, size_t len,
                      const m8_principal *p)
{
    const char *src[] = {p->id, p->email, p->full_name, p->avatar, p->role, p->tenant_id, p->jti};
    size_t slen[M8_ARRAY_LEN(src)], total = 0;
    for (size_t i = 0; i < M8_ARRAY_LEN(src); i++) {
        slen[i] = src[i] ? strlen(src[i]) + 1 : 0;
        total += slen[i];
    }
    char *mem = malloc(len + total);
    if (!mem)
        return;
    cache_entry *set = cache_set(c, h);
    cache_entry *e = NULL;
    for (size_t w = 0; w < CACHE_WAYS && !e; w++) {
        if (!set[w].mem)
            e = &set[w];
    }
    if (!e)
        e = &set[c->next_way++ % CACHE_WAYS];
    entry_clear(e);
    memcpy(mem, tok, len);
    e->p = *p;
    e->p.mem = NULL;
    char **dst[] = {&e->p.id,   &e->p.email,     &e->p.full_name, &e->p.avatar,
                    &e->p.role, &e->p.tenant_id, &e->p.jti};
    char *at = mem + len;
    for (size_t i = 0; i < M8_ARRAY_LEN(src); i++) {
        *dst[i] = src[i] ? memcpy(at, src[i], slen[i]) : NULL;
        at += slen[i];
    }
    e->mem = mem;
    e->token_len = len;
    e->strings_len = total;
    e->hash = h;
    e->generation = key_generation(a);
}

/* ------------------------------------------------------------ decisions */

static void deny_invalid(m8_auth *a, m8_request *req, const char *detail)
{
    m8_res_error(req, a->invalid_status, detail);
    if (a->invalid_status == 401)
        m8_res_set_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
}

static void fail(m8_auth *a, m8_request *req, m8_jwt_reason r)
{
    const char *reason = m8_jwt_reason_name(r);
    char key[64]; /* one log budget per reason: a spray writes a few lines, counts all */
    snprintf(key, sizeof key, "auth.fail.%s", reason);
    m8_log_limited(key, M8_LOG_WARNING, "auth.fail type=access reason=%s", reason);
    if (a->hooks.on_failure)
        a->hooks.on_failure(reason, "access", a->hooks.data);
    m8_req_fail(req, "token refused: %s", reason);
    deny_invalid(a, req, "Could not validate credentials.");
}

int m8_auth_verify(m8_auth *a, const char *tok, size_t len, double now, m8_principal *p,
                   struct json_object **claims)
{
    m8_jws j;
    m8_jwt_reason r = m8_jws_parse(tok, len, &j);
    if (r != M8_JWT_OK)
        return r;
    int rc;
    if (a->jwks) {
        unsigned checks = 0;
        rc = m8_jwks_verify(a->jwks, &j, a->alg, m8_now_mono(), &checks);
        atomic_fetch_add_explicit(&a->verifications, checks, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&a->verifications, 1, memory_order_relaxed);
        const m8_key *k = a->key;
        if (a->key_old && j.kid && strcmp(j.kid, a->kid_old) == 0)
            k = a->key_old; /* the other key of a rotation (issuer) */
        rc = m8_jws_verify(&j, a->alg, k);
    }
    if (rc == M8_JWT_OK)
        rc = m8_jws_parse_payload(&j);
    if (rc == M8_JWT_OK)
        rc = m8_claims_check(&j, &a->policy, now, p);
    if (rc == M8_JWT_OK && claims)
        *claims = json_object_get(j.payload);
    m8_jws_free(&j);
    return rc;
}

/* The public m8_user in the request's arena: one allocation for the
 * struct and the strings. */
static bool set_user(m8_request *req, const m8_principal *p)
{
    const char *src[] = {p->id, p->email, p->full_name, p->avatar, p->role, p->tenant_id, p->jti};
    size_t slen[M8_ARRAY_LEN(src)], total = sizeof(m8_user);
    for (size_t i = 0; i < M8_ARRAY_LEN(src); i++) {
        slen[i] = src[i] ? strlen(src[i]) + 1 : 0;
        total += slen[i];
    }
    m8_user *u = m8_arena_alloc(&req->arena, total);
    if (!u)
        return false;
    const char **dst[] = {&u->id,   &u->email,     &u->full_name, &u->avatar,
                          &u->role, &u->tenant_id, &u->jti};
    char *at = (char *)(u + 1);
    for (size_t i = 0; i < M8_ARRAY_LEN(src); i++) {
        *dst[i] = src[i] ? memcpy(at, src[i], slen[i]) : NULL;
        at += slen[i];
    }
    u->is_active = p->is_active;
    u->is_superuser = p->is_superuser;
    u->email_verified = p->email_verified;
    u->exp = p->exp;
    req->user = u;
    return u->id && u->email && u->role && u->jti;
}

static const char *moved(const char *s, const char *from, char *to)
{
    return s ? to + (s - from) : NULL;
}

/* The same from a cache entry, whose strings are one run of bytes: one
 * copy, then the pointers moved over. */
static bool set_user_cached(m8_request *req, const cache_entry *e)
{
    m8_user *u = m8_arena_alloc(&req->arena, sizeof *u + e->strings_len);
    if (!u)
        return false;
    const char *from = e->mem + e->token_len;
    char *to = memcpy(u + 1, from, e->strings_len);
    const m8_principal *p = &e->p;
    u->id = moved(p->id, from, to);
    u->email = moved(p->email, from, to);
    u->full_name = moved(p->full_name, from, to);
    u->avatar = moved(p->avatar, from, to);
    u->role = moved(p->role, from, to);
    u->tenant_id = moved(p->tenant_id, from, to);
    u->jti = moved(p->jti, from, to);
    u->is_active = p->is_active;
    u->is_superuser = p->is_superuser;
    u->email_verified = p->email_verified;
    u->exp = p->exp;
    req->user = u;
    return true;
}

static bool allowed(const m8_principal *p, m8_access access)
{
    switch (access) {
    case M8_USER: return true;
    case M8_READER: return m8_role_at_least(p->role, "reader");
    case M8_WRITER: return m8_role_at_least(p->role, "writer");
    case M8_ADMIN: return m8_role_at_least(p->role, "admin");
    case M8_SUPERUSER: return strcmp(p->role, "superadmin") == 0 && p->is_superuser;
    default: return false;
    }
}

/* Stateful mode (doc/wire.md#jti-status): after signature and claims,
 * cached or not, and before the user and role checks.  Revocation calls no
 * hooks (doc/wire.md#failure-reasons). */
static bool revocation_allows(m8_auth *a, m8_request *req, const m8_principal *p, m8_access access,
                              double now)
{
    m8_rev_token rt = {p->jti, p->id, p->iat, p->exp};
    m8_rev_result rr = m8_revocation_check(a->rev, &rt, access == M8_USER, now);
    if (rr == M8_REV_ALLOW)
        return true;
    req->user = NULL;
    if (rr == M8_REV_REVOKED) {
        m8_req_fail(req, "token refused: revoked");
        deny_invalid(a, req, m8_revocation_detail(rr));
    } else {
        m8_req_fail(req, "revocation check unavailable");
        m8_res_error(req, 503, m8_revocation_detail(rr));
    }
    return false;
}

void m8_auth_use_issuer(m8_auth *a, m8_auth_revoked_fn revoked, void *data, bool fail_open)
{
    if (!a)
        return;
    a->invalid_status = 403;
    a->is_issuer = true;
    a->issuer_revoked = revoked;
    a->issuer_revoked_data = data;
    a->issuer_fail_open = fail_open;
}

/* fcgim8-issuer, stateful mode: its own revocation store, asked after
 * signature and claims, cached or not (doc/issuer.md#own-routes). */
static bool issuer_allows(m8_auth *a, m8_request *req, const m8_principal *p)
{
    int r = a->issuer_revoked(req, p->jti, a->issuer_revoked_data);
    if (r == 0)
        return true;
    if (r == 1) {
        if (a->hooks.on_failure) /* auth_token_validation_failures_total{reason="revoked"} */
            a->hooks.on_failure("revoked", "access", a->hooks.data);
        req->user = NULL;
        m8_req_fail(req, "token refused: revoked");
        m8_res_error(req, 401, "Session revoked");
        return false;
    }
    m8_im_inc3(M8_IM_DEGRADED, M8_IM_CTL_ACCESS_REVOCATION,
               a->issuer_fail_open ? M8_FAIL_OPEN : M8_FAIL_CLOSED, M8_IM_REASON_REDIS_UNAVAILABLE);
    if (a->issuer_fail_open) {
        m8_log_limited("auth.issuer.revocation", M8_LOG_WARNING,
                       "auth: revocation store unavailable; ACCESS_REVOCATION_FAILURE_MODE="
                       "fail_open lets the token through");
        return true;
    }
    req->user = NULL;
    m8_req_fail(req, "revocation store unavailable");
    m8_res_error(req, 503, "Authentication service temporarily unavailable");
    return false;
}

void m8_auth_use_revocation(m8_auth *a, m8_revocation *rev)
{
    if (a)
        a->rev = rev;
}

void m8_auth_use_apikey(m8_auth *a, struct m8_apikey *k)
{
    if (a)
        a->apikey = k;
}

/* An X-API-Key route (doc/wire.md#api-key-introspection): the key resolved
 * by the issuer on every request, the owner as the request's user.  No
 * WWW-Authenticate. */
static bool apikey_check(m8_auth *a, m8_request *req, m8_access access, const m8_credential *c)
{
    if (!a || !a->apikey) { /* refused at boot; fail closed if it ever happens */
        m8_req_fail(req, "an API-key route without API-key introspection");
        m8_res_error(req, 503, "API key introspection unavailable");
        return false;
    }
    const char *key = c->kind == M8_CRED_API_KEY ? c->value : NULL;
    m8_apikey_answer ans;
    if (access != M8_API_KEY_READER && access != M8_API_KEY_WRITER && access != M8_USER &&
        access != M8_READER && access != M8_WRITER) { /* refused at boot: fail closed */
        m8_req_fail(req, "an API key on a route whose role no key grants");
        m8_res_error(req, 403, "The user doesn't have enough privileges");
        return false;
    }
    bool writer = access == M8_API_KEY_WRITER || access == M8_WRITER;
    if (!m8_apikey_resolve(a->apikey, key, key ? c->len : 0,
                           writer ? M8_APIKEY_WRITER : M8_APIKEY_READER, m8_now_mono(), &req->arena,
                           &ans) ||
        !m8_apikey_require_scope(a->apikey, &ans, req->api_key_scope)) {
        m8_req_fail(req, "API key refused: %s", m8_apikey_reason_name(ans.reason));
        m8_res_error(req, ans.status, ans.detail);
        if (ans.retry_after[0])
            m8_res_set_header(req, "Retry-After", ans.retry_after);
        return false;
    }
    m8_user *u = m8_arena_alloc(&req->arena, sizeof *u);
    if (!u) {
        m8_req_fail(req, "out of memory");
        m8_res_error(req, 500, "Internal Server Error");
        return false;
    }
    memset(u, 0, sizeof *u);
    u->id = ans.principal.user_id;
    u->role = ans.principal.role;
    u->is_active = 1;
    u->is_superuser = ans.principal.is_superuser;
    u->exp = (long long)ans.principal.key_expires_ts;
    req->user = u;
    return true;
}

bool m8_auth_check(m8_auth *a, m8_request *req, m8_access access)
{
    return m8_auth_resolve(a, req, access, 0, NULL, NULL);
}

const char *m8_auth_cookie_name(const m8_auth *a)
{
    return a ? a->cookie : NULL;
}

bool m8_auth_resolve(m8_auth *a, m8_request *req, m8_access access, unsigned kinds,
                     const char *cookie, m8_credential *used)
{
    m8_credential c;
    if (!(kinds & M8_ROUTE_CRED_MASK))
        kinds = m8_credential_default_kinds(access);
    if (!cookie && a)
        cookie = a->cookie;
    m8_credential_take(req, kinds, cookie, &c);
    if (used)
        *used = c;
    if (access == M8_PUBLIC)
        return true;
    /* A route that takes API keys only answers a missing key as the key
     * check does; with a token kind too, a missing credential is the token
     * answer (401 with WWW-Authenticate: Bearer). */
    if (c.kind == M8_CRED_NONE && (kinds & M8_ROUTE_CRED_MASK) == M8_ROUTE_CRED_API_KEY)
        return apikey_check(a, req, access, &c);
    return m8_auth_check_credential(a, req, access, &c);
}

bool m8_auth_check_credential(m8_auth *a, m8_request *req, m8_access access,
                              const m8_credential *cred)
{
    if (access == M8_PUBLIC)
        return true;
    if (cred->kind == M8_CRED_API_KEY)
        return apikey_check(a, req, access, cred);
    if (access == M8_API_KEY_READER || access == M8_API_KEY_WRITER)
        return apikey_check(a, req, access, cred);
    if (cred->kind == M8_CRED_AMBIGUOUS) {
        /* Two different token cookies: one may be planted; use neither. */
        m8_req_fail(req, "token refused: the token cookie appears twice with different values");
        m8_res_error(req, 401, "Could not validate credentials.");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return false;
    }
    if (cred->kind != M8_CRED_BEARER && cred->kind != M8_CRED_COOKIE) {
        m8_res_error(req, 401, "Not authenticated");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer");
        return false;
    }
    const char *tok = cred->value;
    size_t len = cred->len;
    if (!a) { /* no verifier (not booted): fail closed */
        m8_res_error(req, 401, "Could not validate credentials.");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return false;
    }
    double now = m8_now_wall();
    token_cache *c = len <= M8_MAX_TOKEN_BYTES ? thread_cache(a) : NULL;
    uint64_t h = c ? token_hash(a, tok, len) : 0;
    const cache_entry *hit = c ? cache_get(a, c, h, tok, len, now) : NULL;
    const m8_principal *p;
    m8_principal fresh = {0};
    bool ok = true;
    if (hit) {
        atomic_fetch_add_explicit(&a->cache_hits, 1, memory_order_relaxed);
        p = &hit->p;
        ok = set_user_cached(req, hit);
    } else {
        int r = m8_auth_verify(a, tok, len, now, &fresh, NULL);
        if (r < 0) {
            m8_log_limited("auth.nokey", M8_LOG_ERROR, "auth: no usable key (JWKS unavailable)");
            m8_req_fail(req, "token key source unavailable");
            m8_res_error(req, 503, "Token validation unavailable.");
            return false;
        }
        if (r != M8_JWT_OK) {
            m8_principal_clear(&fresh);
            fail(a, req, (m8_jwt_reason)r);
            return false;
        }
        p = &fresh;
        if (a->hooks.on_success)
            a->hooks.on_success(p->jti, p->id, "access", a->hooks.data);
        if (c)
            cache_put(a, c, h, tok, len, p);
        ok = set_user(req, p);
    }
    if (!ok) {
        m8_req_fail(req, "out of memory");
        m8_res_error(req, 500, "Internal Server Error");
    } else if (a->rev && !revocation_allows(a, req, p, access, now)) {
        ok = false;
    } else if (a->issuer_revoked && !issuer_allows(a, req, p)) {
        ok = false;
    } else if (!p->is_active) {
        if (a->is_issuer && a->hooks.on_failure) /* fcgim8-issuer's own routes */
            a->hooks.on_failure("inactive", "access", a->hooks.data);
        m8_res_error(req, 403, "Inactive user");
        ok = false;
    } else if (!allowed(p, access)) {
        m8_res_error(req, 403, "The user doesn't have enough privileges");
        ok = false;
    }
    m8_principal_clear(&fresh);
    return ok;
}

const m8_user *m8_req_user(const m8_request *req)
{
    return req ? req->user : NULL;
}
