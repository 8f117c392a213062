/*
 * schema.c - compiles the $jsonSchema subset into a tree of nodes and checks
 * event data against it. Regular expressions are PCRE2 (the dialect MongoDB
 * uses), compiled once per schema.
 *
 * Semantics follow JSON Schema draft 4 as MongoDB implements it: keywords
 * that do not apply to a value's type are ignored (minimum on a string is no
 * error), so a schema that also wants the type pins it with bsonType/type.
 */
#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Bit per BSON type. Codes 0x01..0x13 map to themselves; minKey and maxKey
 * (0xff, 0x7f) get spare bits. */
#define TYPE_BIT(t) (1u << type_bit_index(t))
#define NUMBER_BITS                                                                      \
    (TYPE_BIT(BSON_TYPE_DOUBLE) | TYPE_BIT(BSON_TYPE_INT32) | TYPE_BIT(BSON_TYPE_INT64) | \
     TYPE_BIT(BSON_TYPE_DECIMAL128))

static unsigned type_bit_index(bson_type_t t) {
    if (t == BSON_TYPE_MINKEY)
        return 20;
    if (t == BSON_TYPE_MAXKEY)
        return 21;
    return (unsigned)t & 0x1f;
}

static const struct {
    const char *name;
    bson_type_t type;
} bson_type_names[] = {
    {"double", BSON_TYPE_DOUBLE},
    {"string", BSON_TYPE_UTF8},
    {"object", BSON_TYPE_DOCUMENT},
    {"array", BSON_TYPE_ARRAY},
    {"binData", BSON_TYPE_BINARY},
    {"undefined", BSON_TYPE_UNDEFINED},
    {"objectId", BSON_TYPE_OID},
    {"bool", BSON_TYPE_BOOL},
    {"date", BSON_TYPE_DATE_TIME},
    {"null", BSON_TYPE_NULL},
    {"regex", BSON_TYPE_REGEX},
    {"dbPointer", BSON_TYPE_DBPOINTER},
    {"javascript", BSON_TYPE_CODE},
    {"symbol", BSON_TYPE_SYMBOL},
    {"javascriptWithScope", BSON_TYPE_CODEWSCOPE},
    {"int", BSON_TYPE_INT32},
    {"timestamp", BSON_TYPE_TIMESTAMP},
    {"long", BSON_TYPE_INT64},
    {"decimal", BSON_TYPE_DECIMAL128},
    {"minKey", BSON_TYPE_MINKEY},
    {"maxKey", BSON_TYPE_MAXKEY},
};

const char *outbox__bson_type_name(bson_type_t type) {
    for (size_t i = 0; i < sizeof bson_type_names / sizeof bson_type_names[0]; i++)
        if (bson_type_names[i].type == type)
            return bson_type_names[i].name;
    return "unknown";
}

typedef struct schema_node schema_node_t;

typedef struct {
    char *name;
    schema_node_t *schema;
} schema_prop_t;

struct schema_node {
    uint32_t types; /* allowed BSON types; 0 = any */
    char **required;
    size_t n_required;
    schema_prop_t *props;
    size_t n_props;
    bool no_additional;            /* additionalProperties: false */
    schema_node_t *additional;     /* additionalProperties: {schema} */
    bson_t *enum_doc;              /* {"enum": [...]}; NULL = no enum */
    char *enum_json;               /* for messages */
    bool has_min, has_max, excl_min, excl_max;
    double min, max;
    int64_t min_len, max_len;      /* -1 = not set */
    int64_t min_items, max_items;  /* -1 = not set */
    pcre2_code *pattern;
    pcre2_match_context *match_ctx; /* the limits below; read-only once made */
    char *pattern_src;
    schema_node_t *items;
};

/* Limits of one pattern match. PCRE2's defaults (10 million match steps,
 * no depth limit beyond the heap) let one crafted pattern such as (a+)+$
 * take most of a second per event. 1,000,000 steps take about a
 * millisecond with JIT; a match that needs more is reported as its own
 * error ("exceeded the match limit"), never as "does not match", since it
 * was neither. docs/schemas.md says so. */
#define PATTERN_MATCH_LIMIT 1000000u
#define PATTERN_DEPTH_LIMIT 10000u

struct outbox_schema {
    schema_node_t *root;
    bson_t doc;
};

/* ---- compile ------------------------------------------------------------- */

typedef struct {
    char *buf;
    size_t size;
    char path[256];
} compile_ctx_t;

static bool compile_fail(compile_ctx_t *ctx, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
static bool compile_fail(compile_ctx_t *ctx, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ctx->buf, ctx->size, "%s: %s", ctx->path[0] ? ctx->path : "(schema root)", what);
    return false;
}

/* Appends ".seg" (or "seg" at the root) to ctx->path; returns the old length
 * so the caller can cut it back. */
static size_t path_push(char *path, size_t cap, const char *seg) {
    size_t len = strlen(path);
    snprintf(path + len, cap - len, "%s%s", len ? "." : "", seg);
    return len;
}

static void node_destroy(schema_node_t *n) {
    if (!n)
        return;
    for (size_t i = 0; i < n->n_required; i++)
        bson_free(n->required[i]);
    bson_free(n->required);
    for (size_t i = 0; i < n->n_props; i++) {
        bson_free(n->props[i].name);
        node_destroy(n->props[i].schema);
    }
    bson_free(n->props);
    node_destroy(n->additional);
    if (n->enum_doc)
        bson_destroy(n->enum_doc);
    bson_free(n->enum_json);
    if (n->pattern)
        pcre2_code_free(n->pattern);
    pcre2_match_context_free(n->match_ctx);
    bson_free(n->pattern_src);
    node_destroy(n->items);
    bson_free(n);
}

static schema_node_t *compile_node(compile_ctx_t *ctx, const bson_iter_t *schema_it);

static bool bson_type_from_name(const char *name, uint32_t *bits) {
    if (strcmp(name, "number") == 0) {
        *bits |= NUMBER_BITS;
        return true;
    }
    for (size_t i = 0; i < sizeof bson_type_names / sizeof bson_type_names[0]; i++) {
        if (strcmp(bson_type_names[i].name, name) == 0) {
            *bits |= TYPE_BIT(bson_type_names[i].type);
            return true;
        }
    }
    return false;
}

static bool json_type_from_name(compile_ctx_t *ctx, const char *name, uint32_t *bits) {
    static const struct {
        const char *name;
        uint32_t bits;
    } json_types[] = {
        {"object", 1u << BSON_TYPE_DOCUMENT}, {"array", 1u << BSON_TYPE_ARRAY},
        {"boolean", 1u << BSON_TYPE_BOOL},    {"string", 1u << BSON_TYPE_UTF8},
        {"null", 1u << BSON_TYPE_NULL},
    };
    if (strcmp(name, "number") == 0) {
        *bits |= NUMBER_BITS;
        return true;
    }
    if (strcmp(name, "integer") == 0)
        return compile_fail(ctx, "type \"integer\" is not supported by MongoDB's $jsonSchema; "
                                 "use bsonType \"int\", \"long\" or [\"int\", \"long\"]");
    for (size_t i = 0; i < sizeof json_types / sizeof json_types[0]; i++) {
        if (strcmp(json_types[i].name, name) == 0) {
            *bits |= json_types[i].bits;
            return true;
        }
    }
    return compile_fail(ctx, "unknown type \"%s\"", name);
}

/* bsonType / type: a name or an array of names. */
static bool compile_types(compile_ctx_t *ctx, bson_iter_t *it, bool json, uint32_t *bits) {
    if (BSON_ITER_HOLDS_UTF8(it)) {
        const char *name = bson_iter_utf8(it, NULL);
        if (json)
            return json_type_from_name(ctx, name, bits);
        if (!bson_type_from_name(name, bits))
            return compile_fail(ctx, "unknown BSON type \"%s\"", name);
        return true;
    }
    if (BSON_ITER_HOLDS_ARRAY(it)) {
        bson_iter_t child;
        size_t count = 0;
        bson_iter_recurse(it, &child);
        while (bson_iter_next(&child)) {
            if (!BSON_ITER_HOLDS_UTF8(&child))
                return compile_fail(ctx, "expected a type name, got %s",
                                    outbox__bson_type_name(bson_iter_type(&child)));
            if (!compile_types(ctx, &child, json, bits))
                return false;
            count++;
        }
        if (count == 0)
            return compile_fail(ctx, "needs at least one type");
        return true;
    }
    return compile_fail(ctx, "expected a string or an array of strings");
}

static bool iter_number(const bson_iter_t *it, double *out) {
    switch (bson_iter_type(it)) {
    case BSON_TYPE_INT32:
    case BSON_TYPE_INT64:
    case BSON_TYPE_DOUBLE:
        *out = bson_iter_as_double(it);
        return true;
    default:
        return false;
    }
}

/* A double is a count only when it is a whole number an int64 can hold:
 * converting one outside that range is undefined behaviour, so the range
 * is checked before the cast (2^63 is exactly representable; NaN fails
 * both comparisons). */
static bool double_is_int64(double d) {
    return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d;
}

static bool compile_count(compile_ctx_t *ctx, bson_iter_t *it, int64_t *out) {
    if (!BSON_ITER_HOLDS_INT32(it) && !BSON_ITER_HOLDS_INT64(it) &&
        !(BSON_ITER_HOLDS_DOUBLE(it) && double_is_int64(bson_iter_double(it))))
        return compile_fail(ctx, "expected a non-negative integer");
    int64_t v = bson_iter_as_int64(it);
    if (v < 0)
        return compile_fail(ctx, "expected a non-negative integer, got %" PRId64, v);
    *out = v;
    return true;
}

static bool compile_keyword(compile_ctx_t *ctx, schema_node_t *n, bson_iter_t *it) {
    const char *kw = bson_iter_key(it);

    if (strcmp(kw, "bsonType") == 0)
        return compile_types(ctx, it, false, &n->types);
    if (strcmp(kw, "type") == 0)
        return compile_types(ctx, it, true, &n->types);
    if (strcmp(kw, "title") == 0 || strcmp(kw, "description") == 0) {
        if (!BSON_ITER_HOLDS_UTF8(it))
            return compile_fail(ctx, "expected a string");
        return true;
    }
    if (strcmp(kw, "required") == 0) {
        bson_iter_t child;
        if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child))
            return compile_fail(ctx, "expected an array of property names");
        while (bson_iter_next(&child)) {
            if (!BSON_ITER_HOLDS_UTF8(&child))
                return compile_fail(ctx, "expected an array of property names");
            n->required = bson_realloc(n->required, (n->n_required + 1) * sizeof(char *));
            n->required[n->n_required++] = bson_strdup(bson_iter_utf8(&child, NULL));
        }
        if (n->n_required == 0)
            return compile_fail(ctx, "must name at least one property");
        return true;
    }
    if (strcmp(kw, "properties") == 0) {
        bson_iter_t child;
        if (!BSON_ITER_HOLDS_DOCUMENT(it) || !bson_iter_recurse(it, &child))
            return compile_fail(ctx, "expected an object of property schemas");
        while (bson_iter_next(&child)) {
            size_t mark = path_push(ctx->path, sizeof ctx->path, bson_iter_key(&child));
            schema_node_t *sub = compile_node(ctx, &child);
            ctx->path[mark] = '\0';
            if (!sub)
                return false;
            n->props = bson_realloc(n->props, (n->n_props + 1) * sizeof(schema_prop_t));
            n->props[n->n_props].name = bson_strdup(bson_iter_key(&child));
            n->props[n->n_props].schema = sub;
            n->n_props++;
        }
        return true;
    }
    if (strcmp(kw, "additionalProperties") == 0) {
        if (BSON_ITER_HOLDS_BOOL(it)) {
            n->no_additional = !bson_iter_bool(it);
            return true;
        }
        if (BSON_ITER_HOLDS_DOCUMENT(it))
            return (n->additional = compile_node(ctx, it)) != NULL;
        return compile_fail(ctx, "expected a boolean or a schema");
    }
    if (strcmp(kw, "enum") == 0) {
        bson_iter_t child;
        if (!BSON_ITER_HOLDS_ARRAY(it) || !bson_iter_recurse(it, &child) || !bson_iter_next(&child))
            return compile_fail(ctx, "expected a non-empty array of values");
        n->enum_doc = bson_new();
        bson_append_iter(n->enum_doc, "enum", 4, it);
        bson_iter_t arr;
        bson_iter_init_find(&arr, n->enum_doc, "enum");
        uint32_t len;
        const uint8_t *data;
        bson_iter_array(&arr, &len, &data);
        bson_t a;
        bson_init_static(&a, data, len);
        n->enum_json = bson_array_as_json(&a, NULL);
        return true;
    }
    if (strcmp(kw, "minimum") == 0 || strcmp(kw, "maximum") == 0) {
        bool is_min = kw[1] == 'i';
        double v;
        if (!iter_number(it, &v))
            return compile_fail(ctx, "expected a number");
        if (is_min) {
            n->has_min = true;
            n->min = v;
        } else {
            n->has_max = true;
            n->max = v;
        }
        return true;
    }
    if (strcmp(kw, "exclusiveMinimum") == 0 || strcmp(kw, "exclusiveMaximum") == 0) {
        if (!BSON_ITER_HOLDS_BOOL(it))
            return compile_fail(ctx, "expected a boolean (draft 4, as MongoDB)");
        if (strcmp(kw, "exclusiveMinimum") == 0)
            n->excl_min = bson_iter_bool(it);
        else
            n->excl_max = bson_iter_bool(it);
        return true;
    }
    if (strcmp(kw, "minLength") == 0)
        return compile_count(ctx, it, &n->min_len);
    if (strcmp(kw, "maxLength") == 0)
        return compile_count(ctx, it, &n->max_len);
    if (strcmp(kw, "minItems") == 0)
        return compile_count(ctx, it, &n->min_items);
    if (strcmp(kw, "maxItems") == 0)
        return compile_count(ctx, it, &n->max_items);
    if (strcmp(kw, "pattern") == 0) {
        int errcode;
        PCRE2_SIZE erroff;
        if (!BSON_ITER_HOLDS_UTF8(it))
            return compile_fail(ctx, "expected a regular expression string");
        uint32_t len;
        const char *src = bson_iter_utf8(it, &len);
        n->pattern = pcre2_compile((PCRE2_SPTR)src, len, PCRE2_UTF, &errcode, &erroff, NULL);
        if (!n->pattern) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(errcode, msg, sizeof msg);
            return compile_fail(ctx, "bad regular expression at offset %zu: %s", (size_t)erroff,
                                (const char *)msg);
        }
        n->pattern_src = bson_strdup(src);
        /* JIT where the platform has it (several times faster, and it
         * finishes some matches the interpreter gives up on); a failure
         * only means the interpreter runs. */
        (void)pcre2_jit_compile(n->pattern, PCRE2_JIT_COMPLETE);
        n->match_ctx = pcre2_match_context_create(NULL);
        if (!n->match_ctx)
            return compile_fail(ctx, "out of memory");
        pcre2_set_match_limit(n->match_ctx, PATTERN_MATCH_LIMIT);
        pcre2_set_depth_limit(n->match_ctx, PATTERN_DEPTH_LIMIT);
        return true;
    }
    if (strcmp(kw, "items") == 0) {
        if (BSON_ITER_HOLDS_ARRAY(it))
            return compile_fail(ctx, "items as an array (tuple form) is not supported; give one "
                                     "schema for every item");
        if (!BSON_ITER_HOLDS_DOCUMENT(it))
            return compile_fail(ctx, "expected a schema");
        return (n->items = compile_node(ctx, it)) != NULL;
    }
    return compile_fail(ctx, "unsupported keyword (see docs/schemas.md for the subset)");
}

static schema_node_t *compile_node(compile_ctx_t *ctx, const bson_iter_t *schema_it) {
    bson_iter_t it;
    if (!BSON_ITER_HOLDS_DOCUMENT(schema_it) || !bson_iter_recurse(schema_it, &it)) {
        compile_fail(ctx, "expected a schema object");
        return NULL;
    }
    schema_node_t *n = bson_malloc0(sizeof *n);
    n->min_len = n->max_len = n->min_items = n->max_items = -1;
    const bson_iter_t start = it;
    while (bson_iter_next(&it)) {
        size_t mark = path_push(ctx->path, sizeof ctx->path, bson_iter_key(&it));
        /* JSON allows a key twice and libbson keeps both: which one would
         * count is a guess (MongoDB's validator takes one, a reader of the
         * schema another), so a keyword given twice is refused. A schema
         * object has a handful of keywords: the look-back is cheap. */
        bool ok = true;
        bson_iter_t prev = start;
        while (ok && bson_iter_next(&prev) && prev.off < it.off)
            if (strcmp(bson_iter_key(&prev), bson_iter_key(&it)) == 0)
                ok = compile_fail(ctx, "given twice");
        ok = ok && compile_keyword(ctx, n, &it);
        ctx->path[mark] = '\0';
        if (!ok) {
            node_destroy(n);
            return NULL;
        }
    }
    return n;
}

outbox_schema_t *outbox__schema_compile(const char *json, char *errbuf, size_t errbuf_size) {
    bson_error_t berr;
    outbox_schema_t *s = outbox__calloc_aligned(sizeof *s);
    compile_ctx_t ctx = {.buf = errbuf, .size = errbuf_size};

    if (!json || !bson_init_from_json(&s->doc, json, -1, &berr)) {
        snprintf(errbuf, errbuf_size, "not valid JSON: %s", json ? berr.message : "no text");
        free(s);
        return NULL;
    }
    /* Wrap the root so compile_node can take it as an iterator like any
     * nested schema. */
    bson_t wrap = BSON_INITIALIZER;
    bson_iter_t it;
    BSON_APPEND_DOCUMENT(&wrap, "", &s->doc);
    bson_iter_init_find(&it, &wrap, "");
    s->root = compile_node(&ctx, &it);
    bson_destroy(&wrap);
    if (!s->root) {
        bson_destroy(&s->doc);
        free(s);
        return NULL;
    }
    return s;
}

void outbox__schema_destroy(outbox_schema_t *schema) {
    if (!schema)
        return;
    node_destroy(schema->root);
    bson_destroy(&schema->doc);
    free(schema);
}

const bson_t *outbox__schema_document(const outbox_schema_t *schema) {
    return &schema->doc;
}

/* ---- validate ------------------------------------------------------------ */

typedef struct {
    char *buf;
    size_t size;
    char path[512];
    bool limit;  /* the failure was a limit (pattern), not a mismatch */
} check_ctx_t;

static bool check_fail(check_ctx_t *ctx, const char *fmt, ...) BSON_GNUC_PRINTF(2, 3);
static bool check_fail(check_ctx_t *ctx, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    snprintf(ctx->buf, ctx->size, "%s: %s", ctx->path, what);
    return false;
}

/* A short JSON rendering of one value for messages, cut at 60 bytes. */
static void value_json(const bson_iter_t *it, char *out, size_t size) {
    bson_t tmp = BSON_INITIALIZER;
    bson_append_iter(&tmp, "v", 1, it);
    char *json = bson_as_relaxed_extended_json(&tmp, NULL);
    /* "{ "v" : <value> }" */
    const char *start = json ? strstr(json, " : ") : NULL;
    if (start) {
        start += 3;
        size_t len = strlen(start);
        if (len >= 2)
            len -= 2; /* " }" */
        if (len > 60)
            snprintf(out, size, "%.57s...", start);
        else
            snprintf(out, size, "%.*s", (int)len, start);
    } else {
        snprintf(out, size, "(value)");
    }
    bson_free(json);
    bson_destroy(&tmp);
}

static void describe_types(uint32_t bits, char *out, size_t size) {
    size_t len = 0;
    out[0] = '\0';
    if ((bits & NUMBER_BITS) == NUMBER_BITS) {
        len += (size_t)snprintf(out + len, size - len, "number");
        bits &= ~NUMBER_BITS;
    }
    for (size_t i = 0; i < sizeof bson_type_names / sizeof bson_type_names[0] && len < size; i++) {
        if (bits & TYPE_BIT(bson_type_names[i].type)) {
            bits &= ~TYPE_BIT(bson_type_names[i].type);
            len += (size_t)snprintf(out + len, size - len, "%s%s", len ? (bits ? ", " : " or ") : "",
                                    bson_type_names[i].name);
        }
    }
}

static bool is_number(bson_type_t t) {
    return t == BSON_TYPE_DOUBLE || t == BSON_TYPE_INT32 || t == BSON_TYPE_INT64 ||
           t == BSON_TYPE_DECIMAL128;
}

/* MongoDB's equality for enum: numbers compare by value across types, other
 * values by type and bytes. */
static bool values_equal(const bson_iter_t *a, const bson_iter_t *b) {
    bson_type_t ta = bson_iter_type(a), tb = bson_iter_type(b);
    if (is_number(ta) && is_number(tb) && ta != BSON_TYPE_DECIMAL128 && tb != BSON_TYPE_DECIMAL128) {
        if (ta != BSON_TYPE_DOUBLE && tb != BSON_TYPE_DOUBLE)
            return bson_iter_as_int64(a) == bson_iter_as_int64(b);
        return bson_iter_as_double(a) == bson_iter_as_double(b);
    }
    if (ta != tb)
        return false;
    const bson_value_t *va = bson_iter_value((bson_iter_t *)a);
    const bson_value_t *vb = bson_iter_value((bson_iter_t *)b);
    switch (ta) {
    case BSON_TYPE_UTF8:
        return va->value.v_utf8.len == vb->value.v_utf8.len &&
               memcmp(va->value.v_utf8.str, vb->value.v_utf8.str, va->value.v_utf8.len) == 0;
    case BSON_TYPE_BOOL:
        return va->value.v_bool == vb->value.v_bool;
    case BSON_TYPE_NULL:
    case BSON_TYPE_UNDEFINED:
    case BSON_TYPE_MINKEY:
    case BSON_TYPE_MAXKEY:
        return true;
    case BSON_TYPE_OID:
        return bson_oid_equal(&va->value.v_oid, &vb->value.v_oid);
    case BSON_TYPE_DATE_TIME:
        return va->value.v_datetime == vb->value.v_datetime;
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY:
        return va->value.v_doc.data_len == vb->value.v_doc.data_len &&
               memcmp(va->value.v_doc.data, vb->value.v_doc.data, va->value.v_doc.data_len) == 0;
    case BSON_TYPE_DECIMAL128:
        return memcmp(&va->value.v_decimal128, &vb->value.v_decimal128,
                      sizeof va->value.v_decimal128) == 0;
    default:
        return false;
    }
}

/* Code points in valid UTF-8 (libbson has validated it already). */
static size_t utf8_length(const char *s, size_t bytes) {
    size_t n = 0;
    for (size_t i = 0; i < bytes; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            n++;
    return n;
}

static bool check_value(check_ctx_t *ctx, const schema_node_t *n, const bson_iter_t *it);

static bool check_object(check_ctx_t *ctx, const schema_node_t *n, const bson_t *doc) {
    bson_iter_t it;
    for (size_t i = 0; i < n->n_required; i++) {
        if (!bson_iter_init_find(&it, doc, n->required[i])) {
            size_t mark = path_push(ctx->path, sizeof ctx->path, n->required[i]);
            check_fail(ctx, "required property is missing");
            ctx->path[mark] = '\0';
            return false;
        }
    }
    if (!bson_iter_init(&it, doc))
        return check_fail(ctx, "corrupt document");
    while (bson_iter_next(&it)) {
        const char *key = bson_iter_key(&it);
        const schema_node_t *sub = NULL;
        bool declared = false;
        for (size_t i = 0; i < n->n_props; i++) {
            if (strcmp(n->props[i].name, key) == 0) {
                sub = n->props[i].schema;
                declared = true;
                break;
            }
        }
        size_t mark = path_push(ctx->path, sizeof ctx->path, key);
        bool ok = true;
        if (!declared && n->no_additional)
            ok = check_fail(ctx, "property not allowed (additionalProperties is false)");
        else if (!declared && n->additional)
            ok = check_value(ctx, n->additional, &it);
        else if (sub)
            ok = check_value(ctx, sub, &it);
        if (!ok)
            return false;
        ctx->path[mark] = '\0';
    }
    return true;
}

static bool check_array(check_ctx_t *ctx, const schema_node_t *n, const bson_iter_t *arr_it) {
    bson_iter_t it;
    int64_t count = 0;
    bson_iter_recurse(arr_it, &it);
    while (bson_iter_next(&it)) {
        if (n->items) {
            size_t len = strlen(ctx->path);
            snprintf(ctx->path + len, sizeof ctx->path - len, "[%" PRId64 "]", count);
            if (!check_value(ctx, n->items, &it))
                return false;
            ctx->path[len] = '\0';
        }
        count++;
    }
    if (n->min_items >= 0 && count < n->min_items)
        return check_fail(ctx, "%" PRId64 " items, fewer than minItems %" PRId64, count,
                          n->min_items);
    if (n->max_items >= 0 && count > n->max_items)
        return check_fail(ctx, "%" PRId64 " items, more than maxItems %" PRId64, count,
                          n->max_items);
    return true;
}

static bool check_value(check_ctx_t *ctx, const schema_node_t *n, const bson_iter_t *it) {
    bson_type_t t = bson_iter_type(it);
    char shown[80];

    if (n->types && !(n->types & TYPE_BIT(t))) {
        char want[200];
        describe_types(n->types, want, sizeof want);
        return check_fail(ctx, "expected %s, got %s", want, outbox__bson_type_name(t));
    }
    if (n->enum_doc) {
        bson_iter_t e;
        bool found = false;
        bson_iter_init_find(&e, n->enum_doc, "enum");
        bson_iter_t item;
        bson_iter_recurse(&e, &item);
        while (!found && bson_iter_next(&item))
            found = values_equal(it, &item);
        if (!found) {
            value_json(it, shown, sizeof shown);
            return check_fail(ctx, "%s is not one of %s", shown, n->enum_json);
        }
    }
    if (is_number(t) && (n->has_min || n->has_max)) {
        double v = t == BSON_TYPE_DECIMAL128 ? 0 : bson_iter_as_double(it);
        if (t == BSON_TYPE_DECIMAL128) {
            bson_decimal128_t d;
            char str[BSON_DECIMAL128_STRING];
            bson_iter_decimal128(it, &d);
            bson_decimal128_to_string(&d, str);
            v = strtod(str, NULL);
        }
        value_json(it, shown, sizeof shown);
        if (n->has_min && (n->excl_min ? !(v > n->min) : !(v >= n->min)))
            return check_fail(ctx, "%s is below %s %g", shown,
                              n->excl_min ? "exclusive minimum" : "minimum", n->min);
        if (n->has_max && (n->excl_max ? !(v < n->max) : !(v <= n->max)))
            return check_fail(ctx, "%s is above %s %g", shown,
                              n->excl_max ? "exclusive maximum" : "maximum", n->max);
    }
    if (t == BSON_TYPE_UTF8 && (n->min_len >= 0 || n->max_len >= 0 || n->pattern)) {
        uint32_t bytes;
        const char *s = bson_iter_utf8(it, &bytes);
        int64_t len = (int64_t)utf8_length(s, bytes);
        if (n->min_len >= 0 && len < n->min_len)
            return check_fail(ctx, "length %" PRId64 " is below minLength %" PRId64, len,
                              n->min_len);
        if (n->max_len >= 0 && len > n->max_len)
            return check_fail(ctx, "length %" PRId64 " is above maxLength %" PRId64, len,
                              n->max_len);
        if (n->pattern) {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(n->pattern, NULL);
            if (!md)
                return check_fail(ctx, "out of memory matching pattern /%s/", n->pattern_src);
            int rc = pcre2_match(n->pattern, (PCRE2_SPTR)s, bytes, 0, 0, md, n->match_ctx);
            pcre2_match_data_free(md);
            if (rc == PCRE2_ERROR_NOMATCH) {
                value_json(it, shown, sizeof shown);
                return check_fail(ctx, "%s does not match pattern /%s/", shown, n->pattern_src);
            }
            if (rc < 0) {
                PCRE2_UCHAR why[160];
                pcre2_get_error_message(rc, why, sizeof why);
                value_json(it, shown, sizeof shown);
                bool limit = rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
                             rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_JIT_STACKLIMIT;
                ctx->limit = limit;
                if (limit)
                    return check_fail(ctx, "pattern /%s/ exceeded the match limit on %s (%s): "
                                      "neither matched nor refused; simplify the pattern",
                                      n->pattern_src, shown, (const char *)why);
                return check_fail(ctx, "%s cannot be matched against pattern /%s/: %s", shown,
                                  n->pattern_src, (const char *)why);
            }
        }
    }
    if (t == BSON_TYPE_DOCUMENT) {
        uint32_t len;
        const uint8_t *data;
        bson_t doc;
        bson_iter_document(it, &len, &data);
        if (!bson_init_static(&doc, data, len))
            return check_fail(ctx, "corrupt document");
        return check_object(ctx, n, &doc);
    }
    if (t == BSON_TYPE_ARRAY)
        return check_array(ctx, n, it);
    return true;
}

bool outbox__schema_validate(const outbox_schema_t *schema, const bson_t *data,
                             const char *root_name, char *errbuf, size_t errbuf_size) {
    return outbox__schema_check(schema, data, root_name, errbuf, errbuf_size) == OUTBOX_OK;
}

outbox_code_t outbox__schema_check(const outbox_schema_t *schema, const bson_t *data,
                                   const char *root_name, char *errbuf, size_t errbuf_size) {
    check_ctx_t ctx = {.buf = errbuf, .size = errbuf_size};
    bson_t wrap = BSON_INITIALIZER;
    bson_iter_t it;
    snprintf(ctx.path, sizeof ctx.path, "%s", root_name);
    BSON_APPEND_DOCUMENT(&wrap, "", data);
    bson_iter_init_find(&it, &wrap, "");
    bool ok = check_value(&ctx, schema->root, &it);
    bson_destroy(&wrap);
    return ok ? OUTBOX_OK : ctx.limit ? OUTBOX_ERR_LIMIT : OUTBOX_ERR_VALIDATION;
}
