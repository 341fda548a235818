/* test_policy.c - the fcgim8-gate policy (lib/auth/policy.c): every documented
 * form, first match wins, every error with its line number, each limit at
 * and one past it, and request path normalization. */
#include "config.h"

#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include "auth/policy.h"

static m8_policy pol;
static char err[512];
static unsigned eline;

static int parse(const char *text)
{
    m8_policy_free(&pol);
    return m8_policy_parse(text, strlen(text), &pol, err, sizeof err, &eline);
}

/* The name of the rule that answers METHOD PATH (PATH normalized first). */
static const char *who(const char *method, const char *uri)
{
    static char path[M8_MAX_PATH_BYTES + 1];
    size_t n;
    if (m8_policy_normalize(uri, strlen(uri), path, sizeof path, &n, NULL) != 0)
        return "(bad path)";
    const m8_policy_rule *r = m8_policy_match(&pol, method, path, n);
    return r ? r->name : "(none)";
}

static const char *norm(const char *uri)
{
    static char out[M8_MAX_PATH_BYTES + 1];
    size_t n;
    const char *why = NULL;
    int rc = m8_policy_normalize(uri, strlen(uri), out, sizeof out, &n, &why);
    if (rc != 0 && (!why || !*why))
        return "(no reason)";
    if (rc == M8_EPARSE)
        return "(EPARSE)";
    if (rc == M8_ETOOBIG)
        return "(ETOOBIG)";
    if (rc != 0 || strlen(out) != n)
        return "(error)";
    return out;
}

/* Expects a parse error on line `line` whose message contains `what`. */
static void bad(const char *text, int rc, unsigned line, const char *what, const char *name)
{
    int got = parse(text);
    is_int(got, rc, "%s: refused", name);
    is_int(eline, line, "%s: reported on line %u", name, line);
    if (line) {
        char want[32];
        snprintf(want, sizeof want, "line %u: ", line);
        ok(strncmp(err, want, strlen(want)) == 0, "%s: message starts with \"%s\" (%s)", name, want,
           err);
    }
    like(err, what, "%s: message says why", name);
    is_int(pol.n, 0, "%s: nothing is kept", name);
}

static char *repeat(const char *head, char c, size_t n, const char *tail)
{
    size_t hl = strlen(head), tl = strlen(tail);
    char *s = malloc(hl + n + tl + 1);
    memcpy(s, head, hl);
    memset(s + hl, c, n);
    memcpy(s + hl + n, tail, tl + 1);
    return s;
}

static void test_forms(void)
{
    const char *text = "\xef\xbb\xbf# the example of policy.h\n"
                       "\n"
                       "assets     GET        /static/          public\n"
                       "health     GET        =/healthz         public   # a trailing comment\n"
                       "api-read   GET        /api/**           reader\n"
                       "api-write  POST,PUT   /api/**           writer\r\n"
                       "admin      *          /admin            admin\n"
                       "\tops\t*\t/ops/*/run\tsuperuser\n"
                       "users      GET,POST   /users            user\n"
                       "export     GET        /export/*.csv     apikey reader\n"
                       "upload     PUT        /export/*.csv     apikey writer\n"
                       "blocked    *          /secret           deny\n"
                       "one-char   GET        /c/?              public\n"
                       "root-ish   DELETE     /                 superuser\n"
                       "default                                 user\n";
    is_int(parse(text), 0, "the documented forms parse (%s)", err);
    is_int(pol.n, 13, "12 rules and the default");
    is_str(pol.rules[pol.n - 1].name, "default", "the default rule is last");
    is_int(pol.rules[pol.n - 1].access, M8_POLICY_USER, "default user");
    is_int(pol.rules[pol.n - 1].line, 15,
           "the default's line number counts blank and comment lines");
    is_int(pol.rules[0].kind, M8_POLICY_PREFIX, "/static/ is a prefix");
    is_str(pol.rules[0].pattern, "/static", "a prefix keeps no trailing slash");
    is_int(pol.rules[1].kind, M8_POLICY_EXACT, "=/healthz is exact");
    is_str(pol.rules[1].pattern, "/healthz", "the '=' is not part of the pattern");
    is_int(pol.rules[2].kind, M8_POLICY_GLOB, "/api/** is a glob");
    is_int(pol.rules[3].n_methods, 2, "POST,PUT: two methods");
    is_int(pol.rules[4].n_methods, 0, "*: every method");
    is_int(pol.rules[7].access, M8_POLICY_APIKEY_READER, "apikey reader");
    is_int(pol.rules[8].access, M8_POLICY_APIKEY_WRITER, "apikey writer");
    is_int(pol.rules[9].access, M8_POLICY_DENY, "deny");
    is_int(pol.rules[10].kind, M8_POLICY_GLOB, "'?' makes a glob");
    is_int(pol.rules[11].kind, M8_POLICY_PREFIX, "/ is a prefix");
    is_str(pol.rules[11].pattern, "", "/ is the empty prefix");
    ok(m8_policy_first_apikey(&pol) == &pol.rules[7], "the first apikey rule is found");
    is_str(m8_policy_access_name(M8_POLICY_APIKEY_WRITER), "apikey writer", "access names");
    is_str(m8_policy_access_name(M8_POLICY_SUPERUSER), "superuser", "access names (superuser)");

    /* matching */
    is_str(who("GET", "/static/app.css"), "assets", "prefix: a file under it");
    is_str(who("GET", "/static"), "assets", "prefix: the directory itself");
    is_str(who("GET", "/static/"), "assets", "prefix: with its slash");
    is_str(who("GET", "/staticx"), "default", "prefix: ends at a segment boundary");
    is_str(who("POST", "/static/app.css"), "default", "prefix: other methods fall through");
    is_str(who("HEAD", "/static/app.css"), "assets", "GET covers HEAD");
    is_str(who("GET", "/healthz"), "health", "exact: the path");
    is_str(who("GET", "/healthz/"), "default", "exact: not with a slash");
    is_str(who("GET", "/healthz/x"), "default", "exact: not below");
    is_str(who("GET", "/api"), "api-read", "**: zero segments");
    is_str(who("GET", "/api/items/7/tags"), "api-read", "**: several segments");
    is_str(who("PUT", "/api/items/7"), "api-write", "the second method of a list");
    is_str(who("PATCH", "/api/items/7"), "default", "an unlisted method falls through");
    is_str(who("PATCH", "/admin/users"), "admin", "*: any method");
    is_str(who("GET", "/administrator"), "default", "/admin never matches /administrator");
    is_str(who("GET", "/ops/db/run"), "ops", "*: one segment");
    is_str(who("GET", "/ops/db/x/run"), "default", "*: never two segments");
    is_str(who("GET", "/ops//db/./run"), "(bad path)",
           "a path with '//' or '.' is refused, never normalized into a rule");
    is_str(who("GET", "/users?x=/static/"), "users", "the query plays no part");
    is_str(who("GET", "/export/2024.csv"), "export", "*.csv");
    is_str(who("GET", "/export/2024.csv.gz"), "default", "*.csv is anchored");
    is_str(who("GET", "/export/a/b.csv"), "default", "* does not cross '/'");
    is_str(who("GET", "/c/x"), "one-char", "?: one character");
    is_str(who("GET", "/c/%C3%A9"), "one-char", "?: one UTF-8 character, not one byte");
    is_str(who("GET", "/c/xy"), "default", "?: not two");
    is_str(who("GET", "/c/"), "default", "?: not none");
    is_str(who("DELETE", "/anything"), "root-ish", "/ matches every path");
    is_str(who("GET", "/%73tatic/app.css"), "assets", "escapes are decoded before matching");
    is_str(who("GET", "/secret/../static/x"), "(bad path)", "a '..' segment is refused");
    is_str(who("GET", "/static/../secret"), "(bad path)", "no escape from a prefix by '..'");
    is_str(who("GET", "/static/%2e%2e/secret"), "(bad path)", "nor by an encoded '..'");
    is_str(who("GET", "/static%2f..%2fsecret"), "(bad path)", "nor by encoded slashes");

    /* first match wins */
    is_int(parse("a GET /x public\nb GET /x/y deny\ndefault deny\n"), 0, "two overlapping rules");
    is_str(who("GET", "/x/y"), "a", "first match wins, even over a longer prefix");
    is_int(parse("default deny"), 0, "a lone default without a newline");
    is_str(who("GET", "/"), "default", "the default matches everything");
    is_str(who("PROPFIND", "/x"), "default", "any method");

    is_int(parse("g GET /**/*.php writer\ng2 GET /a/**/b/** reader\ndefault deny\n"), 0,
           "globs with ** first and twice");
    is_str(who("GET", "/index.php"), "g", "**/*.php: at the root");
    is_str(who("GET", "/x/y/z.php"), "g", "**/*.php: deep");
    is_str(who("GET", "/x/y/z.phps"), "default", "**/*.php: anchored");
    is_str(who("GET", "/a/b"), "g2", "/a/**/b/**: both stars empty");
    is_str(who("GET", "/a/x/y/b/c/d"), "g2", "/a/**/b/**: both stars full");
    is_str(who("GET", "/a/x/y/c"), "default", "/a/**/b/**: needs a b segment");
    is_int(parse("dot * /**/.*/** deny\ndefault public\n"), 0, "the dotfiles rule of the example");
    is_str(who("GET", "/.env"), "dot", "/**/.*/**: a dotfile at the root");
    is_str(who("GET", "/a/.git/config"), "dot", "/**/.*/**: below a dot directory");
    is_str(who("GET", "/a/%2egit/config"), "dot", "/**/.*/**: an encoded dot");
    is_str(who("GET", "/a/b.c/d"), "default", "/**/.*/**: a dot inside a name");

    is_int(parse("m LOCK,M-SEARCH,X_1 / public\ndefault deny\n"), 0,
           "method names with digits, '-' and '_'");
    is_str(who("M-SEARCH", "/"), "m", "an extension method");
    is_str(who("lock", "/"), "default", "methods are case-sensitive");
}

static void test_errors(void)
{
    bad("", M8_EPARSE, 0, "no default rule", "an empty policy");
    bad("a GET / public\n", M8_EPARSE, 1, "no default rule", "no default rule");
    bad("# c\ndefault deny\na GET / public\n", M8_EPARSE, 3, "after the default rule (line 2)",
        "a rule after the default");
    bad("default deny\ndefault public\n", M8_EPARSE, 2, "after the default rule",
        "two default rules");
    bad("default\n", M8_EPARSE, 1, "missing the access", "default without access");
    bad("default deny now\n", M8_EPARSE, 1, "unexpected \"now\"", "default with extra words");
    bad("a GET /\ndefault deny\n", M8_EPARSE, 1, "got 3 fields", "a rule without access");
    bad("\n\na GET / public extra\ndefault deny\n", M8_EPARSE, 3, "unexpected \"extra\"",
        "a word after the access");
    bad("a GET / apikey reader writer x y\ndefault deny\n", M8_EPARSE, 1, "too many fields",
        "too many fields");
    bad("a GET / admn\ndefault deny\n", M8_EPARSE, 1, "unknown access \"admn\"",
        "an unknown access");
    bad("a GET / superadmin\ndefault deny\n", M8_EPARSE, 1, "write superuser",
        "superadmin is pointed to superuser");
    bad("a GET / apikey\ndefault deny\n", M8_EPARSE, 1, "apikey reader or apikey writer",
        "apikey without capability");
    bad("a GET / apikey admin\ndefault deny\n", M8_EPARSE, 1, "apikey reader or apikey writer",
        "apikey with a wrong capability");
    bad("/a GET / public\ndefault deny\n", M8_EPARSE, 1, "starts with its name",
        "a rule without a name");
    bad("a:b GET / public\ndefault deny\n", M8_EPARSE, 1, "only letters", "a bad name");
    bad("a GET / public\nb GET / public\na POST / public\ndefault deny\n", M8_EPARSE, 3,
        "already used on line 1", "a duplicate name");
    bad("a get / public\ndefault deny\n", M8_EPARSE, 1, "must be upper-case",
        "a lower-case method");
    bad("a GET;POST / public\ndefault deny\n", M8_EPARSE, 1, "bad method", "a bad separator");
    bad("a 1GET / public\ndefault deny\n", M8_EPARSE, 1, "bad method",
        "a method starting with a digit");
    bad("a GET,,POST / public\ndefault deny\n", M8_EPARSE, 1, "empty method", "an empty method");
    bad("a GET, / public\ndefault deny\n", M8_EPARSE, 1, "empty method", "a trailing comma");
    bad("a GET,* / public\ndefault deny\n", M8_EPARSE, 1, "stands alone", "* in a list");
    bad("a GET static public\ndefault deny\n", M8_EPARSE, 1, "must start with '/'",
        "a relative path");
    bad("a GET = public\ndefault deny\n", M8_EPARSE, 1, "must start with '/'", "= alone");
    bad("a GET /a//b public\ndefault deny\n", M8_EPARSE, 1, "empty segment", "a // in the path");
    bad("a GET /a/../b public\ndefault deny\n", M8_EPARSE, 1, "\"..\" segment", "a .. segment");
    bad("a GET /a/./b public\ndefault deny\n", M8_EPARSE, 1, "\"..\" segment", "a . segment");
    bad("a GET /a%20b public\ndefault deny\n", M8_EPARSE, 1, "write it decoded", "a %-escape");
    bad("a GET /a/**b public\ndefault deny\n", M8_EPARSE, 1, "whole path segment", "**b");
    bad("a GET /a/b** public\ndefault deny\n", M8_EPARSE, 1, "whole path segment", "b**");
    bad("a GET /a/*** public\ndefault deny\n", M8_EPARSE, 1, "whole path segment", "***");
    bad("a GET =/a/* public\ndefault deny\n", M8_EPARSE, 1, "exact (=) path", "a wildcard in =");
    bad("a GET /a\x01 public\ndefault deny\n", M8_EPARSE, 1, "control character 0x01",
        "a control character");
    bad("a GET /a\rb public\ndefault deny\n", M8_EPARSE, 1, "control character 0x0d",
        "a carriage return inside a line");
    const char nul[] = "a GET /a\0b public\ndefault deny\n";
    m8_policy_free(&pol);
    is_int(m8_policy_parse(nul, sizeof nul - 1, &pol, err, sizeof err, &eline), M8_EPARSE,
           "a NUL byte: refused");
    is_int(eline, 1, "a NUL byte: line 1");
    like(err, "NUL byte", "a NUL byte: says so");
    /* errors never overflow a small buffer */
    char small[12];
    m8_policy p2;
    is_int(m8_policy_parse("x", 1, &p2, small, sizeof small, NULL), M8_EPARSE,
           "a small error buffer and no line pointer");
    is_int(strlen(small), sizeof small - 1, "the message is cut to the buffer");
}

static void test_limits(void)
{
    char *s;
    /* a rule name of 64 and 65 bytes */
    s = repeat("", 'n', M8_POLICY_MAX_NAME, " GET / public\ndefault deny\n");
    is_int(parse(s), 0, "a name of %u bytes", M8_POLICY_MAX_NAME);
    free(s);
    s = repeat("", 'n', M8_POLICY_MAX_NAME + 1, " GET / public\ndefault deny\n");
    bad(s, M8_EPARSE, 1, "longer than 64 bytes", "a name of 65 bytes");
    free(s);
    /* a path of 1024 and 1025 bytes (the '=' counts) */
    s = repeat("a GET /", 'p', M8_POLICY_MAX_PATTERN - 1, " public\ndefault deny\n");
    is_int(parse(s), 0, "a path of %u bytes", M8_POLICY_MAX_PATTERN);
    free(s);
    s = repeat("a GET =/", 'p', M8_POLICY_MAX_PATTERN - 2, " public\ndefault deny\n");
    is_int(parse(s), 0, "an exact path of %u bytes with its '='", M8_POLICY_MAX_PATTERN);
    free(s);
    s = repeat("a GET /", 'p', M8_POLICY_MAX_PATTERN, " public\ndefault deny\n");
    bad(s, M8_EPARSE, 1, "path longer than 1024", "a path of 1025 bytes");
    free(s);
    /* a method of 20 and 21 bytes */
    s = repeat("a ", 'M', M8_POLICY_MAX_METHOD, " / public\ndefault deny\n");
    is_int(parse(s), 0, "a method of %u bytes", M8_POLICY_MAX_METHOD);
    free(s);
    s = repeat("a ", 'M', M8_POLICY_MAX_METHOD + 1, " / public\ndefault deny\n");
    bad(s, M8_EPARSE, 1, "method longer than 20", "a method of 21 bytes");
    free(s);
    /* 16 and 17 methods */
    char list[512] = "a ";
    for (unsigned i = 0; i < M8_POLICY_MAX_METHODS; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%sM%c", i ? "," : "", 'A' + i);
    char text[1024];
    snprintf(text, sizeof text, "%s / public\ndefault deny\n", list);
    is_int(parse(text), 0, "%u methods", M8_POLICY_MAX_METHODS);
    is_int(pol.rules[0].n_methods, M8_POLICY_MAX_METHODS, "all of them kept");
    snprintf(text, sizeof text, "%s,MZ / public\ndefault deny\n", list);
    bad(text, M8_EPARSE, 1, "more than 16 methods", "17 methods");
    /* 16 and 17 wildcards */
    char pat[256] = "a GET ";
    for (unsigned i = 0; i < M8_POLICY_MAX_WILDCARDS; i++)
        strncat(pat, i % 2 ? "/?" : "/*", sizeof pat - strlen(pat) - 1);
    snprintf(text, sizeof text, "%s public\ndefault deny\n", pat);
    is_int(parse(text), 0, "%u wildcards", M8_POLICY_MAX_WILDCARDS);
    snprintf(text, sizeof text, "%s/** public\ndefault deny\n", pat);
    bad(text, M8_EPARSE, 1, "more than 16 wildcards", "17 wildcards (** counts once)");
    /* a line of 4096 and 4097 bytes */
    s = repeat("#", 'x', M8_POLICY_MAX_LINE - 1, "\r\ndefault deny\n");
    is_int(parse(s), 0, "a line of %u bytes (its CR not counted)", M8_POLICY_MAX_LINE);
    free(s);
    s = repeat("\n#", 'x', M8_POLICY_MAX_LINE, "\ndefault deny\n");
    bad(s, M8_ETOOBIG, 2, "longer than 4096 bytes", "a line of 4097 bytes");
    free(s);
    /* 1024 and 1025 rules */
    size_t cap = (M8_POLICY_MAX_RULES + 2) * 32;
    char *big = malloc(cap);
    size_t len = 0;
    for (unsigned i = 0; i < M8_POLICY_MAX_RULES - 1; i++)
        len += (size_t)snprintf(big + len, cap - len, "r%u GET /r%u public\n", i, i);
    snprintf(big + len, cap - len, "default deny\n");
    is_int(parse(big), 0, "%u rules (the default included)", M8_POLICY_MAX_RULES);
    is_int(pol.n, M8_POLICY_MAX_RULES, "all of them kept");
    is_str(who("GET", "/r1022/x"), "r1022", "the last of them matches");
    len += (size_t)snprintf(big + len, cap - len, "extra GET /extra public\n");
    snprintf(big + len, cap - len, "default deny\n");
    bad(big, M8_ETOOBIG, M8_POLICY_MAX_RULES + 1, "more than 1024 rules", "1025 rules");
    free(big);
    /* a file of exactly the limit, and one byte more */
    big = malloc(M8_POLICY_MAX_BYTES + 2);
    const char *tail = "default deny\n";
    size_t body = M8_POLICY_MAX_BYTES - strlen(tail);
    for (size_t i = 0; i < body; i++)
        big[i] = i % 1000 == 999 ? '\n' : (i % 1000 == 0 ? '#' : 'c');
    big[body - 1] = '\n';
    memcpy(big + body, tail, strlen(tail) + 1);
    m8_policy_free(&pol);
    is_int(m8_policy_parse(big, M8_POLICY_MAX_BYTES, &pol, err, sizeof err, &eline), 0,
           "a policy of %u bytes", M8_POLICY_MAX_BYTES);
    big[M8_POLICY_MAX_BYTES] = '\n';
    m8_policy_free(&pol);
    is_int(m8_policy_parse(big, M8_POLICY_MAX_BYTES + 1, &pol, err, sizeof err, &eline), M8_ETOOBIG,
           "a policy of %u bytes is too big", M8_POLICY_MAX_BYTES + 1);
    is_int(eline, 0, "a policy too big has no line");
    like(err, "larger than 262144 bytes", "and says so");
    free(big);
}

static void test_normalize(void)
{
    is_str(norm("/"), "/", "the root");
    is_str(norm("/a/b"), "/a/b", "a plain path");
    is_str(norm("/a/b/"), "/a/b/", "a trailing slash is kept");
    is_str(norm("/a/b?x=1/../..//%2f%25;%zz\\"), "/a/b", "the query is dropped, whatever it holds");
    is_str(norm("/..a/.b/a..b/.../a."), "/..a/.b/a..b/.../a.", "names with dots are plain names");
    is_str(norm("/%41%62c"), "/Abc", "escapes are decoded (either case)");
    is_str(norm("/a+b/%20/~x"), "/a+b/ /~x", "'+' stays; %%20 is a space");
    is_str(norm("/caf%C3%A9/\xc3\xa9"), "/caf\xc3\xa9/\xc3\xa9", "UTF-8, encoded or raw, passes");
    is_str(norm("/\xf0\x9f\x98\x80"), "/\xf0\x9f\x98\x80", "a 4-byte UTF-8 character passes");
    is_str(norm("http://h:80/a/b?q"), "/a/b", "an absolute-form target: its path");
    is_str(norm("http://h"), "/", "an absolute-form target without a path: the root");
    is_str(norm("http://h?x=/a"), "/", "an absolute-form target with only a query: the root");

    /* Refused: whatever a backend reading the raw target could take for
     * another path than the gate (fcgim8-gate(8), REQUEST PATHS). */
    static const char *const refused[][2] = {
        {"/a/./b", "a '.' segment"},
        {"/a/.", "a last '.' segment"},
        {"/a/b/../c", "a '..' segment"},
        {"/a/..", "a last '..' segment"},
        {"/..", "'..' at the root"},
        {"/admin/../public/", "the issue's first example"},
        {"/admin/%2e%2e/public/", "an encoded '..'"},
        {"/admin/%2E%2e/public/", "an encoded '..' in mixed case"},
        {"/admin/.%2E/public/", "a half-encoded '..'"},
        {"/admin/%2e/public/", "an encoded '.'"},
        {"/admin/x/..%2F..%2Fpublic/", "the issue's third example (encoded '/')"},
        {"/admin/x/..%2f..%2fpublic/", "an encoded '/' in lower case"},
        {"/a%2fb", "an encoded '/'"},
        {"/admin/%252e%252e/public/", "a double-encoded '..'"},
        {"/admin/%252e%252e%252fpublic/", "a double-encoded '../'"},
        {"/a%25", "an encoded '%%'"},
        {"/admin\\..\\public\\", "backslashes"},
        {"/admin/..\\public/", "a backslash after '..'"},
        {"/admin%5c..%5cpublic/", "encoded backslashes"},
        {"/admin%5C", "an encoded backslash in upper case"},
        {"//admin", "a leading '//'"},
        {"/public//admin", "'//' inside"},
        {"/public/;/../admin", "a ';' segment"},
        {"/public;x/../admin", "a ';' path parameter"},
        {"/admin;/", "a ';' after a name"},
        {"/admin%3b/", "an encoded ';'"},
        {"/a#frag", "a '#' (a fragment is never sent)"},
        {"/a?x#y", "a '#' in the query"},
        {"/a%23b", "an encoded '#'"},
        {"/a%3Fb", "an encoded '?'"},
        {"/a%00b", "%%00"},
        {"/a%0ab", "an encoded LF"},
        {"/a%09", "an encoded tab"},
        {"/a%7f", "an encoded DEL"},
        {"/a\x01", "a raw control byte"},
        {"/%c0%af", "an overlong '/' (%%c0%%af)"},
        {"/%c0%ae%c0%ae/x", "overlong dots"},
        {"/%e0%80%ae", "a 3-byte overlong '.'"},
        {"/%ed%a0%80", "an encoded surrogate"},
        {"/%f4%90%80%80", "a code point past U+10FFFF"},
        {"/%ff", "a byte that is never UTF-8"},
        {"/\xc3", "a cut UTF-8 character (raw)"},
        {"/%C3", "a cut UTF-8 character (encoded)"},
        {"/caf\xe9", "Latin-1"},
        {"a/b", "a relative path"},
        {"", "an empty target"},
        {"?a", "a bare query"},
        {"*", "the asterisk form"},
        {"HTTPS://h/%2e%2e", "an absolute-form target with an encoded '..'"},
        {"http://h//a", "an absolute-form target with '//'"},
        {"ftp://h/a", "another scheme"},
        {"/a%zz", "a bad escape"},
        {"/a%4", "a cut escape"},
        {"/a%", "a lone '%%'"},
        {"/a%4?x", "an escape cut by the query"},
        {"/a%4/b", "an escape cut by a '/'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof *refused; i++)
        is_str(norm(refused[i][0]), "(EPARSE)", "refused with a reason: %s", refused[i][1]);

    const char withnul[] = "/a\0b";
    char out[16];
    size_t n;
    is_int(m8_policy_normalize(withnul, 4, out, sizeof out, &n, NULL), M8_EPARSE,
           "a raw NUL is refused");
    is_int(m8_policy_normalize("/abc", 4, out, 4, &n, NULL), M8_ETOOBIG,
           "an output buffer too small");
    is_int(m8_policy_normalize("/abc", 4, out, 5, &n, NULL), 0, "an output buffer of n + 1");
    char *p = repeat("/", 'a', M8_MAX_PATH_BYTES - 1, "");
    is_str(norm(p), p, "a target of %u bytes", M8_MAX_PATH_BYTES);
    free(p);
    p = repeat("/", 'a', M8_MAX_PATH_BYTES, "");
    is_str(norm(p), "(ETOOBIG)", "a target of %u bytes is too long", M8_MAX_PATH_BYTES + 1);
    free(p);
}

/* The rule m8_policy_decide gives, or "(400: why)". */
static const char *decide(const char *method, const char *uri)
{
    static char path[M8_MAX_PATH_BYTES + 1];
    static char res[256];
    size_t n;
    const m8_policy_rule *r = (const m8_policy_rule *)1;
    const char *why = NULL;
    int rc = m8_policy_decide(&pol, method, uri, strlen(uri), path, sizeof path, &n, &r, &why);
    if (rc) {
        snprintf(res, sizeof res, "(400%s)", r == NULL && why && *why ? "" : ": no reason");
        return res;
    }
    return r ? r->name : "(none)";
}

static void test_decide(void)
{
    /* The policy of the issue: a raw-path backend behind the gate must
     * never serve /admin to a request the gate took for /public/. */
    is_int(parse("admin * /admin admin\n"
                 "public GET /public/ public\n"
                 "dots GET /**/.*/** deny\n"
                 "one GET /c/? public\n"
                 "default deny\n"),
           0, "the policy parses (%s)", err);
    is_str(decide("GET", "/admin/x"), "admin", "/admin/x: admin");
    is_str(decide("GET", "/public/x"), "public", "/public/x: public");
    is_str(decide("GET", "/adminX"), "default", "/adminX is not /admin (segment boundary)");
    is_str(decide("GET", "/admin."), "default", "/admin. is not /admin");
    is_str(decide("GET", "/ADMIN/x"), "default", "the case is kept as sent (no folding)");
    is_str(decide("GET", "/public/caf%C3%A9"), "public", "an escape that changes no rule");
    is_str(decide("GET", "/public/%61"), "public", "an encoded letter below a prefix");
    static const char *const spellings[] = {
        "/admin/../public/",
        "/admin/%2e%2e/public/",
        "/admin/x/..%2F..%2Fpublic/",
        "/admin/%2E%2E/public/",
        "/admin/.%2e/public/",
        "/admin/%252e%252e/public/",
        "/admin/%252E%252E%252Fpublic/",
        "/admin\\..\\public\\",
        "/admin%5c..%5cpublic%5c",
        "/admin/..;/public/",
        "/admin;/../public/",
        "/public/..;/admin/",
        "/public;x/../admin",
        "/admin%3b/../public/",
        "//admin/../public/",
        "/admin//../public/",
        "/admin/./../public/",
        "/public/../admin/",
        "/%61dmin/../public/",
        "/admin/%c0%ae%c0%ae/public/",
        "/admin/%2e%2e%2fpublic/",
        "/admin%2f..%2fpublic/",
        "/admin/..%5cpublic/",
        "/admin#/../public/",
        "/admin/%2e%2e%5cpublic/",
        "http://x/admin/../public/",
    };
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++)
        is_str(decide("GET", spellings[i]), "(400)", "%s: refused (400)", spellings[i]);
    /* As sent, "/%61dmin" is no admin path; decoded it is: refused. */
    is_str(decide("GET", "/%61dmin/x"), "(400)", "/%%61dmin/x: two rules for two readings: 400");
    is_str(decide("GET", "/c/%C3%A9"), "(400)",
           "/c/%%C3%%A9: one character decoded, six as sent: 400");
    is_str(decide("GET", "/c/\xc3\xa9"), "one", "/c/<raw UTF-8>: one reading: public");
    is_str(decide("GET", "/x/%2Egit/config"), "(400)", "%%2Egit: a dotfile only when decoded: 400");
    is_str(decide("GET", "/x/.git/config"), "dots", ".git: the deny rule");

    bad("a GET /x\\y public\ndefault deny\n", M8_EPARSE, 1, "'\\' in the path",
        "a pattern with a backslash");
    bad("a GET /x;y public\ndefault deny\n", M8_EPARSE, 1, "';' in the path",
        "a pattern with a ';'");
    bad("a GET /x#y public\ndefault deny\n", M8_EPARSE, 1, "'#' in the path",
        "a pattern with a '#' inside");
    bad("a GET /caf\xe9 public\ndefault deny\n", M8_EPARSE, 1, "not valid UTF-8",
        "a pattern that is not UTF-8");
}

/* The credential kinds of a rule: cred= with each kind, the defaults, the
 * apikey shorthands, and every refusal. */
static void test_creds(void)
{
    int rc = parse("a GET /a reader cred=bearer,cookie,apikey\n"
                   "b GET /b user cred=cookie\n"
                   "c GET /c apikey writer cred=apikey\n"
                   "d GET /d writer\n"
                   "e GET /e apikey reader\n"
                   "default user cred=bearer\n");
    is_int(rc, 0, "creds: cred= with each kind parses (%s)", err);
    if (rc == 0 && pol.n == 6) {
        is_int((int)pol.rules[0].creds,
               (int)(M8_ROUTE_CRED_BEARER | M8_ROUTE_CRED_COOKIE | M8_ROUTE_CRED_API_KEY),
               "creds: cred=bearer,cookie,apikey gives the three kinds");
        is_int((int)pol.rules[0].access, M8_POLICY_READER, "creds: ... on a reader rule");
        is_int((int)pol.rules[1].creds, (int)M8_ROUTE_CRED_COOKIE, "creds: cred=cookie alone");
        is_int((int)pol.rules[2].creds, (int)M8_ROUTE_CRED_API_KEY,
               "creds: apikey writer cred=apikey (redundant) is accepted");
        is_int((int)pol.rules[3].creds, 0, "creds: no cred= is 0 (the access's default)");
        is_int((int)pol.rules[4].access, M8_POLICY_APIKEY_READER,
               "creds: the apikey reader shorthand stays");
        is_int((int)pol.rules[5].creds, (int)M8_ROUTE_CRED_BEARER, "creds: cred= on the default");
        ok(m8_policy_first_apikey(&pol) == &pol.rules[0],
           "creds: a role rule with cred=apikey counts as an API-key rule");
    }
    parse("a GET /a reader cred=cookie\ndefault deny\n");
    ok(m8_policy_first_apikey(&pol) == NULL, "creds: a rule without the apikey kind does not");
    bad("a GET /a reader cred=token\ndefault deny\n", M8_EPARSE, 1, "unknown credential kind",
        "creds: an unknown kind");
    bad("a GET /a reader cred=\ndefault deny\n", M8_EPARSE, 1, "unknown credential kind",
        "creds: an empty cred=");
    bad("a GET /a reader cred=bearer,\ndefault deny\n", M8_EPARSE, 1, "unknown credential kind",
        "creds: a trailing comma");
    bad("a GET /a reader cred=cookie,cookie\ndefault deny\n", M8_EPARSE, 1, "listed twice",
        "creds: a kind listed twice");
    bad("a GET /a public cred=bearer\ndefault deny\n", M8_EPARSE, 1, "takes no credential",
        "creds: cred= on a public rule");
    bad("default deny cred=bearer\n", M8_EPARSE, 1, "takes no credential",
        "creds: cred= on a deny rule");
    bad("a GET /a apikey reader cred=bearer\ndefault deny\n", M8_EPARSE, 1, "X-API-Key only",
        "creds: a bearer kind on an apikey rule");
    bad("a GET /a admin cred=apikey\ndefault deny\n", M8_EPARSE, 1, "reader or writer only",
        "creds: an API key on an admin rule");
    bad("a GET /a superuser cred=bearer,apikey\ndefault deny\n", M8_EPARSE, 1,
        "reader or writer only", "creds: an API key on a superuser rule");
    bad("a GET /a reader cred=bearer extra\ndefault deny\n", M8_EPARSE, 1, "unexpected",
        "creds: a field after cred=");
    bad("a GET /a reader Cred=bearer\ndefault deny\n", M8_EPARSE, 1, "unexpected",
        "creds: the option name is lower case");
}

int main(void)
{
    test_forms();
    test_errors();
    test_limits();
    test_normalize();
    test_decide();
    test_creds();
    m8_policy_free(&pol);
    return done_testing();
}
