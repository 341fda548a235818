/* fuzz_apikey_format.c - libFuzzer target for the API-key shapes and scopes
 * (lib/auth/apikey_format.c; doc/issuer.md#api-key-scopes-and-format) and
 * principal.scopes of an introspection answer (lib/auth/apikey.c
 * m8_apikey_parse).  The input is taken as a key, as a scope, and spliced
 * into an active answer's scopes member.  Each verdict is checked against a
 * second, plain reading of the format: a key is M8 only when it is 45 bytes,
 * "m8ak_" and 40 lower-case hex digits whose last 8 are the checksum of the
 * first 37; a refused key always starts with "m8ak_"; a valid scope is 1-64
 * bytes of 1-3 names joined by ':'; a parsed answer's scopes are all valid
 * and at most 16. */
#include "auth/apikey.h"
#include "auth/apikey_format.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool hex_lower(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strchr("0123456789abcdef", s[i]) || s[i] == '\0')
            return false;
    return true;
}

static bool scope_reference(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    size_t parts = 0, i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && s[j] != ':')
            j++;
        if (j == i || !(s[i] >= 'a' && s[i] <= 'z'))
            return false;
        for (size_t k = i + 1; k < j; k++) {
            char c = s[k];
            if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  c == '.'))
                return false;
        }
        parts++;
        i = j + 1;
    }
    return parts <= 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096)
        return 0;
    const char *s = (const char *)data;
    m8_apikey_shape sh = m8_apikey_shape_of(s, size);
    bool m8 = size >= 5 && memcmp(s, "m8ak_", 5) == 0;
    if (sh == M8_AKS_M8) {
        char sum[9];
        if (size != 45 || !m8 || !hex_lower(s + 5, 40))
            abort();
        m8_apikey_checksum(s, sum);
        if (memcmp(sum, s + 37, 8) != 0)
            abort();
    }
    if (m8_apikey_shape_refused(sh) != (sh == M8_AKS_M8_BROKEN) || (sh == M8_AKS_M8_BROKEN && !m8))
        abort();
    if (sh == M8_AKS_LEGACY && (size != 35 || memcmp(s, "ak_", 3) != 0 || !hex_lower(s + 3, 32)))
        abort();
    if (m8_apikey_scope_valid(s, size) != scope_reference(s, size))
        abort();

    /* the input as the scopes member of an active answer */
    static const char head[] =
        "{\"active\":true,\"schema_version\":\"1\",\"audience_id\":\"a\",\"principal\":{"
        "\"user_id\":\"u\",\"role\":\"reader\",\"access_mode\":\"read_only\","
        "\"auth_generation\":1,\"scopes\":";
    static const char tail[] = "},\"key_expires_at\":null}";
    size_t n = sizeof head - 1 + size + sizeof tail - 1;
    char *body = malloc(n + 1);
    if (!body)
        return 0;
    memcpy(body, head, sizeof head - 1);
    memcpy(body + sizeof head - 1, data, size);
    memcpy(body + sizeof head - 1 + size, tail, sizeof tail);
    m8_arena a;
    m8_arena_init(&a, 1 << 20);
    bool active = false;
    m8_apikey_principal p;
    const char *why = NULL;
    if (m8_apikey_parse(body, n, &a, &active, &p, &why) == 0 && active) {
        if (p.n_scopes > M8_APIKEY_MAX_SCOPES)
            abort();
        for (size_t i = 0; i < p.n_scopes; i++)
            if (!p.scopes[i] || !scope_reference(p.scopes[i], strlen(p.scopes[i])) ||
                !m8_apikey_has_scope(&p, p.scopes[i]))
                abort();
    }
    m8_arena_free(&a);
    free(body);
    return 0;
}
