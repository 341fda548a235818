/* password.h - the issuer's password hashes (doc/issuer.md#passwords).
 *
 * Stored formats understood by m8_pw_verify:
 *   $2b$NN$..., $2a$NN$..., $2y$NN$...   bcrypt (fa-auth-m8 writes $2b$12$),
 *       60 characters, cost 4..M8_PW_BCRYPT_MAX_COST, checked with the
 *       system's libxcrypt (crypt_r).  Only the first 72 bytes of a password
 *       would enter bcrypt, so a longer password never matches a bcrypt hash.
 *       $2x$ (the compatibility mode for an old 8-bit bug) is not accepted.
 *   $argon2id$v=19$m=..,t=..,p=..$...    argon2id (libsodium), what
 *       m8_pw_hash writes; $argon2i$ verifies too (and always needs a rehash).
 *       Memory and passes of a stored hash are bounded by
 *       M8_PW_MAX_MEMLIMIT and M8_PW_MAX_OPSLIMIT.
 * Anything else (NULL, "", an unknown or malformed string, a cost over a
 * bound) is "no usable hash": it never matches.
 *
 * Equal work: every m8_pw_verify that cannot match on its own (no usable
 * hash, unknown user, an empty password, a NUL byte, more than
 * M8_PW_MAX_BYTES bytes, more than 72 bytes against bcrypt) verifies the
 * password against a dummy hash made at m8_pw_new and answers
 * M8_PW_NO_MATCH, so the answer's time does not tell which rule refused it,
 * nor whether the user exists.  The dummy's format is argon2id by default;
 * m8_pw_set_dummy switches it to bcrypt cost 12 (the format most stored
 * hashes have right after a migration from fa-auth-m8).
 *
 * Bounded concurrency: at most max_concurrent hash or verify operations run
 * at once in one process (an argon2id operation holds memlimit bytes, 19 MiB
 * by default); a caller beyond the bound waits up to wait_ms for a slot and
 * then gets M8_PW_BUSY (or M8_EAGAIN from m8_pw_hash): the route answers 503.
 *
 * One m8_pw per process, shared by its threads (every call is thread-safe).
 * Nothing here logs; passwords and hashes are never copied anywhere but
 * into wiped scratch buffers. */
#ifndef M8_ISSUER_PASSWORD_H
#define M8_ISSUER_PASSWORD_H

#include "core/common.h"

#define M8_PW_MAX_BYTES 1024u                    /* a password, in bytes */
#define M8_PW_BCRYPT_MAX_BYTES 72u               /* bytes bcrypt reads; longer never matches */
#define M8_PW_BCRYPT_MAX_COST 16                 /* the cost of a stored bcrypt hash, at most */
#define M8_PW_BCRYPT_DUMMY_COST 12               /* fa-auth-m8's cost, used by the bcrypt dummy */
#define M8_PW_HASH_MAX 128u                      /* a hash m8_pw_hash writes, with its NUL */
#define M8_PW_MAX_STORED 255u                    /* a stored hash string, in bytes */
#define M8_PW_MIN_OPSLIMIT 2ull                  /* OWASP's minimum for argon2id: 2 passes */
#define M8_PW_MIN_MEMLIMIT (19u * 1024 * 1024)   /* ... and 19 MiB (one lane) */
#define M8_PW_MAX_OPSLIMIT 64ull                 /* passes, configured or stored */
#define M8_PW_MAX_MEMLIMIT (1024u * 1024 * 1024) /* memory, configured or stored */
#define M8_PW_MAX_CONCURRENT 1024u               /* the bound of concurrent operations, at most */
#define M8_PW_MAX_WAIT_MS 60000u                 /* the wait for a slot, at most */
#define M8_PW_DEFAULT_WAIT_MS 5000u

typedef enum m8_pw_result {
    M8_PW_MATCH = 0, /* the password is right */
    M8_PW_NO_MATCH,  /* wrong password, unknown user or no usable hash (equal work done) */
    M8_PW_BUSY,      /* no slot within wait_ms: answer 503, nothing was checked */
    M8_PW_ERROR,     /* out of memory or a crypto library failure: answer 500 */
} m8_pw_result;

/* What a stored hash string is (m8_pw_kind). */
typedef enum m8_pw_kind {
    M8_PW_KIND_NONE = 0, /* NULL, "", or not a usable hash */
    M8_PW_KIND_BCRYPT,
    M8_PW_KIND_ARGON2ID,
    M8_PW_KIND_ARGON2I,
} m8_pw_kind;

/* Parameters of one m8_pw; start from m8_pw_params_default. */
typedef struct m8_pw_params {
    unsigned long long opslimit; /* argon2id passes, M8_PW_MIN_OPSLIMIT..M8_PW_MAX_OPSLIMIT */
    size_t memlimit;             /* argon2id bytes, M8_PW_MIN_MEMLIMIT..M8_PW_MAX_MEMLIMIT */
    unsigned max_concurrent;     /* operations at once, 1..M8_PW_MAX_CONCURRENT */
    unsigned wait_ms;            /* wait for a slot, 0..M8_PW_MAX_WAIT_MS (0: no wait) */
} m8_pw_params;

typedef struct m8_pw m8_pw;

/* Fills p with the defaults: opslimit 2, memlimit 19 MiB, max_concurrent
 * 2 x the online processors (at least 1, at most M8_PW_MAX_CONCURRENT),
 * wait_ms 5000. */
M8_INTERNAL void m8_pw_params_default(m8_pw_params *p);

/* 0 when every field is within its bounds above, else M8_ECONFIG with err
 * naming the field and its bound. */
M8_INTERNAL int m8_pw_params_check(const m8_pw_params *p, char *err, size_t errlen);

/* A password context (checks p, initialises libsodium, makes the dummy
 * hashes: one argon2id hash with p's parameters, about as long as one
 * m8_pw_hash).  NULL with err filled on a bad parameter or a failure. */
M8_INTERNAL m8_pw *m8_pw_new(const m8_pw_params *p, char *err, size_t errlen);

/* Wipes and frees; no call may be running.  NULL is fine. */
M8_INTERNAL void m8_pw_free(m8_pw *pw);

/* Checks the password (pwd, len bytes; not NUL-terminated, may hold any
 * byte) against the stored hash string (NUL-terminated, or NULL for an
 * unknown user or one without a password).  Runs exactly one hash
 * computation (the real one or the dummy's) unless it answers M8_PW_BUSY. */
M8_INTERNAL m8_pw_result m8_pw_verify(m8_pw *pw, const char *hash, const char *pwd, size_t len);

/* Hashes a new password as argon2id with the context's parameters into out
 * (NUL-terminated, at most M8_PW_HASH_MAX bytes with the NUL; 97 with the
 * defaults).  0; M8_EINVAL for an empty password, a NUL byte, or more than
 * M8_PW_MAX_BYTES bytes; M8_EAGAIN when no slot came within wait_ms (503);
 * M8_ENOMEM when libsodium failed (out of memory). */
M8_INTERNAL int m8_pw_hash(m8_pw *pw, const char *pwd, size_t len, char out[M8_PW_HASH_MAX]);

/* True when a stored hash that just matched should be replaced by a new
 * m8_pw_hash: any bcrypt or argon2i hash, and an argon2id hash with less
 * memory or fewer passes than the context's parameters (a stronger one is
 * kept).  False for a hash that is not usable (m8_pw_kind NONE). */
M8_INTERNAL bool m8_pw_needs_rehash(const m8_pw *pw, const char *hash);

/* The format of a stored hash string (NULL is fine); KIND_NONE for one that
 * m8_pw_verify would never match, bounds included. */
M8_INTERNAL m8_pw_kind m8_pw_kind_of(const char *hash);

/* Chooses the dummy an unknown user's verify costs: M8_PW_KIND_ARGON2ID
 * (the default) or M8_PW_KIND_BCRYPT (cost 12).  M8_EINVAL for another
 * kind.  The service sets the format most stored hashes have
 * (doc/issuer.md#passwords); safe while other threads verify. */
M8_INTERNAL int m8_pw_set_dummy(m8_pw *pw, m8_pw_kind kind);

/* The concurrency slot used by every operation: takes one, waiting up to
 * wait_ms (0, or M8_EAGAIN), and gives it back.  For callers that run other
 * memory-heavy work under the same bound, and for tests. */
M8_INTERNAL int m8_pw_slot_take(m8_pw *pw, unsigned wait_ms);
M8_INTERNAL void m8_pw_slot_give(m8_pw *pw);

/* Operations running now and callers waiting for a slot (metrics, tests). */
M8_INTERNAL void m8_pw_load(m8_pw *pw, unsigned *running, unsigned *waiting);

#endif
