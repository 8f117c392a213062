/*
 * test_options.c - the host side of sink options (ABI 1.1): a plugin's
 * table is read with its own stride (a 1.0 plugin's smaller entries too),
 * every type is parsed and range-checked once by outboxd and written into
 * the plugin's struct by options_fill, lists and durations refuse typos
 * with FILE:LINE:COLUMN, a secret may come from KEY_file and never shows
 * in a message, and a plugin's check is run through a check-only host whose
 * errors point at the option's line. The plugins here are tables built in
 * the test: only the host's code is under test. No server needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "check.h"
#include "conffile.h"
#include "options.h"
#include "plugin.h"
#include "secrets.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The test plugin's own config struct, filled by options_fill. */
typedef struct {
    const char *name;
    int64_t count;
    int flag;
    const char *mode;
    const char *const *brokers;
    int64_t timeout_ms;
    const char *password;
    const char *absent;
    const char *const *no_list;
    int64_t no_int;
} cfg_t;

static const outbox_sink_option_t table[] = {
    {.key = "name", .type = OUTBOX_SINK_OPT_STRING, OUTBOX_SINK_OPTION_AT(cfg_t, name), .help = "a name"},
    {.key = "count", .type = OUTBOX_SINK_OPT_INT, .default_value = "5", .min = 1, .max = 10,
     OUTBOX_SINK_OPTION_AT(cfg_t, count)},
    {.key = "flag", .type = OUTBOX_SINK_OPT_BOOL, .default_value = "yes", OUTBOX_SINK_OPTION_AT(cfg_t, flag)},
    {.key = "mode", .type = OUTBOX_SINK_OPT_ENUM, .default_value = "a", .choices = "a|b",
     OUTBOX_SINK_OPTION_AT(cfg_t, mode)},
    {.key = "brokers", .type = OUTBOX_SINK_OPT_LIST, OUTBOX_SINK_OPTION_AT(cfg_t, brokers)},
    {.key = "timeout", .type = OUTBOX_SINK_OPT_DURATION, .default_value = "10s", .min = 1, .max = 3600000,
     OUTBOX_SINK_OPTION_AT(cfg_t, timeout_ms)},
    {.key = "password", .type = OUTBOX_SINK_OPT_SECRET, OUTBOX_SINK_OPTION_AT(cfg_t, password)},
    {.key = "absent", .type = OUTBOX_SINK_OPT_STRING, OUTBOX_SINK_OPTION_AT(cfg_t, absent)},
    {.key = "no_list", .type = OUTBOX_SINK_OPT_LIST, OUTBOX_SINK_OPTION_AT(cfg_t, no_list)},
    {.key = "no_int", .type = OUTBOX_SINK_OPT_DURATION, OUTBOX_SINK_OPTION_AT(cfg_t, no_int)},
    {.key = "unmapped", .type = OUTBOX_SINK_OPT_STRING, .default_value = "d"},
    OUTBOX_SINK_OPTION_END,
};

static int t_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size);
static char seen_payload[8]; /* what the last check saw as host->payload */

static const outbox_sink_plugin_t plugin = {
    .struct_size = sizeof(outbox_sink_plugin_t),
    .abi_major = OUTBOX_SINK_ABI_MAJOR,
    .abi_minor = OUTBOX_SINK_ABI_MINOR,
    .build_tag = OUTBOX_SINK_BUILD_TAG,
    .name = "typed",
    .options = table,
    .option_size = sizeof(outbox_sink_option_t),
    .payloads = OUTBOX_SINK_PAYLOAD_JSON,
    .check = t_check,
};

/* The check of a careless plugin: it refuses `valid: no` naming the key,
 * quotes the password in its message, and calls ack (which it must not). */
static int t_check(const outbox_sink_host_t *host, char *errbuf, size_t errbuf_size) {
    cfg_t c;
    memset(&c, 0xAB, sizeof c);
    host->options_fill(host->ctx, &c);
    const char *valid = host->option(host->ctx, "valid");
    assert_string_equal(host->route, "/tmp/{type}.jsonl");
    snprintf(seen_payload, sizeof seen_payload, "%s", host->payload);
    host->log(host->ctx, OUTBOX_SINK_LOG_INFO, "checking with password %s", c.password ? c.password : "-");
    host->ack(host->ctx, 7, OUTBOX_SINK_OK, NULL);
    if (valid && strcmp(valid, "no") == 0) {
        snprintf(errbuf, errbuf_size, "valid: no is not valid (password %s)", c.password ? c.password : "-");
        return OUTBOX_SINK_FATAL;
    }
    if (valid && strcmp(valid, "vague") == 0) {
        snprintf(errbuf, errbuf_size, "something: is wrong");
        return OUTBOX_SINK_FATAL;
    }
    return OUTBOX_SINK_OK;
}

/* The table accepts `valid` too, for the check tests. */
static const outbox_sink_option_t check_table[] = {
    {.key = "valid", .type = OUTBOX_SINK_OPT_STRING, .offset = 0, .flags = 0},
    {.key = "password", .type = OUTBOX_SINK_OPT_SECRET, OUTBOX_SINK_OPTION_AT(cfg_t, password)},
    OUTBOX_SINK_OPTION_END,
};

static outbox_sink_plugin_t check_plugin(void) {
    outbox_sink_plugin_t p = plugin;
    p.options = check_table;
    return p;
}

/* An ABI 1.0 plugin's option entries: the 1.0 layout, shorter than 1.1's. */
typedef struct {
    const char *key;
    outbox_sink_option_type_t type;
    const char *default_value;
    int required;
    int64_t min, max;
    const char *choices;
    const char *help;
} option_1_0_t;

static const option_1_0_t table_1_0[] = {
    {"level", OUTBOX_SINK_OPT_INT, "3", 0, 0, 9, NULL, "a level"},
    {"mode", OUTBOX_SINK_OPT_ENUM, "x", 0, 0, 0, "x|y", NULL},
    {"path", OUTBOX_SINK_OPT_STRING, NULL, 1, 0, 0, NULL, NULL},
    {NULL, 0, NULL, 0, 0, 0, NULL, NULL},
};

#define HEAD                                   \
    "mongodb:\n"                               \
    "  uri: \"mongodb://127.0.0.1:37017/\"\n" \
    "  database: shop\n"                       \
    "outbox: events\n"                         \
    "sinks:\n"                                 \
    "  - name: s\n"                            \
    "    plugin: typed\n"                      \
    "    route: /tmp/{type}.jsonl\n"

/* Options start at line 10, each key at column 7. */
#define OPTIONS HEAD "    options:\n"

static char dir[64];
static char path[128];

static int setup(void **state) {
    strcpy(dir, "/tmp/outboxd-options-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/outboxd.yaml", dir);
    return 0;
}

static int teardown(void **state) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    outboxd_secrets_clear();
    return 0;
}

static void write_file(const char *name, const char *content) {
    char full[256];
    snprintf(full, sizeof full, "%s/%s", dir, name);
    FILE *f = fopen(full, "w");
    assert_non_null(f);
    fputs(content, f);
    assert_int_equal(fclose(f), 0);
}

static outboxd_conf_t *load(const char *yaml) {
    char err[1024];
    write_file("outboxd.yaml", yaml);
    outboxd_conf_t *conf = outboxd_conf_load(path, err, sizeof err);
    if (!conf)
        fail_msg("config: %s", err);
    return conf;
}

/* Resolves yaml against p; returns whether it passed, err set otherwise. */
static bool resolve(const outbox_sink_plugin_t *p, const char *yaml, outboxd_options_t *out, char *err,
                    size_t size) {
    outboxd_conf_t *conf = load(yaml);
    err[0] = '\0';
    bool ok = outboxd_options_resolve(path, &conf->sinks[0], p, out, err, size);
    outboxd_conf_free(conf);
    return ok;
}

/* Checks that yaml is refused with "PATH:" + want. */
static void expect_refused(const outbox_sink_plugin_t *p, const char *yaml, const char *want) {
    outboxd_options_t opts;
    char err[1024];
    if (resolve(p, yaml, &opts, err, sizeof err)) {
        outboxd_options_free(&opts);
        fail_msg("accepted, expected: %s", want);
    }
    size_t n = strlen(path);
    if (strncmp(err, path, n) != 0 || err[n] != ':' || strcmp(err + n + 1, want) != 0)
        fail_msg("got \"%s\", expected \"%s:%s\"", err, path, want);
}

static void every_type_is_written_into_the_plugins_struct(void **state) {
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      name: n1\n      count: 7\n      flag: off\n      mode: b\n"
                                  "      brokers: [\" h1:9092 \", h2]\n      timeout: 5m\n"
                                  "      password: hunter22\n",
                 &opts, err, sizeof err))
        fail_msg("%s", err);
    cfg_t c;
    memset(&c, 0xAB, sizeof c);
    assert_int_equal(outboxd_options_fill(&opts, &c), 0);
    assert_string_equal(c.name, "n1");
    assert_int_equal(c.count, 7);
    assert_int_equal(c.flag, 0);
    assert_string_equal(c.mode, "b");
    assert_string_equal(c.brokers[0], "h1:9092");
    assert_string_equal(c.brokers[1], "h2");
    assert_null(c.brokers[2]);
    assert_int_equal(c.timeout_ms, 300000);
    assert_string_equal(c.password, "hunter22");
    /* Absent without a default: NULL, 0, and an empty list (never NULL). */
    assert_null(c.absent);
    assert_non_null(c.no_list);
    assert_null(c.no_list[0]);
    assert_int_equal(c.no_int, 0);
    /* The string view host->option serves, defaults included. */
    assert_string_equal(outboxd_options_get(&opts, "timeout"), "5m");
    assert_string_equal(outboxd_options_get(&opts, "unmapped"), "d");
    assert_null(outboxd_options_get(&opts, "absent"));
    outboxd_options_free(&opts);
}

static void defaults_are_parsed_like_values(void **state) {
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      brokers: a, b ,c\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    cfg_t c;
    memset(&c, 0, sizeof c);
    outboxd_options_fill(&opts, &c);
    assert_int_equal(c.count, 5);
    assert_int_equal(c.flag, 1);
    assert_string_equal(c.mode, "a");
    assert_int_equal(c.timeout_ms, 10000);
    assert_string_equal(c.brokers[0], "a");
    assert_string_equal(c.brokers[1], "b");
    assert_string_equal(c.brokers[2], "c");
    assert_null(c.brokers[3]);
    assert_null(c.password);
    outboxd_options_free(&opts);
}

static void option_next_lists_every_key_in_config_order_then_defaults(void **state) {
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      mode: b\n      name: x\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    size_t cursor = 0;
    const char *value = NULL;
    assert_string_equal(outboxd_options_next(&opts, &cursor, &value), "mode");
    assert_string_equal(value, "b");
    assert_string_equal(outboxd_options_next(&opts, &cursor, &value), "name");
    assert_string_equal(value, "x");
    const char *k;
    size_t n = 2;
    while ((k = outboxd_options_next(&opts, &cursor, NULL)))
        n++;
    assert_int_equal(n, opts.n);
    assert_null(outboxd_options_next(&opts, &cursor, &value));
    outboxd_options_free(&opts);
}

static void list_typos_are_refused_where_they_are(void **state) {
    expect_refused(&plugin, OPTIONS "      brokers: a,,b\n",
                   "10:16: sink s: option brokers: item 2 of the list is empty (write a, b, c or a YAML "
                   "sequence) (plugin typed)");
    expect_refused(&plugin, OPTIONS "      brokers: \"a, \"\n",
                   "10:16: sink s: option brokers: item 2 of the list is empty (write a, b, c or a YAML "
                   "sequence) (plugin typed)");
    expect_refused(&plugin, OPTIONS "      brokers:\n        - a\n        - \" \"\n",
                   "12:11: sink s: option brokers: item 2 of the list is empty (write a, b, c or a YAML "
                   "sequence) (plugin typed)");
    /* A sequence where one value is expected. */
    expect_refused(&plugin, OPTIONS "      name: [a, b]\n",
                   "10:7: sink s: option name: expected a single value, not a sequence (plugin typed)");
}

static void an_empty_list_is_empty(void **state) {
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      brokers: []\n      no_list: \" \"\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    cfg_t c;
    outboxd_options_fill(&opts, &c);
    assert_null(c.brokers[0]);
    assert_null(c.no_list[0]);
    outboxd_options_free(&opts);
}

static void durations_take_units_and_refuse_overflow(void **state) {
    static const struct {
        const char *text;
        int64_t ms;
    } good[] = {{"250ms", 250}, {"10s", 10000}, {"5m", 300000}, {"1h", 3600000}, {"1500", 1500}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, OPTIONS "      timeout: %s\n", good[i].text);
        outboxd_options_t opts;
        char err[1024];
        if (!resolve(&plugin, yaml, &opts, err, sizeof err))
            fail_msg("%s: %s", good[i].text, err);
        cfg_t c;
        outboxd_options_fill(&opts, &c);
        assert_int_equal(c.timeout_ms, good[i].ms);
        outboxd_options_free(&opts);
    }
    const char *unit = "expected a duration: a number with ms, s, m or h (a bare number is milliseconds)";
    char want[512];
    const char *bad[] = {"10x", "-5s", " 5s", "5 s", "s", "1.5s", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, OPTIONS "      timeout: \"%s\"\n", bad[i]);
        snprintf(want, sizeof want, "10:7: sink s: option timeout: %s (plugin typed)", unit);
        expect_refused(&plugin, yaml, want);
    }
    expect_refused(&plugin, OPTIONS "      timeout: 2h\n",
                   "10:7: sink s: option timeout: 2h (7200000 ms) is out of range 1..3600000 ms (plugin typed)");
    expect_refused(&plugin, OPTIONS "      timeout: 0\n",
                   "10:7: sink s: option timeout: 0 (0 ms) is out of range 1..3600000 ms (plugin typed)");
    /* Past int64 in ms, in the digits and in the unit's multiplication. */
    expect_refused(&plugin, OPTIONS "      no_int: 9223372036854775808\n",
                   "10:7: sink s: option no_int: the duration is too large (plugin typed)");
    expect_refused(&plugin, OPTIONS "      no_int: 9223372036854775h\n",
                   "10:7: sink s: option no_int: the duration is too large (plugin typed)");
    /* min = max = 0: unbounded. */
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      no_int: 9223372036854775807\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    outboxd_options_free(&opts);
}

static void secrets_come_from_key_file_with_one_newline_dropped(void **state) {
    write_file("pw", "s3cr3t-from-file\n\n");
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      password_file: pw\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    cfg_t c;
    outboxd_options_fill(&opts, &c);
    assert_string_equal(c.password, "s3cr3t-from-file\n"); /* one newline only */
    assert_string_equal(outboxd_options_get(&opts, "password"), "s3cr3t-from-file\n");
    assert_null(outboxd_options_get(&opts, "password_file"));
    outboxd_options_free(&opts);

    write_file("pw", "abc\r\n");
    if (!resolve(&plugin, OPTIONS "      password_file: pw\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    outboxd_options_fill(&opts, &c);
    assert_string_equal(c.password, "abc");
    outboxd_options_free(&opts);
}

static void secret_file_mistakes_name_the_file_never_the_value(void **state) {
    char want[1024];
    write_file("pw", "topsecret\n");
    expect_refused(&plugin, OPTIONS "      password: topsecret\n      password_file: pw\n",
                   "11:7: sink s: option password_file: give either the secret or its _file, not both "
                   "(plugin typed)");
    expect_refused(&plugin, OPTIONS "      password_file: pw\n      password: topsecret\n",
                   "11:7: sink s: option password: give either the secret or its _file, not both "
                   "(plugin typed)");
    snprintf(want, sizeof want, "10:7: sink s: option password_file: cannot read %s/nope: No such file or "
             "directory (plugin typed)", dir);
    expect_refused(&plugin, OPTIONS "      password_file: nope\n", want);
    write_file("empty", "\n");
    snprintf(want, sizeof want, "10:7: sink s: option password_file: %s/empty is empty (plugin typed)", dir);
    expect_refused(&plugin, OPTIONS "      password_file: empty\n", want);
    /* Larger than the bound: refused, not cut. */
    char *big = malloc(OUTBOXD_SECRET_MAX_BYTES + 2);
    memset(big, 'x', OUTBOXD_SECRET_MAX_BYTES + 1);
    big[OUTBOXD_SECRET_MAX_BYTES + 1] = '\0';
    write_file("big", big);
    free(big);
    snprintf(want, sizeof want, "10:7: sink s: option password_file: %s/big is larger than %d bytes (plugin typed)",
             dir, OUTBOXD_SECRET_MAX_BYTES);
    expect_refused(&plugin, OPTIONS "      password_file: big\n", want);
    /* A secret that fails an enum is not echoed. */
    write_file("mode", "b-secret-mode\n");
    outboxd_options_t opts;
    char err[1024];
    assert_false(resolve(&plugin, OPTIONS "      mode: {file: mode}\n", &opts, err, sizeof err));
    assert_null(strstr(err, "b-secret-mode"));
    assert_non_null(strstr(err, "option mode: expected one of a|b (the value is secret: not shown)"));
}

static void secret_options_are_registered_for_scrubbing(void **state) {
    write_file("pw", "from-the-file-42\n");
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&plugin, OPTIONS "      password_file: pw\n      name: plain-name\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    outboxd_secrets_add_options(&opts);
    char line[256] = "got from-the-file-42 and plain-name";
    outboxd_secrets_scrub(line, sizeof line);
    assert_string_equal(line, "got ***** and plain-name");
    outboxd_options_free(&opts);
}

static void unknown_keys_and_1_0_typos_keep_their_messages(void **state) {
    expect_refused(&plugin, OPTIONS "      nmae: x\n", "10:7: sink s: option nmae: unknown option (plugin typed)");
    expect_refused(&plugin, OPTIONS "      count: 11\n",
                   "10:7: sink s: option count: 11 is out of range 1..10 (plugin typed)");
    expect_refused(&plugin, OPTIONS "      flag: maybe\n",
                   "10:7: sink s: option flag: expected true or false (plugin typed)");
    /* name_file is no secret's file: an unknown option like any other. */
    expect_refused(&plugin, OPTIONS "      name_file: x\n",
                   "10:7: sink s: option name_file: unknown option (plugin typed)");
}

/* An ABI 1.0 plugin's table is read with the 1.0 stride: every entry is
 * found, its defaults apply, and nothing is mapped (1.0 has no offsets). */
static void a_1_0_table_is_read_with_its_own_stride(void **state) {
    outbox_sink_plugin_t p = {0};
    p.struct_size = (uint32_t)OUTBOX_SINK_PLUGIN_MIN_SIZE;
    p.abi_major = 1;
    p.name = "old";
    p.options = (const outbox_sink_option_t *)(const void *)table_1_0;
    p.option_size = 0xdead; /* beyond struct_size: must not be read */
    assert_int_equal(outboxd_option_stride(&p), OUTBOX_SINK_OPTION_SIZE_1_0);
    assert_int_equal(sizeof(option_1_0_t), OUTBOX_SINK_OPTION_SIZE_1_0);
    assert_string_equal(outboxd_option_entry(&p, 2)->key, "path");
    assert_null(outboxd_option_entry(&p, 3));
    size_t off;
    assert_false(outboxd_option_mapped(&p, outboxd_option_entry(&p, 0), &off));
    expect_refused(&p, OPTIONS "      level: 12\n",
                   "10:7: sink s: option level: 12 is out of range 0..9 (plugin old)");
    outboxd_options_t opts;
    char err[1024];
    if (!resolve(&p, OPTIONS "      path: /x\n      mode: y\n", &opts, err, sizeof err))
        fail_msg("%s", err);
    assert_string_equal(outboxd_options_get(&opts, "level"), "3");
    assert_string_equal(outboxd_options_get(&opts, "mode"), "y");
    int64_t untouched[4] = {1, 2, 3, 4};
    outboxd_options_fill(&opts, untouched);
    assert_int_equal(untouched[0] + untouched[1] + untouched[2] + untouched[3], 10);
    outboxd_options_free(&opts);
}

/* Runs outboxd_sink_check on yaml with stderr captured into log. */
static bool run_check(const outbox_sink_plugin_t *p, const char *yaml, char *err, size_t size, char *log,
                      size_t log_size) {
    outboxd_conf_t *conf = load(yaml);
    outboxd_options_t opts;
    if (!outboxd_options_resolve(path, &conf->sinks[0], p, &opts, err, size))
        fail_msg("%s", err);
    outboxd_secrets_add_options(&opts);
    char logpath[128];
    snprintf(logpath, sizeof logpath, "%s/stderr", dir);
    fflush(stderr);
    int saved = dup(2), fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    err[0] = '\0';
    bool ok = outboxd_sink_check(path, &conf->sinks[0], p, &opts, err, size);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *f = fopen(logpath, "r");
    size_t got = fread(log, 1, log_size - 1, f);
    log[got] = '\0';
    fclose(f);
    outboxd_options_free(&opts);
    outboxd_conf_free(conf);
    return ok;
}

static void check_errors_point_at_the_option_and_hide_secrets(void **state) {
    outbox_sink_plugin_t p = check_plugin();
    char err[1024], log[4096], want[1024];
    write_file("pw", "pa55-in-a-file\n");
    assert_false(run_check(&p, OPTIONS "      password_file: pw\n      valid: no\n", err, sizeof err, log,
                           sizeof log));
    snprintf(want, sizeof want, "%s:11:7: sink s: valid: no is not valid (password *****) (plugin typed)", path);
    assert_string_equal(err, want);
    /* The plugin's log line is prefixed and scrubbed; its ack only logged. */
    assert_non_null(strstr(log, "sink s: checking with password *****"));
    assert_non_null(strstr(log, "sink s: plugin bug: ack (seq 7) called during check; ignored"));
    assert_null(strstr(log, "pa55-in-a-file"));
    assert_string_equal(seen_payload, "json");

    /* A message that names no option points at the sink. */
    assert_false(run_check(&p, OPTIONS "      valid: vague\n", err, sizeof err, log, sizeof log));
    snprintf(want, sizeof want, "%s:6:5: sink s: something: is wrong (plugin typed)", path);
    assert_string_equal(err, want);
    /* password: ... names password_file's line when that is how it came. */
    assert_true(run_check(&p, OPTIONS "      valid: yes\n", err, sizeof err, log, sizeof log));
}

static void a_payload_the_plugin_does_not_take_is_refused_at_its_line(void **state) {
    outbox_sink_plugin_t p = check_plugin();
    char err[1024], log[4096], want[1024];
    assert_false(run_check(&p, HEAD "    payload: bson\n", err, sizeof err, log, sizeof log));
    snprintf(want, sizeof want, "%s:9:14: sink s: payload bson: plugin typed accepts only json", path);
    assert_string_equal(err, want);
    /* 0 means any; and a plugin struct without the member is never read. */
    p.payloads = 0;
    assert_true(run_check(&p, HEAD "    payload: bson\n", err, sizeof err, log, sizeof log));
    assert_string_equal(seen_payload, "bson");
    p.payloads = OUTBOX_SINK_PAYLOAD_BSON;
    assert_false(run_check(&p, HEAD, err, sizeof err, log, sizeof log));
    snprintf(want, sizeof want, "%s:6:5: sink s: payload json: plugin typed accepts only bson", path);
    assert_string_equal(err, want);
    p.struct_size = (uint32_t)OUTBOX_SINK_PLUGIN_MIN_SIZE;
    p.check = NULL; /* beyond struct_size as well */
    assert_true(run_check(&p, HEAD, err, sizeof err, log, sizeof log));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(every_type_is_written_into_the_plugins_struct, setup, teardown),
        cmocka_unit_test_setup_teardown(defaults_are_parsed_like_values, setup, teardown),
        cmocka_unit_test_setup_teardown(option_next_lists_every_key_in_config_order_then_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(list_typos_are_refused_where_they_are, setup, teardown),
        cmocka_unit_test_setup_teardown(an_empty_list_is_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(durations_take_units_and_refuse_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(secrets_come_from_key_file_with_one_newline_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_file_mistakes_name_the_file_never_the_value, setup, teardown),
        cmocka_unit_test_setup_teardown(secret_options_are_registered_for_scrubbing, setup, teardown),
        cmocka_unit_test_setup_teardown(unknown_keys_and_1_0_typos_keep_their_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(a_1_0_table_is_read_with_its_own_stride, setup, teardown),
        cmocka_unit_test_setup_teardown(check_errors_point_at_the_option_and_hide_secrets, setup, teardown),
        cmocka_unit_test_setup_teardown(a_payload_the_plugin_does_not_take_is_refused_at_its_line, setup, teardown),
    };
    cmocka_set_message_output(CM_OUTPUT_TAP);
    return cmocka_run_group_tests_name("outboxd_options", tests, NULL, NULL);
}
