/*
 * daemon.h - the whole of outboxd behind one call, so that main.c is its
 * command line and bench/bench_pipeline.c can run the very same daemon
 * with its events fed from memory (issue 21: outboxd's own ceiling, with
 * the database's reading taken out; docs/performance.md).
 */
#ifndef OUTBOXD_DAEMON_H
#define OUTBOXD_DAEMON_H

#include "reader.h"

/* Runs outboxd with the command line argc/argv (main.c's usage) until
 * SIGTERM or SIGINT; returns the exit status. source NULL: the events
 * come from the log, as always; else from source (reader.h,
 * outboxd_reader_set_source), which must outlive the call. */
int outboxd_daemon_main(int argc, char **argv, const outboxd_reader_source_t *source);

#endif
