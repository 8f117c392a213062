/*
 * log.c - see log.h. Lines start with a systemd priority prefix ("<3>")
 * when stderr is the journal, so levels survive; otherwise with a time.
 */
#include "log.h"

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
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
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
