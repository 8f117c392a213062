/*
 * test_conffile.c - outboxd's configuration loader: a good file reads back
 * exactly, every kind of mistake is reported with the text and the
 * FILE:LINE:COLUMN an operator will see, secrets come from files and the
 * environment and never appear in a message. Also route expansion. No
 * server needed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conffile.h"

/* The start of a good file; tests append their sinks from line 6. */
#define HEAD                                   \
    "mongodb:\n"                               \
    "  uri: \"mongodb://127.0.0.1:37017/\"\n" \
    "  database: shop\n"                       \
    "outbox: events\n"                         \
    "sinks:\n"

/* A good sink, starting at column 5 of its first line. */
#define SINK(name) "  - name: " name "\n    plugin: file\n    route: /tmp/{type}.jsonl\n"

static void write_file(const char *path, const char *content) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Loads yaml from a fresh temporary file, which is gone on return. */
static outboxd_conf_t *load_yaml(const char *yaml, char *path, char *err, size_t err_size) {
    strcpy(path, "/tmp/outboxd-conf-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    write_file(path, yaml);
    outboxd_conf_t *conf = outboxd_conf_load(path, err, err_size);
    unlink(path);
    return conf;
}

/* Checks that yaml fails with "PATH:" followed by want. */
static void expect_error(const char *yaml, const char *want) {
    char path[32], err[512];
    outboxd_conf_t *conf = load_yaml(yaml, path, err, sizeof err);
    if (conf) {
        outboxd_conf_free(conf);
        fail_msg("loaded, but expected the error \"%s\"", want);
    }
    size_t n = strlen(path);
    assert_memory_equal(err, path, n);
    assert_int_equal(err[n], ':');
    assert_string_equal(err + n + 1, want);
}

static outboxd_conf_t *load_good(const char *yaml) {
    char path[32], err[512];
    outboxd_conf_t *conf = load_yaml(yaml, path, err, sizeof err);
    if (!conf)
        fail_msg("expected to load, got: %s", err);
    return conf;
}

static void full_config_reads_back_every_field(void **state) {
    const char *srcdir = getenv("OUTBOX_TEST_SRCDIR");
    char path[4096], err[512];
    snprintf(path, sizeof path, "%s/outboxd/testdata/full.yaml", srcdir ? srcdir : ".");
    outboxd_conf_t *conf = outboxd_conf_load(path, err, sizeof err);
    if (!conf)
        fail_msg("%s", err);

    assert_string_equal(conf->path, path);
    assert_string_equal(conf->mongodb_uri, "mongodb://app:s3cret@127.0.0.1:37017/?replicaSet=rs0");
    assert_string_equal(conf->database, "shop");
    assert_string_equal(conf->outbox, "events");
    assert_string_equal(conf->plugin_dir, "/usr/lib/x86_64-linux-gnu/service-outbox/sinks");
    assert_int_equal(conf->checkpoint_every_events, 500);
    assert_int_equal(conf->checkpoint_every_ms, 250);
    assert_int_equal(conf->n_sinks, 2);

    const outboxd_sink_conf_t *s = &conf->sinks[0];
    assert_string_equal(s->name, "audit");
    assert_string_equal(s->plugin, "file");
    assert_string_equal(s->route, "/var/lib/outbox/{type}.jsonl");
    assert_int_equal(s->n_types, 2);
    assert_string_equal(s->types[0], "order.created");
    assert_string_equal(s->types[1], "order.shipped");
    assert_int_equal(s->payload, OUTBOXD_PAYLOAD_BSON);
    assert_int_equal(s->on_error, OUTBOXD_ON_ERROR_DEADLETTER);
    assert_int_equal(s->on_gap, OUTBOXD_ON_GAP_CONTINUE);
    assert_true(s->optional);
    assert_int_equal(s->line, 11);
    assert_int_equal(s->column, 5);
    /* In file order, values as written, each with its key's position. */
    assert_int_equal(s->n_options, 3);
    assert_string_equal(s->options[0].key, "fsync");
    assert_string_equal(s->options[0].value, "always");
    assert_int_equal(s->options[0].line, 20);
    assert_int_equal(s->options[0].column, 7);
    assert_string_equal(s->options[1].key, "max_bytes");
    assert_string_equal(s->options[1].value, "1048576");
    assert_int_equal(s->options[1].line, 21);
    assert_string_equal(s->options[2].key, "rotate");
    assert_string_equal(s->options[2].value, "off");
    assert_int_equal(s->options[2].line, 22);

    s = &conf->sinks[1];
    assert_string_equal(s->name, "bus.orders-1");
    assert_string_equal(s->plugin, "kafka_v2");
    assert_string_equal(s->route, "orders.{key}{{v1}}");
    assert_int_equal(s->n_types, 0);
    assert_null(s->types);
    assert_int_equal(s->payload, OUTBOXD_PAYLOAD_JSON);
    assert_int_equal(s->on_error, OUTBOXD_ON_ERROR_STOP);
    assert_int_equal(s->on_gap, OUTBOXD_ON_GAP_STOP);
    assert_false(s->optional);
    assert_int_equal(s->n_options, 0);
    assert_null(s->options);
    assert_int_equal(s->line, 23);
    assert_int_equal(s->column, 5);
    outboxd_conf_free(conf);
}

static void absent_or_null_optional_keys_take_their_defaults(void **state) {
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_null(conf->plugin_dir);
    assert_int_equal(conf->checkpoint_every_events, 1000);
    assert_int_equal(conf->checkpoint_every_ms, 1000);
    assert_int_equal(conf->n_sinks, 1);
    assert_int_equal(conf->sinks[0].payload, OUTBOXD_PAYLOAD_JSON);
    assert_true(conf->sinks[0].recover); /* effectively-once unless turned off */
    outboxd_conf_free(conf);

    /* `key:` with nothing after it is YAML's null: "not set". */
    conf = load_good(HEAD SINK("a") "    types:\n    payload: ~\n    optional:\n    options:\n    recover:\n"
                                    "plugin_dir:\ncheckpoint:\n");
    assert_true(conf->sinks[0].recover);
    assert_null(conf->plugin_dir);
    assert_int_equal(conf->checkpoint_every_events, 1000);
    assert_int_equal(conf->sinks[0].n_types, 0);
    assert_int_equal(conf->sinks[0].n_options, 0);
    assert_false(conf->sinks[0].optional);
    outboxd_conf_free(conf);

    conf = load_good(HEAD SINK("a") "    types: []\n    options: {}\n    optional: On\n    recover: false\n"
                                    "checkpoint: {every_ms: 20}\n");
    assert_int_equal(conf->sinks[0].n_types, 0);
    assert_true(conf->sinks[0].optional);
    assert_false(conf->sinks[0].recover);
    assert_int_equal(conf->checkpoint_every_events, 1000);
    assert_int_equal(conf->checkpoint_every_ms, 20);
    outboxd_conf_free(conf);
}

static void unknown_keys_are_named_with_the_keys_expected(void **state) {
    expect_error(HEAD "  - name: audit\n    plugin: file\n    plugn: file\n",
                 "8:5: unknown key \"plugn\" in sink \"audit\" (expected name, plugin, route, types, "
                 "payload, format, cloudevents, on_error, on_gap, optional, recover, options)");
    /* The sink is found by its name even when the mistake comes first. */
    expect_error(HEAD SINK("a") "  - Plugin: file\n    name: b\n",
                 "9:5: unknown key \"Plugin\" in sink \"b\" (expected name, plugin, route, types, "
                 "payload, format, cloudevents, on_error, on_gap, optional, recover, options)");
    expect_error(HEAD "  - route: x\n    name: bad name\n    x: 1\n",
                 "8:5: unknown key \"x\" in sink 1 (expected name, plugin, route, types, payload, "
                 "format, cloudevents, on_error, on_gap, optional, recover, options)");
    expect_error(HEAD SINK("a") "Outbox: e\n",
                 "9:1: unknown key \"Outbox\" (expected mongodb, outbox, plugin_dir, checkpoint, reader, ha, http, "
                 "log, sinks)");
    expect_error("mongodb:\n  url: x\n",
                 "2:3: unknown key \"url\" in mongodb (expected uri, uri_file, database)");
    expect_error(HEAD SINK("a") "checkpoint:\n  every: 5\n",
                 "10:3: unknown key \"every\" in checkpoint (expected every_events, every_ms)");
    expect_error(HEAD SINK("a") "? [a, b]\n: c\n", "9:3: expected a string as key");
}

static void checkpoint_counts_must_be_integers_from_one_to_their_maxima(void **state) {
    expect_error(HEAD SINK("a") "checkpoint:\n  every_events: lots\n",
                 "10:17: checkpoint.every_events: expected an integer from 1 to 1000000, got \"lots\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_events: 0\n",
                 "10:17: checkpoint.every_events: expected an integer from 1 to 1000000, got \"0\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_ms: -5\n",
                 "10:13: checkpoint.every_ms: expected an integer from 1 to 3600000, got \"-5\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_ms: 1e3\n",
                 "10:13: checkpoint.every_ms: expected an integer from 1 to 3600000, got \"1e3\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_ms: 99999999999999999999\n",
                 "10:13: checkpoint.every_ms: expected an integer from 1 to 3600000, got \"99999999999999999999\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_ms: [1]\n",
                 "10:13: checkpoint.every_ms: expected an integer from 1 to 3600000");
    /* INT64_MAX used to pass: a checkpoint never written, a timer never due. */
    expect_error(HEAD SINK("a") "checkpoint:\n  every_events: \"9223372036854775807\"\n",
                 "10:17: checkpoint.every_events: expected an integer from 1 to 1000000, got \"9223372036854775807\"");
    expect_error(HEAD SINK("a") "checkpoint:\n  every_ms: 3600001\n",
                 "10:13: checkpoint.every_ms: expected an integer from 1 to 3600000, got \"3600001\"");
    outboxd_conf_t *conf = load_good(HEAD SINK("a") "checkpoint:\n  every_events: 1000000\n  every_ms: 3600000\n");
    assert_int_equal(conf->checkpoint_every_events, OUTBOXD_EVERY_EVENTS_MAX);
    assert_int_equal(conf->checkpoint_every_ms, OUTBOXD_EVERY_MS_MAX);
    outboxd_conf_free(conf);
}

/* http: off by default; an address of the right form, checked with its
 * line (binding it is --check's: test_http_daemon). */
static void http_listen_takes_an_address_of_the_right_form(void **state) {
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_null(conf->http_listen);
    assert_int_equal(conf->http_ready_grace_ms, OUTBOXD_HTTP_GRACE_DEFAULT_MS);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "http:\n  listen: \"127.0.0.1:9187\"\n  ready_grace_ms: 0\n");
    assert_string_equal(conf->http_listen, "127.0.0.1:9187");
    assert_int_equal(conf->http_listen_line, 10);
    assert_int_equal(conf->http_ready_grace_ms, 0);
    outboxd_conf_free(conf);
    static const char *const good[] = {"[::1]:9187", ":9187", "localhost:1", "0.0.0.0:65535"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char text[400];
        snprintf(text, sizeof text, HEAD SINK("a") "http:\n  listen: \"%s\"\n", good[i]);
        conf = load_good(text);
        assert_string_equal(conf->http_listen, good[i]);
        outboxd_conf_free(conf);
    }
    expect_error(HEAD SINK("a") "http:\n  listen: \"9187\"\n",
                 "10:11: http.listen: expected HOST:PORT (an IPv6 address in brackets: [::1]:9187)");
    expect_error(HEAD SINK("a") "http:\n  listen: \"host:0\"\n",
                 "10:11: http.listen: the port must be a number from 1 to 65535, got \"0\"");
    expect_error(HEAD SINK("a") "http:\n  listen: \"host:http\"\n",
                 "10:11: http.listen: the port must be a number from 1 to 65535, got \"http\"");
    expect_error(HEAD SINK("a") "http:\n  listen: \"[::1]9187\"\n", "10:11: http.listen: expected [IPV6]:PORT");
    expect_error(HEAD SINK("a") "http:\n  listen: \"[]:9187\"\n", "10:11: http.listen: an empty host in brackets");
    expect_error(HEAD SINK("a") "http:\n  ready_grace_ms: -1\n",
                 "10:19: http.ready_grace_ms: expected an integer from 0 to 3600000, got \"-1\"");
    expect_error(HEAD SINK("a") "http:\n  stuck_ms: 999\n",
                 "10:13: http.stuck_ms: expected an integer from 1000 to 3600000, got \"999\"");
    conf = load_good(HEAD SINK("a") "http:\n  stuck_ms: 5000\n");
    assert_int_equal(conf->http_stuck_ms, 5000);
    outboxd_conf_free(conf);
    expect_error(HEAD SINK("a") "http:\n  port: 9187\n", "10:3: unknown key \"port\" in http (expected listen, "
                                                            "ready_grace_ms, stuck_ms)");
}

/* format and cloudevents (issue 19): the choices, the source required and
 * expanded, the section only with its format, structured needing JSON. */
static void format_and_cloudevents_are_checked(void **state) {
    (void)state;
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_int_equal(conf->sinks[0].format, OUTBOXD_MESSAGE_NATIVE);
    assert_null(conf->sinks[0].ce_source);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "    format: cloudevents\n    cloudevents:\n      source: \"/{db}/{outbox}/x\"\n"
                                   "      mode: structured\n");
    assert_int_equal(conf->sinks[0].format, OUTBOXD_MESSAGE_CLOUDEVENTS);
    assert_string_equal(conf->sinks[0].ce_source, "/shop/events/x");
    assert_int_equal(conf->sinks[0].ce_mode, OUTBOXD_CE_STRUCTURED);
    assert_int_equal(conf->sinks[0].format_line, 9);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "    format: debezium\n");
    assert_int_equal(conf->sinks[0].format, OUTBOXD_MESSAGE_DEBEZIUM);
    outboxd_conf_free(conf);
    expect_error(HEAD SINK("a") "    format: avro\n",
                 "9:13: format: expected native, cloudevents or debezium, got \"avro\"");
    expect_error(HEAD SINK("a") "    format: cloudevents\n",
                 "9:13: format: cloudevents needs cloudevents.source, the URI-reference of the events' source "
                 "(e.g. \"/{db}/{outbox}\")");
    expect_error(HEAD SINK("a") "    format: cloudevents\n    cloudevents:\n      mode: binary\n",
                 "11:7: cloudevents: missing \"source\", the URI-reference of the events' source "
                 "(e.g. \"/{db}/{outbox}\")");
    expect_error(HEAD SINK("a") "    cloudevents:\n      source: /s\n",
                 "10:7: cloudevents: only with format: cloudevents (this sink's format is native)");
    expect_error(HEAD SINK("a") "    format: cloudevents\n    cloudevents:\n      source: \"/a b\"\n",
                 "11:15: cloudevents.source: not a URI-reference: character 3 is not allowed (a space, a control "
                 "character, a quote, <, > or \\)");
    expect_error(HEAD SINK("a") "    format: cloudevents\n    cloudevents:\n      source: \"/{dbname}\"\n",
                 "11:15: cloudevents.source: not a URI-reference: \"{\" is not allowed (the placeholders are {db} "
                 "and {outbox})");
    expect_error(HEAD SINK("a") "    payload: bson\n    format: cloudevents\n    cloudevents:\n      source: /s\n"
                                "      mode: structured\n",
                 "13:13: cloudevents.mode: structured carries the data as JSON: it needs payload: json (the sink's "
                 "payload is bson)");
    expect_error(HEAD SINK("a") "    format: cloudevents\n    cloudevents:\n      source: /s\n      mode: both\n",
                 "12:13: cloudevents.mode: expected auto, binary or structured, got \"both\"");
}

/* log: the survey of the log and its early warning (issue 15): a share
 * from 0 to 1, and intervals in milliseconds. */
static void log_warn_headroom_is_a_share_and_the_survey_an_interval(void **state) {
    (void)state;
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_true(conf->log_warn_headroom == OUTBOXD_LOG_WARN_HEADROOM_DEFAULT);
    assert_int_equal(conf->log_survey_ms, OUTBOXD_LOG_SURVEY_DEFAULT_MS);
    assert_int_equal(conf->log_warn_every_ms, OUTBOXD_LOG_WARN_EVERY_DEFAULT_MS);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "log:\n  warn_headroom: 0.35\n  survey_ms: 2500\n  warn_every_ms: 100\n");
    assert_true(conf->log_warn_headroom == 0.35);
    assert_int_equal(conf->log_survey_ms, 2500);
    assert_int_equal(conf->log_warn_every_ms, 100);
    outboxd_conf_free(conf);
    static const char *const shares[] = {"0", "1", "1.0", ".5"};
    for (size_t i = 0; i < sizeof shares / sizeof shares[0]; i++) {
        char text[400];
        snprintf(text, sizeof text, HEAD SINK("a") "log:\n  warn_headroom: %s\n", shares[i]);
        outboxd_conf_free(load_good(text));
    }
    expect_error(HEAD SINK("a") "log:\n  warn_headroom: 1.5\n",
                 "10:18: log.warn_headroom: expected a number from 0 to 1 (a share of the log, e.g. 0.2), got \"1.5\"");
    expect_error(HEAD SINK("a") "log:\n  warn_headroom: 20%\n",
                 "10:18: log.warn_headroom: expected a number from 0 to 1 (a share of the log, e.g. 0.2), got \"20%\"");
    expect_error(HEAD SINK("a") "log:\n  warn_headroom: 2e-1\n",
                 "10:18: log.warn_headroom: expected a number from 0 to 1 (a share of the log, e.g. 0.2), got \"2e-1\"");
    expect_error(HEAD SINK("a") "log:\n  survey_ms: 99\n",
                 "10:14: log.survey_ms: expected 0 (no survey) or an integer from 100 to 3600000, got \"99\"");
    conf = load_good(HEAD SINK("a") "log:\n  survey_ms: 0\n");
    assert_int_equal(conf->log_survey_ms, 0);
    outboxd_conf_free(conf);
    expect_error(HEAD SINK("a") "log:\n  warn_every: 5\n",
                 "10:3: unknown key \"warn_every\" in log (expected warn_headroom, survey_ms, warn_every_ms)");
}

/* reader: the shared reader's ring (issue 17): events and bytes, with
 * defaults that keep outboxd small, sizes in bytes or KiB/MiB/GiB. */
static void reader_ring_limits_take_counts_and_sizes(void **state) {
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_int_equal(conf->ring_events, OUTBOXD_RING_EVENTS_DEFAULT);
    assert_int_equal(conf->ring_bytes, OUTBOXD_RING_BYTES_DEFAULT);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "reader: {ring_events: 64, ring_bytes: 64MiB}\n");
    assert_int_equal(conf->ring_events, 64);
    assert_int_equal(conf->ring_bytes, 64LL * 1024 * 1024);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "reader:\n  ring_bytes: 2048\n");
    assert_int_equal(conf->ring_events, OUTBOXD_RING_EVENTS_DEFAULT);
    assert_int_equal(conf->ring_bytes, 2048);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "reader:\n  ring_bytes: 1 GiB\n");
    assert_int_equal(conf->ring_bytes, 1024LL * 1024 * 1024);
    outboxd_conf_free(conf);
    expect_error(HEAD SINK("a") "reader:\n  ring_events: 0\n",
                 "10:16: reader.ring_events: expected an integer from 1 to 1000000, got \"0\"");
    expect_error(HEAD SINK("a") "reader:\n  ring_bytes: 64MB\n",
                 "10:15: reader.ring_bytes: expected a size from 1 KiB to 16 GiB (bytes, or a number with KiB, "
                 "MiB or GiB), got \"64MB\"");
    expect_error(HEAD SINK("a") "reader:\n  ring_bytes: 17GiB\n",
                 "10:15: reader.ring_bytes: expected a size from 1 KiB to 16 GiB (bytes, or a number with KiB, "
                 "MiB or GiB), got \"17GiB\"");
    expect_error(HEAD SINK("a") "reader:\n  ring_bytes: 100\n",
                 "10:15: reader.ring_bytes: expected a size from 1 KiB to 16 GiB (bytes, or a number with KiB, "
                 "MiB or GiB), got \"100\"");
    expect_error(HEAD SINK("a") "reader:\n  ring: 5\n",
                 "10:3: unknown key \"ring\" in reader (expected ring_events, ring_bytes)");
    expect_error(HEAD SINK("a") "reader: 5\n", "9:9: reader: expected a mapping");
}

/* ha (issue 14, docs/leases.md section 5): on by default with a 10 s lease
 * renewed every 3 s; what would let a holder's lease run out between two
 * renewals, or an instance id that cannot be shown safely, is refused at
 * the key, and so are mistakes under enabled: false. */
static void ha_is_on_by_default_with_a_ten_second_lease(void **state) {
    outboxd_conf_t *conf = load_good(HEAD SINK("a"));
    assert_true(conf->ha_enabled);
    assert_int_equal(conf->ha_lease_ttl_ms, 10000);
    assert_int_equal(conf->ha_renew_ms, 3000);
    assert_null(conf->ha_instance_id);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "ha:\n");
    assert_true(conf->ha_enabled);
    assert_int_equal(conf->ha_lease_ttl_ms, 10000);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "ha: {enabled: false, lease_ttl_ms: 1000, renew_ms: 300, instance_id: node-a.dc1:2_b}\n");
    assert_false(conf->ha_enabled);
    assert_int_equal(conf->ha_lease_ttl_ms, 1000);
    assert_int_equal(conf->ha_renew_ms, 300);
    assert_string_equal(conf->ha_instance_id, "node-a.dc1:2_b");
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "ha:\n  lease_ttl_ms: 600000\n  renew_ms: 299999\n");
    assert_int_equal(conf->ha_lease_ttl_ms, OUTBOXD_HA_TTL_MAX_MS);
    assert_int_equal(conf->ha_renew_ms, 299999);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "ha:\n  lease_ttl_ms: 1000\n  renew_ms: 100\n");
    assert_int_equal(conf->ha_lease_ttl_ms, OUTBOXD_HA_TTL_MIN_MS);
    assert_int_equal(conf->ha_renew_ms, OUTBOXD_HA_RENEW_MIN_MS);
    outboxd_conf_free(conf);
}

static void ha_renewal_must_fit_twice_in_a_lease(void **state) {
    expect_error(HEAD SINK("a") "ha:\n  renew_ms: 6000\n",
                 "10:13: ha.renew_ms: 6000 must be below half of ha.lease_ttl_ms (10000): a holder needs two "
                 "renewals per lease");
    /* Exactly half leaves no room for a second attempt either. */
    expect_error(HEAD SINK("a") "ha:\n  lease_ttl_ms: 2000\n  renew_ms: 1000\n",
                 "11:13: ha.renew_ms: 1000 must be below half of ha.lease_ttl_ms (2000): a holder needs two "
                 "renewals per lease");
    /* A short TTL with the default renewal: reported at the TTL, the key written. */
    expect_error(HEAD SINK("a") "ha:\n  lease_ttl_ms: 5000\n",
                 "10:17: ha.renew_ms: 3000 must be below half of ha.lease_ttl_ms (5000): a holder needs two "
                 "renewals per lease");
    /* The other keys are checked with HA off too. */
    expect_error(HEAD SINK("a") "ha:\n  enabled: false\n  lease_ttl_ms: 1000\n  renew_ms: 500\n",
                 "12:13: ha.renew_ms: 500 must be below half of ha.lease_ttl_ms (1000): a holder needs two "
                 "renewals per lease");
}

static void ha_values_outside_their_ranges_are_refused(void **state) {
    expect_error(HEAD SINK("a") "ha:\n  lease_ttl_ms: 999\n",
                 "10:17: ha.lease_ttl_ms: expected an integer from 1000 to 600000, got \"999\"");
    expect_error(HEAD SINK("a") "ha:\n  lease_ttl_ms: 600001\n",
                 "10:17: ha.lease_ttl_ms: expected an integer from 1000 to 600000, got \"600001\"");
    expect_error(HEAD SINK("a") "ha:\n  lease_ttl_ms: 10s\n",
                 "10:17: ha.lease_ttl_ms: expected an integer from 1000 to 600000, got \"10s\"");
    expect_error(HEAD SINK("a") "ha:\n  renew_ms: 99\n",
                 "10:13: ha.renew_ms: expected an integer from 100 to 600000, got \"99\"");
    expect_error(HEAD SINK("a") "ha:\n  renew_ms: -3000\n",
                 "10:13: ha.renew_ms: expected an integer from 100 to 600000, got \"-3000\"");
    expect_error(HEAD SINK("a") "ha:\n  enabled: maybe\n",
                 "10:12: ha.enabled: expected true or false, got \"maybe\"");
    expect_error(HEAD SINK("a") "ha:\n  enabled: false\n  lease_ttl_ms: 0\n",
                 "11:17: ha.lease_ttl_ms: expected an integer from 1000 to 600000, got \"0\"");
}

static void ha_instance_id_is_limited_to_safe_characters(void **state) {
    expect_error(HEAD SINK("a") "ha:\n  instance_id: node a\n",
                 "10:16: ha.instance_id: expected 1 to 64 letters, digits, \".\", \"_\", \":\" or \"-\", got "
                 "\"node a\"");
    expect_error(HEAD SINK("a") "ha:\n  instance_id: \"n\\u00e9\"\n",
                 "10:16: ha.instance_id: expected 1 to 64 letters, digits, \".\", \"_\", \":\" or \"-\", got "
                 "\"n\xc3\xa9\"");
    expect_error(HEAD SINK("a") "ha:\n  instance_id: \"\"\n", "10:16: ha.instance_id: must not be empty");
    expect_error(HEAD SINK("a") "ha:\n  enabled: no\n  instance_id: a/b\n",
                 "11:16: ha.instance_id: expected 1 to 64 letters, digits, \".\", \"_\", \":\" or \"-\", got "
                 "\"a/b\"");
    char yaml[512], want[512];
    snprintf(yaml, sizeof yaml, HEAD SINK("a") "ha:\n  instance_id: %s\n",
             "x123456789x123456789x123456789x123456789x123456789x123456789abcd");
    outboxd_conf_t *conf = load_good(yaml); /* 64 bytes */
    assert_int_equal(strlen(conf->ha_instance_id), 64);
    outboxd_conf_free(conf);
    snprintf(yaml, sizeof yaml, HEAD SINK("a") "ha:\n  instance_id: %s\n",
             "x123456789x123456789x123456789x123456789x123456789x123456789abcde");
    snprintf(want, sizeof want, "10:16: ha.instance_id: expected 1 to 64 letters, digits, \".\", \"_\", \":\" or "
             "\"-\", got \"%s\"", "x123456789x123456789x123456789x123456789x123456789x123456789abcde");
    expect_error(yaml, want);
}

static void ha_unknown_keys_and_kinds_are_named(void **state) {
    expect_error(HEAD SINK("a") "ha:\n  ttl_ms: 5000\n",
                 "10:3: unknown key \"ttl_ms\" in ha (expected enabled, lease_ttl_ms, renew_ms, instance_id)");
    expect_error(HEAD SINK("a") "ha: true\n", "9:5: ha: expected a mapping");
    expect_error(HEAD SINK("a") "ha:\n  renew_ms: 300\n  renew_ms: 400\n",
                 "11:3: duplicate key \"renew_ms\" in ha (first at line 10)");
}

static void enum_and_bool_values_list_the_choices(void **state) {
    expect_error(HEAD SINK("a") "    on_error: retry\n",
                 "9:15: on_error: expected stop, skip or deadletter, got \"retry\"");
    expect_error(HEAD SINK("a") "    payload: JSON\n", "9:14: payload: expected json or bson, got \"JSON\"");
    expect_error(HEAD SINK("a") "    on_gap: skip\n", "9:13: on_gap: expected stop or continue, got \"skip\"");
    expect_error(HEAD SINK("a") "    optional: maybe\n", "9:15: optional: expected true or false, got \"maybe\"");
    expect_error(HEAD SINK("a") "    recover: often\n", "9:14: recover: expected true or false, got \"often\"");
    expect_error(HEAD SINK("a") "    on_gap: {a: b}\n", "9:13: on_gap: expected stop or continue");

    outboxd_conf_t *conf = load_good(HEAD SINK("a") "    on_error: skip\n    optional: no\n");
    assert_int_equal(conf->sinks[0].on_error, OUTBOXD_ON_ERROR_SKIP);
    assert_false(conf->sinks[0].optional);
    outboxd_conf_free(conf);
}

static void duplicate_sink_names_point_at_both(void **state) {
    expect_error(HEAD SINK("audit") SINK("other") SINK("audit"),
                 "12:5: duplicate sink name \"audit\" (first at line 6)");
}

static void duplicate_keys_are_refused(void **state) {
    expect_error(HEAD SINK("a") "outbox: again\n", "9:1: duplicate key \"outbox\" (first at line 4)");
    expect_error(HEAD SINK("a") "    route: /x\n",
                 "9:5: duplicate key \"route\" in sink \"a\" (first at line 8)");
    expect_error(HEAD SINK("a") "    options:\n      acks: all\n      acks: 1\n",
                 "11:7: duplicate key \"acks\" in options (first at line 10)");
}

static void route_templates_are_checked_at_load(void **state) {
    expect_error(HEAD "  - name: a\n    plugin: file\n    route: /var/{tpye}.jsonl\n",
                 "8:12: route: unknown placeholder \"{tpye}\" (use {type} or {key})");
    expect_error(HEAD "  - name: a\n    plugin: file\n    route: \"/var/{}\"\n",
                 "8:12: route: unknown placeholder \"{}\" (use {type} or {key})");
    expect_error(HEAD "  - name: a\n    plugin: file\n    route: \"/var/{type\"\n",
                 "8:12: route: unclosed \"{\" (write {{ for a literal brace)");
    expect_error(HEAD "  - name: a\n    plugin: file\n    route: \"/var/{{{type}}}}/x}\"\n",
                 "8:12: route: single \"}\" (write }} for a literal brace)");
    outboxd_conf_t *conf = load_good(HEAD "  - name: a\n    plugin: file\n    route: \"{{{type}}}-{key}\"\n");
    assert_string_equal(conf->sinks[0].route, "{{{type}}}-{key}");
    outboxd_conf_free(conf);
}

static void missing_required_keys_point_at_their_mapping(void **state) {
    expect_error(HEAD SINK("a") "  - name: b\n    route: /x\n", "9:5: sink 2 has no \"plugin\"");
    expect_error(HEAD "  - plugin: file\n    route: /x\n", "6:5: sink 1 has no \"name\"");
    expect_error(HEAD "  - name: a\n    plugin: file\n", "6:5: sink 1 has no \"route\"");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\nsinks:\n" SINK("a"), "1:1: missing \"outbox\"");
    expect_error("outbox: e\n", "1:1: missing \"mongodb\"");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: e\n", "1:1: missing \"sinks\"");
    expect_error("mongodb:\n  database: d\n", "2:3: mongodb has no \"uri\" or \"uri_file\"");
    expect_error("outbox: e\nmongodb: {uri: \"mongodb://h/\"}\n", "2:10: mongodb has no \"database\"");
    expect_error("# outboxd\n\nsinks: []\n", "3:1: missing \"mongodb\"");
}

static void wrong_node_kinds_are_named(void **state) {
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: [a, b]\n",
                 "4:9: outbox: expected a string");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox:\n", "4:8: outbox: expected a string");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: \"\"\n", "3:13: mongodb.database: must not be empty");
    expect_error("mongodb: mongodb://h/\n", "1:10: mongodb: expected a mapping");
    expect_error(HEAD "  name: a\n", "6:3: sinks: expected a non-empty sequence of sinks");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: e\nsinks: []\n",
                 "5:8: sinks: expected a non-empty sequence of sinks");
    expect_error(HEAD "  - file\n", "6:5: sink 1: expected a mapping");
    expect_error(HEAD SINK("a") "    types: order.created\n", "9:12: types: expected a sequence of strings");
    expect_error(HEAD SINK("a") "    types: [a, [b]]\n", "9:16: types: expected a string");
    expect_error(HEAD SINK("a") "    options:\n      brokers: [a, [b]]\n",
                 "10:20: options.brokers: expected a sequence of strings");
    expect_error(HEAD SINK("a") "    options:\n      brokers: [a, {b: c}]\n",
                 "10:20: options.brokers: expected a sequence of strings");
    expect_error(HEAD SINK("a") "    options: [a]\n", "9:14: options: expected a mapping");
    expect_error(HEAD SINK("a") "checkpoint: 5\n", "9:13: checkpoint: expected a mapping");
    expect_error("[a]\n", "1:1: expected a mapping at the top level");
    expect_error("", "1:1: empty configuration (expected mongodb, outbox and sinks)");
    expect_error("# only a comment\n", "1:1: empty configuration (expected mongodb, outbox and sinks)");
}

/* ABI 1.1 LIST options: a sequence keeps each item and where it is (an
 * empty one is refused by the option table later, pointing at it), and
 * reads as "a, b" for plugins that ask for a string. */
static void option_sequences_keep_items_and_positions(void **state) {
    outboxd_conf_t *conf = load_good(HEAD SINK("a") "    options:\n      brokers: [a, \" b\", \"\"]\n"
                                                    "      hosts:\n        - x\n        - y\n      empty: []\n");
    const outboxd_option_t *o = &conf->sinks[0].options[0];
    assert_true(o->is_sequence);
    assert_int_equal(o->n_items, 3);
    assert_string_equal(o->items[0].text, "a");
    assert_string_equal(o->items[1].text, " b");
    assert_string_equal(o->items[2].text, "");
    assert_int_equal(o->items[2].line, 10);
    assert_int_equal(o->items[2].column, 26);
    assert_int_equal(o->value_line, 10);
    assert_int_equal(o->value_column, 16);
    assert_string_equal(o->value, "a,  b, ");
    o = &conf->sinks[0].options[1];
    assert_int_equal(o->n_items, 2);
    assert_int_equal(o->items[1].line, 13);
    assert_int_equal(o->items[1].column, 11);
    assert_string_equal(o->value, "x, y");
    o = &conf->sinks[0].options[2];
    assert_true(o->is_sequence);
    assert_int_equal(o->n_items, 0);
    assert_string_equal(o->value, "");
    assert_false(conf->sinks[0].options[0].secret);
    outboxd_conf_free(conf);
}

static void names_and_plugins_are_restricted_to_safe_characters(void **state) {
    expect_error(HEAD "  - name: a/b\n    plugin: file\n    route: /x\n",
                 "6:11: name: expected letters, digits, \"_\", \".\" or \"-\", got \"a/b\"");
    expect_error(HEAD "  - name: a\n    plugin: ../evil\n    route: /x\n",
                 "7:13: plugin: expected letters, digits, \"_\" or \"-\", got \"../evil\"");
    /* Control characters from the file never reach the message raw. */
    expect_error(HEAD "  - name: \"a\\nb\"\n    plugin: file\n    route: /x\n",
                 "6:11: name: expected letters, digits, \"_\", \".\" or \"-\", got \"a?b\"");
}

static void yaml_syntax_errors_use_libyaml_position_and_problem(void **state) {
    expect_error("mongodb:\n  uri: x\n database: d\n",
                 "3:2: YAML syntax error: did not find expected key");
    expect_error("outbox: [a, b\n", "2:1: YAML syntax error: did not find expected ',' or ']'");
    expect_error("outbox: e\n  sinks: x\n", "2:8: YAML syntax error: mapping values are not allowed in this context");
    expect_error("outbox: \"e\n", "2:1: YAML syntax error: found unexpected end of stream");
    expect_error("outbox: e\nsinks:\n\t- x\n", "3:1: YAML syntax error: found character that cannot start any token");
    /* Reader errors carry a byte offset; it is turned into a position. */
    expect_error("outbox: \xc3\xa9t\xff\n", "1:11: YAML syntax error: invalid leading UTF-8 octet");
}

static void aliases_and_second_documents_are_refused(void **state) {
    expect_error("base: &b {on_error: skip}\nsinks:\n  - <<: *b\n",
                 "3:9: aliases are not supported (found \"*b\"): write the value out");
    expect_error("outbox: *nowhere\n", "1:9: aliases are not supported (found \"*nowhere\"): write the value out");
    expect_error("---\noutbox: a\n---\noutbox: b\n", "3:1: only one YAML document is allowed");
}

static void unreadable_files_are_named_with_the_system_error(void **state) {
    char err[512];
    assert_null(outboxd_conf_load("/nonexistent/outboxd.yaml", err, sizeof err));
    assert_string_equal(err, "/nonexistent/outboxd.yaml: No such file or directory");
    assert_null(outboxd_conf_load("/tmp", err, sizeof err));
    assert_string_equal(err, "/tmp: Is a directory");
    expect_error("mongodb:\n  uri_file: /nonexistent/uri\n",
                 "2:13: mongodb.uri_file: /nonexistent/uri: No such file or directory");
    expect_error("mongodb:\n  uri_file: /tmp\n", "2:13: mongodb.uri_file: /tmp: Is a directory");

    /* A wrong path to a log or an image is not read whole. */
    char big[] = "/tmp/outboxd-big-XXXXXX", yaml[128], want[256];
    int fd = mkstemp(big);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 100 * 1024), 0);
    close(fd);
    snprintf(yaml, sizeof yaml, "mongodb:\n  uri_file: %s\n", big);
    snprintf(want, sizeof want, "2:13: mongodb.uri_file: %s: larger than 64 KiB", big);
    expect_error(yaml, want);
    unlink(big);
}

/* A directory with conf.yaml (uri_file: secret/uri) and secret/uri. */
static void make_uri_file_setup(char *dir, const char *uri_content, char *conf_path, size_t size) {
    char path[256];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/secret", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/secret/uri", dir);
    write_file(path, uri_content);
    snprintf(conf_path, size, "%s/conf.yaml", dir);
    write_file(conf_path, "mongodb:\n  uri_file: secret/uri\n  database: shop\noutbox: events\n"
                          "sinks:\n" SINK("a"));
}

static void remove_uri_file_setup(const char *dir) {
    char path[256];
    snprintf(path, sizeof path, "%s/secret/uri", dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/secret", dir);
    rmdir(path);
    snprintf(path, sizeof path, "%s/conf.yaml", dir);
    unlink(path);
    rmdir(dir);
}

static void uri_file_is_read_trimmed_and_relative_to_the_config(void **state) {
    char dir[] = "/tmp/outboxd-uri-XXXXXX", conf_path[256], err[512];
    make_uri_file_setup(dir, "\n  mongodb://app:s3cret@h:27017/?tls=true \r\n\n", conf_path, sizeof conf_path);
    outboxd_conf_t *conf = outboxd_conf_load(conf_path, err, sizeof err);
    if (!conf)
        fail_msg("%s", err);
    assert_string_equal(conf->mongodb_uri, "mongodb://app:s3cret@h:27017/?tls=true");
    outboxd_conf_free(conf);
    remove_uri_file_setup(dir);

    char want[512];
    char dir2[] = "/tmp/outboxd-uri-XXXXXX";
    make_uri_file_setup(dir2, " \n\t\n", conf_path, sizeof conf_path);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(want, sizeof want, "%s:2:13: mongodb.uri_file: %s/secret/uri: the file is empty", conf_path, dir2);
    assert_string_equal(err, want);
    remove_uri_file_setup(dir2);
}

static void uri_and_uri_file_together_are_refused(void **state) {
    expect_error("mongodb:\n  uri: mongodb://h/\n  uri_file: /etc/outboxd/uri\n  database: d\n",
                 "3:3: mongodb: give either \"uri\" or \"uri_file\", not both");
    /* A null one does not count. */
    outboxd_conf_t *conf = load_good("mongodb:\n  uri: mongodb://h/\n  uri_file:\n  database: d\n"
                                     "outbox: e\nsinks:\n" SINK("a"));
    assert_string_equal(conf->mongodb_uri, "mongodb://h/");
    outboxd_conf_free(conf);
}

static void uri_never_appears_in_messages(void **state) {
    char err[512];
    expect_error("mongodb:\n  uri: \"postgres://app:s3cret@h/\"\n",
                 "2:8: mongodb.uri: expected a mongodb:// or mongodb+srv:// URI");
    expect_error("mongodb:\n  uri: [\"mongodb://app:s3cret@h/\"]\n", "2:8: mongodb.uri: expected a string");

    char dir[] = "/tmp/outboxd-uri-XXXXXX", conf_path[256], want[512];
    make_uri_file_setup(dir, "s3cret\n", conf_path, sizeof conf_path);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(want, sizeof want,
             "%s:2:13: mongodb.uri_file: %s/secret/uri: expected a mongodb:// or mongodb+srv:// URI",
             conf_path, dir);
    assert_string_equal(err, want);
    remove_uri_file_setup(dir);
}

/* --check used to pass these and the daemon then failed at run time with
 * no place ("database is not set"): the loader applies liboutbox's own
 * rules (outbox_conf_set) where the value is written. */
static void uri_and_names_are_checked_with_liboutbox_rules(void **state) {
    expect_error("mongodb:\n  uri: \"mongodb://u:pw@[::1\"\n  database: d\noutbox: e\nsinks:\n" SINK("a"),
                 "2:8: mongodb.uri: not a valid MongoDB connection string");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: a.b\noutbox: e\nsinks:\n" SINK("a"),
                 "3:13: mongodb.database: \"a.b\" is not a valid database name: it holds one of / \\ . space \" $");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: ev$x\nsinks:\n" SINK("a"),
                 "4:9: outbox: \"ev$x\" is not a valid collection name: it holds a $");
    expect_error("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: system.foo\nsinks:\n" SINK("a"),
                 "4:9: outbox: \"system.foo\" is not a valid collection name: it starts with \"system.\", which "
                 "MongoDB keeps for itself");
    /* A long name is named by its start only. */
    char yaml[1024];
    char name[301];
    memset(name, 'x', 300);
    name[300] = '\0';
    snprintf(yaml, sizeof yaml, "mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: %s\nsinks:\n" SINK("a"), name);
    expect_error(yaml, "4:9: outbox: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" is not a valid collection name: it "
                       "is longer than 170 bytes");
    snprintf(yaml, sizeof yaml, "mongodb:\n  uri: mongodb://h/\n  database: %.64s\noutbox: e\nsinks:\n" SINK("a"),
             name);
    expect_error(yaml, "3:13: mongodb.database: \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...\" is not a valid "
                       "database name: it is longer than 63 bytes");
    /* A 10 MB name: the file is refused whole, before libyaml reads it. */
    char path[] = "/tmp/outboxd-huge-XXXXXX", err[512], want[512];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("mongodb:\n  uri: mongodb://h/\n  database: d\noutbox: ", f);
    for (int i = 0; i < 10 * 1024; i++)
        fputs(name, f), fputs(name, f), fputs(name, f), fputc('x', f);
    fputs("\nsinks:\n" SINK("a"), f);
    fclose(f);
    assert_null(outboxd_conf_load(path, err, sizeof err));
    snprintf(want, sizeof want, "%s: larger than 1024 KiB: not a configuration file", path);
    assert_string_equal(err, want);
    unlink(path);
}

/* 40,000 "[" took libyaml over a minute (its scanner is quadratic in the
 * nesting): refused at the 33rd level, before the scanner goes deeper. */
static void deep_nesting_is_refused_at_a_fixed_depth(void **state) {
    char *yaml = malloc(80001);
    memset(yaml, '[', 40000);
    memset(yaml + 40000, ']', 40000);
    yaml[80000] = '\0';
    expect_error(yaml, "1:33: nested deeper than 32 mappings and sequences");
    /* Block style too, down into a sink's options. */
    char block[4096] = HEAD SINK("a") "    options:\n";
    int indent = 6;
    for (int i = 0; i < 40; i++, indent += 2)
        snprintf(block + strlen(block), sizeof block - strlen(block), "%*sk%d:\n", indent, "", i);
    snprintf(block + strlen(block), sizeof block - strlen(block), "%*sv\n", indent, "");
    char path[32], err[512];
    assert_null(load_yaml(block, path, err, sizeof err));
    assert_non_null(strstr(err, ": nested deeper than 32 mappings and sequences"));
    free(yaml);
}

/* A folder with conf.yaml holding yaml, and the files named in files
 * (name, content pairs, NULL-terminated). */
static void make_dir_with(char *dir, const char *yaml, const char *const *files, char *conf_path, size_t size) {
    char path[512];
    assert_non_null(mkdtemp(dir));
    for (size_t i = 0; files && files[i]; i += 2) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        write_file(path, files[i + 1]);
    }
    snprintf(conf_path, size, "%s/conf.yaml", dir);
    write_file(conf_path, yaml);
}

static void remove_dir_with(const char *dir, const char *const *files) {
    char path[512];
    for (size_t i = 0; files && files[i]; i += 2) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    snprintf(path, sizeof path, "%s/conf.yaml", dir);
    unlink(path);
    rmdir(dir);
}

/* Like uri_file: the working directory of a daemon is rarely the one its
 * operator has in mind. */
static void relative_plugin_dir_is_taken_from_the_config_folder(void **state) {
    char dir[] = "/tmp/outboxd-pdir-XXXXXX", conf_path[256], err[512], want[512];
    make_dir_with(dir, "plugin_dir: lib/sinks\n" HEAD SINK("a"), NULL, conf_path, sizeof conf_path);
    outboxd_conf_t *conf = outboxd_conf_load(conf_path, err, sizeof err);
    if (!conf)
        fail_msg("%s", err);
    snprintf(want, sizeof want, "%s/lib/sinks", dir);
    assert_string_equal(conf->plugin_dir, want);
    outboxd_conf_free(conf);
    remove_dir_with(dir, NULL);
    conf = load_good("plugin_dir: /opt/sinks\n" HEAD SINK("a"));
    assert_string_equal(conf->plugin_dir, "/opt/sinks");
    outboxd_conf_free(conf);
}

#define SECRET_YAML                                             \
    "mongodb:\n"                                                \
    "  uri: {env: OUTBOXD_TEST_URI}\n"                          \
    "  database: shop\n"                                        \
    "outbox: events\n"                                          \
    "sinks:\n"                                                  \
    "  - name: r\n"                                             \
    "    plugin: redis\n"                                       \
    "    route: x\n"                                            \
    "    options:\n"                                            \
    "      password: {file: redis.pw}\n"                        \
    "      token: {env: OUTBOXD_TEST_TOKEN}\n"                  \
    "      sasl.password: inline-Pw1\n"                         \
    "      url: \"redis://u:url-Pw2@h:6379/0\"\n"               \
    "      password_file: /etc/x\n"                             \
    "      connect_timeout_ms: 100\n"

static void secrets_come_from_files_and_the_environment(void **state) {
    static const char *const files[] = {"redis.pw", "file-Pw3\r\n\n", NULL};
    char dir[] = "/tmp/outboxd-sec-XXXXXX", conf_path[256], err[512];
    setenv("OUTBOXD_TEST_URI", "mongodb://app:env-Pw4@h:27017/", 1);
    setenv("OUTBOXD_TEST_TOKEN", "env-Tok5", 1);
    make_dir_with(dir, SECRET_YAML, files, conf_path, sizeof conf_path);
    chmod(conf_path, 0600);
    outboxd_conf_t *conf = outboxd_conf_load(conf_path, err, sizeof err);
    if (!conf)
        fail_msg("%s", err);
    assert_string_equal(conf->mongodb_uri, "mongodb://app:env-Pw4@h:27017/");
    const outboxd_sink_conf_t *s = &conf->sinks[0];
    assert_int_equal(s->n_options, 6);
    struct {
        const char *key, *value;
        bool secret;
    } want[] = {{"password", "file-Pw3", true},      {"token", "env-Tok5", true},
                {"sasl.password", "inline-Pw1", true}, {"url", "redis://u:url-Pw2@h:6379/0", false},
                {"password_file", "/etc/x", false},  {"connect_timeout_ms", "100", false}};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(s->options[i].key, want[i].key);
        assert_string_equal(s->options[i].value, want[i].value);
        assert_int_equal(s->options[i].secret, want[i].secret);
    }
    /* The first secret written inline; the file is private, so no warning
     * is due (readable_mode 0). */
    assert_string_equal(conf->inline_secret, "sink r option sasl.password");
    assert_int_equal(conf->inline_secret_line, 12);
    assert_int_equal(conf->inline_secret_column, 22);
    assert_int_equal(conf->readable_mode, 0);
    outboxd_conf_free(conf);

    chmod(conf_path, 0644);
    conf = outboxd_conf_load(conf_path, err, sizeof err);
    assert_non_null(conf);
    assert_int_equal(conf->readable_mode, 0644);
    outboxd_conf_free(conf);

    /* Errors name the variable or the file, never a value. */
    char expect[600];
    unsetenv("OUTBOXD_TEST_TOKEN");
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:11:20: options.token: environment variable OUTBOXD_TEST_TOKEN is not set",
             conf_path);
    assert_string_equal(err, expect);
    setenv("OUTBOXD_TEST_TOKEN", "", 1);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:11:20: options.token: environment variable OUTBOXD_TEST_TOKEN is empty",
             conf_path);
    assert_string_equal(err, expect);
    setenv("OUTBOXD_TEST_TOKEN", "env-Tok5", 1);
    setenv("OUTBOXD_TEST_URI", "mongodb://app:env-Pw4@[::1", 1);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:2:8: mongodb.uri: not a valid MongoDB connection string", conf_path);
    assert_string_equal(err, expect);
    setenv("OUTBOXD_TEST_URI", "redis://app:env-Pw4@h/", 1);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:2:8: mongodb.uri: expected a mongodb:// or mongodb+srv:// URI", conf_path);
    assert_string_equal(err, expect);
    setenv("OUTBOXD_TEST_URI", "mongodb://app:env-Pw4@h:27017/", 1);
    remove_dir_with(dir, files);

    static const char *const nofile[] = {NULL};
    char dir2[] = "/tmp/outboxd-sec-XXXXXX";
    make_dir_with(dir2, SECRET_YAML, nofile, conf_path, sizeof conf_path);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:10:24: options.password: file %s/redis.pw: No such file or directory",
             conf_path, dir2);
    assert_string_equal(err, expect);
    remove_dir_with(dir2, nofile);

    static const char *const empty[] = {"redis.pw", "\n", NULL};
    char dir3[] = "/tmp/outboxd-sec-XXXXXX";
    make_dir_with(dir3, SECRET_YAML, empty, conf_path, sizeof conf_path);
    assert_null(outboxd_conf_load(conf_path, err, sizeof err));
    snprintf(expect, sizeof expect, "%s:10:24: options.password: file %s/redis.pw is empty", conf_path, dir3);
    assert_string_equal(err, expect);
    remove_dir_with(dir3, empty);

    expect_error(HEAD SINK("a") "    options:\n      password: {file: a, env: B}\n",
                 "10:17: options.password: expected a string, {file: PATH} or {env: NAME}");
    expect_error(HEAD SINK("a") "    options:\n      password: {vault: x}\n",
                 "10:17: options.password: expected a string, {file: PATH} or {env: NAME}");
    expect_error(HEAD SINK("a") "    options:\n      password: {env: \"A B\"}\n",
                 "10:23: options.password: \"A B\" is not an environment variable name");
    expect_error(HEAD SINK("a") "    options:\n      password: {file: }\n",
                 "10:24: options.password: {file: ...} needs a path");
    unsetenv("OUTBOXD_TEST_URI");
    unsetenv("OUTBOXD_TEST_TOKEN");
}

/* The documented list (conffile.h, docs/config.md). */
static void credential_option_names_are_secret(void **state) {
    static const char *const secret[] = {
        "password",        "passwd",          "sasl.password",      "ssl.key.password", "ssl.keystore.password",
        "token",           "auth_token",      "nkey",               "nkey_seed",        "creds",
        "credentials",     "client_secret",   "sasl.oauthbearer.client.secret",         "ssl.key.pem",
        "ssl_key",         "sasl.jaas.config", "sasl.oauthbearer.config",               "api-key-secret",
        "PASSWORD",        "jwt",             "apikey",             "pwd",              "passphrase",
    };
    static const char *const not_secret[] = {
        "password_file", "token_file", "creds_file", "password_env", "ssl.keystore.location", "user",
        "sasl.username", "url",        "servers",    "null_key",     "dedupe",                "passwords_file",
        "ssl.ca.location", "bootstrap.servers", "tokenizer", "ssl.certificate.pem",
    };
    for (size_t i = 0; i < sizeof secret / sizeof *secret; i++)
        if (!outboxd_conf_key_is_secret(secret[i]))
            fail_msg("%s should be secret", secret[i]);
    for (size_t i = 0; i < sizeof not_secret / sizeof *not_secret; i++)
        if (outboxd_conf_key_is_secret(not_secret[i]))
            fail_msg("%s should not be secret", not_secret[i]);

    /* A password in the URI, written inline, is noted for the warning. */
    outboxd_conf_t *conf = load_good("mongodb:\n  uri: \"mongodb://app:pw1@h/\"\n  database: d\noutbox: e\n"
                                     "sinks:\n" SINK("a"));
    assert_string_equal(conf->inline_secret, "mongodb.uri");
    assert_int_equal(conf->inline_secret_line, 2);
    assert_int_equal(conf->inline_secret_column, 8);
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a") "    options:\n      servers: \"nats://a:1,nats://u:p/w@b:2\"\n");
    assert_string_equal(conf->inline_secret, "sink a option servers");
    outboxd_conf_free(conf);
    conf = load_good(HEAD SINK("a"));
    assert_null(conf->inline_secret);
    outboxd_conf_free(conf);
}

static void small_error_buffers_are_cut_not_overrun(void **state) {
    char err[8];
    memset(err, 'x', sizeof err);
    assert_null(outboxd_conf_load("/nonexistent/outboxd.yaml", err, sizeof err));
    assert_string_equal(err, "/nonexi");
    assert_null(outboxd_conf_load("/nonexistent/outboxd.yaml", NULL, 0));
    outboxd_conf_free(NULL);
}

static void route_expansion_fills_placeholders_and_braces(void **state) {
    char out[64];
    assert_int_equal(outboxd_route_expand("/var/{type}/{key}.jsonl", "order.created", "42", out, sizeof out), 27);
    assert_string_equal(out, "/var/order.created/42.jsonl");
    assert_int_equal(outboxd_route_expand("{type}-{key}", "t", NULL, out, sizeof out), 2);
    assert_string_equal(out, "t-");
    assert_int_equal(outboxd_route_expand("{{literal}}:{{{type}}}", "t", "k", out, sizeof out), 13);
    assert_string_equal(out, "{literal}:{t}");
    assert_int_equal(outboxd_route_expand("", "t", "k", out, sizeof out), 0);
    assert_string_equal(out, "");
}

static void route_expansion_refuses_a_too_small_buffer(void **state) {
    char out[16];
    /* "orders.t.k" is 10 characters: 11 bytes fit, 10 do not. */
    assert_int_equal(outboxd_route_expand("orders.{type}.{key}", "t", "k", out, 11), 10);
    assert_string_equal(out, "orders.t.k");
    assert_int_equal(outboxd_route_expand("orders.{type}.{key}", "t", "k", out, 10), -1);
    assert_int_equal(outboxd_route_expand("orders.{type}", "a-very-long-type", NULL, out, sizeof out), -1);
    assert_int_equal(outboxd_route_expand("{{}}", "t", NULL, out, 2), -1);
    assert_int_equal(outboxd_route_expand("", "t", NULL, out, 0), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_config_reads_back_every_field),
        cmocka_unit_test(absent_or_null_optional_keys_take_their_defaults),
        cmocka_unit_test(unknown_keys_are_named_with_the_keys_expected),
        cmocka_unit_test(checkpoint_counts_must_be_integers_from_one_to_their_maxima),
        cmocka_unit_test(reader_ring_limits_take_counts_and_sizes),
        cmocka_unit_test(http_listen_takes_an_address_of_the_right_form),
        cmocka_unit_test(format_and_cloudevents_are_checked),
        cmocka_unit_test(log_warn_headroom_is_a_share_and_the_survey_an_interval),
        cmocka_unit_test(ha_is_on_by_default_with_a_ten_second_lease),
        cmocka_unit_test(ha_renewal_must_fit_twice_in_a_lease),
        cmocka_unit_test(ha_values_outside_their_ranges_are_refused),
        cmocka_unit_test(ha_instance_id_is_limited_to_safe_characters),
        cmocka_unit_test(ha_unknown_keys_and_kinds_are_named),
        cmocka_unit_test(enum_and_bool_values_list_the_choices),
        cmocka_unit_test(duplicate_sink_names_point_at_both),
        cmocka_unit_test(duplicate_keys_are_refused),
        cmocka_unit_test(route_templates_are_checked_at_load),
        cmocka_unit_test(missing_required_keys_point_at_their_mapping),
        cmocka_unit_test(wrong_node_kinds_are_named),
        cmocka_unit_test(option_sequences_keep_items_and_positions),
        cmocka_unit_test(names_and_plugins_are_restricted_to_safe_characters),
        cmocka_unit_test(yaml_syntax_errors_use_libyaml_position_and_problem),
        cmocka_unit_test(aliases_and_second_documents_are_refused),
        cmocka_unit_test(unreadable_files_are_named_with_the_system_error),
        cmocka_unit_test(uri_file_is_read_trimmed_and_relative_to_the_config),
        cmocka_unit_test(uri_and_uri_file_together_are_refused),
        cmocka_unit_test(uri_never_appears_in_messages),
        cmocka_unit_test(uri_and_names_are_checked_with_liboutbox_rules),
        cmocka_unit_test(deep_nesting_is_refused_at_a_fixed_depth),
        cmocka_unit_test(relative_plugin_dir_is_taken_from_the_config_folder),
        cmocka_unit_test(secrets_come_from_files_and_the_environment),
        cmocka_unit_test(credential_option_names_are_secret),
        cmocka_unit_test(small_error_buffers_are_cut_not_overrun),
        cmocka_unit_test(route_expansion_fills_placeholders_and_braces),
        cmocka_unit_test(route_expansion_refuses_a_too_small_buffer),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("outboxd_config", tests, NULL, NULL);
}
