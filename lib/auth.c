/* auth.c - per-route access decisions (auth.h). */
#include "auth.h"

#include <json-c/json.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jwks.h"
#include "jwt.h"
#include "log.h"

#define CACHE_SLOTS 1024u /* per thread; a power of two */
#define CACHE_WAYS 2u

typedef struct cache_entry {
    uint64_t hash;
    char *token; /* the whole token: a hit needs the exact bytes, not just the hash */
    size_t token_len;
    unsigned long generation;
    m8_principal p;
} cache_entry;

typedef struct token_cache {
    const m8_auth *owner;
    cache_entry e[CACHE_SLOTS][CACHE_WAYS];
    unsigned next_way;
} token_cache;

struct m8_auth {
    m8_alg alg;
    m8_key *key;   /* static key (secret or PEM), or NULL with jwks */
    m8_jwks *jwks; /* JWKS_URI resolver, or NULL */
    m8_claims_policy policy;
    char *issuer, *audience;
    int invalid_status; /* AUTH_INVALID_TOKEN_STATUS */
    m8_auth_hooks hooks;
    unsigned char hash_key[crypto_shorthash_KEYBYTES]; /* SipHash-2-4, random per process */
    pthread_key_t tls;
    atomic_ulong verifications, cache_hits;
};

static void cache_destroy(void *p)
{
    token_cache *c = p;
    if (!c)
        return;
    for (size_t i = 0; i < CACHE_SLOTS; i++)
        for (size_t w = 0; w < CACHE_WAYS; w++) {
            m8_principal_clear(&c->e[i][w].p);
            free(c->e[i][w].token);
        }
    sodium_memzero(c, sizeof *c);
    free(c);
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
    a->alg = s->access_token_algorithm;
    a->invalid_status = s->auth_invalid_token_status == 403 ? 403 : 401;
    a->issuer = m8_strdup0(s->token_issuer);
    a->audience = m8_strdup0(s->token_audience);
    a->policy.strict = s->token_strict_validation;
    a->policy.issuer = a->issuer;
    a->policy.audience = a->audience;
    if (a->alg == M8_ALG_HS256) {
        const char *k = s->access_secret_key;
        if (k)
            a->key = m8_key_from_secret(k, strlen(k), err, errlen);
    } else if (s->jwks_uri && *s->jwks_uri) {
        a->jwks = m8_jwks_new(s->jwks_uri, a->alg, (double)s->jwks_cache_ttl_seconds,
                              M8_JWKS_COOLDOWN_S);
        if (!a->jwks)
            snprintf(err, errlen, "JWKS_URI: cannot create the resolver");
    } else if (s->access_public_key) {
        a->key = m8_key_from_pem(s->access_public_key, strlen(s->access_public_key), a->alg, err,
                                 errlen);
    }
    if (!a->key && !a->jwks) {
        if (!*err)
            snprintf(err, errlen, "no key source for %s tokens",
                     a->alg == M8_ALG_HS256 ? "HS256" : a->alg == M8_ALG_ES256 ? "ES256" : "RS256");
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
    m8_key_unref(a->key);
    m8_jwks_free(a->jwks);
    free(a->issuer);
    free(a->audience);
    sodium_memzero(a->hash_key, sizeof a->hash_key);
    free(a);
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
    const char *h = m8_req_header(req, "Authorization");
    if (!h)
        h = m8_req_param(req, "REDIRECT_HTTP_AUTHORIZATION"); /* Apache rewrite */
    if (!h)
        return false;
    /* Split at the first space; the scheme is "bearer" case-insensitively
     * (CONTRACT A 3.1); the rest, trimmed, is the token. */
    const char *sp = strchr(h, ' ');
    if (!sp || !m8_memcaseeq(h, (size_t)(sp - h), "bearer"))
        return false;
    const char *t = sp + 1;
    *len = m8_trim(&t, strlen(t));
    *tok = t;
    return true;
}

/* ------------------------------------------------------------ cache */

static token_cache *thread_cache(m8_auth *a)
{
    token_cache *c = pthread_getspecific(a->tls);
    if (!c) {
        c = calloc(1, sizeof *c);
        if (!c || pthread_setspecific(a->tls, c) != 0) {
            free(c);
            return NULL;
        }
        c->owner = a;
    }
    return c;
}

static unsigned long key_generation(m8_auth *a)
{
    return a->jwks ? m8_jwks_generation(a->jwks) : 0;
}

static void entry_clear(cache_entry *e)
{
    m8_principal_clear(&e->p);
    free(e->token);
    e->token = NULL;
    e->token_len = 0;
}

static cache_entry *cache_set(token_cache *c, uint64_t h)
{
    return c->e[h & (CACHE_SLOTS - 1)];
}

static const m8_principal *cache_get(m8_auth *a, token_cache *c, uint64_t h, const char *tok,
                                     size_t len, double now)
{
    cache_entry *set = cache_set(c, h);
    unsigned long gen = key_generation(a);
    for (size_t w = 0; w < CACHE_WAYS; w++) {
        cache_entry *e = &set[w];
        if (!e->token || e->hash != h || e->token_len != len || memcmp(e->token, tok, len) != 0)
            continue;
        if (e->generation != gen || now >= (double)e->p.exp) {
            /* keys changed, or the token expired: never served again */
            entry_clear(e);
            return NULL;
        }
        return &e->p;
    }
    return NULL;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void cache_put(m8_auth *a, token_cache *c, uint64_t h, const char *tok, size_t len,
                      const m8_principal *p)
{
    cache_entry *set = cache_set(c, h);
    cache_entry *e = NULL;
    for (size_t w = 0; w < CACHE_WAYS && !e; w++) {
        if (!set[w].token)
            e = &set[w];
    }
    if (!e)
        e = &set[c->next_way++ % CACHE_WAYS];
    entry_clear(e);
    m8_principal q = *p;
    q.id = dup_or_null(p->id);
    q.email = dup_or_null(p->email);
    q.full_name = dup_or_null(p->full_name);
    q.avatar = dup_or_null(p->avatar);
    q.role = dup_or_null(p->role);
    q.tenant_id = dup_or_null(p->tenant_id);
    q.jti = dup_or_null(p->jti);
    char *t = malloc(len ? len : 1);
    if (!t || (p->id && !q.id) || (p->email && !q.email) || (p->role && !q.role) ||
        (p->jti && !q.jti) || (p->full_name && !q.full_name) || (p->avatar && !q.avatar) ||
        (p->tenant_id && !q.tenant_id)) {
        free(t);
        m8_principal_clear(&q);
        return;
    }
    memcpy(t, tok, len);
    e->p = q;
    e->token = t;
    e->token_len = len;
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
    m8_log(M8_LOG_WARNING, "auth.fail type=access reason=%s", reason);
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
    m8_key *key = NULL;
    int rc = M8_JWT_OK;
    if (a->jwks) {
        m8_jwks_result jr = m8_jwks_resolve(a->jwks, j.kid, m8_now_mono(), &key);
        if (jr == M8_JWKS_UNAVAILABLE)
            rc = -1;
        else if (jr != M8_JWKS_FOUND)
            rc = M8_JWT_INVALID;
    } else {
        key = m8_key_ref(a->key);
    }
    if (rc == M8_JWT_OK) {
        atomic_fetch_add(&a->verifications, 1);
        rc = m8_jws_verify(&j, a->alg, key);
    }
    if (rc == M8_JWT_OK)
        rc = m8_jws_parse_payload(&j);
    if (rc == M8_JWT_OK)
        rc = m8_claims_check(&j, &a->policy, now, p);
    if (rc == M8_JWT_OK && claims)
        *claims = json_object_get(j.payload);
    m8_key_unref(key);
    m8_jws_free(&j);
    return rc;
}

/* Copies the principal into the request's arena as the public m8_user. */
static bool set_user(m8_request *req, const m8_principal *p)
{
    m8_user *u = m8_arena_alloc(&req->arena, sizeof *u);
    if (!u)
        return false;
    u->id = m8_arena_strdup(&req->arena, p->id);
    u->email = m8_arena_strdup(&req->arena, p->email);
    u->full_name = m8_arena_strdup(&req->arena, p->full_name);
    u->avatar = m8_arena_strdup(&req->arena, p->avatar);
    u->role = m8_arena_strdup(&req->arena, p->role);
    u->tenant_id = m8_arena_strdup(&req->arena, p->tenant_id);
    u->jti = m8_arena_strdup(&req->arena, p->jti);
    u->is_active = p->is_active;
    u->is_superuser = p->is_superuser;
    u->email_verified = p->email_verified;
    u->exp = p->exp;
    req->user = u;
    return u->id && u->email && u->role && u->jti;
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

bool m8_auth_check(m8_auth *a, m8_request *req, m8_access access)
{
    if (access == M8_PUBLIC)
        return true;
    const char *tok;
    size_t len;
    if (!m8_auth_bearer(req, &tok, &len)) {
        m8_res_error(req, 401, "Not authenticated");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer");
        return false;
    }
    if (!a) { /* no verifier (not booted): fail closed */
        m8_res_error(req, 401, "Could not validate credentials.");
        m8_res_set_header(req, "WWW-Authenticate", "Bearer error=\"invalid_token\"");
        return false;
    }
    double now = m8_now_wall();
    token_cache *c = len <= M8_MAX_TOKEN_BYTES ? thread_cache(a) : NULL;
    uint64_t h = 0;
    if (c) {
        unsigned char hb[crypto_shorthash_BYTES];
        crypto_shorthash(hb, (const unsigned char *)tok, len, a->hash_key);
        memcpy(&h, hb, sizeof h);
    }
    const m8_principal *p = c ? cache_get(a, c, h, tok, len, now) : NULL;
    m8_principal fresh = {0};
    if (p) {
        atomic_fetch_add(&a->cache_hits, 1);
    } else {
        int r = m8_auth_verify(a, tok, len, now, &fresh, NULL);
        if (r < 0) {
            m8_log(M8_LOG_ERROR, "auth: no usable key (JWKS unavailable)");
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
    }
    bool ok = true;
    if (!set_user(req, p)) {
        m8_req_fail(req, "out of memory");
        m8_res_error(req, 500, "Internal Server Error");
        ok = false;
    } else if (!p->is_active) {
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
