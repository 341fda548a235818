/* pyserver.h - runs one of the Python test servers of tests/tools/ for a C
 * unit test (used by stubhttp.h and issuerproc.h):
 *   static m8t_py srv = {.pid = -1};
 *   const char *args[] = {"serve", M8T_PY_DIR, "--port", "0", NULL};
 *   if (m8t_py_start(&srv, "issuer.py", "issuer", args, 20000) != 0) -> skip;
 *   ... http://127.0.0.1:<srv.port> ...
 *   m8t_py_stop(&srv);
 * The server gets a fresh mkdtemp directory (the argument M8T_PY_DIR stands
 * for it) and writes the loopback TCP port it listens on to DIR/port.
 * m8t_py_stop() stops it by its PID and removes the directory.  A server
 * restarted in the same directory: m8t_py_mkdir(), m8t_py_spawn(),
 * m8t_py_kill(), m8t_py_spawn() again; a tool run to its end (to make keys):
 * m8t_py_run(). */
#ifndef M8_PYSERVER_H
#define M8_PYSERVER_H

#include <dirent.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

typedef struct m8t_py {
    pid_t pid;    /* -1 when not running */
    int port;     /* the port read from DIR/port, 0 before */
    char dir[64]; /* "" when there is none */
} m8t_py;

#define M8T_PY_DIR "@dir@"

static __attribute__((unused)) void m8t_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* The path of tests/tools/NAME (from $top_srcdir, else next to this file)
 * into out; 0 when it is readable. */
static __attribute__((unused)) int m8t_tool_path(char *out, size_t cap, const char *name)
{
    const char *top = getenv("top_srcdir");
    if (top && *top) {
        snprintf(out, cap, "%s/tests/tools/%s", top, name);
    } else {
        const char *f = __FILE__;
        const char *slash = strrchr(f, '/');
        snprintf(out, cap, "%.*s/../tools/%s", slash ? (int)(slash - f) : 1, slash ? f : ".", name);
    }
    return access(out, R_OK) == 0 ? 0 : -1;
}

/* Stops the server (SIGTERM, then waits for it) and keeps its directory,
 * to start it again there with m8t_py_spawn().  Safe to call again. */
static __attribute__((unused)) void m8t_py_kill(m8t_py *p)
{
    if (p->pid > 0) {
        kill(p->pid, SIGTERM);
        waitpid(p->pid, NULL, 0);
        p->pid = -1;
    }
}

/* Stops the server (SIGTERM, then waits for it) and removes its directory
 * with every file in it.  Safe to call again. */
static __attribute__((unused)) void m8t_py_stop(m8t_py *p)
{
    m8t_py_kill(p);
    if (p->dir[0]) {
        DIR *d = opendir(p->dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char path[400];
            if (e->d_name[0] == '.' && (!e->d_name[1] || (e->d_name[1] == '.' && !e->d_name[2])))
                continue;
            snprintf(path, sizeof path, "%s/%s", p->dir, e->d_name);
            unlink(path);
        }
        if (d)
            closedir(d);
        rmdir(p->dir);
        p->dir[0] = '\0';
    }
}

/* Makes the directory /tmp/m8-TAG-XXXXXX into p->dir; 0 or -1. */
static __attribute__((unused)) int m8t_py_mkdir(m8t_py *p, const char *tag)
{
    snprintf(p->dir, sizeof p->dir, "/tmp/m8-%s-XXXXXX", tag);
    if (!mkdtemp(p->dir)) {
        p->dir[0] = '\0';
        return -1;
    }
    return 0;
}

/* Spawns `/usr/bin/python3 tests/tools/TOOL ARGS...` (ARGS: NULL-terminated,
 * at most 24, M8T_PY_DIR standing for p->dir) into *pid; 0 or -1 (python3
 * or the script missing, or no process). */
static __attribute__((unused)) int m8t_py_exec(m8t_py *p, const char *tool, const char *const *args,
                                               pid_t *pid)
{
    char script[512];
    if (m8t_tool_path(script, sizeof script, tool) != 0 || access("/usr/bin/python3", X_OK) != 0)
        return -1;
    char *argv[28] = {"python3", script};
    size_t n = 2;
    for (size_t i = 0; args && args[i]; i++) {
        if (n + 1 >= sizeof argv / sizeof argv[0])
            return -1;
        argv[n++] = strcmp(args[i], M8T_PY_DIR) == 0 ? p->dir : (char *)args[i];
    }
    argv[n] = NULL;
    if (posix_spawn(pid, "/usr/bin/python3", NULL, NULL, argv, environ) != 0) {
        *pid = -1;
        return -1;
    }
    return 0;
}

/* Runs tests/tools/TOOL ARGS... (as m8t_py_exec()) to its end, in the
 * foreground; its exit status, or -1. */
static __attribute__((unused)) int m8t_py_run(m8t_py *p, const char *tool, const char *const *args)
{
    pid_t pid;
    if (m8t_py_exec(p, tool, args, &pid) != 0)
        return -1;
    int st = 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Starts the server tests/tools/TOOL ARGS... (as m8t_py_exec()) in the
 * existing directory p->dir, after removing a DIR/port left by an earlier
 * run, and waits up to wait_ms for DIR/port.  0 once it listens (p->port
 * set); -1 when it did not start, exited or did not come up (then
 * m8t_py_kill() or m8t_py_stop() still cleans up). */
static __attribute__((unused)) int m8t_py_spawn(m8t_py *p, const char *tool,
                                                const char *const *args, int wait_ms)
{
    char path[128];
    snprintf(path, sizeof path, "%s/port", p->dir);
    unlink(path);
    if (m8t_py_exec(p, tool, args, &p->pid) != 0)
        return -1;
    for (int waited = 0; waited <= wait_ms; waited += 50) {
        FILE *f = fopen(path, "r");
        int port = 0;
        if (f) {
            if (fscanf(f, "%d", &port) != 1)
                port = 0;
            fclose(f);
        }
        if (port > 0 && port < 65536) {
            p->port = port;
            return 0;
        }
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = -1;
            return -1;
        }
        m8t_sleep_ms(50);
    }
    return -1;
}

/* Starts `/usr/bin/python3 tests/tools/TOOL ARGS...` (ARGS: NULL-terminated,
 * at most 24) in a new directory /tmp/m8-TAG-XXXXXX and waits up to wait_ms
 * for DIR/port.  0 once it listens (p->port set); -1 when python3 or the
 * script is missing, or the server exited or did not come up (the caller
 * skips, and m8t_py_stop() still cleans up). */
static __attribute__((unused)) int m8t_py_start(m8t_py *p, const char *tool, const char *tag,
                                                const char *const *args, int wait_ms)
{
    char script[512];
    if (m8t_tool_path(script, sizeof script, tool) != 0 || access("/usr/bin/python3", X_OK) != 0)
        return -1;
    if (m8t_py_mkdir(p, tag) != 0)
        return -1;
    return m8t_py_spawn(p, tool, args, wait_ms);
}

#endif
