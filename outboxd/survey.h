/*
 * survey.h - outboxd's look at the log, every log.survey_ms on a thread of
 * its own: the log's size, capped size and age, N.pending's backlog, and
 * each sink's lag and log headroom (headroom.h), for /metrics; and the
 * early warning, a log line when a sink's headroom falls below
 * log.warn_headroom (again every log.warn_every_ms while it stays low).
 *
 * The scrape never reads the database: it shows the survey's last figures
 * (and their time, outboxd_log_survey_timestamp_seconds). A sink's lag is
 * its checkpoint event's place in the log's natural order. A sink that
 * keeps up is placed by the shared reader's ring, when the reader has read
 * all the log holds: no read of the log. Any other is looked up by _id
 * (gone: a gap, no walk) and placed by a walk of ids from the oldest event
 * until it is met, which costs a few ids for a sink far behind (whose
 * headroom matters) and up to the whole log for one in the middle
 * (docs/config.md says what it costs; the next survey waits at least ten
 * times as long as the last one took).
 * Every instance surveys every sink it knows, standing by or not, from
 * the checkpoints in the database, so that any of them answers for all.
 */
#ifndef OUTBOXD_SURVEY_H
#define OUTBOXD_SURVEY_H

#include "metrics.h"
#include "reader.h"

#include <mongoc/mongoc.h>

typedef struct outboxd_survey outboxd_survey_t;

typedef struct {
    int64_t every_ms;      /* log.survey_ms; 0: no survey */
    double warn_headroom;  /* log.warn_headroom */
    int64_t warn_every_ms; /* log.warn_every_ms */
} outboxd_survey_conf_t;

/* The survey of the log coll of database db (its checkpoints in
 * coll.checkpoints, its transactional puts in coll.pending), into metrics;
 * reader (borrowed, may be NULL) places the sinks that keep up without a
 * read of the log. Nothing runs until outboxd_survey_start. */
outboxd_survey_t *outboxd_survey_new(mongoc_client_pool_t *pool, const char *db, const char *coll,
                                     outboxd_metrics_t *metrics, outboxd_reader_t *reader,
                                     const outboxd_survey_conf_t *conf);

/* New settings (a SIGHUP reload), from the next survey on. */
void outboxd_survey_configure(outboxd_survey_t *sv, const outboxd_survey_conf_t *conf);

bool outboxd_survey_start(outboxd_survey_t *sv);

/* Stops the thread (a walk in progress ends at its next batch) and joins
 * it: first thing when outboxd stops. Accepts NULL. */
void outboxd_survey_stop(outboxd_survey_t *sv);

/* Stops (if not yet) and frees everything. Accepts NULL. */
void outboxd_survey_free(outboxd_survey_t *sv);

#endif
