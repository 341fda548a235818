/* stubhttp.h - drives tests/tools/stub_http.py (a scripted HTTP/1.1 server on
 * loopback) from a C unit test:
 *   if (stub_start() != 0) -> skip;
 *   stub_script("{\"routes\":{\"/x\":[{\"status\":200,\"json\":{}}]}}");
 *   stub_url(buf, sizeof buf, "/x");  ...  json_object *log = stub_log();
 * The server is stopped (by its pid) and its directory removed at exit. */
#ifndef M8_STUBHTTP_H
#define M8_STUBHTTP_H

#include <dirent.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pyserver.h"

static m8t_py stub_srv = {.pid = -1};
static __attribute__((unused)) int stub_port;

static __attribute__((unused)) void stub_sleep_ms(int ms)
{
    m8t_sleep_ms(ms);
}

static __attribute__((unused)) char *stub_slurp(const char *name)
{
    char path[160];
    snprintf(path, sizeof path, "%s/%s", stub_srv.dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *s = malloc(cap);
    size_t n;
    while (s && (n = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0) {
            char *t = realloc(s, cap * 2);
            if (!t) {
                free(s);
                s = NULL;
                break;
            }
            s = t;
            cap *= 2;
        }
    }
    fclose(f);
    if (s)
        s[len] = '\0';
    return s;
}

static __attribute__((unused)) void stub_write(const char *name, const char *text)
{
    char tmp[160], path[160];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", stub_srv.dir, name);
    snprintf(path, sizeof path, "%s/%s", stub_srv.dir, name);
    FILE *f = fopen(tmp, "wb");
    if (!f || fwrite(text, 1, strlen(text), f) != strlen(text) || fclose(f) != 0) {
        printf("# cannot write %s\n", tmp);
        exit(1);
    }
    rename(tmp, path);
}

static __attribute__((unused)) void stub_stop(void)
{
    m8t_py_stop(&stub_srv);
}

/* Starts the stub; 0 when it listens, -1 (skip the test) without python3. */
static __attribute__((unused)) int stub_start(void)
{
    static const char *const args[] = {M8T_PY_DIR, NULL};
    atexit(stub_stop);
    if (m8t_py_start(&stub_srv, "stub_http.py", "stub", args, 15000) != 0)
        return -1;
    stub_port = stub_srv.port;
    return 0;
}

static __attribute__((unused)) void stub_url(char *out, size_t cap, const char *path)
{
    snprintf(out, cap, "http://127.0.0.1:%d%s", stub_port, path);
}

/* Sets the script (and restarts the per-path answer counters). */
static __attribute__((unused)) void stub_script(const char *json)
{
    stub_write("script.json", json);
}

static __attribute__((unused)) void stub_clear_log(void)
{
    stub_write("log.jsonl", "");
}

/* The requests seen since the last stub_clear_log(), as a JSON array
 * (caller puts). */
static __attribute__((unused)) json_object *stub_log(void)
{
    json_object *arr = json_object_new_array();
    char *s = stub_slurp("log.jsonl");
    char *save = NULL;
    for (char *line = s ? strtok_r(s, "\n", &save) : NULL; line;
         line = strtok_r(NULL, "\n", &save)) {
        json_object *o = json_tokener_parse(line);
        if (o)
            json_object_array_add(arr, o);
    }
    free(s);
    return arr;
}

/* Member name of request i of the log as a string ("" when absent);
 * header names are lower-case. */
static __attribute__((unused)) const char *stub_req_str(json_object *log, size_t i,
                                                        const char *member)
{
    json_object *r = json_object_array_get_idx(log, i), *v;
    if (!r || !json_object_object_get_ex(r, member, &v))
        return "";
    return json_object_get_string(v);
}

static __attribute__((unused)) const char *stub_req_header(json_object *log, size_t i,
                                                           const char *name)
{
    json_object *r = json_object_array_get_idx(log, i), *h, *v;
    if (!r || !json_object_object_get_ex(r, "headers", &h) ||
        !json_object_object_get_ex(h, name, &v))
        return NULL;
    return json_object_get_string(v);
}

/* A loopback port with nothing listening (bound, then closed). */
static __attribute__((unused)) int stub_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0) {
        if (fd >= 0)
            close(fd);
        return 9; /* discard: nothing listens there on a test machine */
    }
    close(fd);
    return ntohs(a.sin_port);
}

#endif
