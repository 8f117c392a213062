/*
 * test_schema_validation.c - the schema subset: what each keyword accepts
 * and refuses, and that every refusal names the path of the failing value.
 * Pure library code: no server needed.
 */
#include "testlib.h"
#include "schema.h"

#include <string.h>

static outbox_schema_t *compile_ok(const char *json) {
    char err[400];
    outbox_schema_t *s = outbox__schema_compile(json, err, sizeof err);
    if (!s)
        fail_msg("schema did not compile: %s", err);
    return s;
}

/* data must fail with exactly this message. */
static void expect_invalid(const char *schema, const char *data_json, const char *message) {
    char err[400] = "";
    bson_error_t berr;
    bson_t data;
    outbox_schema_t *s = compile_ok(schema);
    if (!bson_init_from_json(&data, data_json, -1, &berr))
        fail_msg("bad test data %s: %s", data_json, berr.message);
    bool ok = outbox__schema_validate(s, &data, "data", err, sizeof err);
    bson_destroy(&data);
    outbox__schema_destroy(s);
    if (ok)
        fail_msg("%s was accepted, expected: %s", data_json, message);
    assert_string_equal(err, message);
}

static void expect_valid(const char *schema, const char *data_json) {
    char err[400] = "";
    bson_error_t berr;
    bson_t data;
    outbox_schema_t *s = compile_ok(schema);
    if (!bson_init_from_json(&data, data_json, -1, &berr))
        fail_msg("bad test data %s: %s", data_json, berr.message);
    bool ok = outbox__schema_validate(s, &data, "data", err, sizeof err);
    bson_destroy(&data);
    outbox__schema_destroy(s);
    if (!ok)
        fail_msg("%s was refused: %s", data_json, err);
}

static void expect_bad_schema(const char *schema, const char *message) {
    char err[400] = "";
    outbox_schema_t *s = outbox__schema_compile(schema, err, sizeof err);
    if (s) {
        outbox__schema_destroy(s);
        fail_msg("schema %s compiled, expected: %s", schema, message);
    }
    assert_string_equal(err, message);
}

/* A pattern that needs more than PCRE2's match limit is neither a match
 * nor a mismatch: it once came back as "does not match" (a false refusal of
 * 40 a's, which ^(?:(a|a)*c|a*)$ matches) and (a+)+$ took most of a second
 * per event. Now the limit is low enough to keep a match cheap and hitting
 * it is its own error, naming the pattern. */
static void a_pattern_that_exceeds_the_match_limit_is_its_own_error(void **state) {
    const char *cases[][2] = {
        {"{\"properties\":{\"s\":{\"pattern\":\"^(?:(a|a)*c|a*)$\"}}}",
         "{\"s\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}"},
        {"{\"properties\":{\"s\":{\"pattern\":\"(a+)+$\"}}}",
         "{\"s\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab\"}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[400] = "";
        bson_error_t berr;
        bson_t data;
        outbox_schema_t *s = compile_ok(cases[i][0]);
        assert_true(bson_init_from_json(&data, cases[i][1], -1, &berr));
        bool ok = outbox__schema_validate(s, &data, "data", err, sizeof err);
        assert_false(ok);
        if (!strstr(err, "exceeded the match limit") || strstr(err, "does not match"))
            fail_msg("%s against %s: %s", cases[i][1], cases[i][0], err);
        assert_int_equal(outbox__schema_check(s, &data, "data", err, sizeof err), OUTBOX_ERR_LIMIT);
        assert_non_null(strstr(err, "data.s: pattern /"));
        bson_destroy(&data);
        outbox__schema_destroy(s);
    }
    /* An ordinary mismatch is still one. */
    char err[400] = "";
    bson_error_t berr;
    bson_t data;
    outbox_schema_t *s = compile_ok("{\"properties\":{\"s\":{\"pattern\":\"^[a-z]+$\"}}}");
    assert_true(bson_init_from_json(&data, "{\"s\":\"A1\"}", -1, &berr));
    assert_int_equal(outbox__schema_check(s, &data, "data", err, sizeof err), OUTBOX_ERR_VALIDATION);
    assert_string_equal(err, "data.s: \"A1\" does not match pattern /^[a-z]+$/");
    bson_destroy(&data);
    outbox__schema_destroy(s);
}

static void order_example_is_valid(void **state) {
    expect_valid(ORDER_CREATED_SCHEMA,
                 "{\"ordernr\": 1, \"total\": 12.5, \"customer\": \"ada\","
                 " \"lines\": [{\"sku\": \"ABC-1\", \"qty\": 2}]}");
    expect_valid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 7, \"total\": {\"$numberLong\": \"3\"}}");
}

static void wrong_bson_type_names_path_and_both_types(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": \"12\", \"total\": 1}",
                   "data.ordernr: expected int, got string");
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 1, \"total\": true}",
                   "data.total: expected number, got bool");
    expect_invalid("{\"bsonType\": [\"string\", \"null\"]}", "{}", "data: expected string or null, got object");
}

static void missing_required_field_is_named(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"total\": 1}", "data.ordernr: required property is missing");
}

static void additional_properties_false_refuses_extra(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 1, \"total\": 1, \"coupon\": \"x\"}",
                   "data.coupon: property not allowed (additionalProperties is false)");
    expect_invalid("{\"additionalProperties\": {\"bsonType\": \"int\"}}", "{\"a\": 1, \"b\": \"x\"}",
                   "data.b: expected int, got string");
}

static void out_of_range_values(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 0, \"total\": 1}",
                   "data.ordernr: 0 is below minimum 1");
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 1, \"total\": -0.5}",
                   "data.total: -0.5 is below minimum 0");
    expect_invalid("{\"properties\": {\"p\": {\"maximum\": 10, \"exclusiveMaximum\": true}}}",
                   "{\"p\": 10}", "data.p: 10 is above exclusive maximum 10");
    expect_valid("{\"properties\": {\"p\": {\"maximum\": 10}}}", "{\"p\": 10}");
    /* minimum does not apply to strings (draft 4 semantics, as MongoDB). */
    expect_valid("{\"properties\": {\"p\": {\"minimum\": 10}}}", "{\"p\": \"a\"}");
}

static void string_length_counts_characters(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 1, \"total\": 1, \"customer\": \"\"}",
                   "data.customer: length 0 is below minLength 1");
    /* "éé" is 4 bytes and 2 characters. */
    expect_valid("{\"properties\": {\"s\": {\"maxLength\": 2}}}", "{\"s\": \"\\u00e9\\u00e9\"}");
    expect_invalid("{\"properties\": {\"s\": {\"maxLength\": 1}}}", "{\"s\": \"\\u00e9\\u00e9\"}",
                   "data.s: length 2 is above maxLength 1");
}

static void pattern_and_nested_array_paths(void **state) {
    expect_invalid(ORDER_CREATED_SCHEMA,
                   "{\"ordernr\": 1, \"total\": 1, \"lines\": [{\"sku\": \"ABC-1\", \"qty\": 1},"
                   " {\"sku\": \"abc\", \"qty\": 1}]}",
                   "data.lines[1].sku: \"abc\" does not match pattern /^[A-Z]{3}-[0-9]+$/");
    expect_invalid(ORDER_CREATED_SCHEMA,
                   "{\"ordernr\": 1, \"total\": 1, \"lines\": [{\"sku\": \"ABC-1\", \"qty\": \"2\"}]}",
                   "data.lines[0].qty: expected int, got string");
    expect_invalid(ORDER_CREATED_SCHEMA, "{\"ordernr\": 1, \"total\": 1, \"lines\": []}",
                   "data.lines: 0 items, fewer than minItems 1");
    expect_invalid("{\"properties\": {\"a\": {\"maxItems\": 1}}}", "{\"a\": [1, 2]}",
                   "data.a: 2 items, more than maxItems 1");
}

static void enum_compares_numbers_by_value(void **state) {
    expect_invalid(ORDER_SHIPPED_SCHEMA, "{\"ordernr\": 1, \"carrier\": \"fedex\"}",
                   "data.carrier: \"fedex\" is not one of [ \"dhl\", \"ups\", \"postnl\" ]");
    expect_valid(ORDER_SHIPPED_SCHEMA, "{\"ordernr\": 1, \"carrier\": \"ups\"}");
    expect_valid("{\"properties\": {\"n\": {\"enum\": [1, 2]}}}", "{\"n\": 2.0}");
    expect_valid("{\"properties\": {\"n\": {\"enum\": [1, 2]}}}", "{\"n\": {\"$numberLong\": \"1\"}}");
}

static void json_type_keyword(void **state) {
    expect_valid("{\"type\": \"object\", \"properties\": {\"n\": {\"type\": \"number\"}}}", "{\"n\": 1}");
    expect_invalid("{\"properties\": {\"b\": {\"type\": \"boolean\"}}}", "{\"b\": 1}",
                   "data.b: expected bool, got int");
}

static void malformed_schemas_are_refused_with_their_path(void **state) {
    expect_bad_schema("{\"properties\": {\"a\": {\"bsonType\": \"integer\"}}}",
                      "properties.a.bsonType: unknown BSON type \"integer\"");
    expect_bad_schema("{\"properties\": {\"a\": {\"type\": \"integer\"}}}",
                      "properties.a.type: type \"integer\" is not supported by MongoDB's "
                      "$jsonSchema; use bsonType \"int\", \"long\" or [\"int\", \"long\"]");
    expect_bad_schema("{\"required\": \"a\"}", "required: expected an array of property names");
    expect_bad_schema("{\"properties\": {\"a\": {\"pattern\": \"(\"}}}",
                      "properties.a.pattern: bad regular expression at offset 1: missing closing parenthesis");
    expect_bad_schema("{\"oneOf\": []}", "oneOf: unsupported keyword (see docs/schemas.md for the subset)");
    expect_bad_schema("{\"minLength\": -1}", "minLength: expected a non-negative integer, got -1");
    /* Found by fuzz_schema: a count too large for an int64 was converted
     * to one (undefined behaviour, fatal under UBSan) before it was checked. */
    expect_bad_schema("{\"minLength\": 1e46}", "minLength: expected a non-negative integer");
    expect_bad_schema("{\"maxItems\": 9.3e18}", "maxItems: expected a non-negative integer");
    /* Found by fuzz_schema: the first of two "pattern"s leaked its regex. */
    expect_bad_schema("{\"properties\": {\"a\": {\"pattern\": \"x\", \"pattern\": \"^y$\"}}}",
                      "properties.a.pattern: given twice");
    expect_bad_schema("{\"items\": [{}]}",
                      "items: items as an array (tuple form) is not supported; give one schema for every item");
    char err[400];
    assert_null(outbox__schema_compile("{not json", err, sizeof err));
    assert_non_null(strstr(err, "not valid JSON"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_example_is_valid),
        cmocka_unit_test(wrong_bson_type_names_path_and_both_types),
        cmocka_unit_test(missing_required_field_is_named),
        cmocka_unit_test(additional_properties_false_refuses_extra),
        cmocka_unit_test(out_of_range_values),
        cmocka_unit_test(string_length_counts_characters),
        cmocka_unit_test(pattern_and_nested_array_paths),
        cmocka_unit_test(enum_compares_numbers_by_value),
        cmocka_unit_test(json_type_keyword),
        cmocka_unit_test(malformed_schemas_are_refused_with_their_path),
        cmocka_unit_test(a_pattern_that_exceeds_the_match_limit_is_its_own_error),
    };
    return TEST_RUN("schema_validation", tests);
}
