/*
 * ejson.c - BSON to MongoDB relaxed Extended JSON v2, compact, for the
 * `payload: json` of every sink (ejson.h; docs/envelope.md, "The JSON
 * payload", is the user's description of the output).
 *
 * Why a writer of our own (issue 17). The project prefers a Debian library,
 * so the candidates were measured first (bench/bench_json, figures below):
 * - libbson's bson_as_relaxed_extended_json (what outboxd used): the right
 *   types, but spaces everywhere, doubles as "%.20g" (19.95 is
 *   19.949999999999999289), dates after 9999 as "10000-01-01T..." (no
 *   reader takes it), regex options it does not know dropped, and NULL for
 *   a string with the bytes C0 80 (which liboutbox's parser accepts as a
 *   NUL) or a code, symbol or regex that is not UTF-8: outboxd aborted.
 * - jansson 2.14: doubles as "%.17g" (19.949999999999999) or a fixed
 *   precision (JSON_REAL_PRECISION), never the shortest form; it knows no
 *   BSON type, so each one's Extended JSON form would be ours anyway, built
 *   as a tree of jansson objects before it is printed.
 * - json-c 0.16: "%.17g" as well, the same tree to build, and it escapes
 *   '/' unless told not to.
 * - yyjson (shortest doubles) is not in Debian 12. Debian 12's shortest
 *   double printers, libdouble-conversion (ToShortest) and libdragonbox,
 *   are C++: a C++ compiler and runtime in this C11 build for what the
 *   60 lines of shortest() below do with printf and strtod.
 * None prints the shortest round-trip double, and every one would add a
 * tree of the document in between. What is left to write is a walk of the
 * BSON with a JSON string escaper and a double formatter, about 500 lines,
 * tested against Python's json module and pymongo's bson.json_util
 * (outboxd/test_ejson.c, outboxd/test_ejson_roundtrip.sh).
 *
 * Measured with bench/bench_json (-O2; --n 100000 --repeat 5, the median)
 * on a 2-core machine busy with other builds (load 3.8): single figures
 * moved by up to a third between runs, the ratios within a run less.
 * Events/s for one encoding of the event's data, the output freed
 * (jansson's and json-c's include building their tree from the BSON);
 * then the bytes of JSON:
 *
 *   document (BSON bytes)  outboxd         libbson         jansson 2.14    json-c 0.16
 *   order (158)            1,522,000  150  226,000  183    202,000  150    393,000  150
 *   checkout (559)           526,000  560   53,200  777     61,200  629     82,200  629
 *   telemetry (618)           67,700  572   29,700 1188     34,200  961     31,600  961
 *   20.37 written as       20.37      20.370000000000000995  20.370000000000001 (both)
 *
 * Over four runs the writer did 6.7-9.0x libbson's rate on the order
 * event, 8.6-10.4x on the checkout and 1.4-2.7x on the telemetry (48
 * doubles that nearly all take the printf path below), with 18-52% fewer
 * bytes.
 *
 * Shortest doubles. A finite double is printed with the fewest significant
 * digits that strtod reads back to the same bits:
 * - an integer below 2^53: its own digits, without printf.
 * - n / 10^k with n below 2^50 (prices, quantities, most readings): the
 *   first k for which the division gives back x; no printf, no strtod
 *   (n and 10^k are exact, so the correctly rounded division is what
 *   strtod makes of "n e-k"; the product x * 10^k is off by at most
 *   1/4, so no shorter k is missed).
 * - else from printf's correctly rounded "%.16e" (17 digits; glibc's
 *   printf is exact and its strtod correctly rounded), rounded to 15 and
 *   16 digits (the same as printf's rounding of x unless the digits
 *   dropped are 5 then zeros: then printf is asked for that precision),
 *   each checked with strtod:
 *   For a normal double, 15 digits, then 16, then 17: if any decimal of at most
 *   15 digits reads back as x, it is within half an ulp of x (at most
 *   2^-53 x), less than half the spacing of 15-digit decimals (more than
 *   5e-16 x), so it is x rounded to 15 digits: printf's answer; trailing
 *   zeros stripped, it is the shortest. With 16 digits the nearest one
 *   reads back whenever any does, since x's rounding interval is symmetric,
 *   except at a power of two, where the interval is twice as wide above:
 *   there the 16-digit decimal just above the nearest is tried as well
 *   (46 of the 2,046 normal powers of two need it, e.g. 2^-1017 is
 *   7.120236347223045e-307). 17 digits always read back.
 *   A subnormal's spacing is far coarser than its digits (5e-324 is
 *   4.9406564584124654e-324), so 1 to 16 digits are tried in turn; rare.
 * The digits are then laid out as printf's "%.20g" lays them out (what
 * libbson did): plain notation for exponents -4..19, else d.ddde+XX, and
 * ".0" after an integral value in plain notation so that readers tell it
 * from an int. Python's repr finds the same digits (Gay's dtoa); the round
 * trip test checks 10,000 random documents bit for bit.
 */
#include "ejson.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef outboxd_json_text_t buf_t; /* ejson.h: the same growing text */

static void grow(buf_t *b, size_t need) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < need) {
        if (cap > SIZE_MAX / 2)
            abort();
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p)
        abort(); /* out of memory: outboxd aborts, as libbson does */
    b->p = p;
    b->cap = cap;
}

static inline void reserve(buf_t *b, size_t n) {
    if (b->cap - b->len < n)
        grow(b, n);
}

static inline void put_c(buf_t *b, char c) {
    reserve(b, 1);
    b->p[b->len++] = c;
}

static inline void put_n(buf_t *b, const char *s, size_t n) {
    reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define PUT_LIT(b, s) put_n((b), (s), sizeof(s) - 1)

static const char hex[] = "0123456789abcdef";

/* The length of the well-formed UTF-8 sequence at p (Unicode's table 3-7:
 * no overlong forms, no surrogates, nothing above U+10FFFF), 0 if none. */
static size_t utf8_seq(const unsigned char *p, size_t avail) {
    unsigned c = p[0];
    if (c >= 0xC2 && c <= 0xDF)
        return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        unsigned lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        unsigned lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        return avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/* A JSON string: only what JSON requires is escaped ('"', '\\' and the
 * control characters below U+0020); valid UTF-8, U+2028 and U+2029
 * included, passes unchanged. The two bytes C0 80 are the NUL that
 * libbson's validator (and so liboutbox's parser) accepts: \u0000. Any
 * other byte that does not start a well-formed sequence becomes \ufffd,
 * one per byte, so the output is always valid UTF-8 (liboutbox's parser
 * checks strings, but not code, symbols, regexes or DBPointer names). */
static void put_str(buf_t *b, const char *s, size_t n) {
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    reserve(b, n + 2);
    b->p[b->len++] = '"';
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p > run)
            put_n(b, (const char *)run, (size_t)(p - run));
        if (p == end)
            break;
        unsigned c = *p;
        if (c >= 0x80) {
            size_t k = utf8_seq(p, (size_t)(end - p));
            if (k) {
                put_n(b, (const char *)p, k);
                p += k;
            } else if (c == 0xC0 && p + 1 < end && p[1] == 0x80) {
                PUT_LIT(b, "\\u0000");
                p += 2;
            } else {
                PUT_LIT(b, "\\ufffd");
                p++;
            }
            continue;
        }
        reserve(b, 6);
        char *o = b->p + b->len;
        o[0] = '\\';
        switch (c) {
        case '"': o[1] = '"'; b->len += 2; break;
        case '\\': o[1] = '\\'; b->len += 2; break;
        case '\b': o[1] = 'b'; b->len += 2; break;
        case '\f': o[1] = 'f'; b->len += 2; break;
        case '\n': o[1] = 'n'; b->len += 2; break;
        case '\r': o[1] = 'r'; b->len += 2; break;
        case '\t': o[1] = 't'; b->len += 2; break;
        default:
            memcpy(o + 1, "u00", 3);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            b->len += 6;
        }
        p++;
    }
    put_c(b, '"');
}

/* ejson.h's text writer for hand-laid JSON: the same buffer and escaper. */
void outboxd_json_reserve(outboxd_json_text_t *t, size_t n) {
    reserve(t, n);
}

void outboxd_json_raw(outboxd_json_text_t *t, const char *s, size_t n) {
    put_n(t, s, n);
}

void outboxd_json_string(outboxd_json_text_t *t, const char *s, size_t n) {
    put_str(t, s, n);
}

/* Decimal digits of v into out (at least 21 bytes); returns the length. */
static size_t fmt_u64(uint64_t v, char *out) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

static size_t fmt_i64(int64_t v, char *out) {
    if (v < 0) {
        out[0] = '-';
        return 1 + fmt_u64((uint64_t)0 - (uint64_t)v, out + 1);
    }
    return fmt_u64((uint64_t)v, out);
}

static void put_i64(buf_t *b, int64_t v) {
    reserve(b, 21);
    b->len += fmt_i64(v, b->p + b->len);
}

/* A decimal: the significant digits d[0..n) (ASCII) and the exponent of
 * the first, d[0].d[1]...d[n-1] x 10^ex. */
typedef struct {
    char d[24];
    int n, ex;
} dec_t;

/* Whether strtod reads the decimal back as x. The text has no decimal
 * point ("19950e-3"), so the locale plays no part. */
static bool dec_reads_back(const dec_t *c, double x) {
    char text[48];
    memcpy(text, c->d, (size_t)c->n);
    snprintf(text + c->n, sizeof text - (size_t)c->n, "e%d", c->ex - (c->n - 1));
    return strtod(text, NULL) == x;
}

/* From printf's "%.*e" text, whatever the locale's decimal point. */
static void dec_from_e(const char *e, dec_t *c) {
    c->n = 0;
    for (; *e && *e != 'e'; e++)
        if (*e >= '0' && *e <= '9' && c->n < (int)sizeof c->d)
            c->d[c->n++] = *e;
    c->ex = *e == 'e' ? atoi(e + 1) : 0;
}

static void dec_strip(dec_t *c) {
    while (c->n > 1 && c->d[c->n - 1] == '0')
        c->n--;
}

/* One unit more in the last digit (a carry out of the first makes it 1
 * followed by zeros, one power of ten up). */
static void dec_increment(dec_t *c) {
    for (int i = c->n - 1; i >= 0; i--) {
        if (c->d[i] < '9') {
            c->d[i]++;
            return;
        }
        c->d[i] = '0';
    }
    c->d[0] = '1';
    c->ex++;
}

/* s (printf's correctly rounded 17 digits of x) rounded to its first p
 * digits, which is x correctly rounded to p digits unless the digits
 * dropped are 5 then zeros (x may be just below or above the half, or on
 * it): false then, and the caller asks printf. */
static bool dec_round(const dec_t *s, int p, dec_t *c) {
    *c = *s;
    c->n = p;
    if (s->d[p] < '5')
        return true;
    bool half = s->d[p] == '5';
    for (int i = p + 1; i < s->n && half; i++)
        half = s->d[i] == '0';
    if (half)
        return false;
    dec_increment(c);
    return true;
}

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The shortest decimal that reads back as x (finite, > 0): the reasoning
 * is atop this file. */
static void shortest(double x, dec_t *out) {
    /* Most doubles in events are short decimals (prices, quantities,
     * readings): n / 10^k with n below 2^50 is found without printf. n and
     * 10^k are exact doubles, so the division is x exactly when strtod
     * would read "n e-k" as x; the product's error is at most 1/4, so the
     * first k that works is the fewest digits. */
    for (int k = 0; k <= 22; k++) {
        double y = x * pow10_exact[k];
        if (y >= 1125899906842624.0) /* 2^50 */
            break;
        uint64_t n = (uint64_t)(y + 0.5);
        if (n && (double)n / pow10_exact[k] == x) {
            char tmp[24];
            out->n = (int)fmt_u64(n, tmp);
            memcpy(out->d, tmp, (size_t)out->n);
            out->ex = out->n - 1 - k;
            dec_strip(out);
            return;
        }
    }
    char e[40];
    snprintf(e, sizeof e, "%.16e", x);
    dec_t s17, c;
    dec_from_e(e, &s17);
    bool subnormal = x < DBL_MIN;
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    for (int p = subnormal ? 1 : 15; p <= 16; p++) {
        if (!dec_round(&s17, p, &c)) {
            snprintf(e, sizeof e, "%.*e", p - 1, x);
            dec_from_e(e, &c);
        }
        if (dec_reads_back(&c, x))
            goto found;
        if (p == 16 && !subnormal && (bits & ((UINT64_C(1) << 52) - 1)) == 0) {
            dec_increment(&c); /* a power of two: the wider half above */
            if (dec_reads_back(&c, x))
                goto found;
        }
    }
    c = s17;
found:
    *out = c;
    dec_strip(out);
}

/* A finite double as a JSON number (see atop this file) into out (at
 * least 40 bytes); returns the length. */
static size_t fmt_double(double x, char *out) {
    if (x == 0) {
        if (signbit(x)) {
            memcpy(out, "-0.0", 4);
            return 4;
        }
        memcpy(out, "0.0", 3);
        return 3;
    }
    if (fabs(x) < 9007199254740992.0 && x == (double)(int64_t)x) {
        size_t n = fmt_i64((int64_t)x, out);
        memcpy(out + n, ".0", 2);
        return n + 2;
    }
    size_t n = 0;
    if (x < 0)
        out[n++] = '-';
    dec_t c;
    shortest(fabs(x), &c);
    const char *digits = c.d;
    int nd = c.n, ex = c.ex;
    if (ex >= -4 && ex < 20) {
        if (ex >= 0) {
            for (int i = 0; i <= ex; i++)
                out[n++] = i < nd ? digits[i] : '0';
            out[n++] = '.';
            if (nd > ex + 1)
                for (int i = ex + 1; i < nd; i++)
                    out[n++] = digits[i];
            else
                out[n++] = '0';
        } else {
            out[n++] = '0';
            out[n++] = '.';
            for (int i = 0; i < -ex - 1; i++)
                out[n++] = '0';
            for (int i = 0; i < nd; i++)
                out[n++] = digits[i];
        }
    } else {
        out[n++] = digits[0];
        if (nd > 1) {
            out[n++] = '.';
            for (int i = 1; i < nd; i++)
                out[n++] = digits[i];
        }
        out[n++] = 'e';
        out[n++] = ex < 0 ? '-' : '+';
        int a = ex < 0 ? -ex : ex;
        if (a < 10)
            out[n++] = '0';
        n += fmt_u64((uint64_t)a, out + n);
    }
    return n;
}

static void put_double(buf_t *b, double x) {
    if (isnan(x)) {
        PUT_LIT(b, "{\"$numberDouble\":\"NaN\"}");
    } else if (isinf(x)) {
        if (x > 0)
            PUT_LIT(b, "{\"$numberDouble\":\"Infinity\"}");
        else
            PUT_LIT(b, "{\"$numberDouble\":\"-Infinity\"}");
    } else {
        reserve(b, 40);
        b->len += fmt_double(x, b->p + b->len);
    }
}

static void put_oid_hex(buf_t *b, const bson_oid_t *oid) {
    reserve(b, 26);
    char *o = b->p + b->len;
    *o++ = '"';
    for (int i = 0; i < 12; i++) {
        *o++ = hex[oid->bytes[i] >> 4];
        *o++ = hex[oid->bytes[i] & 15];
    }
    *o = '"';
    b->len += 26;
}

static void put_base64(buf_t *b, const uint8_t *d, uint32_t n) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    reserve(b, 4 * ((size_t)n / 3 + 1));
    char *o = b->p + b->len;
    uint32_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)d[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
}

static void put_2digits(char *o, unsigned v) {
    o[0] = (char)('0' + v / 10);
    o[1] = (char)('0' + v % 10);
}

/* {"$date":"YYYY-MM-DDTHH:MM:SS[.mmm]Z"} for 1970..9999 (milliseconds
 * only when not zero, as libbson wrote them), else the count of
 * milliseconds as {"$date":{"$numberLong":"..."}}: the spec's relaxed
 * form, which every Extended JSON reader takes. */
static void put_date(buf_t *b, int64_t ms) {
    if (ms < 0 || ms > INT64_C(253402300799999)) {
        PUT_LIT(b, "{\"$date\":{\"$numberLong\":\"");
        put_i64(b, ms);
        PUT_LIT(b, "\"}}");
        return;
    }
    int64_t secs = ms / 1000, days = secs / 86400;
    unsigned msec = (unsigned)(ms % 1000), sod = (unsigned)(secs % 86400);
    /* Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil,
     * inverted; days >= 0 here). */
    int64_t z = days + 719468, era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned day = doy - (153 * mp + 2) / 5 + 1;
    unsigned month = mp < 10 ? mp + 3 : mp - 9;
    unsigned year = (unsigned)(yoe + era * 400) + (month <= 2);
    PUT_LIT(b, "{\"$date\":\"");
    reserve(b, 28);
    char *o = b->p + b->len;
    put_2digits(o, year / 100);
    put_2digits(o + 2, year % 100);
    o[4] = '-';
    put_2digits(o + 5, month);
    o[7] = '-';
    put_2digits(o + 8, day);
    o[10] = 'T';
    put_2digits(o + 11, sod / 3600);
    o[13] = ':';
    put_2digits(o + 14, sod / 60 % 60);
    o[16] = ':';
    put_2digits(o + 17, sod % 60);
    size_t n = 19;
    if (msec) {
        o[19] = '.';
        o[20] = (char)('0' + msec / 100);
        put_2digits(o + 21, msec % 100);
        n = 23;
    }
    memcpy(o + n, "Z\"}", 3);
    b->len += n + 3;
}

/* Regex options in alphabetical order, as the spec asks; all of them (libbson
 * dropped those outside "ilmsux"). Options that are not ASCII are left in
 * their order, not to split a character. */
static void put_regex_options(buf_t *b, const char *opts) {
    size_t n = strlen(opts);
    char small[16], *s = n < sizeof small ? small : malloc(n + 1);
    if (!s)
        abort();
    memcpy(s, opts, n + 1);
    bool ascii = true;
    for (size_t i = 0; i < n; i++)
        ascii = ascii && (unsigned char)s[i] < 0x80;
    if (ascii)
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && s[j - 1] > s[j]; j--) {
                char t = s[j];
                s[j] = s[j - 1];
                s[j - 1] = t;
            }
    put_str(b, s, n);
    if (s != small)
        free(s);
}

enum { CLOSE_DOC, CLOSE_ARRAY, CLOSE_SCOPE };

typedef struct {
    bson_iter_t it;
    uint32_t len; /* the (sub)document's length, to tell its end from corruption */
    int close;
    bool first;
} frame_t;

/* A walk with a stack of its own, not recursion: a well-formed document
 * may be nested far deeper than any C stack (outboxd's envelope limit of
 * 100 levels is liboutbox's, not this function's promise). */
char *outboxd_ejson_encode(const bson_t *doc, size_t *len) {
    frame_t small[32], *stack = small;
    size_t depth = 0, cap = sizeof small / sizeof small[0];
    buf_t b = {0};
    bool ok = false;

    if (!bson_iter_init(&stack[0].it, doc))
        return NULL;
    grow(&b, (size_t)doc->len + doc->len / 4 + 64);
    stack[0].len = doc->len;
    stack[0].close = CLOSE_DOC;
    stack[0].first = true;
    depth = 1;
    put_c(&b, '{');

    while (depth) {
        frame_t *f = &stack[depth - 1];
        if (!bson_iter_next(&f->it)) {
            /* The end, or corrupt bytes: libbson stops at both, and only
             * the end leaves the iterator on the document's last byte. */
            if (f->it.err_off || f->it.off + 1 != f->len)
                goto done;
            if (f->close == CLOSE_DOC)
                put_c(&b, '}');
            else if (f->close == CLOSE_ARRAY)
                put_c(&b, ']');
            else
                PUT_LIT(&b, "}}");
            depth--;
            continue;
        }
        if (!f->first)
            put_c(&b, ',');
        f->first = false;
        if (f->close != CLOSE_ARRAY) {
            put_str(&b, bson_iter_key(&f->it), bson_iter_key_len(&f->it));
            put_c(&b, ':');
        }
        bson_iter_t *it = &f->it;
        bson_iter_t child;
        int child_close = -1;
        uint32_t n;
        switch (bson_iter_type(it)) {
        case BSON_TYPE_DOUBLE:
            put_double(&b, bson_iter_double(it));
            break;
        case BSON_TYPE_UTF8: {
            const char *s = bson_iter_utf8(it, &n);
            put_str(&b, s, n);
            break;
        }
        case BSON_TYPE_DOCUMENT:
        case BSON_TYPE_ARRAY:
            if (!bson_iter_recurse(it, &child))
                goto done;
            child_close = bson_iter_type(it) == BSON_TYPE_ARRAY ? CLOSE_ARRAY : CLOSE_DOC;
            put_c(&b, child_close == CLOSE_ARRAY ? '[' : '{');
            break;
        case BSON_TYPE_BINARY: {
            bson_subtype_t sub;
            const uint8_t *d;
            bson_iter_binary(it, &sub, &n, &d);
            PUT_LIT(&b, "{\"$binary\":{\"base64\":\"");
            put_base64(&b, d, n);
            PUT_LIT(&b, "\",\"subType\":\"");
            put_c(&b, hex[((unsigned)sub >> 4) & 15]);
            put_c(&b, hex[(unsigned)sub & 15]);
            PUT_LIT(&b, "\"}}");
            break;
        }
        case BSON_TYPE_UNDEFINED:
            PUT_LIT(&b, "{\"$undefined\":true}");
            break;
        case BSON_TYPE_OID:
            PUT_LIT(&b, "{\"$oid\":");
            put_oid_hex(&b, bson_iter_oid(it));
            put_c(&b, '}');
            break;
        case BSON_TYPE_BOOL:
            if (bson_iter_bool(it))
                PUT_LIT(&b, "true");
            else
                PUT_LIT(&b, "false");
            break;
        case BSON_TYPE_DATE_TIME:
            put_date(&b, bson_iter_date_time(it));
            break;
        case BSON_TYPE_NULL:
            PUT_LIT(&b, "null");
            break;
        case BSON_TYPE_REGEX: {
            const char *opts = NULL;
            const char *pattern = bson_iter_regex(it, &opts);
            PUT_LIT(&b, "{\"$regularExpression\":{\"pattern\":");
            put_str(&b, pattern, strlen(pattern));
            PUT_LIT(&b, ",\"options\":");
            put_regex_options(&b, opts ? opts : "");
            PUT_LIT(&b, "}}");
            break;
        }
        case BSON_TYPE_DBPOINTER: {
            const char *coll;
            const bson_oid_t *oid;
            bson_iter_dbpointer(it, &n, &coll, &oid);
            PUT_LIT(&b, "{\"$dbPointer\":{\"$ref\":");
            put_str(&b, coll, n);
            PUT_LIT(&b, ",\"$id\":{\"$oid\":");
            put_oid_hex(&b, oid);
            PUT_LIT(&b, "}}}");
            break;
        }
        case BSON_TYPE_CODE: {
            const char *code = bson_iter_code(it, &n);
            PUT_LIT(&b, "{\"$code\":");
            put_str(&b, code, n);
            put_c(&b, '}');
            break;
        }
        case BSON_TYPE_SYMBOL: {
            const char *sym = bson_iter_symbol(it, &n);
            PUT_LIT(&b, "{\"$symbol\":");
            put_str(&b, sym, n);
            put_c(&b, '}');
            break;
        }
        case BSON_TYPE_CODEWSCOPE: {
            uint32_t scope_len;
            const uint8_t *scope;
            const char *code = bson_iter_codewscope(it, &n, &scope_len, &scope);
            if (!code || !bson_iter_init_from_data(&child, scope, scope_len))
                goto done;
            PUT_LIT(&b, "{\"$code\":");
            put_str(&b, code, n);
            PUT_LIT(&b, ",\"$scope\":{");
            child_close = CLOSE_SCOPE;
            break;
        }
        case BSON_TYPE_INT32:
            put_i64(&b, bson_iter_int32(it));
            break;
        case BSON_TYPE_INT64:
            put_i64(&b, bson_iter_int64(it));
            break;
        case BSON_TYPE_TIMESTAMP: {
            uint32_t t, i;
            bson_iter_timestamp(it, &t, &i);
            PUT_LIT(&b, "{\"$timestamp\":{\"t\":");
            put_i64(&b, t);
            PUT_LIT(&b, ",\"i\":");
            put_i64(&b, i);
            PUT_LIT(&b, "}}");
            break;
        }
        case BSON_TYPE_DECIMAL128: {
            bson_decimal128_t dec;
            char text[BSON_DECIMAL128_STRING];
            bson_iter_decimal128(it, &dec);
            bson_decimal128_to_string(&dec, text);
            PUT_LIT(&b, "{\"$numberDecimal\":\"");
            put_n(&b, text, strlen(text));
            PUT_LIT(&b, "\"}");
            break;
        }
        case BSON_TYPE_MAXKEY:
            PUT_LIT(&b, "{\"$maxKey\":1}");
            break;
        case BSON_TYPE_MINKEY:
            PUT_LIT(&b, "{\"$minKey\":1}");
            break;
        default: /* bson_iter_next stops before a type it does not know */
            goto done;
        }
        if (child_close >= 0) {
            if (depth == cap) {
                size_t ncap = cap * 2;
                frame_t *bigger = malloc(ncap * sizeof *bigger);
                if (!bigger)
                    abort();
                memcpy(bigger, stack, depth * sizeof *stack);
                if (stack != small)
                    free(stack);
                stack = bigger;
                cap = ncap;
            }
            frame_t *c = &stack[depth++];
            c->it = child;
            c->len = child.len;
            c->close = child_close;
            c->first = true;
        }
    }
    ok = true;

done:
    if (stack != small)
        free(stack);
    if (!ok) {
        free(b.p);
        return NULL;
    }
    put_c(&b, '\0');
    if (len)
        *len = b.len - 1;
    return b.p;
}
