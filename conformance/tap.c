/*
 * tap.c - TAP output for outbox-sink-conformance ("1..N", "ok 1 - name",
 * "not ok 2 - name # why", "ok 3 - name # SKIP why", "# diagnostics").
 * Every line goes through outboxd's secrets registry before it is printed:
 * a plugin's error text or log line may quote a password.
 */
#include "conformance.h"

#include "outboxd/secrets.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int count, failures;

/* Prints one line, secrets scrubbed, newlines inside it turned to spaces. */
static void line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void line(const char *fmt, ...) {
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    outboxd_secrets_scrub(text, sizeof text);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    printf("%s\n", text);
    fflush(stdout);
}

void tap_plan(int n) {
    line("1..%d", n);
}

void tap_ok(const char *name) {
    line("ok %d - %s", ++count, name);
}

void tap_not_ok(const char *name, const char *why_fmt, ...) {
    char why[3000];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof why, why_fmt, ap);
    va_end(ap);
    failures++;
    line("not ok %d - %s # %s", ++count, name, why);
}

void tap_skip(const char *name, const char *why_fmt, ...) {
    char why[3000];
    va_list ap;
    va_start(ap, why_fmt);
    vsnprintf(why, sizeof why, why_fmt, ap);
    va_end(ap);
    line("ok %d - %s # SKIP %s", ++count, name, why);
}

void tap_diag(const char *fmt, ...) {
    char text[3000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    line("# %s", text);
}

void tap_diag_lines(const char *prefix, const char *text) {
    while (text && *text) {
        const char *nl = strchr(text, '\n');
        int len = nl ? (int)(nl - text) : (int)strlen(text);
        line("# %s%.*s", prefix, len, text);
        text += len + (nl != NULL);
    }
}

int tap_count(void) {
    return count;
}

int tap_failures(void) {
    return failures;
}
