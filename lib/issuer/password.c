/* password.c - bcrypt verification, argon2id hashing, equal work and a
 * concurrency bound (password.h, doc/issuer.md#passwords). */
#include "issuer/password.h"

#include <crypt.h>
#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/thread.h"

#define BCRYPT_LEN 60u         /* "$2b$12$" + 22 salt + 31 hash characters */
#define BCRYPT_SETTING_LEN 29u /* "$2b$12$" + 22 salt characters */
#define ARGON2_MAX_LANES 64u

_Static_assert(M8_PW_HASH_MAX == crypto_pwhash_argon2id_STRBYTES,
               "M8_PW_HASH_MAX is libsodium's hash string size");

static const char bcrypt_alphabet[] =
    "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

struct m8_pw {
    m8_pw_params p;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when a slot is given back */
    unsigned running;
    unsigned waiting;
    atomic_int dummy; /* an m8_pw_kind: ARGON2ID or BCRYPT */
    char dummy_argon2[M8_PW_HASH_MAX];
    char dummy_bcrypt[BCRYPT_LEN + 1];
};

/* ---------------------------------------------------------------- parameters */

void m8_pw_params_default(m8_pw_params *p)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    if (n > (long)(M8_PW_MAX_CONCURRENT / 2))
        n = (long)(M8_PW_MAX_CONCURRENT / 2);
    p->opslimit = M8_PW_MIN_OPSLIMIT;
    p->memlimit = M8_PW_MIN_MEMLIMIT;
    p->max_concurrent = (unsigned)(2 * n);
    p->wait_ms = M8_PW_DEFAULT_WAIT_MS;
}

int m8_pw_params_check(const m8_pw_params *p, char *err, size_t errlen)
{
    if (p->opslimit < M8_PW_MIN_OPSLIMIT || p->opslimit > M8_PW_MAX_OPSLIMIT) {
        snprintf(err, errlen, "argon2id passes must be %llu..%llu", M8_PW_MIN_OPSLIMIT,
                 M8_PW_MAX_OPSLIMIT);
        return M8_ECONFIG;
    }
    if (p->memlimit < M8_PW_MIN_MEMLIMIT || p->memlimit > M8_PW_MAX_MEMLIMIT) {
        snprintf(err, errlen, "argon2id memory must be %u..%u bytes (19 MiB..1 GiB)",
                 M8_PW_MIN_MEMLIMIT, M8_PW_MAX_MEMLIMIT);
        return M8_ECONFIG;
    }
    if (p->max_concurrent < 1 || p->max_concurrent > M8_PW_MAX_CONCURRENT) {
        snprintf(err, errlen, "concurrent password operations must be 1..%u", M8_PW_MAX_CONCURRENT);
        return M8_ECONFIG;
    }
    if (p->wait_ms > M8_PW_MAX_WAIT_MS) {
        snprintf(err, errlen, "the wait for a password slot must be 0..%u ms", M8_PW_MAX_WAIT_MS);
        return M8_ECONFIG;
    }
    return 0;
}

/* ---------------------------------------------------------------- formats */

/* Parses 1..10 decimal digits at *s (advanced past them) into *out. */
static bool parse_digits(const char **s, unsigned long long *out)
{
    unsigned long long v = 0;
    size_t n = 0;
    while (**s >= '0' && **s <= '9') {
        if (++n > 10)
            return false;
        v = v * 10 + (unsigned long long)(**s - '0');
        (*s)++;
    }
    *out = v;
    return n > 0;
}

static bool bcrypt_well_formed(const char *h, size_t n, int *cost)
{
    if (n != BCRYPT_LEN || h[0] != '$' || h[1] != '2' ||
        (h[2] != 'a' && h[2] != 'b' && h[2] != 'y') || h[3] != '$' || h[6] != '$')
        return false;
    if (h[4] < '0' || h[4] > '9' || h[5] < '0' || h[5] > '9')
        return false;
    int c = (h[4] - '0') * 10 + (h[5] - '0');
    if (c < 4 || c > M8_PW_BCRYPT_MAX_COST)
        return false;
    for (size_t i = 7; i < n; i++) {
        if (strchr(bcrypt_alphabet, h[i]) == NULL)
            return false;
    }
    *cost = c;
    return true;
}

/* "$argon2id$v=19$m=KIB,t=PASSES,p=LANES$" then salt and hash (checked by
 * libsodium); the costs within the bounds of password.h. */
static bool argon2_params(const char *h, size_t n, bool *is_id, unsigned long long *m_kib,
                          unsigned long long *t, unsigned long long *lanes)
{
    static const char pid[] = "$argon2id$v=19$m=", pi[] = "$argon2i$v=19$m=";
    const char *s;
    if (n >= M8_PW_HASH_MAX)
        return false;
    if (strncmp(h, pid, sizeof pid - 1) == 0) {
        *is_id = true;
        s = h + sizeof pid - 1;
    } else if (strncmp(h, pi, sizeof pi - 1) == 0) {
        *is_id = false;
        s = h + sizeof pi - 1;
    } else {
        return false;
    }
    if (!parse_digits(&s, m_kib) || strncmp(s, ",t=", 3) != 0)
        return false;
    s += 3;
    if (!parse_digits(&s, t) || strncmp(s, ",p=", 3) != 0)
        return false;
    s += 3;
    if (!parse_digits(&s, lanes) || *s != '$' || strchr(s + 1, '$') == NULL)
        return false;
    return *m_kib >= 8 && *m_kib <= M8_PW_MAX_MEMLIMIT / 1024 && *t >= 1 &&
           *t <= M8_PW_MAX_OPSLIMIT && *lanes >= 1 && *lanes <= ARGON2_MAX_LANES;
}

m8_pw_kind m8_pw_kind_of(const char *hash)
{
    if (hash == NULL)
        return M8_PW_KIND_NONE;
    size_t n = strnlen(hash, M8_PW_MAX_STORED + 1);
    if (n == 0 || n > M8_PW_MAX_STORED)
        return M8_PW_KIND_NONE;
    int cost;
    if (bcrypt_well_formed(hash, n, &cost))
        return M8_PW_KIND_BCRYPT;
    bool is_id;
    unsigned long long m, t, lanes;
    if (argon2_params(hash, n, &is_id, &m, &t, &lanes))
        return is_id ? M8_PW_KIND_ARGON2ID : M8_PW_KIND_ARGON2I;
    return M8_PW_KIND_NONE;
}

/* ---------------------------------------------------------------- the slot */

int m8_pw_slot_take(m8_pw *pw, unsigned wait_ms)
{
    m8_thread_will_block(); /* a hash, or a wait for a slot: another thread polls */
    int rc = 0;
    pthread_mutex_lock(&pw->mu);
    if (pw->running >= pw->p.max_concurrent) {
        if (wait_ms == 0) {
            pthread_mutex_unlock(&pw->mu);
            return M8_EAGAIN;
        }
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += (time_t)(wait_ms / 1000);
        until.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pw->waiting++;
        while (pw->running >= pw->p.max_concurrent) {
            /* ETIMEDOUT, or any error (never a spin on a failing wait). */
            if (pthread_cond_timedwait(&pw->cv, &pw->mu, &until) != 0 &&
                pw->running >= pw->p.max_concurrent) {
                rc = M8_EAGAIN;
                break;
            }
        }
        pw->waiting--;
    }
    if (rc == 0)
        pw->running++;
    pthread_mutex_unlock(&pw->mu);
    return rc;
}

void m8_pw_slot_give(m8_pw *pw)
{
    pthread_mutex_lock(&pw->mu);
    if (pw->running > 0)
        pw->running--;
    pthread_cond_signal(&pw->cv);
    pthread_mutex_unlock(&pw->mu);
}

void m8_pw_load(m8_pw *pw, unsigned *running, unsigned *waiting)
{
    pthread_mutex_lock(&pw->mu);
    *running = pw->running;
    *waiting = pw->waiting;
    pthread_mutex_unlock(&pw->mu);
}

/* ---------------------------------------------------------------- life cycle */

/* A bcrypt string of cost 12 with a random salt and random hash characters:
 * crypt_r reads only its setting (the first 29 characters), so verifying
 * against it costs a full cost-12 bcrypt and never matches. */
static int make_bcrypt_dummy(m8_pw *pw)
{
    unsigned char rnd[16 + BCRYPT_LEN];
    char setting[64];
    randombytes_buf(rnd, sizeof rnd);
    if (crypt_gensalt_rn("$2b$", M8_PW_BCRYPT_DUMMY_COST, (const char *)rnd, 16, setting,
                         (int)sizeof setting) == NULL ||
        strlen(setting) != BCRYPT_SETTING_LEN)
        return M8_EIO;
    memcpy(pw->dummy_bcrypt, setting, BCRYPT_SETTING_LEN);
    for (size_t i = BCRYPT_SETTING_LEN; i < BCRYPT_LEN; i++)
        pw->dummy_bcrypt[i] = bcrypt_alphabet[rnd[16 + i] % 64];
    pw->dummy_bcrypt[BCRYPT_LEN] = '\0';
    sodium_memzero(rnd, sizeof rnd);
    return m8_pw_kind_of(pw->dummy_bcrypt) == M8_PW_KIND_BCRYPT ? 0 : M8_EIO;
}

m8_pw *m8_pw_new(const m8_pw_params *p, char *err, size_t errlen)
{
    if (m8_pw_params_check(p, err, errlen) != 0)
        return NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "cannot initialise libsodium");
        return NULL;
    }
    m8_pw *pw = calloc(1, sizeof *pw);
    if (pw == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pw->p = *p;
    atomic_init(&pw->dummy, M8_PW_KIND_ARGON2ID);
    pthread_condattr_t ca;
    bool cond_ok = false, mu_ok = pthread_mutex_init(&pw->mu, NULL) == 0;
    if (mu_ok && pthread_condattr_init(&ca) == 0) {
        cond_ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
                  pthread_cond_init(&pw->cv, &ca) == 0;
        pthread_condattr_destroy(&ca);
    }
    if (!cond_ok) {
        if (mu_ok)
            pthread_mutex_destroy(&pw->mu);
        free(pw);
        snprintf(err, errlen, "cannot initialise the password slot lock");
        return NULL;
    }
    unsigned char secret[32];
    randombytes_buf(secret, sizeof secret);
    int rc = crypto_pwhash_argon2id_str(pw->dummy_argon2, (const char *)secret, sizeof secret,
                                        p->opslimit, p->memlimit);
    sodium_memzero(secret, sizeof secret);
    if (rc != 0 || make_bcrypt_dummy(pw) != 0) {
        snprintf(err, errlen, "cannot make the dummy password hashes (out of memory?)");
        m8_pw_free(pw);
        return NULL;
    }
    return pw;
}

void m8_pw_free(m8_pw *pw)
{
    if (pw == NULL)
        return;
    pthread_cond_destroy(&pw->cv);
    pthread_mutex_destroy(&pw->mu);
    sodium_memzero(pw, sizeof *pw);
    free(pw);
}

int m8_pw_set_dummy(m8_pw *pw, m8_pw_kind kind)
{
    if (kind != M8_PW_KIND_ARGON2ID && kind != M8_PW_KIND_BCRYPT)
        return M8_EINVAL;
    atomic_store(&pw->dummy, (int)kind);
    return 0;
}

/* ---------------------------------------------------------------- checks */

/* bcrypt through libxcrypt: M8_PW_MATCH, M8_PW_NO_MATCH, or M8_PW_ERROR when
 * crypt_r fails on a well-formed setting.  len <= 72, no NUL (the caller). */
static m8_pw_result bcrypt_check(const char *hash, const char *pwd, size_t len)
{
    char key[M8_PW_BCRYPT_MAX_BYTES + 1];
    /* struct crypt_data is 32 KiB: too big for a serving thread's stack. */
    struct crypt_data *cd = calloc(1, sizeof *cd);
    if (cd == NULL)
        return M8_PW_ERROR;
    memcpy(key, pwd, len);
    key[len] = '\0';
    m8_pw_result r = M8_PW_ERROR;
    const char *out = crypt_r(key, hash, cd);
    if (out != NULL && out[0] != '*') {
        r = strlen(out) == BCRYPT_LEN && sodium_memcmp(out, hash, BCRYPT_LEN) == 0 ? M8_PW_MATCH
                                                                                   : M8_PW_NO_MATCH;
    }
    sodium_memzero(key, sizeof key);
    sodium_memzero(cd, sizeof *cd);
    free(cd);
    return r;
}

static m8_pw_result argon2_check(const char *hash, const char *pwd, size_t len)
{
    /* libsodium reads the string as NUL-terminated within its size. */
    char str[M8_PW_HASH_MAX] = {0};
    memcpy(str, hash, strnlen(hash, M8_PW_HASH_MAX - 1));
    m8_pw_result r = crypto_pwhash_str_verify(str, pwd, len) == 0 ? M8_PW_MATCH : M8_PW_NO_MATCH;
    sodium_memzero(str, sizeof str);
    return r;
}

/* The equal-work path: one verify against the dummy of the chosen format;
 * never a match. */
static void dummy_check(m8_pw *pw, const char *pwd, size_t len)
{
    static const char none[] = "";
    if (pwd == NULL) {
        pwd = none;
        len = 0;
    }
    if (len > M8_PW_MAX_BYTES)
        len = M8_PW_MAX_BYTES;
    if (atomic_load(&pw->dummy) == M8_PW_KIND_BCRYPT) {
        const char *nul = memchr(pwd, '\0', len);
        if (nul != NULL)
            len = (size_t)(nul - pwd);
        (void)bcrypt_check(pw->dummy_bcrypt, pwd,
                           len > M8_PW_BCRYPT_MAX_BYTES ? M8_PW_BCRYPT_MAX_BYTES : len);
    } else {
        (void)argon2_check(pw->dummy_argon2, pwd, len);
    }
}

m8_pw_result m8_pw_verify(m8_pw *pw, const char *hash, const char *pwd, size_t len)
{
    if (pw == NULL)
        return M8_PW_ERROR;
    if (m8_pw_slot_take(pw, pw->p.wait_ms) != 0)
        return M8_PW_BUSY;
    m8_pw_kind kind = m8_pw_kind_of(hash);
    bool usable = pwd != NULL && len > 0 && len <= M8_PW_MAX_BYTES && !memchr(pwd, '\0', len);
    if (kind == M8_PW_KIND_BCRYPT && len > M8_PW_BCRYPT_MAX_BYTES)
        usable = false;
    m8_pw_result r;
    if (kind == M8_PW_KIND_NONE || !usable) {
        dummy_check(pw, pwd, len);
        r = M8_PW_NO_MATCH;
    } else if (kind == M8_PW_KIND_BCRYPT) {
        r = bcrypt_check(hash, pwd, len);
    } else {
        r = argon2_check(hash, pwd, len);
    }
    m8_pw_slot_give(pw);
    return r;
}

int m8_pw_hash(m8_pw *pw, const char *pwd, size_t len, char out[M8_PW_HASH_MAX])
{
    out[0] = '\0';
    if (pw == NULL || pwd == NULL || len == 0 || len > M8_PW_MAX_BYTES ||
        memchr(pwd, '\0', len) != NULL)
        return M8_EINVAL;
    if (m8_pw_slot_take(pw, pw->p.wait_ms) != 0)
        return M8_EAGAIN;
    int rc = crypto_pwhash_argon2id_str(out, pwd, len, pw->p.opslimit, pw->p.memlimit);
    m8_pw_slot_give(pw);
    if (rc != 0) {
        out[0] = '\0';
        return M8_ENOMEM;
    }
    return 0;
}

bool m8_pw_needs_rehash(const m8_pw *pw, const char *hash)
{
    switch (m8_pw_kind_of(hash)) {
    case M8_PW_KIND_BCRYPT:
    case M8_PW_KIND_ARGON2I: return true;
    case M8_PW_KIND_ARGON2ID: break;
    default: return false;
    }
    if (crypto_pwhash_argon2id_str_needs_rehash(hash, pw->p.opslimit, pw->p.memlimit) == 0)
        return false;
    bool is_id;
    unsigned long long m_kib, t, lanes;
    if (!argon2_params(hash, strlen(hash), &is_id, &m_kib, &t, &lanes))
        return false;
    return m_kib < pw->p.memlimit / 1024 || t < pw->p.opslimit;
}
