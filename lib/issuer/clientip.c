/* clientip.c - the client address of an issuer request (clientip.h,
 * doc/issuer.md#login-refresh-and-logout). */
#include "issuer/clientip.h"

#include <arpa/inet.h>
#include <string.h>

long long m8_issuer_trusted_proxy_count(const m8_settings *s)
{
    return s ? s->trusted_proxy_count : 1;
}

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The address in p[0..n) without a port suffix, as canonical text into
 * out; false when it is no IPv4 or IPv6 address. */
static bool parse_ip(const char *p, size_t n, char out[M8_ISSUER_CLIENT_IP_MAX])
{
    if (n > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', n);
        if (!close)
            return false;
        n = (size_t)(close - p) - 1;
        p++;
    } else {
        const char *colon = memchr(p, ':', n);
        if (colon && !memchr(colon + 1, ':', n - (size_t)(colon - p) - 1))
            n = (size_t)(colon - p); /* one colon: "a.b.c.d:port" */
    }
    char text[INET6_ADDRSTRLEN + 1];
    if (n == 0 || n >= sizeof text)
        return false;
    memcpy(text, p, n);
    text[n] = '\0';
    unsigned char bin[16];
    int af = memchr(text, ':', n) ? AF_INET6 : AF_INET;
    if (inet_pton(af, text, bin) != 1)
        return false;
    return inet_ntop(af, bin, out, M8_ISSUER_CLIENT_IP_MAX) != NULL;
}

size_t m8_issuer_client_ip_of(const char *xff, const char *peer, long long n,
                              char out[M8_ISSUER_CLIENT_IP_MAX])
{
    if (n > M8_ISSUER_TRUSTED_PROXY_MAX)
        n = M8_ISSUER_TRUSTED_PROXY_MAX;
    if (xff && n > 0) {
        /* The last M8_ISSUER_XFF_MAX_ENTRIES non-empty entries, from the
         * right. */
        const char *start[M8_ISSUER_XFF_MAX_ENTRIES];
        size_t len[M8_ISSUER_XFF_MAX_ENTRIES], count = 0;
        const char *end = xff + strlen(xff);
        while (end > xff && count < M8_ISSUER_XFF_MAX_ENTRIES) {
            const char *e = end;
            const char *b = e;
            while (b > xff && b[-1] != ',')
                b--;
            const char *s = b;
            size_t l = (size_t)(e - b);
            while (l > 0 && is_space(*s)) {
                s++;
                l--;
            }
            while (l > 0 && is_space(s[l - 1]))
                l--;
            if (l > 0) {
                start[count] = s;
                len[count++] = l;
            }
            end = b > xff ? b - 1 : xff;
        }
        if ((long long)count >= n && parse_ip(start[n - 1], len[n - 1], out))
            return strlen(out);
    }
    if (peer && *peer) {
        size_t l = strnlen(peer, M8_ISSUER_CLIENT_IP_MAX - 1);
        memcpy(out, peer, l);
        out[l] = '\0';
        return l;
    }
    memcpy(out, "unknown", sizeof "unknown");
    return sizeof "unknown" - 1;
}

size_t m8_issuer_client_ip(const m8_request *req, const m8_settings *s,
                           char out[M8_ISSUER_CLIENT_IP_MAX])
{
    return m8_issuer_client_ip_of(m8_req_header(req, "X-Forwarded-For"),
                                  m8_req_param(req, "REMOTE_ADDR"),
                                  m8_issuer_trusted_proxy_count(s), out);
}
