/* arena.c - request arenas: bump allocation, freed in one place. */
#include "core/common.h"

#include <stdlib.h>
#include <string.h>

#define ARENA_CHUNK 8192u

struct m8_arena_chunk {
    m8_arena_chunk *next;
    size_t size, used;
    _Alignas(16) unsigned char mem[];
};

void m8_arena_init(m8_arena *a, size_t max)
{
    a->head = NULL;
    a->used_total = 0;
    a->max = max;
}

void *m8_arena_alloc(m8_arena *a, size_t n)
{
    size_t need = (n + 15u) & ~(size_t)15u;
    if (need < n)
        return NULL;
    if (a->max && (need > a->max || a->used_total > a->max - need))
        return NULL;
    m8_arena_chunk *c = a->head;
    if (!c || c->size - c->used < need) {
        size_t size = need > ARENA_CHUNK ? need : ARENA_CHUNK;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        if (a->head && need > ARENA_CHUNK) {
            /* big one-off block: keep the current chunk at the head */
            c->next = a->head->next;
            a->head->next = c;
        } else {
            c->next = a->head;
            a->head = c;
        }
    }
    void *p = c->mem + c->used;
    c->used += need;
    a->used_total += need;
    return p;
}

char *m8_arena_strndup(m8_arena *a, const char *s, size_t n)
{
    char *p = m8_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *m8_arena_strdup(m8_arena *a, const char *s)
{
    return s ? m8_arena_strndup(a, s, strlen(s)) : NULL;
}

void m8_arena_reset(m8_arena *a)
{
    m8_arena_chunk *keep = NULL;
    for (m8_arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        if (!keep && c->size == ARENA_CHUNK) {
            keep = c;
        } else {
            free(c);
        }
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
    a->used_total = 0;
}

void m8_arena_free(m8_arena *a)
{
    for (m8_arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    a->head = NULL;
    a->used_total = 0;
}
