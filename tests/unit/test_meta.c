/* test_meta.c - {API_PREFIX}/meta and the pings (doc/responses.md#meta-and-ping). */
#include "builtin/meta.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tap.h"

static const char b52_body[] =
    "{\"service\":\"test-service\",\"version\":\"1.0.0\",\"api_version\":\"v1\",\"contract\":"
    "{\"name\":\"test-service\",\"version\":\"1.0\",\"range\":\">=1.0.0 <2.0.0\"}}";

/* The reference test value; fields are string literals (never freed). */
static m8_settings base(void)
{
    m8_settings s;
    memset(&s, 0, sizeof s);
    s.project_name = "test-service";
    s.service_version = "1.0.0";
    s.api_version = "v1";
    s.contract_version = "1.0";
    s.contract_range = ">=1.0.0 <2.0.0";
    return s;
}

typedef struct resp {
    int rc, status;
    char body[1024];
    char ctype[64];
    bool has_cc;
    char cc[64];
} resp;

static resp serve(const m8_meta *m)
{
    resp r;
    memset(&r, 0, sizeof r);
    m8_request req;
    m8_req_init(&req, NULL);
    r.rc = m ? m8_meta_handle(m, &req) : m8_ping_handle(&req);
    r.status = req.status;
    snprintf(r.body, sizeof r.body, "%.*s", (int)req.body_out.len,
             req.body_out.data ? req.body_out.data : "");
    snprintf(r.ctype, sizeof r.ctype, "%s", req.content_type ? req.content_type : "");
    const char *cc = m8_res_get_header(&req, "Cache-Control");
    snprintf(r.cc, sizeof r.cc, "%s", cc ? cc : "");
    r.has_cc = cc != NULL;
    m8_req_free(&req);
    return r;
}

static void test_body(void)
{
    m8_settings s = base();
    m8_meta m;
    char err[256] = "";
    is_int(m8_meta_init(&m, &s, err, sizeof err), 0,
           "meta: the documented SERVICE_META test value accepted");
    is_str(m.body, b52_body, "meta: exact bytes of the documented SERVICE_META test value");
    is_int(m.len, strlen(b52_body), "meta: length matches");
    resp r = serve(&m);
    is_int(r.rc, 0, "meta handler returns 0");
    is_int(r.status, 200, "meta: 200");
    is_str(r.body, b52_body, "meta: served body");
    is_str(r.ctype, "application/json", "meta: Content-Type application/json");
    ok(r.has_cc, "meta: has Cache-Control");
    is_str(r.cc, "public, max-age=300", "meta: Cache-Control public, max-age=300");
    m8_meta_free(&m);
    ok(m.body == NULL, "meta: free clears the body");

    s.contract_name = "";
    m8_meta_init(&m, &s, err, sizeof err);
    like(m.body, "\"contract\":{\"name\":\"test-service\"",
         "meta: empty CONTRACT_NAME falls back to PROJECT_NAME");
    m8_meta_free(&m);

    s.contract_name = "items-contract";
    m8_meta_init(&m, &s, err, sizeof err);
    like(m.body, "\"contract\":{\"name\":\"items-contract\",", "meta: CONTRACT_NAME used when set");
    like(m.body, "{\"service\":\"test-service\",", "meta: service stays PROJECT_NAME");
    m8_meta_free(&m);

    s = base();
    s.project_name = "Item \"Service\"\\";
    s.api_version = "v2";
    is_int(m8_meta_init(&m, &s, err, sizeof err), 0, "meta: printable PROJECT_NAME accepted");
    is_str(m.body,
           "{\"service\":\"Item \\\"Service\\\"\\\\\",\"version\":\"1.0.0\",\"api_version\":\"v2\","
           "\"contract\":{\"name\":\"Item \\\"Service\\\"\\\\\",\"version\":\"1.0\","
           "\"range\":\">=1.0.0 <2.0.0\"}}",
           "meta: values are JSON-escaped");
    m8_meta_free(&m);
}

static void refuse(const char *what, m8_settings s, const char *setting)
{
    m8_meta m;
    char err[256] = "";
    is_int(m8_meta_init(&m, &s, err, sizeof err), M8_ECONFIG, "meta: %s refused (M8_ECONFIG)",
           what);
    like(err, setting, "meta: %s: the error names %s", what, setting);
    ok(m.body == NULL, "meta: %s: no body", what);
}

static void test_refused(void)
{
    m8_settings s;
    s = base(), s.project_name = "";
    refuse("empty PROJECT_NAME", s, "PROJECT_NAME");
    s = base(), s.project_name = NULL;
    refuse("unset PROJECT_NAME", s, "PROJECT_NAME");
    s = base(), s.service_version = "";
    refuse("empty SERVICE_VERSION", s, "SERVICE_VERSION");
    s = base(), s.service_version = NULL;
    refuse("unset SERVICE_VERSION", s, "SERVICE_VERSION");
    s = base(), s.api_version = "";
    refuse("empty API_VERSION", s, "API_VERSION");
    s = base(), s.contract_version = "";
    refuse("empty CONTRACT_VERSION", s, "CONTRACT_VERSION");
    s = base(), s.contract_version = NULL;
    refuse("unset CONTRACT_VERSION", s, "CONTRACT_VERSION");
    s = base(), s.contract_range = "";
    refuse("empty CONTRACT_RANGE", s, "CONTRACT_RANGE");
    s = base(), s.contract_range = NULL;
    refuse("unset CONTRACT_RANGE", s, "CONTRACT_RANGE");

    /* contract.name is empty only when PROJECT_NAME is too: the first field
     * reports it. */
    s = base(), s.project_name = "", s.contract_name = "";
    refuse("empty PROJECT_NAME and CONTRACT_NAME", s, "PROJECT_NAME");
    s = base(), s.project_name = "", s.contract_name = "c";
    refuse("empty PROJECT_NAME with CONTRACT_NAME set", s, "PROJECT_NAME");

    /* API_VERSION unset takes its default v1 */
    m8_meta m;
    char err[256];
    s = base(), s.api_version = NULL;
    is_int(m8_meta_init(&m, &s, err, sizeof err), 0, "meta: unset API_VERSION takes the default");
    like(m.body, "\"api_version\":\"v1\"", "meta: API_VERSION default is v1");
    m8_meta_free(&m);
}

static void test_ping(void)
{
    resp r = serve(NULL);
    is_int(r.rc, 0, "ping handler returns 0");
    is_int(r.status, 200, "ping: 200");
    is_str(r.body, "{\"status\":\"ok\"}", "ping: {\"status\":\"ok\"}");
    is_str(r.ctype, "application/json", "ping: Content-Type application/json");
    ok(!r.has_cc, "ping: no Cache-Control");
}

int main(void)
{
    test_body();
    test_refused();
    test_ping();
    return done_testing();
}
