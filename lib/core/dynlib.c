/* dynlib.c - libraries loaded on first use (dynlib.h). */
#include "core/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dlsym hands back an object pointer; a function pointer is stored through
 * memcpy, which POSIX guarantees has the same representation. */
_Static_assert(sizeof(void *) == sizeof(void (*)(void)), "function pointers fit in a void *");

static int load_now(m8_dynlib *l)
{
    const char *name = l->soname;
    const char *over = l->test_env ? secure_getenv(l->test_env) : NULL;
    if (over && *over)
        name = over;
    (void)dlerror(); /* clears a stale message */
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        snprintf(l->error, sizeof l->error, "cannot load %s (%s): %s", l->what, name,
                 why ? why : "unknown error");
        return M8_ENOTFOUND;
    }
    for (size_t i = 0; i < l->nsyms; i++) {
        (void)dlerror();
        void *f = dlsym(h, l->syms[i].name);
        if (!f) {
            const char *why = dlerror();
            snprintf(l->error, sizeof l->error, "cannot load %s (%s): no function %s: %s", l->what,
                     name, l->syms[i].name, why ? why : "null symbol");
            dlclose(h);
            return M8_ENOTFOUND;
        }
        memcpy((char *)l->table + l->syms[i].offset, &f, sizeof f);
    }
    /* The handle is never closed: the library stays for the process's life. */
    return 0;
}

int m8_dynlib_load(m8_dynlib *l)
{
    int st = atomic_load_explicit(&l->state, memory_order_acquire);
    if (st == 1)
        return 0;
    if (st == 0) {
        pthread_mutex_lock(&l->mu);
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0)
            atomic_store_explicit(&l->state, load_now(l) == 0 ? 1 : 2, memory_order_release);
        pthread_mutex_unlock(&l->mu);
        st = atomic_load_explicit(&l->state, memory_order_acquire);
    }
    return st == 1 ? 0 : M8_ENOTFOUND;
}

bool m8_dynlib_loaded(m8_dynlib *l)
{
    return atomic_load_explicit(&l->state, memory_order_acquire) == 1;
}
