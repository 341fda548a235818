/* fuzz_form.c - libFuzzer target for the login form (lib/issuer/form.c
 * m8_login_form_parse) and the rate-limit keys (lib/issuer/form_keys.c).
 * The first byte picks the content type: urlencoded, multipart with the
 * boundary XyZ, or (odd values) a content type taken from the input up to its
 * first '\n', so random media types, parameters and boundaries are tried.
 * Every answer must be 0 with valid bounded fields, or 400/413/422 with a
 * JSON body; the keys must stay within their buffers and be valid UTF-8. */
#include "core/json.h"
#include "issuer/form.h"

#include <json-c/json.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool utf8_ok(const char *s, size_t n)
{
    size_t bad;
    unsigned cp;
    for (size_t i = 0, k; i < n; i += k) {
        k = m8__form_utf8_seq((const unsigned char *)s + i, n - i, &bad, &cp);
        if (!k)
            return false;
    }
    return true;
}

static void check_value(const char *v, size_t n, size_t max)
{
    if (!v)
        return;
    if (v[n] != '\0' || n == 0 || n > max || !utf8_ok(v, n))
        abort();
}

static void check_keys(const char *s, size_t n)
{
    char norm[4096 + 1], email[M8_LOGIN_EMAIL_KEY_BUF], ip[M8_LOGIN_IP_KEY_BUF];
    if (n > 4096)
        n = 4096;
    size_t k = m8_login_username_norm(s, n, norm);
    if (k > n || norm[k] != '\0')
        abort();
    size_t e = m8_login_email_key(s, n, email);
    if (e >= sizeof email || email[e] != '\0' || !utf8_ok(email, e))
        abort();
    if (m8_login_email_key(norm, k, email) != e)
        abort(); /* the key of a normalised username is the same key */
    k = m8_login_ip_key(s, n, ip);
    if (k >= sizeof ip || ip[k] != '\0' || !utf8_ok(ip, k))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=XyZ",
        "multipart/form-data; boundary=\"XyZ\"; charset=latin-1",
        "application/json",
    };
    if (size == 0)
        return 0;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    char ct[512];
    const char *type = NULL;
    if (data[0] & 1) {
        const char *nl = memchr(body, '\n', n);
        size_t cn = nl ? (size_t)(nl - body) : n;
        if (cn >= sizeof ct)
            cn = sizeof ct - 1;
        memcpy(ct, body, cn);
        ct[cn] = '\0';
        if (!memchr(ct, '\0', cn))
            type = ct;
        if (nl) {
            n -= (size_t)(nl - body) + 1;
            body = nl + 1;
        } else {
            n = 0;
        }
    } else {
        type = types[(data[0] >> 1) % M8_ARRAY_LEN(types)];
    }

    m8_arena a;
    m8_arena_init(&a, 0);
    m8_buf err;
    m8_buf_init(&err, 1u << 20);
    m8_login_form f;
    int rc = m8_login_form_parse(&a, type, body, n, data[0] & 0x80 ? 64 : 0, &f, &err);
    if (rc > 0) {
        if (rc != 400 && rc != 413 && rc != 422)
            abort();
        json_object *j = m8_json_parse(err.data, err.len, 16, NULL, NULL);
        if (!j || !json_object_object_get_ex(j, "detail", NULL))
            abort();
        json_object_put(j);
    } else if (rc < 0) {
        abort(); /* the arena is unbounded and err large enough */
    }
    if (rc == 0 || f.bad_chars) {
        if (!f.username || !f.password || !f.scope || (rc == 0) == f.bad_chars)
            abort();
        check_value(f.username, f.username_len, M8_LOGIN_MAX_USERNAME);
        check_value(f.password, f.password_len, M8_LOGIN_MAX_PASSWORD);
        check_value(f.grant_type, f.grant_type_len, 8);
        check_value(f.client_id, f.client_id_len, n * 3);
        check_value(f.client_secret, f.client_secret_len, n * 3);
        if (rc == 0 &&
            (memchr(f.username, 0, f.username_len) || memchr(f.password, 0, f.password_len)))
            abort();
        check_keys(f.username, f.username_len);
    } else if (f.username || f.password) {
        abort(); /* a refused form leaves nothing behind */
    }
    m8_login_form_wipe(&f);
    check_keys(body, n);
    m8_buf_free(&err);
    m8_arena_free(&a);
    return 0;
}
