/* test_password.c - the issuer's password module (lib/issuer/password.h):
 * bcrypt hashes made by other implementations (Python's crypt, Apache's
 * htpasswd) verify, the refusal rules, argon2id round trips, rehash
 * decisions, the unknown-user path and the concurrency bound. */
#include "issuer/password.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"

#define PY "/usr/bin/python3"

/* Made once with Python's crypt (METHOD_BLOWFISH, cost 12), kept as text:
 * fa-auth-m8's exact format and cost. */
static const char fixture_pw[] = "correct horse battery staple";
static const char fixture_hash[] = "$2b$12$unQu98iQqaCe7b07ZI1UWueOGyJhquT.f0Y6190.Kv0lPLDDgFgR2";

/* Runs a shell command with the password in M8T_PW and reads its first
 * output line into out; false when it failed or printed nothing. */
static bool run_line(const char *cmd, const char *pw, char *out, size_t outlen)
{
    setenv("M8T_PW", pw, 1);
    FILE *f = popen(cmd, "r");
    bool got = false;
    if (f != NULL) {
        got = fgets(out, (int)outlen, f) != NULL;
        if (pclose(f) != 0)
            got = false;
    }
    unsetenv("M8T_PW");
    if (!got)
        return false;
    out[strcspn(out, "\r\n")] = '\0';
    return out[0] != '\0';
}

/* A bcrypt hash of pw at cost 4, made by Python's crypt module. */
static bool py_bcrypt(const char *pw, char *out, size_t outlen)
{
    return run_line(PY " -W ignore -c 'import crypt, os; print(crypt.crypt(os.environ[\"M8T_PW\"], "
                       "crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))' 2>/dev/null",
                    pw, out, outlen);
}

static m8_pw_result verify_s(m8_pw *pw, const char *hash, const char *s)
{
    return m8_pw_verify(pw, hash, s, strlen(s));
}

static void test_params(void)
{
    m8_pw_params p;
    char err[200];
    m8_pw_params_default(&p);
    is_int(p.opslimit, 2, "default argon2id passes are 2");
    is_int(p.memlimit, 19 * 1024 * 1024, "default argon2id memory is 19 MiB");
    ok(p.max_concurrent >= 2 && p.max_concurrent % 2 == 0, "default bound is 2 x nproc (%u)",
       p.max_concurrent);
    is_int(p.wait_ms, 5000, "default wait for a slot is 5 s");
    is_int(m8_pw_params_check(&p, err, sizeof err), 0, "defaults pass the check");
    m8_pw_params q = p;
    q.opslimit = 1;
    is_int(m8_pw_params_check(&q, err, sizeof err), M8_ECONFIG,
           "params: 1 pass is below the OWASP floor");
    like(err, "passes", "params: the error names the field");
    q = p;
    q.memlimit = 19 * 1024 * 1024 - 1024;
    is_int(m8_pw_params_check(&q, err, sizeof err), M8_ECONFIG,
           "params: memory below 19 MiB is refused");
    q = p;
    q.max_concurrent = 0;
    is_int(m8_pw_params_check(&q, err, sizeof err), M8_ECONFIG, "params: a bound of 0 is refused");
    q = p;
    q.wait_ms = M8_PW_MAX_WAIT_MS + 1;
    is_int(m8_pw_params_check(&q, err, sizeof err), M8_ECONFIG, "params: wait over 60 s refused");
    ok(m8_pw_new(&q, err, sizeof err) == NULL, "m8_pw_new refuses bad params");
}

static void test_bcrypt(m8_pw *pw)
{
    is_int(verify_s(pw, fixture_hash, fixture_pw), M8_PW_MATCH,
           "bcrypt: fixed $2b$12$ fixture from Python verifies");
    is_int(verify_s(pw, fixture_hash, "correct horse battery stapl"), M8_PW_NO_MATCH,
           "bcrypt: fixture with a wrong password does not match");
    ok(m8_pw_needs_rehash(pw, fixture_hash), "bcrypt: a bcrypt hash needs a rehash");
    is_int(m8_pw_kind_of(fixture_hash), M8_PW_KIND_BCRYPT, "bcrypt: kind of the fixture");

    char h[128];
    if (!py_bcrypt("pässwörd-1", h, sizeof h) || strncmp(h, "$2b$04$", 7) != 0) {
        for (int i = 0; i < 9; i++)
            ok(1, "bcrypt made by Python # SKIP python3 crypt module unavailable");
        return;
    }
    is_int(verify_s(pw, h, "pässwörd-1"), M8_PW_MATCH,
           "bcrypt: Python $2b$04$ hash of a UTF-8 password verifies");
    is_int(verify_s(pw, h, "pässwörd-2"), M8_PW_NO_MATCH, "bcrypt: wrong password refused");
    h[2] = 'a';
    is_int(verify_s(pw, h, "pässwörd-1"), M8_PW_MATCH, "bcrypt: the same hash as $2a$ verifies");
    h[2] = 'x';
    is_int(verify_s(pw, h, "pässwörd-1"), M8_PW_NO_MATCH, "bcrypt: $2x$ is not accepted");

    /* 72 bytes are what bcrypt reads: the 73-byte password with the same
     * first 72 bytes would match in libxcrypt, and must not here. */
    char p72[80], p73[80];
    memset(p72, 'k', 72);
    p72[72] = '\0';
    memcpy(p73, p72, 72);
    p73[72] = 'X';
    p73[73] = '\0';
    if (py_bcrypt(p72, h, sizeof h)) {
        is_int(verify_s(pw, h, p72), M8_PW_MATCH, "bcrypt: a 72-byte password verifies");
        is_int(verify_s(pw, h, p73), M8_PW_NO_MATCH,
               "bcrypt: a 73-byte password never matches (fa-auth-m8 behaviour)");
    } else {
        ok(0, "Python made a bcrypt hash of 72 bytes");
        ok(0, "(skipped 73-byte check)");
    }

    /* A NUL byte ends the C string crypt_r reads: "secret\0junk" would
     * match the hash of "secret" there. */
    if (py_bcrypt("secret", h, sizeof h)) {
        is_int(m8_pw_verify(pw, h, "secret\0junk", 11), M8_PW_NO_MATCH,
               "bcrypt: a password with a NUL byte never matches");
    } else {
        ok(0, "Python made a bcrypt hash of 'secret'");
    }
    if (py_bcrypt("", h, sizeof h)) {
        is_int(m8_pw_verify(pw, h, "", 0), M8_PW_NO_MATCH,
               "bcrypt: the empty password never matches, even its own hash");
    } else {
        ok(0, "Python made a bcrypt hash of ''");
    }
}

/* Apache's htpasswd carries its own bcrypt (not libxcrypt) and writes $2y$. */
static void test_htpasswd(m8_pw *pw)
{
    char line[200];
    if (!run_line("htpasswd -nbB -C 4 u \"$M8T_PW\" 2>/dev/null", "apache-pw", line, sizeof line) ||
        strncmp(line, "u:$2y$04$", 9) != 0) {
        ok(1, "bcrypt $2y$ from htpasswd # SKIP htpasswd (apache2-utils) not installed");
        return;
    }
    is_int(verify_s(pw, line + 2, "apache-pw"), M8_PW_MATCH,
           "bcrypt: $2y$ hash made by htpasswd verifies");
}

static void test_argon2(m8_pw *pw, char *made, size_t madelen)
{
    char h[M8_PW_HASH_MAX];
    is_int(m8_pw_hash(pw, "n3w-pässword", strlen("n3w-pässword"), h), 0, "argon2id: hash");
    like(h, "$argon2id$v=19$m=19456,t=2,p=1$", "argon2id: OWASP parameters in the string");
    is_int(m8_pw_kind_of(h), M8_PW_KIND_ARGON2ID, "argon2id: kind");
    is_int(verify_s(pw, h, "n3w-pässword"), M8_PW_MATCH, "argon2id: round trip verifies");
    is_int(verify_s(pw, h, "n3w-password"), M8_PW_NO_MATCH, "argon2id: wrong password refused");
    ok(!m8_pw_needs_rehash(pw, h), "argon2id: a hash with the parameters needs no rehash");
    snprintf(made, madelen, "%s", h);

    is_int(m8_pw_hash(pw, "", 0, h), M8_EINVAL, "hash: the empty password is refused");
    is_int(m8_pw_hash(pw, "ab\0cd", 5, h), M8_EINVAL, "hash: a NUL byte is refused");
    static char big[M8_PW_MAX_BYTES + 1];
    memset(big, 'b', sizeof big);
    is_int(m8_pw_hash(pw, big, sizeof big, h), M8_EINVAL, "hash: over M8_PW_MAX_BYTES refused");
    is_int(verify_s(pw, made, ""), M8_PW_NO_MATCH, "argon2id: the empty password never matches");

    /* Weaker and stronger hashes made directly with libsodium. */
    char weak[crypto_pwhash_STRBYTES], strong[crypto_pwhash_STRBYTES];
    ok(crypto_pwhash_argon2id_str(weak, "old", 3, 1, 8u << 20) == 0 &&
           crypto_pwhash_argon2id_str(strong, "old", 3, 3, 19u << 20) == 0,
       "libsodium made a weaker and a stronger argon2id hash");
    ok(m8_pw_needs_rehash(pw, weak), "argon2id: 1 pass / 8 MiB needs a rehash");
    is_int(verify_s(pw, weak, "old"), M8_PW_MATCH, "argon2id: the weaker hash still verifies");
    ok(!m8_pw_needs_rehash(pw, strong), "argon2id: 3 passes / 19 MiB is kept (not below)");
    char i2[crypto_pwhash_STRBYTES];
    ok(crypto_pwhash_argon2i_str(i2, "old", 3, 3, 8u << 20) == 0, "libsodium made argon2i");
    is_int(verify_s(pw, i2, "old"), M8_PW_MATCH, "argon2i: verifies");
    ok(m8_pw_needs_rehash(pw, i2), "argon2i: needs a rehash to argon2id");

    /* A stored hash asking for 4 GiB is not usable (never allocated). */
    char huge[sizeof weak];
    const char *tail = strstr(weak, ",t=");
    snprintf(huge, sizeof huge, "$argon2id$v=19$m=4194304%s", tail ? tail : "");
    is_int(m8_pw_kind_of(huge), M8_PW_KIND_NONE, "argon2id: 4 GiB of memory is over the bound");
    is_int(verify_s(pw, huge, "old"), M8_PW_NO_MATCH, "argon2id: that hash never matches");
    ok(!m8_pw_needs_rehash(pw, huge), "argon2id: and is not 'rehashed'");
}

static void test_unknown(m8_pw *pw)
{
    is_int(verify_s(pw, NULL, "whatever"), M8_PW_NO_MATCH, "unknown user (NULL hash): no match");
    is_int(verify_s(pw, "", "whatever"), M8_PW_NO_MATCH, "user without a hash (\"\"): no match");
    /* crypt_r would treat "ab..." as a DES setting; we never do. */
    is_int(verify_s(pw, "abPXm3j0v7hRU", "x"), M8_PW_NO_MATCH,
           "a DES-looking string never matches");
    is_int(m8_pw_kind_of("$2b$31$unQu98iQqaCe7b07ZI1UWueOGyJhquT.f0Y6190.Kv0lPLDDgFgR2"),
           M8_PW_KIND_NONE, "bcrypt cost 31 is over the bound");
    is_int(m8_pw_set_dummy(pw, M8_PW_KIND_ARGON2I), M8_EINVAL, "dummy: argon2i is not a choice");
    is_int(m8_pw_set_dummy(pw, M8_PW_KIND_BCRYPT), 0, "dummy: switch to bcrypt");
    is_int(verify_s(pw, NULL, "whatever"), M8_PW_NO_MATCH, "unknown user, bcrypt dummy: no match");
    is_int(m8_pw_set_dummy(pw, M8_PW_KIND_ARGON2ID), 0, "dummy: back to argon2id");
    unsigned running = 9, waiting = 9;
    m8_pw_load(pw, &running, &waiting);
    ok(running == 0 && waiting == 0, "every slot was given back");
}

/* A verify from another thread (the slot bound is per process). */
struct call {
    m8_pw *pw;
    const char *hash;
    const char *pwd;
    m8_pw_result r;
    int hash_rc;
};

static void *verify_thread(void *arg)
{
    struct call *c = arg;
    c->r = verify_s(c->pw, c->hash, c->pwd);
    char h[M8_PW_HASH_MAX];
    c->hash_rc = c->hash ? 0 : m8_pw_hash(c->pw, "another", 7, h);
    return NULL;
}

static void test_busy(const char *weak)
{
    m8_pw_params p;
    char err[200];
    m8_pw_params_default(&p);
    p.max_concurrent = 1;
    p.wait_ms = 20;
    m8_pw *pw = m8_pw_new(&p, err, sizeof err);
    ok(pw != NULL, "busy: a context with one slot and a 20 ms wait (%s)", pw ? "ok" : err);
    if (pw == NULL)
        return;
    is_int(m8_pw_slot_take(pw, 0), 0, "busy: the test holds the only slot");
    is_int(m8_pw_slot_take(pw, 0), M8_EAGAIN, "busy: a second take without waiting fails");
    struct call c = {pw, NULL, "whatever", M8_PW_MATCH, 0};
    pthread_t t;
    ok(pthread_create(&t, NULL, verify_thread, &c) == 0 && pthread_join(t, NULL) == 0,
       "busy: a verify ran in another thread");
    is_int(c.r, M8_PW_BUSY, "busy: verify beyond the bound answers M8_PW_BUSY");
    is_int(c.hash_rc, M8_EAGAIN, "busy: hash beyond the bound answers M8_EAGAIN");
    m8_pw_slot_give(pw);
    is_int(verify_s(pw, weak, "old"), M8_PW_MATCH,
           "busy: after the slot is given back, verify runs");
    m8_pw_free(pw);

    /* A waiter gets the slot when it is given back within its wait. */
    p.wait_ms = M8_PW_MAX_WAIT_MS;
    pw = m8_pw_new(&p, err, sizeof err);
    if (pw == NULL) {
        ok(0, "waiter: context (%s)", err);
        return;
    }
    m8_pw_slot_take(pw, 0);
    struct call w = {pw, weak, "old", M8_PW_ERROR, 0};
    bool started = pthread_create(&t, NULL, verify_thread, &w) == 0;
    unsigned running = 0, waiting = 0;
    for (int i = 0; started && i < 10000 && waiting == 0; i++) {
        m8_pw_load(pw, &running, &waiting);
        if (waiting == 0)
            nanosleep(&(struct timespec){0, 1000000L}, NULL);
    }
    ok(started && waiting == 1, "waiter: the second caller waits for the slot");
    m8_pw_slot_give(pw);
    if (started)
        pthread_join(t, NULL);
    is_int(w.r, M8_PW_MATCH, "waiter: it runs once the slot is given back");
    m8_pw_free(pw);
}

/* An independent argon2 implementation reads our hash, when installed. */
static void test_python_argon2(const char *made)
{
    char cmd[512], out[32];
    if (system(PY " -c 'import argon2' >/dev/null 2>&1") != 0) {
        ok(1, "argon2id hash verifies with Python argon2 # SKIP python3 argon2 module not "
              "installed (Debian package python3-argon2)");
        return;
    }
    snprintf(cmd, sizeof cmd,
             PY " -c 'import argon2, os, sys; "
                "print(argon2.PasswordHasher().verify(sys.argv[1], os.environ[\"M8T_PW\"]))' "
                "'%s' 2>/dev/null",
             made);
    ok(run_line(cmd, "n3w-pässword", out, sizeof out) && strcmp(out, "True") == 0,
       "argon2id hash verifies with Python argon2");
}

int main(void)
{
    char err[200];
    m8_pw_params p;
    test_params();
    m8_pw_params_default(&p);
    m8_pw *pw = m8_pw_new(&p, err, sizeof err);
    if (!ok(pw != NULL, "m8_pw_new with the defaults (%s)", pw ? "ok" : err))
        return done_testing();
    test_bcrypt(pw);
    test_htpasswd(pw);
    char made[M8_PW_HASH_MAX] = "";
    test_argon2(pw, made, sizeof made);
    test_unknown(pw);
    m8_pw_free(pw);
    char weak[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_argon2id_str(weak, "old", 3, 1, 8u << 20) == 0)
        test_busy(weak);
    test_python_argon2(made);
    return done_testing();
}
