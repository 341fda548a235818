/* log.h - one JSON object per line on stderr (DESIGN "log").  Each line is
 * written with a single write(2) so lines from threads and processes never
 * interleave.  Never pass a secret. */
#ifndef M8_LOG_H
#define M8_LOG_H

#include "common.h"

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
M8_INTERNAL void m8_log(m8_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, with extra members: extra_json is a pre-rendered fragment such as
 * "\"method\":\"GET\",\"status\":200" (no braces), or NULL. */
M8_INTERNAL void m8_log_fields(m8_log_level lvl, const char *msg, const char *extra_json);
/* Redirects log output to fd (tests); -1 restores stderr. */
M8_INTERNAL void m8_log_set_fd(int fd);

#endif
