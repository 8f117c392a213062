/*
 * args.c - outbox-sink-conformance's command line (outbox-sink-conformance.1).
 */
#include "conformance.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

static const char usage[] =
    "usage: outbox-sink-conformance PLUGIN.so [--option KEY=VALUE ...] [--route TEMPLATE]\n"
    "                               [--payload json|bson] [--events N] [--timeout MS] [--verbose]\n";

static const char help[] =
    "Loads a sink plugin as outboxd does and checks it against the contract of\n"
    "<outbox/sink.h>, printing TAP. Exit 0 when every check passes, 1 when one\n"
    "fails, 2 on a usage error.\n"
    "\n"
    "  --option KEY=VALUE  an option of the sink's `options` map (repeat it)\n"
    "  --route TEMPLATE    the sink's route, {type} and {key} expanded\n"
    "                      (default " CONFORMANCE_DEFAULT_ROUTE ")\n"
    "  --payload json|bson the payload encoding (default json)\n"
    "  --events N          events to publish (default 100, at most 100000)\n"
    "  --timeout MS        how long acks, publish and flush may take (default 10000)\n"
    "  --verbose           show the plugin's log lines as they come\n"
    "\n"
    "The destination must be reachable: every event is expected to be acked OK.\n";

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("outbox-sink-conformance: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n", stderr);
    fputs(usage, stderr);
    return -1;
}

/* A decimal number in [min, max]; -1 when it is not one. */
static long long number(const char *text, long long min, long long max) {
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno || end == text || *end || text[0] == '-' || text[0] == '+' || text[0] == ' ' || v < min || v > max)
        return -1;
    return v;
}

int conformance_args_parse(conformance_args_t *args, int argc, char **argv) {
    memset(args, 0, sizeof *args);
    args->route = CONFORMANCE_DEFAULT_ROUTE;
    args->payload = "json";
    args->n_events = CONFORMANCE_DEFAULT_EVENTS;
    args->timeout_ms = CONFORMANCE_DEFAULT_TIMEOUT_MS;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            fputs(help, stdout);
            return 1;
        } else if (strcmp(a, "--version") == 0) {
            printf("outbox-sink-conformance %s (sink ABI %d.%d)\n", PACKAGE_VERSION, OUTBOX_SINK_ABI_MAJOR,
                   OUTBOX_SINK_ABI_MINOR);
            return 1;
        } else if (strcmp(a, "--verbose") == 0) {
            args->verbose = true;
        } else if (strcmp(a, "--option") == 0 || strcmp(a, "--route") == 0 || strcmp(a, "--payload") == 0 ||
                   strcmp(a, "--events") == 0 || strcmp(a, "--timeout") == 0) {
            if (!v)
                return fail("%s needs a value", a);
            i++;
            if (strcmp(a, "--option") == 0) {
                const char *eq = strchr(v, '=');
                if (!eq || eq == v)
                    return fail("--option %s: expected KEY=VALUE", v);
                args->keys = realloc(args->keys, (args->n_options + 1) * sizeof *args->keys);
                args->values = realloc(args->values, (args->n_options + 1) * sizeof *args->values);
                if (!args->keys || !args->values)
                    abort();
                args->keys[args->n_options] = strndup(v, (size_t)(eq - v));
                args->values[args->n_options] = strdup(eq + 1);
                args->n_options++;
            } else if (strcmp(a, "--route") == 0) {
                args->route = v;
            } else if (strcmp(a, "--payload") == 0) {
                if (strcmp(v, "json") != 0 && strcmp(v, "bson") != 0)
                    return fail("--payload %s: expected json or bson", v);
                args->payload = v;
            } else if (strcmp(a, "--events") == 0) {
                long long n = number(v, 1, 100000);
                if (n < 0)
                    return fail("--events %s: expected a number from 1 to 100000", v);
                args->n_events = (size_t)n;
            } else {
                long long n = number(v, 1, 600000);
                if (n < 0)
                    return fail("--timeout %s: expected milliseconds from 1 to 600000", v);
                args->timeout_ms = (int)n;
            }
        } else if (a[0] == '-') {
            return fail("unknown argument %s", a);
        } else if (args->plugin) {
            return fail("one plugin at a time (%s is a second)", a);
        } else {
            size_t len = strlen(a);
            if (len < 4 || strcmp(a + len - 3, ".so") != 0)
                return fail("%s: give the path of the plugin's shared object (NAME.so)", a);
            args->plugin = a;
        }
    }
    if (!args->plugin)
        return fail("no plugin given");
    return 0;
}

void conformance_args_free(conformance_args_t *args) {
    for (size_t i = 0; i < args->n_options; i++) {
        free(args->keys[i]);
        free(args->values[i]);
    }
    free(args->keys);
    free(args->values);
}
