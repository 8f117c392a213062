/*
 * log.c - see log.h. Lines start with a systemd priority prefix ("<3>")
 * when stderr is the journal, so levels survive; otherwise with a time.
 * Every line passes through outboxd_secrets_scrub() first: whatever a
 * plugin, libmongoc or outboxd itself puts in a message, no registered
 * credential reaches the log.
 */
#include "log.h"

#include "secrets.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static outbox_sink_log_level_t max_level = OUTBOX_SINK_LOG_INFO;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void outboxd_log_set_level(outbox_sink_log_level_t level) {
    max_level = level;
}

static const char *level_name(outbox_sink_log_level_t level) {
    switch (level) {
    case OUTBOX_SINK_LOG_ERROR: return "error";
    case OUTBOX_SINK_LOG_WARNING: return "warning";
    case OUTBOX_SINK_LOG_INFO: return "info";
    default: return "debug";
    }
}

void outboxd_vlog(outbox_sink_log_level_t level, const char *prefix, const char *fmt, va_list ap) {
    if (level > max_level)
        return;
    /* Scrubbed whole, then cut: a line cut first could keep the start of
     * a secret that straddles the cut. The mask (5 bytes) replaces at
     * least 3, so twice the length always has room. */
    char *full = NULL, msg[2048];
    int len = vasprintf(&full, fmt, ap);
    if (len < 0) {
        snprintf(msg, sizeof msg, "(out of memory formatting a log message)");
    } else {
        size_t size = 2 * (size_t)len + 8;
        char *grown = realloc(full, size);
        if (grown) {
            full = grown;
            outboxd_secrets_scrub(full, size);
            snprintf(msg, sizeof msg, "%s", full);
        } else {
            snprintf(msg, sizeof msg, "(out of memory formatting a log message)");
        }
        free(full);
    }
    pthread_mutex_lock(&lock);
    if (getenv("JOURNAL_STREAM")) {
        fprintf(stderr, "<%d>%s%s\n", (int)level, prefix ? prefix : "", msg);
    } else {
        char stamp[32];
        struct timespec ts;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &ts);
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        fprintf(stderr, "%s.%03ldZ outboxd %s: %s%s\n", stamp, ts.tv_nsec / 1000000, level_name(level),
                prefix ? prefix : "", msg);
    }
    fflush(stderr);
    pthread_mutex_unlock(&lock);
}

void outboxd_log(outbox_sink_log_level_t level, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    outboxd_vlog(level, NULL, fmt, ap);
    va_end(ap);
}
