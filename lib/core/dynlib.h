/* dynlib.h - a shared library loaded on first use (dlopen) instead of linked
 * (doc/design.md#libraries-loaded-on-first-use): libcurl (net/httpc.c) and the
 * database client libraries (db/mariadb.c, db/pg.c), which a process that makes
 * no outgoing request and opens no database never maps.
 *
 * Each user keeps one static m8_dynlib (M8_DYNLIB_INIT) naming the library and
 * the functions it calls, and a table of function pointers typed after the
 * library's own declarations; m8_dynlib_load fills the table once.  This file
 * is the only one that includes <dlfcn.h> (tools/layout.sh deps). */
#ifndef M8_DYNLIB_H
#define M8_DYNLIB_H

#include "core/common.h" /* first: config.h's feature macros */

#include <pthread.h>
#include <stdatomic.h>

/* One function of the library: its name and where its pointer goes in the
 * table (offsetof). */
typedef struct m8_dynlib_sym {
    const char *name;
    size_t offset;
} m8_dynlib_sym;

typedef struct m8_dynlib {
    const char *what;     /* "libcurl": for messages */
    const char *soname;   /* the run-time name found by configure ("libcurl.so.4") */
    const char *test_env; /* an environment variable naming another file to load
                           * instead (tests: a missing library); ignored in a
                           * set-user-ID program (secure_getenv) */
    const m8_dynlib_sym *syms;
    size_t nsyms;
    void *table; /* receives a pointer per entry of syms */
    pthread_mutex_t mu;
    atomic_int state; /* 0 not tried, 1 loaded, 2 failed (error holds why) */
    char error[256];
} m8_dynlib;

#define M8_DYNLIB_INIT(what_, soname_, env_, syms_, table_)                                        \
    {                                                                                              \
        .what = (what_), .soname = (soname_), .test_env = (env_), .syms = (syms_),                 \
        .nsyms = M8_ARRAY_LEN(syms_), .table = (table_), .mu = PTHREAD_MUTEX_INITIALIZER           \
    }

/* Loads the library (dlopen RTLD_NOW | RTLD_LOCAL) and resolves every
 * function of l->syms into l->table, once per process; later calls return
 * the first result (a failure is not retried: a missing library stays
 * missing, and a retry per request would search the disk each time).
 * Thread-safe.  0, or M8_ENOTFOUND with l->error naming the library and
 * saying why (the loader's dlerror text). */
M8_INTERNAL int m8_dynlib_load(m8_dynlib *l);

/* True once m8_dynlib_load succeeded (no load attempted). */
M8_INTERNAL bool m8_dynlib_loaded(m8_dynlib *l);

#endif
