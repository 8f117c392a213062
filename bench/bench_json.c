/*
 * bench_json - what `payload: json` costs per event: outboxd's writer
 * (outboxd/ejson.h) against libbson's bson_as_relaxed_extended_json (what
 * outboxd used before issue 17) and jansson (a Debian JSON library: the
 * BSON is first turned into jansson's tree, in the same Extended JSON
 * shapes, then printed compact), on three event documents:
 *
 *   order      the benchmark's own order event (bench_order_data: ints,
 *              one double, strings, two lines), about 150 bytes of BSON
 *   checkout   a richer order: ObjectId, date, prices (19.95, 4.99, ...),
 *              a unicode name, an address, five lines, tags
 *   telemetry  a reading of 48 doubles (sensor values) and a timestamp
 *
 *   bench_json [--n N] [--repeat R]
 *
 * Each cell encodes the document N times (default 200,000; the output is
 * freed each time, as outboxd does) and keeps the median of R runs
 * (default 5). It prints a table (events/s, bytes of JSON, the text of
 * one double) on stderr and one RESULT line on stdout (bench/bench.h).
 * Built on demand: `make bench/bench_json` (outboxd/ejson.mk says why).
 * With -DBENCH_JSON_JSONC (and -ljson-c, without jansson: their headers
 * clash) the third column is json-c 0.16 instead.
 */
#include "bench.h"
#include "outboxd/ejson.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef BENCH_JSON_JSONC
#include <json-c/json.h>
#define THIRD "json-c"
#else
#include <jansson.h>
#define THIRD "jansson"
#endif

static void checkout_data(bson_t *d) {
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "6b12ab34cd56ef7890abcdef");
    BSON_APPEND_OID(d, "order_id", &oid);
    BSON_APPEND_INT32(d, "ordernr", 1001);
    BSON_APPEND_INT64(d, "customer_id", INT64_C(4611686018427387904));
    BSON_APPEND_UTF8(d, "customer", "Zo\xc3\xab M\xc3\xbcller-\xc3\x85str\xc3\xb6m");
    BSON_APPEND_DATE_TIME(d, "placed", INT64_C(1795718725123));
    BSON_APPEND_DOUBLE(d, "total", 89.63);
    BSON_APPEND_DOUBLE(d, "vat", 15.56);
    BSON_APPEND_UTF8(d, "currency", "EUR");
    BSON_APPEND_BOOL(d, "gift", false);
    bson_t addr, lines, line, tags;
    BSON_APPEND_DOCUMENT_BEGIN(d, "ship_to", &addr);
    BSON_APPEND_UTF8(&addr, "street", "Keizersgracht 123");
    BSON_APPEND_UTF8(&addr, "city", "Amsterdam");
    BSON_APPEND_UTF8(&addr, "zip", "1015 CJ");
    BSON_APPEND_UTF8(&addr, "country", "NL");
    bson_append_document_end(d, &addr);
    static const char *skus[] = {"ABC-42", "XYZ-7", "QRS-1001", "LMN-55", "DEF-9"};
    static const double prices[] = {19.95, 4.99, 12.5, 0.99, 39.9};
    BSON_APPEND_ARRAY_BEGIN(d, "lines", &lines);
    for (int k = 0; k < 5; k++) {
        char idx[2] = {(char)('0' + k), 0};
        BSON_APPEND_DOCUMENT_BEGIN(&lines, idx, &line);
        BSON_APPEND_UTF8(&line, "sku", skus[k]);
        BSON_APPEND_INT32(&line, "qty", k + 1);
        BSON_APPEND_DOUBLE(&line, "price", prices[k]);
        bson_append_document_end(&lines, &line);
    }
    bson_append_array_end(d, &lines);
    BSON_APPEND_ARRAY_BEGIN(d, "tags", &tags);
    BSON_APPEND_UTF8(&tags, "0", "web");
    BSON_APPEND_UTF8(&tags, "1", "promo \"spring\"");
    bson_append_array_end(d, &tags);
}

static void telemetry_data(bson_t *d) {
    BSON_APPEND_UTF8(d, "device", "sensor-17");
    BSON_APPEND_DATE_TIME(d, "at", INT64_C(1795718725123));
    bson_t v;
    BSON_APPEND_ARRAY_BEGIN(d, "values", &v);
    for (int k = 0; k < 48; k++) {
        char idx[4];
        snprintf(idx, sizeof idx, "%d", k);
        BSON_APPEND_DOUBLE(&v, idx, 20.37 + k * 0.37 + (k % 7) * 0.011);
    }
    bson_append_array_end(d, &v);
}

/* What the two tree-building encoders below share: a date as the
 * ISO-8601 text of {"$date": ...}, and the document or array it is on. */
static void iso_date(int64_t ms, char *buf, size_t size) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%03dZ", (int)(ms % 1000));
}

static const bson_t *subdocument(const bson_iter_t *it, bson_t *sub) {
    uint32_t len;
    const uint8_t *data;
    if (BSON_ITER_HOLDS_ARRAY(it))
        bson_iter_array(it, &len, &data);
    else
        bson_iter_document(it, &len, &data);
    if (!bson_init_static(sub, data, len))
        bench_die("corrupt subdocument");
    return sub;
}

#ifndef BENCH_JSON_JSONC
/* BSON to jansson's tree in the same Extended JSON shapes as ours, for the
 * types the three documents hold (the others would follow the same way). */
static json_t *jansson_of(const bson_t *doc, bool array);

static json_t *jansson_value(const bson_iter_t *it) {
    char buf[64];
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        return json_real(bson_iter_double(it));
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        return json_stringn(s, n);
    }
    case BSON_TYPE_INT32:
        return json_integer(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_integer(bson_iter_int64(it));
    case BSON_TYPE_BOOL:
        return json_boolean(bson_iter_bool(it));
    case BSON_TYPE_NULL:
        return json_null();
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), buf);
        return json_pack("{ss}", "$oid", buf);
    case BSON_TYPE_DATE_TIME: {
        iso_date(bson_iter_date_time(it), buf, sizeof buf);
        return json_pack("{ss}", "$date", buf);
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_t sub;
        return jansson_of(subdocument(it, &sub), BSON_ITER_HOLDS_ARRAY(it));
    }
    default:
        bench_die("bench_json: no jansson form for BSON type 0x%02x", (unsigned)bson_iter_type(it));
    }
    return NULL;
}

static json_t *jansson_of(const bson_t *doc, bool array) {
    json_t *out = array ? json_array() : json_object();
    bson_iter_t it;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        json_t *v = jansson_value(&it);
        if (array)
            json_array_append_new(out, v);
        else
            json_object_set_new(out, bson_iter_key(&it), v);
    }
    return out;
}

static char *third_encode(const bson_t *doc, size_t *len) {
    json_t *root = jansson_of(doc, false);
    char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    *len = strlen(s);
    return s;
}
#else
static json_object *jsonc_of(const bson_t *doc, bool array);

static json_object *jsonc_value(const bson_iter_t *it) {
    char buf[64];
    json_object *o;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        return json_object_new_double(bson_iter_double(it));
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        return json_object_new_string_len(s, (int)n);
    }
    case BSON_TYPE_INT32:
        return json_object_new_int(bson_iter_int32(it));
    case BSON_TYPE_INT64:
        return json_object_new_int64(bson_iter_int64(it));
    case BSON_TYPE_BOOL:
        return json_object_new_boolean(bson_iter_bool(it));
    case BSON_TYPE_NULL:
        return NULL;
    case BSON_TYPE_OID:
        bson_oid_to_string(bson_iter_oid(it), buf);
        o = json_object_new_object();
        json_object_object_add(o, "$oid", json_object_new_string(buf));
        return o;
    case BSON_TYPE_DATE_TIME: {
        iso_date(bson_iter_date_time(it), buf, sizeof buf);
        o = json_object_new_object();
        json_object_object_add(o, "$date", json_object_new_string(buf));
        return o;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_t sub;
        return jsonc_of(subdocument(it, &sub), BSON_ITER_HOLDS_ARRAY(it));
    }
    default:
        bench_die("bench_json: no json-c form for BSON type 0x%02x", (unsigned)bson_iter_type(it));
    }
    return NULL;
}

static json_object *jsonc_of(const bson_t *doc, bool array) {
    json_object *out = array ? json_object_new_array() : json_object_new_object();
    bson_iter_t it;
    bson_iter_init(&it, doc);
    while (bson_iter_next(&it)) {
        json_object *v = jsonc_value(&it);
        if (array)
            json_object_array_add(out, v);
        else
            json_object_object_add(out, bson_iter_key(&it), v);
    }
    return out;
}

static char *third_encode(const bson_t *doc, size_t *len) {
    json_object *root = jsonc_of(doc, false);
    size_t n;
    const char *s =
        json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
    char *copy = malloc(n + 1);
    if (!copy)
        abort();
    memcpy(copy, s, n + 1);
    json_object_put(root);
    *len = n;
    return copy;
}
#endif

/* libbson's encoder, its output copied into malloc'd memory as outboxd
 * kept it. */
static char *libbson_encode(const bson_t *doc, size_t *len) {
    char *s = bson_as_relaxed_extended_json(doc, len);
    char *copy = malloc(*len + 1);
    if (!copy)
        abort();
    memcpy(copy, s, *len + 1);
    bson_free(s);
    return copy;
}

/* Each encoder as the measuring loop calls it: one call through the same
 * kind of pointer for all three, output freed with free(). */
typedef char *(*encoder_fn)(const bson_t *doc, size_t *len);
static const struct {
    const char *name; /* the ENCODER of DOC_ENCODER_rate (bench/bench.py) */
    encoder_fn encode;
} encoders[] = {{"outboxd", outboxd_ejson_encode}, {"libbson", libbson_encode}, {THIRD, third_encode}};
enum { N_ENCODERS = sizeof encoders / sizeof encoders[0] };

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    long long n = bench_arg_ll(argc, argv, "--n", 200000);
    long long repeat = bench_arg_ll(argc, argv, "--repeat", 5);
    if (n < 1 || repeat < 1 || repeat > 99)
        bench_die("--n and --repeat must be positive (repeat at most 99)");
    bson_t docs[3];
    const char *names[3] = {"order", "checkout", "telemetry"};
    for (int d = 0; d < 3; d++)
        bson_init(&docs[d]);
    bench_order_data(&docs[0], 12345, INT64_C(1795718725123456789));
    checkout_data(&docs[1]);
    telemetry_data(&docs[2]);

    fprintf(stderr, "%-10s %6s  %-8s %12s %7s  %s\n", "document", "bson", "encoder", "events/s", "bytes",
            "a double as written");
    printf("RESULT n=%lld repeat=%lld", n, repeat);
    for (int d = 0; d < 3; d++) {
        for (int e = 0; e < N_ENCODERS; e++) {
            double rates[99];
            size_t len = 0;
            for (long long r = 0; r < repeat; r++) {
                int64_t t0 = bench_mono_ns();
                for (long long i = 0; i < n; i++) {
                    char *s = encoders[e].encode(&docs[d], &len);
                    free(s);
                }
                rates[r] = (double)n * 1e9 / (double)(bench_mono_ns() - t0);
            }
            qsort(rates, (size_t)repeat, sizeof rates[0], cmp_double);
            double rate = rates[repeat / 2];
            char *sample = encoders[e].encode(&docs[d], &len);
            /* the first double of the document, as this encoder wrote it */
            const char *key = d == 0 ? "\"total\"" : d == 1 ? "\"total\"" : "\"values\"";
            const char *at = strstr(sample, key);
            char shown[40] = "";
            if (at) {
                at = strpbrk(at + strlen(key), "0123456789-");
                size_t k = at ? strspn(at, "0123456789.-+e") : 0;
                snprintf(shown, sizeof shown, "%.*s", (int)(k < 39 ? k : 39), at ? at : "");
            }
            fprintf(stderr, "%-10s %6u  %-8s %12.0f %7zu  %s\n", names[d], docs[d].len, encoders[e].name, rate, len,
                    shown);
            printf(" %s_%s_rate=%.0f %s_%s_bytes=%zu", names[d], encoders[e].name, rate, names[d], encoders[e].name,
                   len);
            free(sample);
        }
    }
    printf("\n");
    for (int d = 0; d < 3; d++)
        bson_destroy(&docs[d]);
    return 0;
}
