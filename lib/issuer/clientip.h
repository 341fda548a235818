/* clientip.h - the client address of an issuer request
 * (doc/issuer.md#login-refresh-and-logout): the address the per-IP login
 * limit counts and the logs name, chosen among X-Forwarded-For and the TCP
 * peer as fa-auth-m8 chooses it, with TRUSTED_PROXY_COUNT. */
#ifndef M8_ISSUER_CLIENTIP_H
#define M8_ISSUER_CLIENTIP_H

#include "core/common.h" /* first: config.h sets the feature macros */

#include "config/settings.h"
#include "fcgim8.h"

/* Room for any answer: an IPv6 text form, a peer address, or "unknown". */
#define M8_ISSUER_CLIENT_IP_MAX 64u
/* X-Forwarded-For entries looked at, at most (the rest, on the left, are
 * never chosen with any sane proxy count). */
#define M8_ISSUER_XFF_MAX_ENTRIES 64u
/* The largest TRUSTED_PROXY_COUNT honoured. */
#define M8_ISSUER_TRUSTED_PROXY_MAX 64

/* TRUSTED_PROXY_COUNT of s (1 for NULL; 0 ignores X-Forwarded-For). */
M8_INTERNAL long long m8_issuer_trusted_proxy_count(const m8_settings *s);

/* The client address from an X-Forwarded-For value xff (NULL = absent) and
 * the peer address peer (REMOTE_ADDR, NULL = none) with n trusted proxies:
 * with n > 0, the entries of xff split on ',' and trimmed, empties dropped;
 * when there are at least n, the n-th from the right with a ":port" or
 * "[v6]:port" suffix removed, if it is an IPv4 or IPv6 address (written
 * back in its canonical text form).  Otherwise the peer, or "unknown".
 * out has M8_ISSUER_CLIENT_IP_MAX bytes; returns the length written. */
M8_INTERNAL size_t m8_issuer_client_ip_of(const char *xff, const char *peer, long long n,
                                          char out[M8_ISSUER_CLIENT_IP_MAX]);

/* The same for a request (X-Forwarded-For header, REMOTE_ADDR param). */
M8_INTERNAL size_t m8_issuer_client_ip(const m8_request *req, const m8_settings *s,
                                       char out[M8_ISSUER_CLIENT_IP_MAX]);

#endif
