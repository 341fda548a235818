/* test_issuer_store.c - the issuer's Redis replacements (lib/issuer/store.h)
 * on the tables test_issuer_schema.c applied: fixed windows that count and
 * start over after the window (now passed in, no sleeping), atomic under
 * concurrent processes; the refresh allowlist whose rotation succeeds once
 * and fails on a replay or for the loser of a race; the blacklist; the event
 * outbox with ids increasing across connections and holes held back for
 * the grace time, then skipped. */
#include "test_issuer_schema.h"

/* ------------------------------------------------------------ offline */

void test_store_offline(void)
{
    int64_t c = 0;
    bool b = false;
    char key[400];
    memset(key, 'k', sizeof key);
    /* Arguments are checked before the handle is used. */
    is_int(m8_issuer_rate_hit(NULL, NULL, "k", 1, 60, 0, &c, NULL), M8_EINVAL,
           "store: rate_hit without a handle is EINVAL");
    m8_db *fake = (m8_db *)(void *)key; /* never dereferenced: each call below fails first */
    is_int(m8_issuer_rate_hit(fake, NULL, key, M8_ISSUER_RATE_KEY_MAX + 1, 60, 0, &c, NULL),
           M8_EINVAL, "store: a rate key over %u bytes is EINVAL", M8_ISSUER_RATE_KEY_MAX);
    is_int(m8_issuer_rate_hit(fake, NULL, "", 0, 60, 0, &c, NULL), M8_EINVAL,
           "store: an empty rate key is EINVAL");
    is_int(m8_issuer_rate_hit(fake, NULL, "a\nb", 3, 60, 0, &c, NULL), M8_EINVAL,
           "store: a control character in a rate key is EINVAL");
    is_int(m8_issuer_rate_hit(fake, NULL, "a\xc3", 2, 60, 0, &c, NULL), M8_EINVAL,
           "store: a truncated UTF-8 sequence in a rate key is EINVAL");
    is_int(m8_issuer_rate_hit(fake, NULL, "a\xc2\x85", 3, 60, 0, &c, NULL), M8_EINVAL,
           "store: a C1 control (U+0085) in a rate key is EINVAL");
    is_int(m8_issuer_rate_hit(fake, NULL, "a", 1, 0, 0, &c, NULL), M8_EINVAL,
           "store: a window of 0 s is EINVAL");
    is_int(m8_issuer_allow_put(fake, NULL, "a b", "u", 1), M8_EINVAL,
           "store: a jti with a space is EINVAL");
    char id[80];
    memset(id, 'j', sizeof id);
    id[M8_ISSUER_ID_MAX + 1] = '\0';
    is_int(m8_issuer_allow_put(fake, NULL, "j", id, 1), M8_EINVAL,
           "store: a user id over %u bytes is EINVAL", M8_ISSUER_ID_MAX);
    is_int(m8_issuer_allow_rotate(fake, NULL, "same", "same", "u", 1, 0), M8_EINVAL,
           "store: rotating a jti into itself is EINVAL");
    is_int(m8_issuer_blacklist_has(fake, NULL, "", 0, &b), M8_EINVAL,
           "store: an empty jti is EINVAL");
    is_int(m8_issuer_event_append(fake, NULL, "t", "\xff", 1, 0, NULL), M8_EINVAL,
           "store: an event payload that is not UTF-8 is EINVAL");
    m8_issuer_events ev;
    is_int(m8_issuer_event_read(fake, NULL, 0, M8_ISSUER_EVENT_READ_MAX + 1, 0, 0, &ev), M8_EINVAL,
           "store: reading over %u events at once is EINVAL", M8_ISSUER_EVENT_READ_MAX);
    m8_issuer_events_free(&ev);
}

/* ------------------------------------------------------------ rate */

/* Racers hit RACE_KEYS new keys RACE_ROUNDS times each, in step, so that
 * both the first insert of a key and its increments run concurrently. */
#define RACERS 3
#define RACE_KEYS 10
#define RACE_ROUNDS 4

static int race_hits(m8_db_kind kind, int i)
{
    (void)i;
    m8_db *db = iss_connect(kind);
    if (!db)
        return 2;
    int64_t prev[RACE_KEYS] = {0}, c = 0;
    int bad = 0;
    for (int r = 0; r < RACE_ROUNDS && !bad; r++) {
        for (int n = 0; n < RACE_KEYS && !bad; n++) {
            char key[32];
            int kl = snprintf(key, sizeof key, "race:hits:%d", n);
            int rc = m8_issuer_rate_hit(db, NULL, key, (size_t)kl, 600, 5000, &c, NULL);
            if (rc != 0 || c <= prev[n]) {
                printf("# racer %d: key %d: rc %d count %lld after %lld (%s)\n", i, n, rc,
                       (long long)c, (long long)prev[n], m8_db_last_error(db)->message);
                bad = 1;
            }
            prev[n] = c;
        }
    }
    fflush(stdout);
    m8_db_close(db);
    return bad;
}

static void test_rate(m8_db *db, const char *k, m8_db_kind kind)
{
    const char *key = "login:attempts:ann@example.com";
    size_t kl = strlen(key);
    int64_t c = 0, end = 0;
    bool all = true;
    for (int i = 1; i <= 6; i++) {
        int rc = m8_issuer_rate_hit(db, NULL, key, kl, 900, 1000 + i - 1, &c, &end);
        all = all && rc == 0 && c == i && end == 1900;
    }
    ok(all, "%s: rate: six hits in the window count 1..6, the window ending at first hit + 900", k);
    is_int(m8_issuer_rate_hit(db, NULL, key, kl, 900, 1900 - 1, &c, &end), 0,
           "%s: rate: a hit one second before the end", k);
    is_int(c, 7, "%s: rate: ... still counts in the window", k);
    is_int(m8_issuer_rate_hit(db, NULL, key, kl, 900, 1900, &c, &end), 0,
           "%s: rate: a hit at the window's end", k);
    is_int(c, 1, "%s: rate: ... starts a new window at 1", k);
    is_int(end, 2800, "%s: rate: ... ending window_s later", k);
    is_int(m8_issuer_rate_hit(db, NULL, "login:ip:10.0.0.1", 17, 900, 1900, &c, NULL), 0,
           "%s: rate: another key", k);
    is_int(c, 1, "%s: rate: ... counts on its own", k);
    const char *uni = "login:attempts:\xc3\xa9l\xc3\xa8ve@\xe6\x97\xa5\xe6\x9c\xac.jp";
    m8_issuer_rate_hit(db, NULL, uni, strlen(uni), 60, 1900, &c, NULL);
    is_int(m8_issuer_rate_hit(db, NULL, uni, strlen(uni), 60, 1901, &c, NULL), 0,
           "%s: rate: a UTF-8 key", k);
    is_int(c, 2, "%s: rate: ... counts byte for byte", k);
    m8_issuer_rate_hit(db, NULL, "login:attempts:ANN@example.com", kl, 900, 1901, &c, NULL);
    is_int(c, 1, "%s: rate: keys differing in case are distinct", k);
    is_int(m8_issuer_rate_clear(db, NULL, key, kl), 0, "%s: rate: clear", k);
    m8_issuer_rate_hit(db, NULL, key, kl, 900, 1901, &c, NULL);
    is_int(c, 1, "%s: rate: ... the next hit counts 1", k);

    is_int(iss_race(kind, RACERS, race_hits, NULL), RACERS,
           "%s: rate: %d processes hitting %d new keys %d times each all see increasing counts", k,
           RACERS, RACE_KEYS, RACE_ROUNDS);
    int lost = 0;
    for (int n = 0; n < RACE_KEYS; n++) {
        char rk[32];
        int rl = snprintf(rk, sizeof rk, "race:hits:%d", n);
        if (m8_issuer_rate_hit(db, NULL, rk, (size_t)rl, 600, 5000, &c, NULL) != 0 ||
            c != RACERS * RACE_ROUNDS + 1)
            lost++;
    }
    is_int(lost, 0, "%s: rate: ... and no hit was lost", k);
}

/* ------------------------------------------------------------ allowlist */

static char g_old[64];

static int race_rotate(m8_db_kind kind, int i)
{
    m8_db *db = iss_connect(kind);
    if (!db)
        return 2;
    char nj[80];
    snprintf(nj, sizeof nj, "%s-next%d", g_old, i);
    int rc = m8_issuer_allow_rotate(db, NULL, g_old, nj, "user-1", 9000, 100);
    m8_db_close(db);
    return rc == 0 ? 0 : rc == M8_ENOTFOUND ? 1 : 2;
}

static void test_allow(m8_db *db, const char *k, m8_db_kind kind)
{
    bool has = false, removed = false;
    is_int(m8_issuer_allow_put(db, NULL, "jti-1", "user-1", 2000), 0, "%s: allow: put", k);
    m8_issuer_allow_has(db, NULL, "jti-1", 1999, &has);
    ok(has, "%s: allow: present before its expiry", k);
    m8_issuer_allow_has(db, NULL, "jti-1", 2000, &has);
    ok(!has, "%s: allow: absent at its expiry", k);
    is_int(m8_issuer_allow_rotate(db, NULL, "jti-1", "jti-2", "user-1", 3000, 1000), 0,
           "%s: allow: rotate succeeds once", k);
    is_int(m8_issuer_allow_rotate(db, NULL, "jti-1", "jti-3", "user-1", 3000, 1000), M8_ENOTFOUND,
           "%s: allow: a replay of the old jti fails (ENOTFOUND)", k);
    m8_issuer_allow_has(db, NULL, "jti-1", 1000, &has);
    ok(!has, "%s: allow: the old jti is gone", k);
    m8_issuer_allow_has(db, NULL, "jti-2", 1000, &has);
    ok(has, "%s: allow: the new jti is allowed", k);
    m8_issuer_allow_has(db, NULL, "jti-3", 1000, &has);
    ok(!has, "%s: allow: the failed rotation allowed nothing", k);
    ok(!m8_db_in_transaction(db), "%s: allow: no transaction is left open", k);
    is_int(m8_issuer_allow_rotate(db, NULL, "jti-2", "jti-4", "user-1", 4000, 3000), M8_ENOTFOUND,
           "%s: allow: an expired jti does not rotate", k);
    /* Inside the caller's transaction: a failure leaves it to the caller. */
    m8_db_begin(db);
    is_int(m8_issuer_allow_rotate(db, NULL, "jti-2", "jti-5", "user-1", 4000, 2000), 0,
           "%s: allow: rotate inside the caller's transaction", k);
    ok(m8_db_in_transaction(db), "%s: allow: ... which stays open", k);
    m8_db_rollback(db);
    m8_issuer_allow_has(db, NULL, "jti-2", 2000, &has);
    ok(has, "%s: allow: ... and its rollback undoes the rotation", k);

    int wins = 0, losers_notfound = 0, rounds = 5;
    for (int r = 0; r < rounds; r++) {
        snprintf(g_old, sizeof g_old, "race-%d", r);
        m8_issuer_allow_put(db, NULL, g_old, "user-1", 9000);
        int codes[2] = {-1, -1};
        wins += iss_race(kind, 2, race_rotate, codes);
        losers_notfound += (codes[0] == 1) + (codes[1] == 1);
    }
    is_int(wins, rounds, "%s: allow: of two concurrent rotations exactly one wins (%d rounds)", k,
           rounds);
    is_int(losers_notfound, rounds, "%s: allow: ... the other gets ENOTFOUND", k);

    is_int(m8_issuer_allow_remove(db, NULL, "jti-2", &removed), 0, "%s: allow: remove", k);
    ok(removed, "%s: allow: ... says it removed one", k);
    m8_issuer_allow_remove(db, NULL, "jti-2", &removed);
    ok(!removed, "%s: allow: ... and none the second time", k);
    m8_issuer_allow_put(db, NULL, "u2-a", "user-2", 9000);
    m8_issuer_allow_put(db, NULL, "u2-b", "user-2", 9000);
    is_int(m8_issuer_allow_remove_user(db, NULL, "user-2"), 0, "%s: allow: remove a user's", k);
    m8_issuer_allow_has(db, NULL, "u2-b", 100, &has);
    ok(!has, "%s: allow: ... every entry of the user is gone", k);
    m8_issuer_allow_has(db, NULL, "race-0-next0", 100, &has);
    bool has1 = false;
    m8_issuer_allow_has(db, NULL, "race-0-next1", 100, &has1);
    ok(has != has1, "%s: allow: ... other users' entries stay", k);
}

/* ------------------------------------------------------------ blacklist */

static void test_blacklist(m8_db *db, const char *k)
{
    bool listed = true;
    m8_issuer_blacklist_has(db, NULL, "acc-1", 1000, &listed);
    ok(!listed, "%s: blacklist: an unknown jti is not listed", k);
    is_int(m8_issuer_blacklist_put(db, NULL, "acc-1", 1500), 0, "%s: blacklist: put", k);
    m8_issuer_blacklist_has(db, NULL, "acc-1", 1499, &listed);
    ok(listed, "%s: blacklist: listed before its expiry", k);
    m8_issuer_blacklist_has(db, NULL, "acc-1", 1500, &listed);
    ok(!listed, "%s: blacklist: not listed at its expiry", k);
    m8_issuer_blacklist_put(db, NULL, "acc-1", 1200);
    m8_issuer_blacklist_has(db, NULL, "acc-1", 1400, &listed);
    ok(listed, "%s: blacklist: an earlier expiry does not shorten an entry", k);
    m8_issuer_blacklist_put(db, NULL, "acc-1", 1800);
    m8_issuer_blacklist_has(db, NULL, "acc-1", 1700, &listed);
    ok(listed, "%s: blacklist: a later one extends it", k);
}

/* ------------------------------------------------------------ events */

static void test_events(m8_db *db, const char *k, m8_db_kind kind)
{
    m8_db *other = iss_connect(kind);
    ok(other != NULL, "%s: events: a second connection", k);
    if (!other)
        return;
    int64_t base = -1, id = 0, prev = 0;
    is_int(m8_issuer_event_last_id(db, NULL, &base), 0, "%s: events: last id", k);
    is_int(base, 0, "%s: events: ... is 0 on an empty outbox", k);
    const int64_t T = 1700000000000000;
    bool rising = true;
    char payload[64];
    for (int i = 0; i < 6; i++) {
        snprintf(payload, sizeof payload, "{\"n\":%d}", i);
        int rc = m8_issuer_event_append(i % 2 ? other : db, NULL, "session-revoked", payload,
                                        strlen(payload), T + i, &id);
        rising = rising && rc == 0 && id > prev;
        prev = id;
    }
    ok(rising, "%s: events: ids strictly increase across two connections", k);
    m8_issuer_events ev;
    is_int(m8_issuer_event_read(db, NULL, 0, 100, T + 10, 0, &ev), 0, "%s: events: read", k);
    is_int(ev.n, 6, "%s: events: ... all six", k);
    bool order = ev.n == 6;
    for (size_t i = 0; order && i < ev.n; i++) {
        snprintf(payload, sizeof payload, "{\"n\":%zu}", i);
        order = strcmp(ev.ev[i].payload, payload) == 0 && ev.ev[i].payload_len == strlen(payload) &&
                strcmp(ev.ev[i].type, "session-revoked") == 0 &&
                ev.ev[i].created_us == T + (int64_t)i;
    }
    ok(order, "%s: events: ... in order, with type, payload and time", k);
    is_int(ev.next_after, prev, "%s: events: ... next_after is the last id", k);
    ok(!ev.held && ev.skipped == 0, "%s: events: ... nothing held or skipped", k);
    m8_issuer_events_free(&ev);
    m8_issuer_event_read(db, NULL, prev - 2, 1, T + 10, 0, &ev);
    ok(ev.n == 1 && ev.ev[0].id == prev - 1, "%s: events: read after an id, limited to max", k);
    m8_issuer_events_free(&ev);

    /* A rolled-back append leaves a hole: held within the grace, then skipped. */
    int64_t last = prev;
    m8_db_begin(db);
    m8_issuer_event_append(db, NULL, "lost", "{}", 2, T + 20, &id);
    m8_db_rollback(db);
    m8_issuer_event_append(other, NULL, "after-hole", "{}", 2, T + 21, &id);
    ok(id > last + 1, "%s: events: the append after a rolled-back one leaves a hole", k);
    m8_issuer_event_read(db, NULL, last, 100, T + 22, 5000000, &ev);
    ok(ev.n == 0 && ev.held && ev.next_after == last,
       "%s: events: a young hole holds back what follows", k);
    m8_issuer_events_free(&ev);
    m8_issuer_event_read(db, NULL, last, 100, T + 21 + 5000001, 5000000, &ev);
    ok(ev.n == 1 && !ev.held && ev.skipped == (size_t)(id - last - 1) && ev.next_after == id,
       "%s: events: past the grace the hole is skipped", k);
    m8_issuer_events_free(&ev);

    /* An append in flight: the later committed one waits for it. */
    last = id;
    int64_t slow = 0, fast = 0;
    m8_db_begin(db);
    m8_issuer_event_append(db, NULL, "slow", "{\"s\":1}", 7, T + 30, &slow);
    m8_issuer_event_append(other, NULL, "fast", "{\"f\":1}", 7, T + 31, &fast);
    ok(fast > slow, "%s: events: the later append has the larger id", k);
    m8_issuer_event_read(other, NULL, last, 100, T + 32, 5000000, &ev);
    ok(ev.n == 0 && ev.held, "%s: events: it is held while the earlier one is uncommitted", k);
    m8_issuer_events_free(&ev);
    m8_db_commit(db);
    m8_issuer_event_read(other, NULL, last, 100, T + 33, 5000000, &ev);
    ok(ev.n == 2 && ev.ev[0].id == slow && ev.ev[1].id == fast && !ev.held,
       "%s: events: after the commit both come, in id order", k);
    m8_issuer_events_free(&ev);

    /* Reaping keeps the newest event. */
    int64_t first = 0;
    m8_issuer_event_first_id(db, NULL, &first);
    is_int(first, 1, "%s: events: the first id is 1", k);
    is_int(m8_issuer_store_reap(db, NULL, 2500, T + 1000), 0, "%s: reap", k);
    m8_issuer_event_first_id(db, NULL, &first);
    m8_issuer_event_last_id(db, NULL, &last);
    ok(first == fast && last == fast, "%s: reap: every old event but the newest is gone", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM auth_m8_refresh_allow WHERE expires_at <= 2500"), 0,
           "%s: reap: expired allowlist entries are gone", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM auth_m8_refresh_allow"), 5,
           "%s: reap: ... live ones stay", k);
    is_int(iss_int(db, "SELECT COUNT(*) FROM auth_m8_rate_window WHERE window_end <= 2500"), 0,
           "%s: reap: ended rate windows are gone", k);
    m8_db_close(other);
}

void test_store(m8_db_kind kind)
{
    const char *k = m8_db_kind_name(kind);
    m8_db *db = iss_connect(kind);
    ok(db != NULL, "%s: store: a handle", k);
    if (!db)
        return;
    test_rate(db, k, kind);
    test_allow(db, k, kind);
    test_blacklist(db, k);
    test_events(db, k, kind);
    m8_db_close(db);
}
