/* test_log - JSON log lines (log.h): one object per line, levels, escaping. */
#include "config.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "tap.h"

static char captured[65536];

/* Runs fn with the log sent to a pipe; returns what was written. */
static const char *capture(void (*fn)(void))
{
    int p[2];
    if (pipe(p) != 0)
        return "";
    m8_log_set_fd(p[1]);
    fn();
    m8_log_set_fd(-1);
    close(p[1]);
    ssize_t n = read(p[0], captured, sizeof captured - 1);
    close(p[0]);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

static void info_line(void)
{
    m8_log(M8_LOG_INFO, "hello \"quoted\" %d\n", 42);
}

static void debug_line(void)
{
    m8_log(M8_LOG_DEBUG, "hidden");
}

static void fields_line(void)
{
    m8_log_fields(M8_LOG_WARNING, "request", "\"status\":503,\"route\":\"/api/x\"");
}

int main(void)
{
    m8_log_set_level(M8_LOG_INFO);
    const char *out = capture(info_line);
    size_t len = strlen(out);
    ok(len > 0 && out[len - 1] == '\n' && strchr(out, '\n') == out + len - 1,
       "a log call writes exactly one line");
    json_object *o = json_tokener_parse(out);
    ok(o && json_object_is_type(o, json_type_object), "the line is one JSON object");
    json_object *v;
    is_str(o && json_object_object_get_ex(o, "msg", &v) ? json_object_get_string(v) : NULL,
           "hello \"quoted\" 42\n", "the message survives escaping (quotes, newline)");
    is_str(o && json_object_object_get_ex(o, "level", &v) ? json_object_get_string(v) : NULL,
           "info", "the level is named");
    ok(o && json_object_object_get_ex(o, "ts", &v) && strlen(json_object_get_string(v)) == 24 &&
           json_object_get_string(v)[23] == 'Z',
       "the timestamp is ISO 8601 UTC with milliseconds");
    ok(o && json_object_object_get_ex(o, "pid", &v) && json_object_get_int(v) == (int)getpid(),
       "the line carries the pid");
    json_object_put(o);

    is_str(capture(debug_line), "", "a line below the level is not written");
    ok(!m8_log_enabled(M8_LOG_DEBUG) && m8_log_enabled(M8_LOG_ERROR), "m8_log_enabled follows the level");

    o = json_tokener_parse(capture(fields_line));
    ok(o && json_object_object_get_ex(o, "status", &v) && json_object_get_int(v) == 503,
       "extra fields become members of the same object");
    is_str(o && json_object_object_get_ex(o, "level", &v) ? json_object_get_string(v) : NULL,
           "warning", "warning level named");
    json_object_put(o);
    return done_testing();
}
