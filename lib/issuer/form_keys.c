/* form_keys.c - the rate-limit keys of a login attempt and the username as
 * looked up (form.h, doc/issuer.md#login-form).  Pure. */
#include "issuer/form.h"

#include <string.h>

/* Python's str.isspace(). */
static bool uni_space(unsigned cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

/* Python's str.isprintable() for one character: false for controls (Cc),
 * separators other than the space (Zs, Zl, Zp), format characters (Cf),
 * private use (Co) and noncharacters; unassigned code points (the rest of
 * Cn) count as printable here. */
static bool uni_printable(unsigned cp)
{
    static const unsigned hidden[][2] = {
        {0xAD, 0xAD},       {0x600, 0x605},     {0x61C, 0x61C},     {0x6DD, 0x6DD},
        {0x70F, 0x70F},     {0x890, 0x891},     {0x8E2, 0x8E2},     {0x180E, 0x180E},
        {0x200B, 0x200F},   {0x202A, 0x202E},   {0x2060, 0x206F},   {0xE000, 0xF8FF},
        {0xFDD0, 0xFDEF},   {0xFEFF, 0xFEFF},   {0xFFF0, 0xFFFB},   {0x110BD, 0x110BD},
        {0x110CD, 0x110CD}, {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A},
        {0xE0001, 0xE0001}, {0xE0020, 0xE007F}, {0xF0000, 0xFFFFD}, {0x100000, 0x10FFFD},
    };
    if (cp == 0x20)
        return true;
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || uni_space(cp) || (cp & 0xFFFE) == 0xFFFE)
        return false;
    for (size_t i = 0; i < M8_ARRAY_LEN(hidden); i++) {
        if (cp >= hidden[i][0] && cp <= hidden[i][1])
            return false;
    }
    return true;
}

/* Lower case for ASCII, Latin-1, Greek and basic Cyrillic capitals (each
 * keeps its UTF-8 length); other characters are kept. */
static unsigned uni_lower(unsigned cp)
{
    if ((cp >= 'A' && cp <= 'Z') || (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) ||
        (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) || (cp >= 0x410 && cp <= 0x42F))
        return cp + 32;
    if (cp >= 0x400 && cp <= 0x40F)
        return cp + 80;
    return cp;
}

static void put_cp(char *d, size_t *o, unsigned cp)
{
    if (cp < 0x80) {
        d[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        d[(*o)++] = (char)(0xC0 | (cp >> 6));
        d[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        d[(*o)++] = (char)(0xE0 | (cp >> 12));
        d[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[(*o)++] = (char)(0x80 | (cp & 0x3F));
    } else {
        d[(*o)++] = (char)(0xF0 | (cp >> 18));
        d[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3F));
        d[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3F));
        d[(*o)++] = (char)(0x80 | (cp & 0x3F));
    }
}

/* s[*b..*e) without leading and trailing white space (invalid bytes are not
 * white space). */
static void trim_bounds(const char *s, size_t n, size_t *b, size_t *e)
{
    size_t bad;
    unsigned cp;
    *b = *e = 0;
    for (size_t i = 0, k; i < n; i += k) {
        k = m8__form_utf8_seq((const unsigned char *)s + i, n - i, &bad, &cp);
        if (!k)
            k = bad;
        else if (uni_space(cp))
            continue;
        if (*e == 0)
            *b = i;
        *e = i + k;
    }
}

size_t m8_login_username_norm(const char *s, size_t n, char *out)
{
    size_t b, e, o = 0, bad;
    unsigned cp;
    trim_bounds(s, n, &b, &e);
    for (size_t i = b, k; i < e; i += k) {
        k = m8__form_utf8_seq((const unsigned char *)s + i, e - i, &bad, &cp);
        if (k) {
            put_cp(out, &o, uni_lower(cp));
        } else {
            memcpy(out + o, s + i, bad);
            o += bad;
            k = bad;
        }
    }
    out[o] = '\0';
    return o;
}

/* The printable characters of s[b..e), lower-cased when asked, at most max
 * of them. */
static size_t key_of(const char *s, size_t b, size_t e, bool lower, size_t max, char *out)
{
    size_t o = 0, chars = 0, bad;
    unsigned cp;
    for (size_t i = b, k; i < e && chars < max; i += k) {
        k = m8__form_utf8_seq((const unsigned char *)s + i, e - i, &bad, &cp);
        if (!k) {
            k = bad;
            continue;
        }
        if (lower)
            cp = uni_lower(cp);
        if (uni_printable(cp)) {
            put_cp(out, &o, cp);
            chars++;
        }
    }
    out[o] = '\0';
    return o;
}

size_t m8_login_email_key(const char *s, size_t n, char *out)
{
    size_t b, e;
    trim_bounds(s, n, &b, &e);
    return key_of(s, b, e, true, M8_LOGIN_EMAIL_KEY_CHARS, out);
}

size_t m8_login_ip_key(const char *s, size_t n, char *out)
{
    return key_of(s, 0, n, false, M8_LOGIN_IP_KEY_CHARS, out);
}
