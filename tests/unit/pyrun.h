/* pyrun.h - runs a Python helper script of a unit test (the independent
 * implementation a test checks our bytes against) and takes its stdout. */
#ifndef M8_TEST_PYRUN_H
#define M8_TEST_PYRUN_H

#include <stdarg.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#define M8T_PY_MAX_ARGS 28

/* Runs /usr/bin/python3 script with the NULL-terminated arguments of ap (at
 * most M8T_PY_MAX_ARGS); its stdout, at most cap - 1 bytes, into out, NUL
 * terminated (what did not fit is drained, so the child never blocks).
 * The exit status, or -1. */
static __attribute__((unused)) int m8t_py_va(const char *script, char *out, size_t cap, va_list ap)
{
    const char *argv[M8T_PY_MAX_ARGS + 3];
    size_t n = 0;
    argv[n++] = "/usr/bin/python3";
    argv[n++] = script;
    const char *s;
    while ((s = va_arg(ap, const char *)) && n < M8T_PY_MAX_ARGS + 2)
        argv[n++] = s;
    argv[n] = NULL;
    int fds[2];
    if (pipe(fds) != 0)
        return -1;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t got = 0;
    ssize_t r = 0;
    while (pid > 0 && got < cap - 1 && (r = read(fds[0], out + got, cap - 1 - got)) > 0)
        got += (size_t)r;
    char sink[512];
    while (pid > 0 && r > 0 && read(fds[0], sink, sizeof sink) > 0)
        ;
    out[got] = '\0';
    close(fds[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

#endif
