/*
 * log.h - outboxd's log: one line per message on stderr, which systemd's
 * journal (or the terminal) collects. Thread-safe.
 */
#ifndef OUTBOXD_LOG_H
#define OUTBOXD_LOG_H

#include "outbox/sink.h"

#include <stdarg.h>

void outboxd_log(outbox_sink_log_level_t level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void outboxd_vlog(outbox_sink_log_level_t level, const char *prefix, const char *fmt, va_list ap);
/* Messages above this level are dropped (default INFO; OUTBOXD_DEBUG=1 for DEBUG). */
void outboxd_log_set_level(outbox_sink_log_level_t level);

#define LOG_ERR(...) outboxd_log(OUTBOX_SINK_LOG_ERROR, __VA_ARGS__)
#define LOG_WARN(...) outboxd_log(OUTBOX_SINK_LOG_WARNING, __VA_ARGS__)
#define LOG_INFO(...) outboxd_log(OUTBOX_SINK_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) outboxd_log(OUTBOX_SINK_LOG_DEBUG, __VA_ARGS__)

#endif
