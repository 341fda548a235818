/* pipeline_encode.c - fuzz_pipeline's input format (described in
 * fuzz_pipeline.c) parsed, and encoded as FastCGI records. */

#include "config.h"

#include "pipeline.h"

static const char hs_secret[] = "Fuzz-Pipeline-Access-Secret-0123456789abcdef!";

/* Decodes the escapes of s[0..n) into out (which has room for n bytes);
 * returns the decoded length. */
static size_t unescape(const char *s, size_t n, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            char e = s[i + 1];
            int v = -1;
            switch (e) {
            case 'r': v = '\r'; break;
            case 'n': v = '\n'; break;
            case 't': v = '\t'; break;
            case '0': v = 0; break;
            case '\\': v = '\\'; break;
            case 'x':
                if (i + 3 < n) {
                    char hex[3] = {s[i + 2], s[i + 3], 0};
                    char *end;
                    long h = strtol(hex, &end, 16);
                    if (end == hex + 2) {
                        out[o++] = (char)h;
                        i += 3;
                        continue;
                    }
                }
                break;
            default: break;
            }
            if (v >= 0) {
                out[o++] = (char)v;
                i++;
                continue;
            }
        }
        out[o++] = c;
    }
    return o;
}

static bool word_is(const char *line, size_t n, const char *word, const char **arg, size_t *argn)
{
    size_t wl = strlen(word);
    if (n < wl || memcmp(line, word, wl) != 0 || (n > wl && line[wl] != ' '))
        return false;
    *arg = n > wl ? line + wl + 1 : line + n;
    *argn = n > wl ? n - wl - 1 : 0;
    return true;
}

static long num_arg(const char *a, size_t n, long min, long max, long dflt)
{
    char tmp[24];
    if (n == 0 || n >= sizeof tmp)
        return dflt;
    memcpy(tmp, a, n);
    tmp[n] = '\0';
    char *end;
    long v = strtol(tmp, &end, 10);
    return *end || v < min || v > max ? dflt : v;
}

static void add_param(input *in, m8_arena *a, const char *name, size_t nl, const char *value,
                      size_t vl)
{
    if (in->n >= MAX_PARAMS)
        return;
    param *p = &in->params[in->n++];
    p->name = m8_arena_strndup(a, name, nl);
    p->value = m8_arena_strndup(a, value, vl);
    p->nl = nl;
    p->vl = vl;
    if (!p->name || !p->value)
        in->n--;
}

/* The token for a signed payload: JOSE header, payload, signature. */
static void add_token(input *in, m8_arena *a, bool rs256, const char *payload, size_t pl)
{
    m8_buf tok;
    m8_buf_init(&tok, 4 * M8_MAX_TOKEN_BYTES);
    const char *dflt =
        rs256 ? "{\"alg\":\"RS256\",\"typ\":\"JWT\"}" : "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const char *jose = in->jose ? in->jose : dflt;
    size_t jl = in->jose ? in->jose_len : strlen(dflt);
    m8_b64url_encode(&tok, (const unsigned char *)jose, jl);
    m8_buf_putc(&tok, '.');
    m8_b64url_encode(&tok, (const unsigned char *)payload, pl);
    unsigned char sig[512];
    size_t sl = 0;
    if (rs256) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        sl = sizeof sig;
        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, rsa_key) != 1 ||
            EVP_DigestSign(md, sig, &sl, (const unsigned char *)tok.data, tok.len) != 1)
            die("RS256 signing failed");
        EVP_MD_CTX_free(md);
    } else {
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)hs_secret, sizeof hs_secret - 1);
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)tok.data, tok.len);
        crypto_auth_hmacsha256_final(&st, sig);
        sl = crypto_auth_hmacsha256_BYTES;
    }
    if (in->tamper >= 0)
        sig[(size_t)in->tamper / 8 % sl] ^= (unsigned char)(1u << (in->tamper % 8));
    m8_buf_putc(&tok, '.');
    m8_b64url_encode(&tok, sig, sl);
    m8_buf hv;
    m8_buf_init(&hv, 8 * M8_MAX_TOKEN_BYTES);
    if (in->scheme)
        m8_buf_append(&hv, in->scheme, in->scheme_len);
    else
        m8_buf_puts(&hv, "Bearer");
    m8_buf_putc(&hv, ' ');
    if (tok.data)
        m8_buf_append(&hv, tok.data, tok.len);
    if (hv.data)
        add_param(in, a, "HTTP_AUTHORIZATION", 18, hv.data, hv.len);
    m8_buf_free(&hv);
    m8_buf_free(&tok);
    in->jose = NULL;
    in->tamper = -1;
}

void parse_input(input *in, m8_arena *a, const char *d, size_t size)
{
    memset(in, 0, sizeof *in);
    in->split = 65535;
    in->tamper = -1;
    size_t pos = 0;
    char *scratch = m8_arena_alloc(a, size + 1);
    char *scratch2 = m8_arena_alloc(a, size + 1);
    if (!scratch || !scratch2)
        return;
    while (pos < size) {
        const char *nl = memchr(d + pos, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - (d + pos)) : size - pos;
        const char *line = d + pos;
        pos += len + (nl ? 1 : 0);
        if (len == 0) {
            in->body = d + pos;
            in->body_len = size - pos;
            break;
        }
        const char *arg;
        size_t an;
        if (line[0] == '@') {
            if (word_is(line, len, "@app", &arg, &an)) {
                in->app = (int)num_arg(arg, an, 0, N_APPS - 1, 0);
            } else if (word_is(line, len, "@keep", &arg, &an)) {
                in->keep = true;
            } else if (word_is(line, len, "@abort", &arg, &an)) {
                in->abort_req = true;
            } else if (word_is(line, len, "@split", &arg, &an)) {
                in->split = (size_t)num_arg(arg, an, 1, 65535, 65535);
            } else if (word_is(line, len, "@tamper", &arg, &an)) {
                in->tamper = num_arg(arg, an, 0, 4095, -1);
            } else if (word_is(line, len, "@jose", &arg, &an)) {
                in->jose_len = unescape(arg, an, scratch);
                in->jose = m8_arena_strndup(a, scratch, in->jose_len);
            } else if (word_is(line, len, "@scheme", &arg, &an)) {
                in->scheme_len = unescape(arg, an, scratch);
                in->scheme = m8_arena_strndup(a, scratch, in->scheme_len);
            } else if (word_is(line, len, "@hs256", &arg, &an) ||
                       word_is(line, len, "@rs256", &arg, &an)) {
                size_t pl = unescape(arg, an, scratch);
                add_token(in, a, line[1] == 'r', scratch, pl);
            }
            continue;
        }
        const char *eq = memchr(line, '=', len);
        size_t rawn = eq ? (size_t)(eq - line) : len;
        size_t nlen = unescape(line, rawn, scratch);
        size_t vlen = eq ? unescape(eq + 1, len - rawn - 1, scratch2) : 0;
        if (nlen == 14 && memcmp(scratch, "CONTENT_LENGTH", 14) == 0)
            in->have_cl = true;
        add_param(in, a, scratch, nlen, scratch2, vlen);
    }
    if (!in->have_cl && in->body_len) {
        char cl[24];
        int n = snprintf(cl, sizeof cl, "%zu", in->body_len);
        add_param(in, a, "CONTENT_LENGTH", 14, cl, (size_t)n);
    }
}

/* ------------------------------------------------------------ records */

static void records(m8_buf *out, int type, uint16_t id, const char *p, size_t n, size_t split)
{
    while (n) {
        size_t k = n < split ? n : split;
        m8_fcgi_record(out, type, id, p, k);
        p += k;
        n -= k;
    }
    m8_fcgi_record(out, type, id, NULL, 0);
}

void encode_request(m8_buf *out, const input *in, uint16_t id)
{
    unsigned char begin[8] = {0, M8_FCGI_RESPONDER, (unsigned char)(in->keep ? 1 : 0), 0, 0, 0, 0,
                              0};
    m8_fcgi_record(out, M8_FCGI_BEGIN_REQUEST, id, begin, sizeof begin);
    m8_buf stream;
    m8_buf_init(&stream, 8u << 20);
    for (size_t i = 0; i < in->n; i++)
        m8_fcgi_encode_pair(&stream, in->params[i].name, in->params[i].nl, in->params[i].value,
                            in->params[i].vl);
    records(out, M8_FCGI_PARAMS, id, stream.data, stream.len, in->split);
    m8_buf_free(&stream);
    if (in->abort_req) {
        m8_fcgi_record(out, M8_FCGI_ABORT_REQUEST, id, NULL, 0);
        return;
    }
    records(out, M8_FCGI_STDIN, id, in->body, in->body_len, in->split);
}
