/*
 * common.c - what the commands share: opening the outbox or its raw
 * collections, exit statuses, BSON and JSON helpers.
 */
#include "outboxctl.h"

#include "ejson.h" /* outboxd's, -I outboxd */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int fail(const char *what, const outbox_error_t *err) {
    fprintf(stderr, "outboxctl: %s%s%s\n", what ? what : "", what ? ": " : "", err->message);
    return err->code == OUTBOX_ERR_VALIDATION || err->code == OUTBOX_ERR_UNKNOWN_TYPE ||
                   err->code == OUTBOX_ERR_SCHEMA || err->code == OUTBOX_ERR_CONF ||
                   err->code == OUTBOX_ERR_LIMIT
               ? EXIT_USAGE
           : err->code == OUTBOX_ERR_GAP       ? EXIT_GAP
           : err->code == OUTBOX_ERR_MALFORMED ? EXIT_MALFORMED
                                               : EXIT_FAILURE;
}

char *read_uri_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "outboxctl: --uri-file %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    fclose(f);
    if (len < 0) {
        free(line);
        fprintf(stderr, "outboxctl: --uri-file %s: empty file\n", path);
        return NULL;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' ' ||
                       line[len - 1] == '\t'))
        line[--len] = '\0';
    if (len == 0) {
        free(line);
        fprintf(stderr, "outboxctl: --uri-file %s: the first line is empty\n", path);
        return NULL;
    }
    return line;
}

void print_uri_redacted(FILE *f, const char *uri) {
    char *shown = outbox_uri_redacted(uri);
    fputs(shown ? shown : "(out of memory)", f);
    outbox_free(shown);
}

bool parse_count(const char *s, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return false;
    *out = v;
    return true;
}

outbox_t *open_outbox(const options_t *o, bool with_size, int *status) {
    outbox_error_t err;
    outbox_conf_t *conf = outbox_conf_new();
    *status = EXIT_USAGE;
    if (!o->uri || !o->db || !o->outbox) {
        fprintf(stderr, "outboxctl: --uri, --db and --outbox are required (or OUTBOX_URI, "
                        "OUTBOX_DB, OUTBOX_NAME)\n");
        goto fail;
    }
    if (outbox_conf_set(conf, "uri", o->uri, &err) || outbox_conf_set(conf, "database", o->db, &err) ||
        outbox_conf_set(conf, "outbox", o->outbox, &err) ||
        (with_size && o->size && outbox_conf_set(conf, "capped.size", o->size, &err)) ||
        (with_size && o->max && outbox_conf_set(conf, "capped.max", o->max, &err)) ||
        (o->schemas && outbox_conf_add_types_dir(conf, o->schemas, &err))) {
        *status = fail(NULL, &err);
        goto fail;
    }
    outbox_t *ob = outbox_new(conf, &err);
    if (!ob) {
        *status = fail(NULL, &err);
        goto fail;
    }
    *status = 0;
    return ob;
fail:
    outbox_conf_destroy(conf);
    return NULL;
}


/* ---- outboxd's state: status, checkpoint, deadletter --------------------------
 * These commands read and write the collections outboxd keeps next to the
 * log (N.checkpoints, N.deadletter), which liboutbox does not wrap, so they
 * talk to the server with libmongoc directly. */


/* Connects for the commands above; returns 0 or an exit status. */
int store_open(const options_t *o, store_t *s) {
    bson_error_t berr;
    memset(s, 0, sizeof *s);
    if (!o->uri || !o->db || !o->outbox) {
        fprintf(stderr, "outboxctl: --uri, --db and --outbox are required (or OUTBOX_URI, "
                        "OUTBOX_DB, OUTBOX_NAME)\n");
        return EXIT_USAGE;
    }
    mongoc_uri_t *uri = mongoc_uri_new_with_error(o->uri, &berr);
    if (!uri) {
        /* The driver's message can quote the URI; with credentials in it,
         * only the redacted URI is shown. */
        fprintf(stderr, "outboxctl: %s ", o->uri_source ? o->uri_source : "--uri");
        print_uri_redacted(stderr, o->uri);
        fprintf(stderr, ": not a valid MongoDB connection string%s%s\n", strchr(o->uri, '@') ? "" : ": ",
                strchr(o->uri, '@') ? "" : berr.message);
        return EXIT_USAGE;
    }
    s->client = mongoc_client_new_from_uri(uri);
    mongoc_uri_destroy(uri);
    if (!s->client) {
        fprintf(stderr, "outboxctl: %s ", o->uri_source ? o->uri_source : "--uri");
        print_uri_redacted(stderr, o->uri);
        fputs(": cannot create a client\n", stderr);
        return EXIT_USAGE;
    }
    mongoc_client_set_error_api(s->client, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_set_appname(s->client, "outboxctl");
    s->db = o->db;
    s->name = o->outbox;
    snprintf(s->checkpoints_name, sizeof s->checkpoints_name, "%s.checkpoints", o->outbox);
    snprintf(s->deadletter_name, sizeof s->deadletter_name, "%s.deadletter", o->outbox);
    s->log = mongoc_client_get_collection(s->client, o->db, o->outbox);
    s->checkpoints = mongoc_client_get_collection(s->client, o->db, s->checkpoints_name);
    s->deadletter = mongoc_client_get_collection(s->client, o->db, s->deadletter_name);
    return 0;
}

void store_close(store_t *s) {
    mongoc_collection_destroy(s->log);
    mongoc_collection_destroy(s->checkpoints);
    mongoc_collection_destroy(s->deadletter);
    mongoc_client_destroy(s->client);
}

/* Whether the log exists. Commands that write into it check first: an
 * insert into a missing N would create an ordinary, uncapped collection. */
int require_log(store_t *s) {
    bson_error_t berr;
    mongoc_database_t *db = mongoc_client_get_database(s->client, s->db);
    bool exists = mongoc_database_has_collection(db, s->name, &berr);
    mongoc_database_destroy(db);
    if (exists)
        return 0;
    if (berr.code) {
        fprintf(stderr, "outboxctl: cannot read %s: %s\n", s->db, berr.message);
        return EXIT_FAILURE;
    }
    fprintf(stderr, "outboxctl: outbox %s.%s does not exist (outboxctl init creates it)\n", s->db,
            s->name);
    return EXIT_FAILURE;
}

int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ISO-8601 UTC with milliseconds, as outboxctl tail prints created. */
void format_iso(int64_t ms, char *out, size_t size) {
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int millis = (int)(ms - (int64_t)secs * 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    size_t n = strftime(out, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, size - n, ".%03dZ", millis);
}

/* Days from 1970-01-01 to the proleptic Gregorian date y-m-d (Howard
 * Hinnant's days_from_civil): timegm() would read the TZ-less struct tm
 * the same way, but is not in C11 or POSIX. */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* n decimal digits at *p into *out, advancing *p; false if fewer. */
static bool iso_digits(const char **p, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if ((*p)[i] < '0' || (*p)[i] > '9')
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool parse_iso_time(const char *s, int64_t *ms) {
    static const int month_days[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const char *p = s;
    int year, month, day, hour, minute, second, off_h = 0, off_m = 0, sign = 0;
    if (!iso_digits(&p, 4, &year) || *p++ != '-' || !iso_digits(&p, 2, &month) || *p++ != '-' ||
        !iso_digits(&p, 2, &day) || *p++ != 'T' || !iso_digits(&p, 2, &hour) || *p++ != ':' ||
        !iso_digits(&p, 2, &minute) || *p++ != ':' || !iso_digits(&p, 2, &second))
        return false;
    bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month < 1 || month > 12 || day < 1 || day > month_days[month - 1] || (month == 2 && day == 29 && !leap) ||
        hour > 23 || minute > 59 || second > 59)
        return false;
    /* A fraction of any length, rounded up to the millisecond: created has
     * milliseconds, and created >= 10:00:02.0005 holds exactly when
     * created >= 10:00:02.001. */
    int64_t frac_ms = 0;
    if (*p == '.') {
        int digits = 0;
        bool rest = false;
        for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*p - '0');
            else
                rest |= *p != '0';
        }
        if (digits == 0)
            return false;
        for (int d = digits; d < 3; d++)
            frac_ms *= 10;
        frac_ms += rest;
    }
    /* A zone is required: a time without one would be this machine's
     * local time, which outboxctl on another machine would read otherwise. */
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '+' ? 1 : -1;
        if (!iso_digits(&p, 2, &off_h))
            return false;
        if (*p == ':')
            p++;
        if (!iso_digits(&p, 2, &off_m) || off_h > 23 || off_m > 59)
            return false;
    } else {
        return false;
    }
    if (*p)
        return false;
    int64_t secs = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second -
                   sign * (off_h * 3600 + off_m * 60);
    *ms = secs * 1000 + frac_ms;
    return true;
}

/* A document's field as a borrowed string, or NULL when absent or not one. */
const char *doc_utf8(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it) ? bson_iter_utf8(&it, NULL)
                                                                           : NULL;
}

bool doc_oid(const bson_t *doc, const char *key, bson_oid_t *out) {
    bson_iter_t it;
    if (!bson_iter_init_find(&it, doc, key) || !BSON_ITER_HOLDS_OID(&it))
        return false;
    bson_oid_copy(bson_iter_oid(&it), out);
    return true;
}

/* Milliseconds since the epoch, or -1 when absent or not a date. */
int64_t doc_date(const bson_t *doc, const char *key) {
    bson_iter_t it;
    return bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_DATE_TIME(&it) ? bson_iter_date_time(&it)
                                                                                : -1;
}

/* Writes s as a JSON string: status --json builds its document by hand so
 * that lag_seconds prints as 1.234, not as libbson's %.20g digits. */
void json_string(FILE *f, const char *s) {
    outboxd_json_text_t t = {0}; /* outboxd's ejson.h: the one JSON string escaper */
    outboxd_json_string(&t, s, strlen(s));
    fwrite(t.p, 1, t.len, f);
    free(t.p);
}

