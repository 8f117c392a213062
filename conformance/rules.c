/*
 * rules.c - checks 13 to 16, over every instance of the run: no ack for an
 * event that was never published (an ack before publish); events that
 * publish gave back (RETRY, FATAL, or beyond publish_some's *taken) are
 * never acked; every result and ack status is OK, RETRY or FATAL; and the
 * plugin's log holds no secret option's value.
 */
#include "conformance.h"

#include "outboxd/secrets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How often rule was broken over every host, and the first description. */
static size_t broken(conformance_t *c, sinkhost_rule_t rule, char *first, size_t size) {
    sinkhost_t *hosts[3];
    size_t n = conformance_hosts(c, hosts), count = 0;
    first[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        char one[512];
        size_t k = sinkhost_violations(hosts[i], rule, one, sizeof one);
        if (k > 0 && count == 0)
            snprintf(first, size, "%s", one);
        count += k;
    }
    return count;
}

void check_rules(conformance_t *c) {
    static const char unknown[] = "no ack for an event that was not published";
    static const char given_back[] = "events publish gave back (RETRY, FATAL, beyond *taken) are never acked";
    static const char statuses[] = "every result and ack status is OK, RETRY or FATAL";
    char why[512];
    size_t k;
    if (!c->host) {
        tap_skip(unknown, "the plugin did not load");
        tap_skip(given_back, "the plugin did not load");
        tap_skip(statuses, "the plugin did not load");
        return;
    }
    if ((k = broken(c, SINKHOST_ACK_UNKNOWN, why, sizeof why)) > 0)
        tap_not_ok(unknown, "%s (%zu such acks)", why, k);
    else
        tap_ok(unknown);
    if ((k = broken(c, SINKHOST_ACK_NOT_TAKEN, why, sizeof why)) > 0)
        tap_not_ok(given_back, "%s (%zu such acks)", why, k);
    else if (c->n_given_back == 0)
        tap_skip(given_back, "publish never gave events back in this run (no RETRY, FATAL or short *taken)");
    else
        tap_ok(given_back);
    if ((k = broken(c, SINKHOST_BAD_STATUS, why, sizeof why)) > 0)
        tap_not_ok(statuses, "%s", why);
    else
        tap_ok(statuses);
}

void check_secrets(conformance_t *c) {
    static const char name[] = "the plugin logs no secret option's value";
    if (!c->host) {
        tap_skip(name, "the plugin did not load");
        return;
    }
    /* The registry holds the secret options' values (registered when the
     * plugin loaded, and by sinkhost at open, as outboxd does): a line it
     * changes holds one. */
    bool any = false;
    for (size_t i = 0; i < c->args.n_options; i++)
        any |= conformance_secret_option(sinkhost_plugin(c->host), c->args.keys[i]);
    if (!any) {
        tap_skip(name, "no secret option given (a SECRET option, or a key that names a credential)");
        return;
    }
    sinkhost_t *hosts[3];
    size_t n = conformance_hosts(c, hosts);
    for (size_t i = 0; i < n; i++) {
        const char *log = sinkhost_log(hosts[i]);
        size_t len = strlen(log);
        char *copy = malloc(len + 1);
        if (!copy)
            abort();
        memcpy(copy, log, len + 1);
        outboxd_secrets_scrub(copy, len + 1);
        bool leaked = strcmp(copy, log) != 0;
        free(copy);
        if (leaked) {
            tap_not_ok(name, "a log line of the plugin holds a secret option's value (shown scrubbed below)");
            tap_diag_lines("sink log: ", log);
            return;
        }
    }
    tap_ok(name);
}
