/* policy.h - the access policy of fcgim8-gate (doc/fcgim8-gate.8): which
 * requests are public, which need a role (doc/wire.md#roles), the superuser, or
 * an API key.  Pure: bytes in, rules out; no I/O.  Fuzzed by
 * tests/fuzz/fuzz_policy.c.
 *
 * One rule a line, first match wins, the last rule is the default:
 *
 *   # NAME     METHODS    PATH              ACCESS
 *   assets     GET        /static/          public
 *   health     GET        =/healthz         public
 *   api-write  POST,PUT   /api              writer
 *   admin      *          /admin            admin
 *   default                                 deny
 *
 * (globs in contrib/gate/policy.example and doc/fcgim8-gate.8).
 * NAME: 1..M8_POLICY_MAX_NAME bytes of [A-Za-z0-9_.-], unique (the metric
 * label and log field of the rule).  METHODS: "*" or a comma list of
 * upper-case method names; GET also covers HEAD.  PATH: "=/p" matches /p
 * exactly; a path with '*' or '?' is a glob over the whole path ('*' any
 * bytes within a segment, '?' one character other than '/', "**" as a
 * whole segment any number of segments); any other path is a prefix that
 * ends at a segment boundary ("/admin" and "/admin/" both match /admin,
 * /admin/ and /admin/x, never /administrator).  Paths are written decoded
 * and normalized (no %-escapes, no "//", "." or ".." segments, no '\', ';'
 * or '#', valid UTF-8), as request paths are compared only after
 * m8_policy_normalize(), which refuses any other.  ACCESS: public,
 * user, reader, writer, admin, superuser, deny, apikey reader, apikey
 * writer.  After the access, an optional "cred=KIND[,KIND...]" (bearer,
 * cookie, apikey) names the credential kinds the rule accepts (default:
 * the bearer header, or the cookie too when the gate has --cookie, and the
 * X-API-Key for apikey reader / writer, which stay shorthands for "reader
 * / writer with cred=apikey"); refused on public and deny, bearer or cookie
 * on apikey rules, and apikey on admin or superuser (a key grants reader or
 * writer only).  Then an optional "scope=NAME" (e.g. scope=items:read) on a
 * rule that takes an X-API-Key: a key without that scope is refused (403);
 * a token caller of the same rule is not concerned
 * (doc/issuer.md#api-key-scopes-and-format).  The default rule, "default
 * ACCESS", is required, must be the last rule, and appears once.  A '#'
 * token starts a comment to the end of the line. */
#ifndef M8_POLICY_H
#define M8_POLICY_H

#include "core/common.h"

/* Ceilings of a policy. */
#define M8_POLICY_MAX_BYTES (256u << 10) /* the whole policy file */
#define M8_POLICY_MAX_LINE 4096u         /* one line, without its newline */
#define M8_POLICY_MAX_RULES 1024u        /* rules, the default included */
#define M8_POLICY_MAX_NAME 64u           /* a rule name (a metric label) */
#define M8_POLICY_MAX_PATTERN 1024u      /* a path pattern, '=' included */
#define M8_POLICY_MAX_METHODS 16u        /* methods listed by one rule */
#define M8_POLICY_MAX_METHOD 20u         /* one method name */
#define M8_POLICY_MAX_WILDCARDS 16u      /* '*', '?' and "**" in one pattern */

typedef enum m8_policy_access {
    M8_POLICY_PUBLIC = 1,
    M8_POLICY_USER,      /* any authenticated, active user */
    M8_POLICY_READER,    /* role >= reader */
    M8_POLICY_WRITER,    /* role >= writer */
    M8_POLICY_ADMIN,     /* role >= admin */
    M8_POLICY_SUPERUSER, /* role superadmin and is_superuser */
    M8_POLICY_DENY,      /* nobody */
    M8_POLICY_APIKEY_READER,
    M8_POLICY_APIKEY_WRITER,
} m8_policy_access;

typedef enum m8_policy_kind {
    M8_POLICY_PREFIX = 1, /* pattern without a trailing '/', "" for "/" */
    M8_POLICY_EXACT,      /* "=/p": pattern "/p" */
    M8_POLICY_GLOB,
    M8_POLICY_ANY, /* the default rule */
} m8_policy_kind;

typedef struct m8_policy_rule {
    const char *name;
    unsigned line; /* 1-based line of the rule */
    m8_policy_kind kind;
    const char *pattern; /* see m8_policy_kind; "" for the default */
    size_t pattern_len;
    const char **methods; /* NULL (n_methods 0) = every method */
    size_t n_methods;
    m8_policy_access access;
    unsigned creds;    /* cred=: M8_ROUTE_CRED_* bits; 0 = the access's default kinds */
    const char *scope; /* scope=: the API-key scope required, or NULL */
} m8_policy_rule;

typedef struct m8_policy {
    m8_policy_rule *rules; /* in file order; rules[n - 1] is the default */
    size_t n;
    m8_arena arena; /* every string and array of the policy */
} m8_policy;

/* Parses len bytes (at most M8_POLICY_MAX_BYTES; a UTF-8 BOM is skipped).
 * On error returns M8_EPARSE or M8_ETOOBIG (M8_ENOMEM), writes "line N:
 * reason" to err and N to *err_line (when not NULL; 0 when the error has no
 * line, e.g. a file over the size limit); *out is then empty. */
M8_INTERNAL int m8_policy_parse(const char *text, size_t len, m8_policy *out, char *err,
                                size_t errlen, unsigned *err_line);
M8_INTERNAL void m8_policy_free(m8_policy *p);

/* The first rule matching method and the normalized path (p, n); never
 * NULL for a parsed policy (the default rule matches everything). */
M8_INTERNAL const m8_policy_rule *m8_policy_match(const m8_policy *p, const char *method,
                                                  const char *path, size_t n);

/* The first rule that needs or accepts an API key, or NULL. */
M8_INTERNAL const m8_policy_rule *m8_policy_first_apikey(const m8_policy *p);

/* "public", "reader", "apikey writer", ... */
M8_INTERNAL const char *m8_policy_access_name(m8_policy_access a);

/* Checks a request target (REQUEST_URI: path, then maybe '?' and a query)
 * and gives the path rules are matched against, which is then also the path
 * nginx serves ($uri): an absolute-form target (http://host/p) is cut to its
 * path ("/" when it has none), the query is dropped, %XX escapes are
 * decoded.  A backend may route on the raw target in other ways (as sent,
 * decoded once or twice, dot segments resolved, "//" merged, '\' taken as
 * '/', a ";..." path parameter cut off), so a path for which any of these
 * could differ is refused rather than normalized: a '#' anywhere, an empty
 * segment ("//"; a trailing '/' is fine), a "." or ".." segment (raw or
 * %-encoded, any case), an encoded '/', '\', '%', '?' or '#', a raw '\', a
 * ';' (raw or encoded), a NUL or control byte (raw or encoded), a bad
 * escape, or invalid UTF-8 (overlong forms included) after decoding.
 * Writes at most cap bytes plus a NUL to out (cap >= n is always enough).
 * M8_EPARSE for a refused target; M8_ETOOBIG: n > M8_MAX_PATH_BYTES or cap
 * too small.  On an error *why (when why is not NULL) says why in a short
 * static ASCII sentence, fit for a {"detail": ...} body. */
M8_INTERNAL int m8_policy_normalize(const char *uri, size_t n, char *out, size_t cap,
                                    size_t *outlen, const char **why);

/* The rule for method and a request target: the target checked and decoded
 * by m8_policy_normalize (into out, as there), then matched both decoded and
 * as sent (escapes kept, e.g. "/%61dmin" against "/admin"); when the two fall
 * under different rules the target is refused too (M8_EPARSE), as a backend
 * may route on either.  On success *rule is the rule (never NULL). */
M8_INTERNAL int m8_policy_decide(const m8_policy *p, const char *method, const char *uri, size_t n,
                                 char *out, size_t cap, size_t *outlen, const m8_policy_rule **rule,
                                 const char **why);

/* Valid UTF-8 without overlong forms or surrogates (policy.c and
 * policy_path.c). */
M8_INTERNAL bool m8__policy_utf8_ok(const char *s, size_t n);

#endif
