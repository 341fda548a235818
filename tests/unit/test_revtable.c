/* test_revtable.c - the revocation table in the shared segment (revtable.h,
 * doc/wire.md#revocation-table): revoked jtis, user-wide since-times, watermarks,
 * the positive cache with its TTL, bounded windows, flush and evict, two
 * processes on one segment, and a holder of the lock that dies. */
#include "config.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "auth/revtable.h"
#include "core/log.h"
#include "shm/shm.h"
#include "tap.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"
#define NOW 1700000000.0

static void test_cache(m8_shm *shm)
{
    m8_revtable_clear(shm);
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "cache: an unknown jti is UNKNOWN (ask the issuer)");
    is_int(m8_revtable_record_active(shm, "j1", U1, 100, 1, 30, NOW), M8_REVT_ACTIVE,
           "cache: an active answer is accepted");
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW + 1), M8_REVT_ACTIVE,
           "cache: ... and then answers from the cache");
    is_int(m8_revtable_check(shm, "j1", U1, 100, false, NOW + 1), M8_REVT_UNKNOWN,
           "cache: a role-sensitive check (use_cache false) does not read it "
           "(doc/wire.md#revocation-table)");
    is_int(m8_revtable_check(shm, "j1", U2, 100, true, NOW + 1), M8_REVT_UNKNOWN,
           "cache: the entry answers only for the user it was stored for");
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW + 29.999), M8_REVT_ACTIVE,
           "cache: still served just before now+TTL");
    m8_revt_stats st;
    m8_revtable_stats(shm, NOW, &st);
    is_int(st.cached, 1, "cache: one live entry");
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW + 30), M8_REVT_UNKNOWN,
           "cache: expired exactly at now+TTL");
    m8_revtable_stats(shm, NOW, &st);
    is_int(st.cached, 0, "cache: an expired entry is deleted on read");

    m8_revtable_record_active(shm, "j2", U1, 100, 1, 30, NOW);
    is_int(m8_revtable_check(shm, "j2", U1, 100, true, NOW - 0.5), M8_REVT_ACTIVE,
           "cache: a clock half a second back still serves");
    is_int(m8_revtable_check(shm, "j2", U1, 100, true, NOW - 2), M8_REVT_UNKNOWN,
           "cache: a clock set back by more than a second ends the entry");

    is_int(m8_revtable_record_active(shm, "j3", U1, 100, 1, 0, NOW), M8_REVT_ACTIVE,
           "cache off (TTL 0): the answer is accepted");
    is_int(m8_revtable_check(shm, "j3", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "cache off (TTL 0): ... and never stored");
}

static void test_jti(m8_shm *shm)
{
    m8_revtable_clear(shm);
    m8_revtable_record_active(shm, "j1", U1, 100, 1, 60, NOW);
    m8_revtable_revoke_jti(shm, "j1", NOW + 10, NOW);
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW + 1), M8_REVT_REVOKED,
           "jti: a revoked jti is REVOKED, even with a cached active answer");
    is_int(m8_revtable_check(shm, "j1", U1, 100, false, NOW + 1), M8_REVT_REVOKED,
           "jti: ... also for role-sensitive checks (revocations are not the cache)");
    is_int(m8_revtable_record_active(shm, "j1", U1, 100, 1, 60, NOW + 1), M8_REVT_REVOKED,
           "jti: an active answer racing the revocation is refused, not stored");
    is_int(m8_revtable_check(shm, "j1", U1, 100, true, NOW + 10), M8_REVT_UNKNOWN,
           "jti: the revocation ends at its until (the token's exp)");
    m8_revtable_revoke_jti(shm, "j2", 0, NOW);
    is_int(m8_revtable_check(shm, "j2", U1, 100, true, NOW + 1e6), M8_REVT_REVOKED,
           "jti: until 0 keeps it until evicted");
    m8_revtable_revoke_jti(shm, "j3", NOW + 100, NOW);
    m8_revtable_revoke_jti(shm, "j3", NOW + 5, NOW);
    is_int(m8_revtable_check(shm, "j3", U1, 100, true, NOW + 50), M8_REVT_REVOKED,
           "jti: a second, shorter revocation does not shorten the first");
    is_int(m8_revtable_check(shm, "j4", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "jti: other jtis are not affected");
}

static void test_user(m8_shm *shm)
{
    m8_revtable_clear(shm);
    m8_revtable_record_active(shm, "a", U1, 100, 1, 60, NOW);
    m8_revtable_record_active(shm, "b", U1, 300, 1, 60, NOW);
    m8_revtable_record_active(shm, "c", U2, 100, 1, 60, NOW);
    m8_revtable_revoke_user(shm, U1, 200, NOW);
    is_int(m8_revtable_check(shm, "a", U1, 199, true, NOW), M8_REVT_REVOKED,
           "user: iat < since is REVOKED");
    is_int(m8_revtable_check(shm, "x", U1, 200, true, NOW), M8_REVT_UNKNOWN,
           "user: iat == since is not revoked (asks the issuer)");
    is_int(m8_revtable_check(shm, "b", U1, 300, true, NOW), M8_REVT_UNKNOWN,
           "user: a user-wide revocation evicts every cached answer of the user "
           "(doc/wire.md#revocation-table)");
    is_int(m8_revtable_check(shm, "c", U2, 100, true, NOW), M8_REVT_ACTIVE,
           "user: another user's answers stay");
    is_int(m8_revtable_record_active(shm, "a", U1, 100, 1, 60, NOW), M8_REVT_REVOKED,
           "user: an active answer for a token before since is refused");
    m8_revtable_revoke_user(shm, U1, 150, NOW);
    is_int(m8_revtable_check(shm, "a", U1, 199, true, NOW), M8_REVT_REVOKED,
           "user: a since-time only grows");
    m8_revtable_revoke_user(shm, U2, LLONG_MAX, NOW);
    is_int(m8_revtable_check(shm, "c", U2, LLONG_MAX - 1, true, NOW), M8_REVT_REVOKED,
           "user: since LLONG_MAX refuses every token (deleted user)");
    m8_revtable_record_active(shm, "b", U1, 300, 1, 60, NOW);
    m8_revtable_evict_user(shm, U1);
    is_int(m8_revtable_check(shm, "b", U1, 300, true, NOW), M8_REVT_UNKNOWN,
           "evict_user: drops the user's cached answers");
    is_int(m8_revtable_check(shm, "a", U1, 100, true, NOW), M8_REVT_REVOKED,
           "evict_user: ... but not its revocation");
}

static m8_revt_event ev(const char *user, const char *jti, uint64_t gen, const char *eid)
{
    m8_revt_event e = {.user_id = user, .jti = jti, .generation = gen, .event_id = eid};
    return e;
}

static void test_events(m8_shm *shm)
{
    m8_revtable_clear(shm);
    m8_revt_event e;
    /* v1 single session: evicts the whole user, revokes the jti. */
    m8_revtable_record_active(shm, "a", U1, 100, 1, 60, NOW);
    m8_revtable_record_active(shm, "b", U1, 100, 1, 60, NOW);
    e = ev(U1, "a", 0, NULL);
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1, "v1: applied");
    is_int(m8_revtable_check(shm, "a", U1, 100, true, NOW), M8_REVT_REVOKED,
           "v1 jti: the jti is revoked");
    is_int(m8_revtable_check(shm, "b", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "v1 jti: every cached entry of the user is evicted, even with a jti "
           "(doc/wire.md#revocation-table)");
    /* v1 user-wide with a since-time. */
    m8_revtable_record_active(shm, "c", U1, 500, 1, 60, NOW);
    e = ev(U1, NULL, 0, NULL);
    e.since = 400;
    m8_revtable_session_revoked(shm, &e, NOW);
    is_int(m8_revtable_check(shm, "d", U1, 399, true, NOW), M8_REVT_REVOKED,
           "v1 user-wide: tokens issued before since are refused at once");
    is_int(m8_revtable_check(shm, "c", U1, 500, true, NOW), M8_REVT_UNKNOWN,
           "v1 user-wide: later tokens ask the issuer again (cache evicted)");

    /* v2 watermarks. */
    m8_revtable_clear(shm);
    m8_revtable_record_active(shm, "g1", U1, 100, 1, 60, NOW);
    m8_revtable_record_active(shm, "g2", U1, 100, 2, 60, NOW);
    m8_revtable_record_active(shm, "g3", U1, 100, 3, 60, NOW);
    e = ev(U1, NULL, 3, U1 ":3:publish:user-wide");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1, "v2: a first event is applied");
    is_int(m8_revtable_check(shm, "g1", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "v2 user-wide: entries below the generation are evicted (g1)");
    is_int(m8_revtable_check(shm, "g2", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "v2 user-wide: ... (g2)");
    is_int(m8_revtable_check(shm, "g3", U1, 100, true, NOW), M8_REVT_ACTIVE,
           "v2 user-wide: an entry at the generation stays");
    is_int(m8_revtable_record_active(shm, "g2", U1, 100, 2, 60, NOW), M8_REVT_REVOKED,
           "v2: an active answer below the watermark is revoked (doc/wire.md#jti-status-outcomes)");
    is_int(m8_revtable_check(shm, "g2", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "v2: ... and not stored");
    is_int(m8_revtable_record_active(shm, "g4", U1, 100, 3, 60, NOW), M8_REVT_ACTIVE,
           "v2: an answer at the watermark is accepted");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 0,
           "v2: the same event_id at the same generation is ignored (dedup)");
    e = ev(U1, NULL, 2, "old");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 0, "v2: a generation below W is ignored");
    is_int(m8_revtable_check(shm, "g4", U1, 100, true, NOW), M8_REVT_ACTIVE,
           "v2: ... and evicts nothing");
    e = ev(U1, "g4", 3, "other-at-3");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1,
           "v2: another event_id at the same generation is applied");
    is_int(m8_revtable_check(shm, "g4", U1, 100, true, NOW), M8_REVT_REVOKED,
           "v2 single jti: the jti is revoked");
    is_int(m8_revtable_check(shm, "g3", U1, 100, true, NOW), M8_REVT_ACTIVE,
           "v2 single jti: other entries of the user stay");
    e = ev(U1, "g3", 3, NULL);
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1,
           "v2: a null event_id at the watermark is applied");
    e = ev(U1, NULL, 5, NULL);
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1, "v2: a higher generation is applied");
    is_int(m8_revtable_record_active(shm, "g5", U1, 100, 4, 60, NOW), M8_REVT_REVOKED,
           "v2: ... and raises the watermark");
    /* Event ids remembered per generation: M8_REVTABLE_EVENT_IDS, the oldest goes. */
    char id[32];
    for (unsigned i = 0; i <= M8_REVTABLE_EVENT_IDS; i++) {
        snprintf(id, sizeof id, "e%u", i);
        e = ev(U1, NULL, 5, id);
        m8_revtable_session_revoked(shm, &e, NOW);
    }
    e = ev(U1, NULL, 5, "e1");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 0,
           "v2 dedup: the last %u event ids are remembered", M8_REVTABLE_EVENT_IDS);
    e = ev(U1, NULL, 5, "e0");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1,
           "v2 dedup: one more pushes the oldest out");
    e = ev(NULL, NULL, 1, NULL);
    is_int(m8_revtable_session_revoked(shm, &e, NOW), M8_EINVAL, "event without user_id: EINVAL");

    /* flush (gap): cache gone; revocations and watermarks stay. */
    m8_revtable_record_active(shm, "k", U2, 100, 1, 60, NOW);
    m8_revtable_flush(shm);
    is_int(m8_revtable_check(shm, "k", U2, 100, true, NOW), M8_REVT_UNKNOWN,
           "flush: every cached answer is gone");
    is_int(m8_revtable_check(shm, "g4", U1, 100, true, NOW), M8_REVT_REVOKED,
           "flush: revoked jtis stay");
    is_int(m8_revtable_record_active(shm, "g6", U1, 100, 4, 60, NOW), M8_REVT_REVOKED,
           "flush: watermarks survive (doc/wire.md#revocation-table)");
}

/* count ids "PREFIX-n" whose home slot in a table of cap is the same. */
static int colliding(m8_shm *shm, const char *prefix, size_t cap, char ids[][32], int want)
{
    size_t home = 0;
    int n = 0;
    for (unsigned long i = 0; i < 100000000ul && n < want; i++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%lu", prefix, i);
        size_t h = m8_revtable_home(shm, id, cap);
        if (n == 0)
            home = h;
        if (h == home)
            snprintf(ids[n++], 32, "%s", id);
    }
    return n;
}

static void test_bounds(m8_shm *shm)
{
    enum { W = M8_REVTABLE_WINDOW };
    char ids[W + 1][32];
    m8_revt_stats st;

    /* Cache: exactly a window of colliding jtis fits; one more evicts the
     * entry with the nearest expiry. */
    m8_revtable_clear(shm);
    if (colliding(shm, "c", M8_REVTABLE_CACHE, ids, W + 1) != W + 1) {
        ok(0, "bounds: found colliding ids");
        return;
    }
    for (int i = 0; i < W; i++)
        m8_revtable_record_active(shm, ids[i], U1, 100, 1, 100 + i, NOW);
    int found = 0;
    for (int i = 0; i < W; i++)
        found += m8_revtable_check(shm, ids[i], U1, 100, true, NOW) == M8_REVT_ACTIVE;
    is_int(found, W, "cache bound: %d colliding entries (one window) are all kept", W);
    m8_revtable_record_active(shm, ids[W], U1, 100, 1, 500, NOW);
    is_int(m8_revtable_check(shm, ids[W], U1, 100, true, NOW), M8_REVT_ACTIVE,
           "cache bound: entry %d of a full window is stored", W + 1);
    is_int(m8_revtable_check(shm, ids[0], U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "cache bound: ... evicting the one with the nearest expiry");
    found = 0;
    for (int i = 1; i < W; i++)
        found += m8_revtable_check(shm, ids[i], U1, 100, true, NOW) == M8_REVT_ACTIVE;
    is_int(found, W - 1, "cache bound: ... and only that one");
    m8_revtable_stats(shm, NOW, &st);
    is_int(st.evictions, 1, "cache bound: one eviction counted");

    /* Revoked jtis: the oldest of a full window goes. */
    m8_revtable_clear(shm);
    if (colliding(shm, "j", M8_REVTABLE_JTIS, ids, W + 1) != W + 1) {
        ok(0, "bounds: found colliding jtis");
        return;
    }
    for (int i = 0; i < W; i++)
        m8_revtable_revoke_jti(shm, ids[i], 0, NOW);
    found = 0;
    for (int i = 0; i < W; i++)
        found += m8_revtable_check(shm, ids[i], U1, 100, true, NOW) == M8_REVT_REVOKED;
    is_int(found, W, "jti bound: %d colliding revocations are all kept", W);
    m8_revtable_revoke_jti(shm, ids[W], 0, NOW);
    ok(m8_revtable_check(shm, ids[W], U1, 100, true, NOW) == M8_REVT_REVOKED &&
           m8_revtable_check(shm, ids[0], U1, 100, true, NOW) == M8_REVT_UNKNOWN &&
           m8_revtable_check(shm, ids[1], U1, 100, true, NOW) == M8_REVT_REVOKED,
       "jti bound: revocation %d replaces the oldest only", W + 1);

    /* Users: insertion order too. */
    m8_revtable_clear(shm);
    if (colliding(shm, "u", M8_REVTABLE_USERS, ids, W + 1) != W + 1) {
        ok(0, "bounds: found colliding users");
        return;
    }
    for (int i = 0; i <= W; i++)
        m8_revtable_revoke_user(shm, ids[i], 1000, NOW);
    ok(m8_revtable_check(shm, "x", ids[W], 5, true, NOW) == M8_REVT_REVOKED &&
           m8_revtable_check(shm, "x", ids[0], 5, true, NOW) == M8_REVT_UNKNOWN &&
           m8_revtable_check(shm, "x", ids[1], 5, true, NOW) == M8_REVT_REVOKED,
       "user bound: user %d of a full window replaces the oldest", W + 1);

    /* The whole table never grows past its capacity. */
    m8_revtable_clear(shm);
    char id[32];
    for (unsigned i = 0; i < 3 * M8_REVTABLE_CACHE; i++) {
        snprintf(id, sizeof id, "fill-c-%u", i);
        m8_revtable_record_active(shm, id, U1, 100, 1, 60, NOW);
        snprintf(id, sizeof id, "fill-j-%u", i);
        m8_revtable_revoke_jti(shm, id, 0, NOW);
    }
    m8_revtable_stats(shm, NOW, &st);
    ok(st.cached <= M8_REVTABLE_CACHE && st.cached > M8_REVTABLE_CACHE / 2,
       "fill: %zu cached entries, at most %u", st.cached, M8_REVTABLE_CACHE);
    ok(st.jtis <= M8_REVTABLE_JTIS && st.jtis > M8_REVTABLE_JTIS / 2,
       "fill: %zu revoked jtis, at most %u", st.jtis, M8_REVTABLE_JTIS);
    ok(m8_revtable_check(shm, id, U1, 100, true, NOW) == M8_REVT_REVOKED,
       "fill: the newest revocation is kept");
    ok(st.evictions > 0, "fill: evictions are counted (%llu)", (unsigned long long)st.evictions);
}

/* ------------------------------------------------------------ processes */

static void die_hook(void)
{
    _exit(0);
}

static void test_two_processes(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(2, &fd, err, sizeof err);
    if (!shm) {
        ok(0, "fork: m8_shm_create: %s", err);
        return;
    }
    int to_child[2], to_parent[2];
    if (pipe(to_child) != 0 || pipe(to_parent) != 0) {
        ok(0, "fork: pipes");
        return;
    }
    m8_revtable_init(shm);
    pid_t pid = fork();
    if (pid == 0) {
        char c;
        m8_revtable_revoke_jti(shm, "child-jti", 0, NOW);
        m8_revtable_record_active(shm, "child-cached", U1, 100, 1, 60, NOW);
        if (write(to_parent[1], "1", 1) != 1 || read(to_child[0], &c, 1) != 1)
            _exit(3);
        int rc = m8_revtable_check(shm, "parent-jti", U2, 100, true, NOW) == M8_REVT_REVOKED &&
                         m8_revtable_check(shm, "x", U2, 100, true, NOW) == M8_REVT_REVOKED
                     ? 0
                     : 1;
        _exit(rc);
    }
    char c;
    ok(read(to_parent[0], &c, 1) == 1, "fork: the child wrote");
    is_int(m8_revtable_check(shm, "child-jti", U1, 100, true, NOW), M8_REVT_REVOKED,
           "fork: the parent sees the child's revoked jti");
    is_int(m8_revtable_check(shm, "child-cached", U1, 100, true, NOW), M8_REVT_ACTIVE,
           "fork: the parent sees the child's cached answer");
    m8_revtable_revoke_jti(shm, "parent-jti", 0, NOW);
    m8_revtable_revoke_user(shm, U2, 200, NOW);
    ok(write(to_child[1], "1", 1) == 1, "fork: told the child");
    int st = 0;
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
       "fork: the child sees the parent's revoked jti and user-wide revocation");

    /* A child that dies holding the lock (not writing): the parent goes on
     * and the table is intact. */
    pid = fork();
    if (pid == 0) {
        m8_shm_lock(shm);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    alarm(10);                         /* a wedged lock fails the test instead of hanging it */
    m8_log_set_level(M8_LOG_CRITICAL); /* the recovery warning is expected */
    is_int(m8_revtable_check(shm, "child-jti", U1, 100, true, NOW), M8_REVT_REVOKED,
           "robust lock: a child died holding the lock; the parent is not wedged, table intact");
    m8_log_set_level(M8_LOG_WARNING);
    alarm(0);

    /* A child that dies in the middle of a write: the next holder clears
     * the (possibly torn) table and counts a recovery. */
    m8_revt_stats before, after;
    m8_revtable_stats(shm, NOW, &before);
    pid = fork();
    if (pid == 0) {
        m8_revtable_write_hook = die_hook;
        m8_revtable_revoke_jti(shm, "never-finished", 0, NOW);
        _exit(9); /* not reached */
    }
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mid-write: the child died inside the write");
    alarm(10);
    m8_log_set_level(M8_LOG_CRITICAL); /* the recovery warning is expected */
    is_int(m8_revtable_check(shm, "child-jti", U1, 100, true, NOW), M8_REVT_UNKNOWN,
           "mid-write: the next holder cleared the table (the issuer decides again)");
    m8_log_set_level(M8_LOG_WARNING);
    alarm(0);
    m8_revtable_stats(shm, NOW, &after);
    is_int(after.recoveries, before.recoveries + 1, "mid-write: one recovery counted");
    m8_revtable_revoke_jti(shm, "after", 0, NOW);
    is_int(m8_revtable_check(shm, "after", U1, 100, true, NOW), M8_REVT_REVOKED,
           "mid-write: the table works afterwards");
    close(fd);
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ garbage */

/* Another process of the pool writes garbage into the shared table (huge
 * event-id counts, random bytes over the entries); every reader and writer
 * of this process stays inside the table.  Run under ASan too. */
static void test_garbage(void)
{
    char err[256];
    int fd = -1;
    m8_shm *shm = m8_shm_create(2, &fd, err, sizeof err);
    if (!ok(shm != NULL, "garbage: a segment %s", err))
        return;
    m8_revt_event e = ev(U1, NULL, 7, "evt-1");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1, "garbage: a v2 event at generation 7");
    uint32_t *counts = m8_revtable_user_counts(shm, U1);
    if (!ok(counts != NULL, "garbage: the user's record exists"))
        return;
    pid_t pid = fork();
    if (pid == 0) {              /* the misbehaving worker */
        counts[0] = 0xffffffffu; /* napplied */
        counts[1] = 0x7fffffffu; /* next_applied */
        _exit(0);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    ok(WIFEXITED(st) && counts[0] == 0xffffffffu, "garbage: another process wrote huge counts");
    e = ev(U1, NULL, 7, "evt-2");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 1,
           "garbage: a new event id at the watermark is applied without reading past the ids");
    e = ev(U1, NULL, 7, "evt-2");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 0, "garbage: ... and then deduplicated");
    ok(counts[0] <= M8_REVTABLE_EVENT_IDS && counts[1] < M8_REVTABLE_EVENT_IDS,
       "garbage: the counts are back in range (%u, %u)", counts[0], counts[1]);
    for (int i = 0; i < 10; i++) {
        char id[16];
        snprintf(id, sizeof id, "evt-x%d", i);
        e = ev(U1, NULL, 7, id);
        m8_revtable_session_revoked(shm, &e, NOW);
    }
    e = ev(U1, NULL, 7, "evt-x9");
    is_int(m8_revtable_session_revoked(shm, &e, NOW), 0,
           "garbage: the ring of event ids works after the garbage");

    /* random bytes over everything past the table's header */
    pid = fork();
    if (pid == 0) {
        randombytes_buf(shm->revocation + 4096, M8_SHM_REVOCATION_BYTES - 4096);
        _exit(0);
    }
    waitpid(pid, &st, 0);
    alarm(20); /* a reader that loops on garbage fails instead of hanging */
    for (int i = 0; i < 2000; i++) {
        char id[32];
        snprintf(id, sizeof id, "g-%d", i);
        m8_revtable_check(shm, id, i % 2 ? U1 : U2, 100, true, NOW);
        m8_revtable_record_active(shm, id, U2, 100, (uint64_t)i, 60, NOW);
        e = ev(i % 3 ? U1 : U2, i % 2 ? id : NULL, (uint64_t)(i % 5), id);
        m8_revtable_session_revoked(shm, &e, NOW);
        if (i % 100 == 0) {
            m8_revtable_revoke_user(shm, id, 10, NOW);
            m8_revtable_evict_user(shm, U2);
        }
    }
    m8_revt_stats rs;
    m8_revtable_stats(shm, NOW, &rs);
    alarm(0);
    ok(rs.jtis <= M8_REVTABLE_JTIS && rs.users <= M8_REVTABLE_USERS &&
           rs.cached <= M8_REVTABLE_CACHE,
       "garbage: 2000 rounds of every call over random entries stay in bounds");
    m8_revtable_revoke_jti(shm, "after-garbage", 0, NOW);
    is_int(m8_revtable_check(shm, "after-garbage", U1, 100, true, NOW), M8_REVT_REVOKED,
           "garbage: a revocation made afterwards holds");
    close(fd);
    m8_shm_unmap(shm);
}

/* ------------------------------------------------------------ threads */

typedef struct thr_arg {
    m8_shm *shm;
    int n;
    int bad;
} thr_arg;

static void *thr_main(void *p)
{
    thr_arg *a = p;
    char id[48];
    /* 4 x 500 answers fill a quarter of the cache: a probe window filling
     * up (and evicting an answer between its store and its read) is then
     * not a realistic outcome; eviction has its own tests above. */
    for (int i = 0; i < 500; i++) {
        snprintf(id, sizeof id, "t%d-%d", a->n, i);
        if (m8_revtable_record_active(a->shm, id, U1, 100, 1, 60, NOW) != M8_REVT_ACTIVE)
            a->bad++;
        if (m8_revtable_check(a->shm, id, U1, 100, true, NOW) != M8_REVT_ACTIVE)
            a->bad++;
        if (i % 100 == 0)
            m8_revtable_revoke_jti(a->shm, id, 0, NOW);
    }
    return NULL;
}

static void test_private_threads(void)
{
    m8_shm *shm = m8_shm_private();
    if (!shm) {
        ok(0, "private segment");
        return;
    }
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thr_arg){.shm = shm, .n = i};
        pthread_create(&t[i], NULL, thr_main, &a[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        bad += a[i].bad;
    }
    is_int(bad, 0, "private segment: 4 threads store and read their answers");
    is_int(m8_revtable_check(shm, "t3-100", U1, 100, true, NOW), M8_REVT_REVOKED,
           "private segment: revocations by one thread are seen by another");
    m8_shm_unmap(shm);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    m8_log_set_level(M8_LOG_WARNING);
    m8_shm *shm = m8_shm_private();
    if (!shm) {
        printf("1..0 # SKIP no memory for a private segment\n");
        return 0;
    }
    test_cache(shm);
    test_jti(shm);
    test_user(shm);
    test_events(shm);
    test_bounds(shm);
    m8_shm_unmap(shm);
    test_two_processes();
    test_garbage();
    test_private_threads();
    return done_testing();
}
