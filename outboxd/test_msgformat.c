/*
 * test_msgformat.c - the message layouts of msgformat.h, exactly, without a
 * server (tests/test_formats.sh judges them end to end with the
 * CloudEvents SDK): which headers each format sets and in which cases,
 * the structured body, and which plugins may carry which format.
 */
#include "msgformat.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static const outbox_sink_header_t envelope_headers[] = {
    {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
    {"tenant", "acme"},
    {"Not-An-Ext", "x"},
    {"averyveryverylongname", "21 characters"},
    {"partitionkey", "from-a-header"},
};

static outbox_sink_event_t event(const char *key) {
    static const char data[] = "{\"ordernr\":1}";
    outbox_sink_event_t ev = {.seq = 1,
                              .id = "6b136da046b34357d403a421",
                              .type = "order.created",
                              .key = key,
                              .destination = "orders",
                              .payload = (const unsigned char *)data,
                              .payload_len = sizeof data - 1,
                              .created_ms = 1764899360123,
                              .headers = envelope_headers,
                              .n_headers = sizeof envelope_headers / sizeof envelope_headers[0]};
    return ev;
}

/* The value of header name in m, NULL when absent. */
static const char *header(const outboxd_message_t *m, const char *name) {
    for (size_t i = 0; i < m->n_headers; i++)
        if (!strcmp(m->headers[i].name, name))
            return m->headers[i].value;
    return NULL;
}

static void binary_mode_sets_every_attribute_as_a_ce_header(void **state) {
    (void)state;
    outboxd_msgformat_t mf = {.format = OUTBOXD_MESSAGE_CLOUDEVENTS, .binary = true, .source = "/shop/events"};
    outbox_sink_event_t ev = event("order-1");
    outboxd_message_t m;
    assert_true(outboxd_message_build(&mf, &ev, &m));
    assert_null(m.body); /* the data is the body as it is */
    assert_string_equal(header(&m, "ce_specversion"), "1.0");
    assert_string_equal(header(&m, "ce_id"), ev.id);
    assert_string_equal(header(&m, "ce_source"), "/shop/events");
    assert_string_equal(header(&m, "ce_type"), "order.created");
    assert_string_equal(header(&m, "ce_time"), "2025-12-05T01:49:20.123Z");
    assert_string_equal(header(&m, "ce_subject"), "order-1");
    assert_string_equal(header(&m, "ce_partitionkey"), "order-1");
    assert_string_equal(header(&m, "content-type"), "application/json");
    assert_string_equal(header(&m, "ce_tenant"), "acme");
    assert_string_equal(header(&m, "ce_traceparent"), envelope_headers[0].value);
    assert_string_equal(header(&m, "traceparent"), envelope_headers[0].value);
    assert_null(header(&m, "ce_Not-An-Ext"));
    assert_null(header(&m, "ce_averyveryverylongname")); /* over 20 characters */
    assert_null(header(&m, "ce_datacontenttype"));       /* content-type carries it */
    size_t partitionkeys = 0;
    for (size_t i = 0; i < m.n_headers; i++)
        partitionkeys += !strcmp(m.headers[i].name, "ce_partitionkey");
    assert_int_equal(partitionkeys, 1); /* the key's, never a header's too */
    outboxd_message_clear(&m);

    /* A null key: no subject, no partitionkey; BSON data: its media type. */
    mf.bson = true;
    ev = event(NULL);
    assert_true(outboxd_message_build(&mf, &ev, &m));
    assert_null(header(&m, "ce_subject"));
    assert_null(header(&m, "ce_partitionkey"));
    assert_string_equal(header(&m, "content-type"), "application/bson");
    outboxd_message_clear(&m);
}

static void structured_mode_is_one_json_object_with_the_data_spliced_in(void **state) {
    (void)state;
    outboxd_msgformat_t mf = {.format = OUTBOXD_MESSAGE_CLOUDEVENTS, .source = "/s \"q\""};
    outbox_sink_event_t ev = event("k");
    outboxd_message_t m;
    assert_true(outboxd_message_build(&mf, &ev, &m));
    assert_non_null(m.body);
    char body[1024];
    assert_true(m.body_len < sizeof body);
    memcpy(body, m.body, m.body_len);
    body[m.body_len] = '\0';
    assert_string_equal(body, "{\"specversion\":\"1.0\",\"id\":\"6b136da046b34357d403a421\","
                              "\"source\":\"/s \\\"q\\\"\",\"type\":\"order.created\","
                              "\"time\":\"2025-12-05T01:49:20.123Z\",\"datacontenttype\":\"application/json\","
                              "\"subject\":\"k\",\"partitionkey\":\"k\","
                              "\"traceparent\":\"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\","
                              "\"tenant\":\"acme\",\"data\":{\"ordernr\":1}}");
    assert_string_equal(header(&m, "content-type"), "application/cloudevents+json; charset=UTF-8");
    assert_string_equal(header(&m, "traceparent"), envelope_headers[0].value);
    assert_null(header(&m, "ce_id"));
    outboxd_message_clear(&m);
}

static void debezium_sets_the_id_header_and_keeps_the_data(void **state) {
    (void)state;
    outboxd_msgformat_t mf = {.format = OUTBOXD_MESSAGE_DEBEZIUM};
    outbox_sink_event_t ev = event("k");
    outboxd_message_t m;
    assert_true(outboxd_message_build(&mf, &ev, &m));
    assert_null(m.body);
    assert_int_equal(m.n_headers, 2); /* id, traceparent */
    assert_string_equal(header(&m, "id"), ev.id);
    assert_string_equal(header(&m, "traceparent"), envelope_headers[0].value);
    outboxd_message_clear(&m);

    mf.format = OUTBOXD_MESSAGE_NATIVE; /* native: nothing built */
    assert_true(outboxd_message_build(&mf, &ev, &m));
    assert_int_equal(m.n_headers, 0);
    assert_null(m.body);
    outboxd_message_clear(&m);
}

static void extension_names_follow_the_spec(void **state) {
    (void)state;
    assert_true(outboxd_ce_extension_name("tenant"));
    assert_true(outboxd_ce_extension_name("traceparent"));
    assert_true(outboxd_ce_extension_name("a1"));
    assert_true(outboxd_ce_extension_name("abcdefghijklmnopqrst")); /* 20 */
    assert_false(outboxd_ce_extension_name("abcdefghijklmnopqrstu"));
    assert_false(outboxd_ce_extension_name(""));
    assert_false(outboxd_ce_extension_name("Tenant"));
    assert_false(outboxd_ce_extension_name("x-y"));
    assert_false(outboxd_ce_extension_name("id"));
    assert_false(outboxd_ce_extension_name("data"));
    assert_false(outboxd_ce_extension_name("datacontenttype"));
    assert_false(outboxd_ce_extension_name("partitionkey")); /* outboxd's own: the key */
}

static void formats_are_open_only_to_plugins_that_take_messages_as_given(void **state) {
    (void)state;
    outbox_sink_plugin_t p = {.struct_size = sizeof p, .name = "p"};
    outboxd_sink_conf_t sink = {.name = "s", .format = OUTBOXD_MESSAGE_CLOUDEVENTS, .ce_source = "/s"};
    outboxd_msgformat_t mf;
    char why[400];
    assert_false(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_non_null(strstr(why, "does not declare OUTBOX_SINK_MESSAGES_AS_GIVEN"));
    p.messages = OUTBOX_SINK_MESSAGES_AS_GIVEN;
    assert_true(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_false(mf.binary); /* no binding: structured */
    p.cloudevents_binding = "kafka";
    assert_true(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_true(mf.binary);
    sink.ce_mode = OUTBOXD_CE_STRUCTURED;
    assert_true(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_false(mf.binary);
    /* A 1.1 plugin's struct ends before messages: never read past it. */
    p.struct_size = OUTBOX_SINK_PLUGIN_SIZE_1_1;
    assert_false(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    p.struct_size = sizeof p;
    p.cloudevents_binding = NULL;
    sink.ce_mode = OUTBOXD_CE_BINARY;
    assert_false(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_non_null(strstr(why, "no CloudEvents binding"));
    sink.ce_mode = OUTBOXD_CE_AUTO;
    sink.payload = OUTBOXD_PAYLOAD_BSON;
    assert_false(outboxd_msgformat_resolve(&sink, &p, &mf, why, sizeof why));
    assert_non_null(strstr(why, "needs payload: json"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(binary_mode_sets_every_attribute_as_a_ce_header),
        cmocka_unit_test(structured_mode_is_one_json_object_with_the_data_spliced_in),
        cmocka_unit_test(debezium_sets_the_id_header_and_keeps_the_data),
        cmocka_unit_test(extension_names_follow_the_spec),
        cmocka_unit_test(formats_are_open_only_to_plugins_that_take_messages_as_given),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("outboxd_msgformat", tests, NULL, NULL);
}
