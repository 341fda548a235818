/* meta.h - {API_PREFIX}/meta and the pings (doc/responses.md#meta-and-ping).
 * The meta body is rendered once at boot; a missing or empty field fails the
 * boot. */
#ifndef M8_META_H
#define M8_META_H

#include "config/settings.h"
#include "http/http.h"

typedef struct m8_meta {
    char *body;
    size_t len; /* rendered JSON */
} m8_meta;

/* Renders the body; M8_ECONFIG with err naming the empty field. */
M8_INTERNAL int m8_meta_init(m8_meta *m, const m8_settings *s, char *err, size_t errlen);
M8_INTERNAL void m8_meta_free(m8_meta *m);
M8_INTERNAL int m8_meta_handle(const m8_meta *m, m8_request *req);
M8_INTERNAL int m8_ping_handle(m8_request *req);

#endif
