/* test_jwks_rotation.c - the JWKS resolver: lazy rotation, concurrent
 * lookups, the TTL and the failure cooldown, tokens without a kid. */

#include "config.h"

#include "test_jwks.h"

void test_new(void)
{
    ok(m8_jwks_new("ftp://h/x", M8_ALG_RS256, 300, 10) == NULL, "new: ftp:// refused");
    ok(m8_jwks_new("file:///x", M8_ALG_RS256, 300, 10) == NULL, "new: file:// refused");
    ok(m8_jwks_new("host/x", M8_ALG_RS256, 300, 10) == NULL, "new: no scheme refused");
    ok(m8_jwks_new("https://h/x", M8_ALG_HS256, 300, 10) == NULL, "new: HS256 refused");
    m8_jwks *r = m8_jwks_new("HTTPS://h/x", M8_ALG_ES256, 300, 10);
    ok(r != NULL, "new: https (any case) accepted");
    m8_jwks_free(r);
}

void test_lazy_rotation(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    long h0 = hits();
    m8_jwks *r = resolver(300, 0.5);
    ok(r != NULL, "resolver: built");
    ok(m8_jwks_fetches(r) == 0 && hits() == h0, "resolver: nothing fetched at construction");
    is_int(find(r, "a", 1000), M8_JWKS_FOUND, "resolver: first resolve fetches and finds kid a");
    ok(m8_jwks_fetches(r) == 1 && hits() == h0 + 1 && m8_jwks_generation(r) == 1,
       "resolver: one fetch, generation 1");
    is_int(find(r, "a", 1100), M8_JWKS_FOUND, "resolver: cached kid found again");
    ok(m8_jwks_fetches(r) == 1 && hits() == h0 + 1, "resolver: ... without a fetch");

    /* Hold a key across the rotation: it must stay valid. */
    m8_key *held = NULL;
    m8_jwks_resolve(r, "a", 1100, &held);

    serve_doc(doc(jwk("rsa2048b", "b", NULL), NULL));
    is_int(find(r, "b", 1101), M8_JWKS_FOUND, "rotation: a new kid is found without restart");
    ok(m8_jwks_fetches(r) == 2 && hits() == h0 + 2 && m8_jwks_generation(r) == 2,
       "rotation: ... after exactly one refetch (generation 2)");
    is_int(find(r, "a", 1101.1), M8_JWKS_NOT_FOUND, "rotation: the retired kid is gone");
    ok(m8_jwks_fetches(r) == 2,
       "rotation: ... and asking again within the cooldown fetches nothing");
    ok(held && held->kid && strcmp(held->kid, "a") == 0 && held->pkey,
       "rotation: a key held by a caller outlives the set it came from");
    m8_key_unref(held);

    /* Flood of unknown kids on a simulated clock: 1000 kids over 1 s. */
    unsigned long f0 = m8_jwks_fetches(r);
    long hf = hits();
    int found = 0;
    for (int i = 0; i < 1000; i++) {
        unsigned char rnd[8];
        char kid[17];
        randombytes_buf(rnd, sizeof rnd);
        for (int j = 0; j < 8; j++)
            snprintf(kid + 2 * j, 3, "%02x", rnd[j]);
        found += find(r, kid, 1102 + i * 0.001) == M8_JWKS_FOUND;
    }
    unsigned long nf = m8_jwks_fetches(r) - f0;
    ok(found == 0, "flood: no random kid is found");
    ok(nf >= 1 && nf <= 2 && hits() - hf == (long)nf,
       "flood: 1000 random kids over 1 s cost %lu fetches (cooldown 0.5 s)", nf);
    is_int(find(r, "b", 1103), M8_JWKS_FOUND, "flood: the real key still resolves");
    m8_jwks_free(r);
}

typedef struct flood_arg {
    m8_jwks *r;
    int found;
    int n;
} flood_arg;

static void *flood_thread(void *p)
{
    flood_arg *a = p;
    for (int i = 0; i < a->n; i++) {
        char kid[32];
        snprintf(kid, sizeof kid, "bogus-%u", randombytes_random());
        a->found += find(a->r, kid, m8_now_mono()) == M8_JWKS_FOUND;
        sleep_ms(8); /* 125 kids per thread over about 1 s */
    }
    return NULL;
}

static void *same_kid_thread(void *p)
{
    flood_arg *a = p;
    a->found = find(a->r, "b", m8_now_mono()) == M8_JWKS_FOUND;
    return NULL;
}

void test_threads(void)
{
    /* 8 threads, 1000 bogus kids in all, on the real clock. */
    m8_jwks *r = resolver(300, 0.5);
    long h0 = hits();
    double t0 = m8_now_mono();
    pthread_t th[8];
    flood_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (flood_arg){.r = r, .n = 125};
        pthread_create(&th[i], NULL, flood_thread, &args[i]);
    }
    int found = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        found += args[i].found;
    }
    double took = m8_now_mono() - t0;
    long n = hits() - h0;
    long allowed = (long)(took / 0.5) + 1;
    ok(found == 0 && n >= 1 && n <= allowed,
       "threads: 1000 bogus kids from 8 threads in %.2f s: %ld fetches (at most %ld)", took, n,
       allowed);
    ok((unsigned long)n == m8_jwks_fetches(r), "threads: fetch counter matches server hits");
    m8_jwks_free(r);

    /* A slow first fetch: concurrent callers wait for it, one fetch in all. */
    knob("delay", "0.3");
    r = resolver(300, 10);
    h0 = hits();
    for (int i = 0; i < 8; i++) {
        args[i] = (flood_arg){.r = r};
        pthread_create(&th[i], NULL, same_kid_thread, &args[i]);
    }
    found = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        found += args[i].found;
    }
    knob("delay", NULL);
    ok(found == 8 && hits() - h0 == 1 && m8_jwks_fetches(r) == 1,
       "threads: 8 first callers at once, one fetch, all find the key (found %d, hits %ld)", found,
       hits() - h0);
    m8_jwks_free(r);
}

void test_ttl_and_failures(void)
{
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, "a", 100), M8_JWKS_FOUND, "ttl: first fetch");
    is_int(find(r, "a", 159), M8_JWKS_FOUND, "ttl: still cached before expiry");
    ok(m8_jwks_fetches(r) == 1, "ttl: ... no refetch within the TTL");
    is_int(find(r, "a", 160), M8_JWKS_FOUND, "ttl: at expiry ...");
    ok(m8_jwks_fetches(r) == 2 && m8_jwks_generation(r) == 2, "ttl: ... the set is refetched");

    /* Issuer down (connection closed): stale keys kept. */
    knob("down", "1");
    log_capture();
    long h0 = hits();
    is_int(find(r, "a", 221), M8_JWKS_FOUND, "down: after expiry the last good key still answers");
    char *log = log_release();
    ok(m8_jwks_fetches(r) == 3 && hits() == h0 + 1 && m8_jwks_generation(r) == 2,
       "down: one attempt, generation unchanged");
    like(log, "keeping 1 previous keys", "down: the failed fetch is logged as a warning");
    like(log, "\"warning\"", "down: ... at level warning");
    free(log);
    is_int(find(r, "a", 225), M8_JWKS_FOUND, "down: within the cooldown, the cache answers");
    ok(m8_jwks_fetches(r) == 3, "down: ... without a fetch");
    is_int(find(r, "a", 231), M8_JWKS_FOUND, "down: the expiry was not extended ...");
    ok(m8_jwks_fetches(r) == 4, "down: ... so the next cooldown retries");
    knob("down", NULL);

    knob("status", "500");
    is_int(find(r, "a", 241), M8_JWKS_FOUND, "500: stale key kept");
    ok(m8_jwks_fetches(r) == 5 && m8_jwks_generation(r) == 2, "500: a failed fetch");
    knob("status", "404");
    is_int(find(r, "a", 251), M8_JWKS_FOUND, "404: stale key kept (non-2xx is a failure)");
    knob("status", NULL);
    write_file(jwks_srv.dir, "jwks.json", "<html>oops</html>", 17);
    is_int(find(r, "a", 261), M8_JWKS_FOUND, "non-JSON: stale key kept");
    ok(m8_jwks_fetches(r) == 7 && m8_jwks_generation(r) == 2, "non-JSON: a failed fetch");
    write_file(jwks_srv.dir, "jwks.json", "{\"keys\":{}}", 11);
    is_int(find(r, "a", 271), M8_JWKS_FOUND, "keys not an array: stale key kept");
    ok(m8_jwks_generation(r) == 2, "keys not an array: a failed fetch");

    /* The server process stopped altogether. */
    serve_doc(doc(jwk("rsa2048", "a", NULL), NULL));
    int old_port = port;
    server_stop();
    is_int(find(r, "a", 281), M8_JWKS_FOUND, "stopped: stale key kept with the server gone");
    ok(m8_jwks_fetches(r) == 9, "stopped: the attempt counted");
    m8_jwks *fresh = resolver(60, 10);
    is_int(find(fresh, "a", 10), M8_JWKS_UNAVAILABLE,
           "stopped: nothing cached and the fetch fails -> UNAVAILABLE");
    is_int(find(fresh, NULL, 11), M8_JWKS_UNAVAILABLE,
           "stopped: ... also when throttled, and for a token without kid");
    ok(m8_jwks_fetches(fresh) == 1, "stopped: ... with a single attempt in the cooldown");
    if (server_start(old_port) != 0) {
        diag("cannot restart the server on port %d", old_port);
        exit(1);
    }
    is_int(find(fresh, "a", 21), M8_JWKS_FOUND,
           "back: after the cooldown the issuer answers again");
    is_int(find(r, "a", 291), M8_JWKS_FOUND, "back: the old resolver refreshes too");
    ok(m8_jwks_generation(r) == 3, "back: ... with a new generation");
    m8_jwks_free(fresh);
    m8_jwks_free(r);

    /* A successful empty set is not "unavailable". */
    write_file(jwks_srv.dir, "jwks.json", "{}", 2);
    r = resolver(60, 10);
    is_int(find(r, "a", 1), M8_JWKS_NOT_FOUND,
           "empty: missing keys is an empty set, kid not found");
    is_int(m8_jwks_generation(r), 1, "empty: ... after a successful fetch");
    is_int(find(r, NULL, 2), M8_JWKS_NOT_FOUND, "empty: a token without kid finds nothing");
    m8_jwks_free(r);

    /* Weak keys are logged when skipped, without their material. */
    json_object *weak = jwk("rsa1024", "weak", NULL);
    char nval[48];
    snprintf(nval, sizeof nval, "%.40s", json_object_get_string(json_object_object_get(weak, "n")));
    serve_doc(doc(weak, jwk("rsa2048", "a", NULL), NULL));
    r = resolver(60, 10);
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_FOUND, "skip log: the good key resolves");
    is_int(find(r, "weak", 20), M8_JWKS_NOT_FOUND, "skip log: the weak key does not");
    log = log_release();
    like(log, "skipped", "skip log: the skipped weak key is logged");
    like(log, "weak", "skip log: ... with its kid");
    ok(strstr(log, nval) == NULL, "skip log: ... never with its key material");
    free(log);
    m8_jwks_free(r);

    /* Credentials in JWKS_URI never reach the log. */
    char u[160];
    snprintf(u, sizeof u, "http://alice:s3cret-pw@127.0.0.1:%d/jwks.json", port);
    r = m8_jwks_new(u, M8_ALG_RS256, 60, 10);
    knob("status", "503");
    log_capture();
    is_int(find(r, "a", 1), M8_JWKS_UNAVAILABLE, "userinfo: a 503 with nothing cached");
    log = log_release();
    ok(strstr(log, "s3cret") == NULL && strstr(log, "alice") == NULL && strstr(log, "503"),
       "userinfo: the failure log names the status, not the credentials");
    free(log);
    knob("status", NULL);
    m8_jwks_free(r);
}

void test_no_kid(void)
{
    serve_doc(doc(jwk("rsa2048", "only", NULL), NULL));
    m8_jwks *r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_FOUND, "no kid: a set of one key matches");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", NULL, NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_FOUND, "no kid: a set of one kid-less key matches");
    is_int(find(r, "x", 2), M8_JWKS_NOT_FOUND, "no kid: a token kid never matches a kid-less JWK");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", "a", NULL), jwk("rsa2048b", "b", NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_AMBIGUOUS, "no kid: two keys -> AMBIGUOUS, never the first");
    is_int(find(r, "a", 2), M8_JWKS_FOUND, "no kid: ... while kid a resolves");
    is_int(find(r, NULL, 20), M8_JWKS_AMBIGUOUS, "no kid: ... still ambiguous after a refresh");
    ok(m8_jwks_fetches(r) == 2, "no kid: the ambiguous lookup tried one throttled refresh");
    m8_jwks_free(r);

    serve_doc(doc(jwk("rsa2048", NULL, NULL), jwk("rsa2048b", NULL, NULL), NULL));
    r = resolver(60, 10);
    is_int(find(r, NULL, 1), M8_JWKS_AMBIGUOUS, "no kid: two kid-less keys -> AMBIGUOUS");
    m8_jwks_free(r);
}
