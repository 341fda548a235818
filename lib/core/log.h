/* log.h - one JSON object per line on stderr (doc/design.md#logging).  Each line is
 * written with a single write(2), or with the lines before it in one write
 * of at most M8_LOG_BATCH_BYTES (m8_log_buffer), so lines from threads and
 * processes never interleave.  Never pass a secret. */
#ifndef M8_LOG_H
#define M8_LOG_H

#include "core/common.h"

typedef enum m8_log_level {
    M8_LOG_DEBUG = 0,
    M8_LOG_INFO,
    M8_LOG_WARNING,
    M8_LOG_ERROR,
    M8_LOG_CRITICAL,
} m8_log_level;

/* Minimum level written (default info; env M8_LOG_LEVEL=debug|info|...). */
M8_INTERNAL void m8_log_set_level(m8_log_level lvl);
M8_INTERNAL bool m8_log_enabled(m8_log_level lvl);
/* {"ts":"...","level":"...","msg":"<formatted>"} */
M8_INTERNAL void m8_log(m8_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Same, with extra members: extra_json is a pre-rendered fragment such as
 * "\"method\":\"GET\",\"status\":200" (no braces), or NULL. */
M8_INTERNAL void m8_log_fields(m8_log_level lvl, const char *msg, const char *extra_json);
/* Redirects log output to fd (tests); -1 restores stderr. */
M8_INTERNAL void m8_log_set_fd(int fd);

/* Longest line written (a longer one is dropped). */
#define M8_LOG_LINE_MAX (64u * 1024u)
/* Buffered lines (serving threads, doc/design.md#logging): the calling
 * thread's lines below warning are held and written together, in whole
 * lines, at most M8_LOG_BATCH_BYTES (PIPE_BUF: one write to a pipe is never
 * split or mixed with another writer's) at a time.  A line of warning or
 * above writes what is held at once, with it; a held line is written at
 * the latest M8_LOG_FLUSH_MS milliseconds (environment; default
 * M8_LOG_FLUSH_MS_DEFAULT, 0 = every line at once) after it was logged:
 * the serving loop waits for its next event no longer than that. */
#define M8_LOG_BATCH_BYTES 4096u
#define M8_LOG_FLUSH_MS_DEFAULT 100
M8_INTERNAL void m8_log_buffer(bool on);
/* When (m8_now_mono) this thread's held lines must be written; 0: none. */
M8_INTERNAL double m8_log_flush_due(void);
/* Tests: the flush delay in ms; -1 reads M8_LOG_FLUSH_MS again. */
M8_INTERNAL void m8_log_set_flush_ms(int ms);
/* Writes this thread's held lines now. */
M8_INTERNAL void m8_log_flush(void);

/* Rate-limited lines, for anything a client can trigger once per request
 * (refused tokens, bad requests, dropped events).  Each key (a fixed string
 * naming the reason, never client input) has a token bucket per process:
 * M8_LOG_LIMIT_BURST lines at once, then M8_LOG_LIMIT_PER_S a second.  A
 * line over the limit is counted, not written; the key's next written line
 * is preceded by one line "<key>: N more suppressed" (member "suppressed").
 * Only lines are limited: metrics are counted by the caller, exactly.
 * Past M8_LOG_LIMIT_KEYS distinct keys, the rest share one bucket. */
#define M8_LOG_LIMIT_BURST 10u
#define M8_LOG_LIMIT_PER_S 2.0
#define M8_LOG_LIMIT_KEYS 64u
M8_INTERNAL void m8_log_limited(const char *key, m8_log_level lvl, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Same for a line with extra members (see m8_log_fields). */
M8_INTERNAL void m8_log_fields_limited(const char *key, m8_log_level lvl, const char *msg,
                                       const char *extra_json);
/* Whether a line for key may be written now (takes a token when it may,
 * writing the pending "suppressed" line first; counts it otherwise).  For
 * callers that build an expensive line only when it will be written. */
M8_INTERNAL bool m8_log_limit_take(const char *key, m8_log_level lvl);
/* Tests: the burst, the rate and the clock (seconds, monotonic; NULL: the
 * real one) of every bucket; also forgets every key. */
M8_INTERNAL void m8_log_limit_config(unsigned burst, double per_second, double (*clock)(void));

#endif
