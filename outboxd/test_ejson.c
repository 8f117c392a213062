/*
 * test_ejson.c - the JSON that sinks get with `payload: json`
 * (outboxd/ejson.h, docs/envelope.md "The JSON payload"): every BSON type
 * in its relaxed Extended JSON v2 form, compact; doubles in the shortest
 * text that reads back to the same bits (19.95, not 19.949999999999999289),
 * integers as integers; dates, ObjectIds and binaries as documented;
 * strings escaped as JSON requires and no more, and always valid UTF-8,
 * including the strings libbson's encoder gave up on. No server needed;
 * the round trip through Python's readers is test_ejson_roundtrip.sh.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "ejson.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* doc as JSON, checked to be NUL-terminated at the length it reports. */
static char *enc(const bson_t *doc) {
    size_t len = 12345;
    char *json = outboxd_ejson_encode(doc, &len);
    assert_non_null(json);
    assert_int_equal(strlen(json), len);
    return json;
}

static void assert_json(const bson_t *doc, const char *want) {
    char *json = enc(doc);
    assert_string_equal(json, want);
    free(json);
}

/* {"d":<x>} as JSON. */
static char *double_json(double x) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_DOUBLE(&b, "d", x);
    char *json = enc(&b);
    bson_destroy(&b);
    return json;
}

static void assert_double(double x, const char *want) {
    char *json = double_json(x);
    char expected[128];
    snprintf(expected, sizeof expected, "{\"d\":%s}", want);
    assert_string_equal(json, expected);
    free(json);
}

static void doubles_are_the_shortest_text_that_reads_back(void **state) {
    assert_double(19.95, "19.95");
    assert_double(0.1, "0.1");
    assert_double(1.0 / 3, "0.3333333333333333");
    assert_double(-1.5, "-1.5");
    assert_double(123456.789, "123456.789");
    assert_double(0.0001, "0.0001");
    assert_double(0.00001, "1e-05");
    assert_double(DBL_MAX, "1.7976931348623157e+308");
    assert_double(-DBL_MAX, "-1.7976931348623157e+308");
    assert_double(DBL_MIN, "2.2250738585072014e-308");
    /* subnormals: far fewer digits than "%.15g" would print */
    assert_double(5e-324, "5e-324");
    assert_double(-5e-324, "-5e-324");
    assert_double(4.2653749046806e-310, "4.2653749046806e-310");
    /* a power of two whose shortest 16 digits are not the nearest 16 */
    assert_double(ldexp(1.0, -1017), "7.120236347223045e-307");
    assert_double(1e21, "1e+21");
    assert_double(1e20, "1e+20");
    assert_double(1.5e300, "1.5e+300");
}

static void integral_doubles_keep_a_decimal_point(void **state) {
    assert_double(3.0, "3.0");
    assert_double(-7.0, "-7.0");
    assert_double(0.0, "0.0");
    assert_double(-0.0, "-0.0");
    assert_double(1e15, "1000000000000000.0");
    assert_double(9007199254740992.0, "9007199254740992.0");
    assert_double(1e19, "10000000000000000000.0");
    assert_double(12345678901234567890.0, "12345678901234567000.0");
}

static void non_finite_doubles_are_wrapped(void **state) {
    assert_double(NAN, "{\"$numberDouble\":\"NaN\"}");
    assert_double(INFINITY, "{\"$numberDouble\":\"Infinity\"}");
    assert_double(-INFINITY, "{\"$numberDouble\":\"-Infinity\"}");
}

/* Random bit patterns: each finite double reads back to the same bits
 * through strtod, in at most 17 significant digits. */
static void random_doubles_read_back_bit_for_bit(void **state) {
    uint64_t s = 0x9E3779B97F4A7C15u; /* xorshift64*, fixed seed */
    int tested = 0;
    for (int i = 0; i < 20000; i++) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t bits = s * 0x2545F4914F6CDD1Du;
        if (i % 4 == 1)
            bits &= 0x800FFFFFFFFFFFFFu; /* subnormals too */
        double x;
        memcpy(&x, &bits, sizeof x);
        if (!isfinite(x))
            continue;
        char *json = double_json(x);
        const char *num = json + 5; /* after {"d": */
        char *end;
        double back = strtod(num, &end);
        assert_string_equal(end, "}");
        uint64_t back_bits;
        memcpy(&back_bits, &back, sizeof back);
        if (back_bits != bits)
            fail_msg("%s read back as %.17g", json, back);
        int digits = 0;
        for (const char *p = num; p < end && *p != 'e'; p++)
            digits += *p >= '0' && *p <= '9';
        assert_true(digits <= 21); /* 17 significant, and the zeros of plain notation */
        free(json);
        tested++;
    }
    assert_true(tested > 19000);
}

static void integers_stay_integers(void **state) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_INT32(&b, "a", INT32_MIN);
    BSON_APPEND_INT32(&b, "b", INT32_MAX);
    BSON_APPEND_INT32(&b, "c", 0);
    BSON_APPEND_INT64(&b, "d", INT64_MIN);
    BSON_APPEND_INT64(&b, "e", INT64_MAX);
    BSON_APPEND_INT64(&b, "f", 42);
    assert_json(&b, "{\"a\":-2147483648,\"b\":2147483647,\"c\":0,\"d\":-9223372036854775808,"
                    "\"e\":9223372036854775807,\"f\":42}");
    bson_destroy(&b);
}

static void assert_date(int64_t ms, const char *want) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_DATE_TIME(&b, "t", ms);
    char expected[128];
    snprintf(expected, sizeof expected, "{\"t\":{\"$date\":%s}}", want);
    assert_json(&b, expected);
    bson_destroy(&b);
}

static void dates_are_iso_in_1970_to_9999_and_milliseconds_outside(void **state) {
    assert_date(0, "\"1970-01-01T00:00:00Z\"");
    assert_date(1795718725123, "\"2026-11-26T18:45:25.123Z\"");
    assert_date(1795718725000, "\"2026-11-26T18:45:25Z\"");
    assert_date(1795718725007, "\"2026-11-26T18:45:25.007Z\"");
    assert_date(951782400000, "\"2000-02-29T00:00:00Z\"");
    assert_date(1709251199999, "\"2024-02-29T23:59:59.999Z\"");
    assert_date(94694399999, "\"1972-12-31T23:59:59.999Z\"");
    assert_date(4107542400000, "\"2100-03-01T00:00:00Z\"");
    assert_date(253402300799999, "\"9999-12-31T23:59:59.999Z\"");
    assert_date(253402300800000, "{\"$numberLong\":\"253402300800000\"}");
    assert_date(-1, "{\"$numberLong\":\"-1\"}");
    assert_date(INT64_MIN, "{\"$numberLong\":\"-9223372036854775808\"}");
    assert_date(INT64_MAX, "{\"$numberLong\":\"9223372036854775807\"}");
}

/* Days of 1970..9999 against gmtime_r, at a varying time of day: every
 * 37th day (through every weekday and day of the month), and every day of
 * 1999..2001 and 2099..2101 (the leap years that are not every 4th). */
static bool day_to_test(int64_t day) {
    return day % 37 == 0 || (day >= 10592 && day < 11688) || (day >= 47117 && day < 48212) || day == 2932896;
}

static void dates_agree_with_gmtime(void **state) {
    for (int64_t day = 0; day <= 2932896; day++) {
        if (!day_to_test(day))
            continue;
        int64_t ms = day * 86400000 + (day * 7919 % 86400) * 1000 + day % 1000;
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        char want[64], got[64];
        int n = snprintf(want, sizeof want, "{\"t\":{\"$date\":\"%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        if (ms % 1000)
            snprintf(want + n, sizeof want - (size_t)n, ".%03dZ\"}}", (int)(ms % 1000));
        else
            snprintf(want + n, sizeof want - (size_t)n, "Z\"}}");
        bson_t b = BSON_INITIALIZER;
        BSON_APPEND_DATE_TIME(&b, "t", ms);
        char *json = enc(&b);
        snprintf(got, sizeof got, "%s", json);
        free(json);
        bson_destroy(&b);
        if (strcmp(got, want) != 0)
            fail_msg("day %lld: %s, want %s", (long long)day, got, want);
    }
}

static void strings_escape_what_json_requires_and_nothing_else(void **state) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&b, "s", "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f");
    BSON_APPEND_UTF8(&b, "u", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");       /* é € 😀 */
    BSON_APPEND_UTF8(&b, "ls", "a\xe2\x80\xa8" "b\xe2\x80\xa9" "c");          /* U+2028, U+2029 */
    bson_append_utf8(&b, "nul", -1, "a\0b", 3);
    BSON_APPEND_UTF8(&b, "empty", "");
    assert_json(&b, "{\"s\":\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\","
                    "\"u\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
                    "\"ls\":\"a\xe2\x80\xa8" "b\xe2\x80\xa9" "c\","
                    "\"nul\":\"a\\u0000b\",\"empty\":\"\"}");
    bson_destroy(&b);
}

static void keys_are_escaped_like_strings(void **state) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_INT32(&b, "a\"b", 1);
    BSON_APPEND_INT32(&b, "c\\d", 2);
    BSON_APPEND_INT32(&b, "e\nf\x01", 3);
    BSON_APPEND_INT32(&b, "\xc3\xa9t\xc3\xa9", 4);
    BSON_APPEND_INT32(&b, "", 5);
    BSON_APPEND_INT32(&b, "$oid", 6);
    assert_json(&b, "{\"a\\\"b\":1,\"c\\\\d\":2,\"e\\nf\\u0001\":3,\"\xc3\xa9t\xc3\xa9\":4,\"\":5,\"$oid\":6}");
    bson_destroy(&b);
}

/* Bytes C0 80 (a NUL, for libbson's validator and so for liboutbox's
 * parser) and anything that is not UTF-8 in the types the parser does not
 * check: libbson's encoder returned NULL for each, and outboxd aborted. */
static void strings_that_are_not_utf8_are_still_written_as_utf8(void **state) {
    bson_t b = BSON_INITIALIZER;
    bson_append_utf8(&b, "nul", -1, "a\xc0\x80z", 4);
    BSON_APPEND_CODE(&b, "code", "x\xffy");
    BSON_APPEND_SYMBOL(&b, "sym", "\xed\xa0\x80"); /* a UTF-16 surrogate */
    BSON_APPEND_REGEX(&b, "re", "\xc3(", "i");       /* a cut-off é */
    BSON_APPEND_CODE(&b, "overlong", "\xe0\x80\xaf\xf4\x90\x80\x80"); /* overlong '/', above U+10FFFF */
    assert_json(&b, "{\"nul\":\"a\\u0000z\",\"code\":{\"$code\":\"x\\ufffdy\"},"
                    "\"sym\":{\"$symbol\":\"\\ufffd\\ufffd\\ufffd\"},"
                    "\"re\":{\"$regularExpression\":{\"pattern\":\"\\ufffd(\",\"options\":\"i\"}},"
                    "\"overlong\":{\"$code\":\"\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd\"}}");
    bson_destroy(&b);
}

static void empty_documents_and_arrays(void **state) {
    bson_t b = BSON_INITIALIZER;
    assert_json(&b, "{}");
    bson_t e = BSON_INITIALIZER, a = BSON_INITIALIZER;
    BSON_APPEND_DOCUMENT(&b, "e", &e);
    BSON_APPEND_ARRAY(&b, "a", &a);
    assert_json(&b, "{\"e\":{},\"a\":[]}");
    bson_destroy(&b);
}

static void arrays_are_lists_of_values(void **state) {
    bson_t b = BSON_INITIALIZER, a = BSON_INITIALIZER, d = BSON_INITIALIZER;
    BSON_APPEND_INT32(&a, "0", 1);
    BSON_APPEND_UTF8(&a, "1", "x");
    BSON_APPEND_DOUBLE(&d, "p", 19.95);
    BSON_APPEND_DOCUMENT(&a, "2", &d);
    BSON_APPEND_NULL(&a, "3");
    BSON_APPEND_BOOL(&a, "4", true);
    BSON_APPEND_BOOL(&a, "5", false);
    BSON_APPEND_ARRAY(&b, "lines", &a);
    assert_json(&b, "{\"lines\":[1,\"x\",{\"p\":19.95},null,true,false]}");
    bson_destroy(&b);
    bson_destroy(&a);
    bson_destroy(&d);
}

/* n documents {"a":{"a":...{}}} built as raw bytes: libbson's appends copy
 * each level, which is quadratic. */
static uint8_t *nested(int n, uint32_t *size) {
    *size = 5 + 8 * (uint32_t)n;
    uint8_t *d = calloc(*size, 1);
    assert_non_null(d);
    for (int k = 0; k <= n; k++) {
        uint32_t len = *size - 8 * (uint32_t)k;
        uint8_t *p = d + 7 * k;
        p[0] = (uint8_t)len;
        p[1] = (uint8_t)(len >> 8);
        p[2] = (uint8_t)(len >> 16);
        p[3] = (uint8_t)(len >> 24);
        if (k < n) {
            p[4] = 0x03;
            p[5] = 'a';
            p[6] = 0;
        }
    }
    return d;
}

static void nesting_of_99_levels_and_far_deeper(void **state) {
    int depths[] = {99, 20000};
    for (size_t i = 0; i < sizeof depths / sizeof depths[0]; i++) {
        int n = depths[i];
        uint32_t size;
        uint8_t *d = nested(n, &size);
        bson_t b;
        assert_true(bson_init_static(&b, d, size));
        char *json = enc(&b);
        size_t want_len = 6 * (size_t)n + 2;
        assert_int_equal(strlen(json), want_len);
        for (int k = 0; k < n; k++)
            assert_memory_equal(json + 5 * k, "{\"a\":", 5);
        assert_memory_equal(json + 5 * n, "{}", 2);
        for (size_t k = 5 * (size_t)n + 2; k < want_len; k++)
            assert_int_equal(json[k], '}');
        free(json);
        free(d);
    }
}

static void every_other_type_has_its_extended_json_form(void **state) {
    bson_t b = BSON_INITIALIZER, scope = BSON_INITIALIZER, inner = BSON_INITIALIZER;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "6b12ab34cd56ef7890abcdef");
    BSON_APPEND_OID(&b, "_id", &oid);
    uint8_t bin[5] = {1, 2, 3, 4, 5};
    BSON_APPEND_BINARY(&b, "b0", BSON_SUBTYPE_BINARY, bin, 5);
    BSON_APPEND_BINARY(&b, "b1", BSON_SUBTYPE_BINARY, bin, 4);
    BSON_APPEND_BINARY(&b, "b2", BSON_SUBTYPE_BINARY, bin, 3);
    BSON_APPEND_BINARY(&b, "empty", BSON_SUBTYPE_BINARY, bin, 0);
    uint8_t uuid[16] = {0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0};
    BSON_APPEND_BINARY(&b, "uuid", BSON_SUBTYPE_UUID, uuid, 16);
    BSON_APPEND_BINARY(&b, "user", BSON_SUBTYPE_USER, bin, 1);
    BSON_APPEND_BINARY(&b, "old", BSON_SUBTYPE_BINARY_DEPRECATED, bin, 2); /* the inner bytes */
    BSON_APPEND_UNDEFINED(&b, "undef");
    BSON_APPEND_REGEX(&b, "re", "^a\"b$", "xsmiu");
    BSON_APPEND_DBPOINTER(&b, "dbp", "shop.orders", &oid);
    BSON_APPEND_CODE(&b, "code", "function() { return \"x\"; }");
    BSON_APPEND_SYMBOL(&b, "sym", "abc");
    BSON_APPEND_INT32(&inner, "n", 1);
    BSON_APPEND_DOCUMENT(&scope, "x", &inner);
    BSON_APPEND_CODE_WITH_SCOPE(&b, "cws", "f(x)", &scope);
    BSON_APPEND_TIMESTAMP(&b, "ts", UINT32_MAX, 7);
    BSON_APPEND_MINKEY(&b, "min");
    BSON_APPEND_MAXKEY(&b, "max");
    const char *decs[] = {"1.10E-3", "-0", "NaN", "-Infinity", "1234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof decs / sizeof decs[0]; i++) {
        bson_decimal128_t dec;
        assert_true(bson_decimal128_from_string(decs[i], &dec));
        char key[8];
        snprintf(key, sizeof key, "d%zu", i);
        BSON_APPEND_DECIMAL128(&b, key, &dec);
    }
    assert_json(&b, "{\"_id\":{\"$oid\":\"6b12ab34cd56ef7890abcdef\"},"
                    "\"b0\":{\"$binary\":{\"base64\":\"AQIDBAU=\",\"subType\":\"00\"}},"
                    "\"b1\":{\"$binary\":{\"base64\":\"AQIDBA==\",\"subType\":\"00\"}},"
                    "\"b2\":{\"$binary\":{\"base64\":\"AQID\",\"subType\":\"00\"}},"
                    "\"empty\":{\"$binary\":{\"base64\":\"\",\"subType\":\"00\"}},"
                    "\"uuid\":{\"$binary\":{\"base64\":\"EjRWeJq83vASNFZ4mrze8A==\",\"subType\":\"04\"}},"
                    "\"user\":{\"$binary\":{\"base64\":\"AQ==\",\"subType\":\"80\"}},"
                    "\"old\":{\"$binary\":{\"base64\":\"AQI=\",\"subType\":\"02\"}},"
                    "\"undef\":{\"$undefined\":true},"
                    "\"re\":{\"$regularExpression\":{\"pattern\":\"^a\\\"b$\",\"options\":\"imsux\"}},"
                                        "\"dbp\":{\"$dbPointer\":{\"$ref\":\"shop.orders\","
                    "\"$id\":{\"$oid\":\"6b12ab34cd56ef7890abcdef\"}}},"
                    "\"code\":{\"$code\":\"function() { return \\\"x\\\"; }\"},"
                    "\"sym\":{\"$symbol\":\"abc\"},"
                    "\"cws\":{\"$code\":\"f(x)\",\"$scope\":{\"x\":{\"n\":1}}},"
                    "\"ts\":{\"$timestamp\":{\"t\":4294967295,\"i\":7}},"
                    "\"min\":{\"$minKey\":1},\"max\":{\"$maxKey\":1},"
                    "\"d0\":{\"$numberDecimal\":\"0.00110\"},\"d1\":{\"$numberDecimal\":\"-0\"},"
                    "\"d2\":{\"$numberDecimal\":\"NaN\"},\"d3\":{\"$numberDecimal\":\"-Infinity\"},"
                    "\"d4\":{\"$numberDecimal\":\"1234567890123456789012345678901234\"}}");
    bson_destroy(&b);
    bson_destroy(&scope);
    bson_destroy(&inner);
}

/* Options in alphabetical order (the spec's form), those libbson does
 * not know included: libbson's appends drop them, another driver's do not. */
static void regex_options_are_sorted_and_all_kept(void **state) {
    /* {"re": /a/zgi} as another driver writes it */
    uint8_t raw[] = {16, 0, 0, 0, 0x0B, 'r', 'e', 0, 'a', 0, 'z', 'g', 'i', 0, 0};
    raw[0] = sizeof raw;
    bson_t b;
    assert_true(bson_init_static(&b, raw, sizeof raw));
    assert_json(&b, "{\"re\":{\"$regularExpression\":{\"pattern\":\"a\",\"options\":\"giz\"}}}");
}

/* The envelope's own data, as the demo's order.created event has it. */
static void an_order_event_reads_as_its_producer_wrote_it(void **state) {
    bson_t *b = bson_new_from_json((const uint8_t *)"{\"ordernr\":1001,\"total\":19.95,\"customer\":\"Ann \\u00e9\","
                                                    "\"lines\":[{\"sku\":\"ABC-42\",\"qty\":1,\"price\":19.95}],"
                                                    "\"paid\":{\"$date\":\"2026-11-26T18:45:25.123Z\"}}",
                                   -1, NULL);
    assert_non_null(b);
    assert_json(b, "{\"ordernr\":1001,\"total\":19.95,\"customer\":\"Ann \xc3\xa9\","
                   "\"lines\":[{\"sku\":\"ABC-42\",\"qty\":1,\"price\":19.95}],"
                   "\"paid\":{\"$date\":\"2026-11-26T18:45:25.123Z\"}}");
    bson_destroy(b);
}

/* Bytes that are not BSON give NULL and leak nothing (ASan, valgrind). */
static void corrupt_bson_gives_null(void **state) {
    /* {"a": {"b": 1}} with the inner document's length one too large */
    uint8_t bad_len[] = {20, 0, 0, 0, 0x03, 'a', 0, 13, 0, 0, 0, 0x10, 'b', 0, 1, 0, 0, 0, 0, 0};
    /* {"x": 1, then an element of type 0x42} */
    uint8_t bad_type[] = {19, 0, 0, 0, 0x10, 'x', 0, 1, 0, 0, 0, 0x42, 'y', 0, 1, 0, 0, 0, 0};
    /* a code-with-scope whose scope holds an element cut short */
    uint8_t bad_scope[] = {28, 0, 0, 0, 0x0F, 'c', 0, 20, 0, 0, 0, 2, 0, 0, 0, 'f', 0,
                           10, 0, 0, 0, 0x10, 'n', 0, 1, 0, 0, 0};
    struct {
        uint8_t *d;
        size_t n;
    } cases[] = {{bad_len, sizeof bad_len}, {bad_type, sizeof bad_type}, {bad_scope, sizeof bad_scope}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bson_t b;
        assert_true(bson_init_static(&b, cases[i].d, cases[i].n));
        size_t len = 77;
        assert_null(outboxd_ejson_encode(&b, &len));
    }
}

static void the_length_may_be_left_out(void **state) {
    bson_t b = BSON_INITIALIZER;
    BSON_APPEND_INT32(&b, "a", 1);
    char *json = outboxd_ejson_encode(&b, NULL);
    assert_string_equal(json, "{\"a\":1}");
    free(json);
    bson_destroy(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(doubles_are_the_shortest_text_that_reads_back),
        cmocka_unit_test(integral_doubles_keep_a_decimal_point),
        cmocka_unit_test(non_finite_doubles_are_wrapped),
        cmocka_unit_test(random_doubles_read_back_bit_for_bit),
        cmocka_unit_test(integers_stay_integers),
        cmocka_unit_test(dates_are_iso_in_1970_to_9999_and_milliseconds_outside),
        cmocka_unit_test(dates_agree_with_gmtime),
        cmocka_unit_test(strings_escape_what_json_requires_and_nothing_else),
        cmocka_unit_test(keys_are_escaped_like_strings),
        cmocka_unit_test(strings_that_are_not_utf8_are_still_written_as_utf8),
        cmocka_unit_test(empty_documents_and_arrays),
        cmocka_unit_test(arrays_are_lists_of_values),
        cmocka_unit_test(nesting_of_99_levels_and_far_deeper),
        cmocka_unit_test(every_other_type_has_its_extended_json_form),
        cmocka_unit_test(regex_options_are_sorted_and_all_kept),
        cmocka_unit_test(an_order_event_reads_as_its_producer_wrote_it),
        cmocka_unit_test(corrupt_bson_gives_null),
        cmocka_unit_test(the_length_may_be_left_out),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("outboxd_ejson", tests, NULL, NULL);
}
