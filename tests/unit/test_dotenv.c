/* test_dotenv.c - the .env parser (doc/settings.md#the-env-file-syntax,
 * python-dotenv 1.2.2 subset). */
#include "config.h"

#include "tap.h"

#include <stdlib.h>
#include <string.h>

#include "config/dotenv.h"

static m8_dotenv d;
static char err[256];

static int parse(const char *text)
{
    m8_dotenv_free(&d);
    return m8_dotenv_parse(text, strlen(text), NULL, NULL, &d, err, sizeof err);
}

static const char *get(const char *key)
{
    for (size_t i = 0; i < d.n; i++) {
        if (strcmp(d.pairs[i].key, key) == 0)
            return d.pairs[i].value;
    }
    return NULL;
}

static const char *env_lookup(const char *name, void *data)
{
    (void)data;
    if (strcmp(name, "FROM_ENV") == 0)
        return "envval";
    if (strcmp(name, "BOTH") == 0)
        return "from-process";
    return NULL;
}

/* A file of n bytes: "A=" then 'x' * (n - 3) then "\n". */
static char *filled(size_t n, size_t line_len)
{
    char *s = malloc(n + 1);
    size_t i = 0;
    while (i < n) {
        size_t room = n - i;
        size_t l = room < line_len + 1 ? room : line_len + 1; /* includes '\n' */
        if (l < 4) {
            memset(s + i, '\n', l);
            i += l;
            continue;
        }
        s[i] = 'A';
        s[i + 1] = '=';
        memset(s + i + 2, 'x', l - 3);
        s[i + l - 1] = '\n';
        i += l;
    }
    s[n] = '\0';
    return s;
}

int main(void)
{
    /* Basic forms */
    is_int(parse("A=1\nB=two\n"), 0, "KEY=value lines parse");
    is_str(get("A"), "1", "first value");
    is_str(get("B"), "two", "second value");
    is_int(d.n, 2, "two pairs");
    is_int(parse("# a comment\n\n   # indented comment\nA=1\n"), 0, "comment and blank lines");
    is_int(d.n, 1, "comments produce no pair");
    is_int(parse("export A=1\n  export\tB=2\n"), 0, "export prefix");
    is_str(get("A"), "1", "export A=1 gives A");
    is_str(get("B"), "2", "indented export with a tab");
    is_int(parse("export=1\n"), 0, "a key named export");
    is_str(get("export"), "1", "export without blank is a name");
    is_int(parse("A = b c  \n"), 0, "spaces around = and trailing spaces");
    is_str(get("A"), "b c", "inner spaces kept, outer trimmed");
    is_int(parse("A==b\n"), 0, "value may start with =");
    is_str(get("A"), "=b", "second = is part of the value");
    is_int(parse("A=\nB=1"), 0, "empty value and no final newline");
    is_str(get("A"), "", "empty value is an empty string");
    is_str(get("B"), "1", "last line without newline");
    is_int(parse("A=1\r\nB=2\rC=3\n"), 0, "CRLF, CR and LF line ends");
    is_str(get("A"), "1", "CRLF value");
    is_str(get("B"), "2", "CR value");
    is_str(get("C"), "3", "LF value");
    is_int(parse("\xEF\xBB\xBF"
                 "A=1\n"),
           0, "UTF-8 BOM skipped");
    is_str(get("A"), "1", "BOM is not part of the first name");
    is_int(parse("'A B'=1\n"), 0, "single-quoted name");
    is_str(get("A B"), "1", "quoted name kept verbatim");
    is_int(parse(""), 0, "empty file");
    is_int(d.n, 0, "empty file has no pairs");

    /* Comments after values */
    is_int(parse("A=v # c\n"), 0, "unquoted value with ' #' comment");
    is_str(get("A"), "v", "value ends at ' #'");
    is_int(parse("A=v#c\n"), 0, "unquoted # without blank");
    is_str(get("A"), "v#c", "'#' without a blank before it is part of the value");
    is_int(parse("A=v\t#c\n"), 0, "tab before #");
    is_str(get("A"), "v", "a tab also starts a comment");
    is_int(parse("A= #c\n"), 0, "value that starts with #");
    is_str(get("A"), "#c", "blanks after = are eaten, then # is value (as python-dotenv)");
    is_int(parse("A=\"x\" # c\nB='y'#c\n"), 0, "comment after a quoted value");
    is_str(get("A"), "x", "double-quoted value, comment dropped");
    is_str(get("B"), "y", "single-quoted value, # right after the quote");

    /* Quotes and escapes */
    is_int(parse("A=\"a\\nb\\tc\\\\d\\\"e\\'f\\qg\"\n"), 0, "double-quoted escapes");
    is_str(get("A"), "a\nb\tc\\d\"e'f\\qg", "\\n \\t \\\\ \\\" \\' decoded; unknown escape kept");
    is_int(parse("A=\"\\a\\b\\f\\r\\v\"\n"), 0, "bell, backspace, ff, cr, vt escapes");
    is_str(get("A"), "\a\b\f\r\v", "control escapes decoded");
    is_int(parse("A='x\\'y'\n"), 0, "escaped quote in single quotes");
    is_str(get("A"), "x'y", "\\' decoded in single quotes (python-dotenv)");
    is_int(parse("A='a\\\\b\\n'\n"), 0, "single quotes are literal except \\\\ and \\'");
    is_str(get("A"), "a\\b\\n", "\\n stays literal in single quotes");
    is_int(parse("A=' spaced # not comment '\n"), 0, "quoted value keeps blanks and #");
    is_str(get("A"), " spaced # not comment ", "quoted content verbatim");
    is_int(parse("A=\"multi\nline\"\nB=3\n"), 0, "multi-line double-quoted value");
    is_str(get("A"), "multi\nline", "newline kept inside quotes");
    is_str(get("B"), "3", "parsing continues after a multi-line value");
    is_int(d.pairs[1].line, 3, "line numbers count lines inside quotes");
    is_int(parse("A='l1\r\nl2'\n"), 0, "multi-line single-quoted value with CRLF");
    is_str(get("A"), "l1\r\nl2", "CRLF kept inside quotes");
    is_int(parse("A=\"unterminated\nB=1\n"), M8_EPARSE, "unterminated quote is an error");
    like(err, "line 1: unterminated", "error names the line");
    is_int(parse("A=\"x\" junk\n"), M8_EPARSE, "text after the closing quote is an error");
    like(err, "line 1", "error has the line");
    is_int(parse("A=\"a\"\"b\"\n"), M8_EPARSE, "two quoted strings are an error");
    is_int(parse("A='a'b\n"), M8_EPARSE, "quoted then unquoted is an error");

    /* Interpolation */
    is_int(parse("A=1\nB=${A}x\nC='${A}'\nD=\"${A}\"\n"), 0, "interpolation in every form");
    is_str(get("B"), "1x", "unquoted ${A}");
    is_str(get("C"), "1", "single-quoted ${A}");
    is_str(get("D"), "1", "double-quoted ${A}");
    is_int(parse("E=${Z:-def}\nF=${Q}\nG=$A\nH=${A:x}\n"), 0, "defaults and non-matches");
    is_str(get("E"), "def", "${Z:-def} gives the default when Z is absent");
    is_str(get("F"), "", "undefined name gives empty");
    is_str(get("G"), "$A", "$A without braces is literal");
    is_str(get("H"), "${A:x}", "${A:x} is not a reference");
    is_int(parse("A=\nB=${A:-x}\n"), 0, "default with an empty defined value");
    is_str(get("B"), "", "default only for an absent name (python-dotenv)");
    is_int(parse("A=${B}\nB=1\n"), 0, "forward reference");
    is_str(get("A"), "", "only earlier keys are visible");
    is_int(parse("A=${B:-x}y}\n"), 0, "extra brace");
    is_str(get("A"), "xy}", "text after the reference kept");
    m8_dotenv_free(&d);
    const char *txt = "A=${FROM_ENV}\nBOTH=file\nC=${BOTH}\nD=${NOPE:-dflt}\n";
    is_int(m8_dotenv_parse(txt, strlen(txt), env_lookup, NULL, &d, err, sizeof err), 0,
           "lookup callback");
    is_str(get("A"), "envval", "${NAME} falls back to lookup()");
    is_str(get("C"), "file", "earlier file keys beat lookup()");
    is_str(get("D"), "dflt", "default when lookup() has nothing");

    /* Repeated keys */
    is_int(parse("A=1\nB=2\nA=3\n"), 0, "repeated key");
    is_int(d.n, 2, "duplicates collapsed");
    is_str(get("A"), "3", "last one wins");
    is_int(d.pairs[0].line, 3, "line of the winning definition");
    is_int(parse("a=1\nA=2\n"), 0, "names differing in case");
    is_int(d.n, 2, "the parser is case-sensitive (settings folds case)");

    /* Errors */
    is_int(parse("A\n"), M8_EPARSE, "a name without '=' is an error");
    like(err, "line 1", "line reported");
    is_int(parse("A=1\nexport B\n"), M8_EPARSE, "export NAME without value is an error");
    like(err, "line 2", "second line reported");
    is_int(parse("A B=1\n"), M8_EPARSE, "a blank inside a name is an error");
    is_int(parse("=1\n"), M8_EPARSE, "missing name");
    is_int(parse("S3cr3t-Value-On-Its-Own\n"), M8_EPARSE, "a stray word is an error");
    ok(strstr(err, "S3cr3t") == NULL, "errors never quote file content");
    m8_dotenv_free(&d);
    is_int(m8_dotenv_parse("A=1\0B=2", 7, NULL, NULL, &d, err, sizeof err), M8_EPARSE,
           "NUL byte rejected");
    is_int(parse("A=\xff\n"), M8_EPARSE, "invalid UTF-8 rejected");
    is_int(parse("A=\xc3\xa9t\xc3\xa9\n"), 0, "valid UTF-8 accepted");
    is_str(get("A"), "\xc3\xa9t\xc3\xa9", "UTF-8 value kept");
    is_int(parse("A=\xed\xa0\x80\n"), M8_EPARSE, "UTF-16 surrogate rejected");
    is_int(parse("A=\xc0\x80\n"), M8_EPARSE, "overlong encoding rejected");
    is_int(parse("A=\xe2\x82"), M8_EPARSE, "truncated sequence at the end rejected");

    /* Limits */
    char *s = filled(M8_MAX_ENV_FILE_BYTES, 1000);
    m8_dotenv_free(&d);
    is_int(m8_dotenv_parse(s, M8_MAX_ENV_FILE_BYTES, NULL, NULL, &d, err, sizeof err), 0,
           "file of exactly M8_MAX_ENV_FILE_BYTES parses");
    free(s);
    s = filled(M8_MAX_ENV_FILE_BYTES + 1, 1000);
    m8_dotenv_free(&d);
    is_int(m8_dotenv_parse(s, M8_MAX_ENV_FILE_BYTES + 1, NULL, NULL, &d, err, sizeof err),
           M8_ETOOBIG, "file of M8_MAX_ENV_FILE_BYTES + 1 is too big");
    free(s);
    s = filled(M8_MAX_ENV_LINE_BYTES + 1, M8_MAX_ENV_LINE_BYTES);
    is_int(parse(s), 0, "line of exactly M8_MAX_ENV_LINE_BYTES parses");
    is_int(strlen(get("A")), M8_MAX_ENV_LINE_BYTES - 2, "value of the longest line kept whole");
    free(s);
    s = filled(M8_MAX_ENV_LINE_BYTES + 2, M8_MAX_ENV_LINE_BYTES + 1);
    is_int(parse(s), M8_ETOOBIG, "line of M8_MAX_ENV_LINE_BYTES + 1 is too big");
    like(err, "line 1", "too long line reported with its number");
    free(s);
    /* A multi-line quoted value: each line short, the value at and past the limit. */
    size_t vl = M8_MAX_ENV_LINE_BYTES;
    s = malloc(vl + 16);
    memcpy(s, "A=\"", 3);
    for (size_t i = 0; i < vl; i++)
        s[3 + i] = (i % 100 == 99) ? '\n' : 'y';
    memcpy(s + 3 + vl, "\"\n", 3);
    is_int(parse(s), 0, "quoted value of exactly M8_MAX_ENV_LINE_BYTES bytes");
    is_int(strlen(get("A")), vl, "whole multi-line value kept");
    s[3 + vl] = 'y';
    memcpy(s + 4 + vl, "\"\n", 3);
    is_int(parse(s), M8_ETOOBIG, "quoted value of M8_MAX_ENV_LINE_BYTES + 1 bytes is too big");
    free(s);
    /* Interpolation cannot blow up a value. */
    s = malloc(M8_MAX_ENV_LINE_BYTES);
    memcpy(s, "A=", 2);
    memset(s + 2, 'z', 40000);
    memcpy(s + 40002, "\nB=${A}${A}\n", 13);
    is_int(parse(s), M8_ETOOBIG, "interpolated value past the value limit is too big");
    like(err, "line 2", "the interpolating line is reported");
    memcpy(s + 40002, "\nB=${A}xx\n", 11);
    is_int(parse(s), 0, "interpolated value under the limit parses");
    free(s);

    m8_dotenv_free(&d);
    return done_testing();
}
