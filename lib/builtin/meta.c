/* meta.c - {API_PREFIX}/meta and the pings (doc/responses.md#meta-and-ping).
 * The body is rendered once at boot with the reference key order, compact. */
#include "builtin/meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *nonempty(const char *s)
{
    return s && *s ? s : NULL;
}

int m8_meta_init(m8_meta *m, const m8_settings *s, char *err, size_t errlen)
{
    m->body = NULL;
    m->len = 0;
    if (!s) {
        snprintf(err, errlen, "meta: no settings");
        return M8_EINVAL;
    }
    /* API_VERSION has a default; NULL means the loader left it to us. */
    const char *api_version = s->api_version ? s->api_version : "v1";
    const char *contract_name = nonempty(s->contract_name) ? s->contract_name : s->project_name;
    const struct {
        const char *key, *setting, *value;
    } f[] = {
        {"service", "PROJECT_NAME", s->project_name},
        {"version", "SERVICE_VERSION", s->service_version},
        {"api_version", "API_VERSION", api_version},
        {"contract.name", "CONTRACT_NAME", contract_name},
        {"contract.version", "CONTRACT_VERSION", s->contract_version},
        {"contract.range", "CONTRACT_RANGE", s->contract_range},
    };
    for (size_t i = 0; i < M8_ARRAY_LEN(f); i++) {
        if (!nonempty(f[i].value)) {
            snprintf(err, errlen, "%s must not be empty (service meta field \"%s\")", f[i].setting,
                     f[i].key);
            return M8_ECONFIG;
        }
    }

    m8_buf b;
    m8_buf_init(&b, M8_MAX_RESPONSE_BYTES);
    static const char *const pre[] = {
        "{\"service\":", ",\"version\":", ",\"api_version\":", ",\"contract\":{\"name\":",
        ",\"version\":", ",\"range\":",
    };
    int rc = 0;
    for (size_t i = 0; !rc && i < M8_ARRAY_LEN(f); i++) {
        rc = m8_buf_puts(&b, pre[i]);
        if (!rc)
            rc = m8_buf_json_str(&b, f[i].value, strlen(f[i].value));
    }
    if (!rc)
        rc = m8_buf_puts(&b, "}}");
    if (rc) {
        m8_buf_free(&b);
        snprintf(err, errlen, "meta: %s", m8_strerror(rc));
        return rc;
    }
    m->len = b.len;
    m->body = m8_buf_steal(&b);
    return 0;
}

void m8_meta_free(m8_meta *m)
{
    free(m->body);
    m->body = NULL;
    m->len = 0;
}

int m8_meta_handle(const m8_meta *m, m8_request *req)
{
    if (!m->body)
        return m8_req_fail(req, "meta: body not rendered");
    int rc = m8_res_body(req, 200, "application/json", m->body, m->len);
    if (!rc)
        rc = m8_res_set_header(req, "Cache-Control", "public, max-age=300");
    return rc ? m8_req_fail(req, "meta: %s", m8_strerror(rc)) : 0;
}

int m8_ping_handle(m8_request *req)
{
    static const char body[] = "{\"status\":\"ok\"}";
    int rc = m8_res_body(req, 200, "application/json", body, sizeof body - 1);
    return rc ? m8_req_fail(req, "ping: %s", m8_strerror(rc)) : 0;
}
