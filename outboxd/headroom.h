/*
 * headroom.h - how much of the capped log may still be written before a
 * sink's checkpoint event is overwritten: one formula for outboxd's
 * /metrics (outboxd_sink_log_headroom_ratio, its warning) and outboxctl
 * status, so the two never disagree.
 *
 * A capped log of cap_bytes (and at most cap_events documents, 0 = no
 * such limit) overwrites its oldest documents first. The sink's checkpoint
 * event and the lag_events documents after it (what the sink has still to
 * publish) occupy 1 + lag_events documents; every other place may still be
 * written, after which the next write overwrites the checkpoint event and
 * the sink meets a gap. So, by documents, cap - 1 - lag of cap - 1 places
 * are left: 1 with nothing to publish, 0 when the next write opens a gap.
 * By bytes alike, at the log's average document size (the server's own
 * figure, avgObjSize): events of one service are alike in size, and the
 * exact sum would mean reading every unpublished event at every look. The
 * smaller of the two counts.
 *
 * A sink with no checkpoint event (it starts at the log's start) loses an
 * event once all of the log's events are its backlog and one more comes:
 * the caller passes the log's events minus one as lag_events (1 for an
 * empty log is the caller's). A sink whose checkpoint event is no longer
 * in the log (lag unknown, lag_events < 0) has no headroom: 0.
 */
#ifndef OUTBOXD_HEADROOM_H
#define OUTBOXD_HEADROOM_H

#include <stdint.h>

static inline double outboxd_headroom_ratio(int64_t lag_events, double avg_obj_bytes, int64_t cap_bytes,
                                            int64_t cap_events) {
    if (lag_events < 0)
        return 0.0;
    double ratio = 1.0;
    if (cap_bytes > 0 && avg_obj_bytes > 0 && (double)cap_bytes > avg_obj_bytes)
        ratio = 1.0 - (double)lag_events * avg_obj_bytes / ((double)cap_bytes - avg_obj_bytes);
    if (cap_events > 1) {
        double by_events = 1.0 - (double)lag_events / (double)(cap_events - 1);
        if (by_events < ratio)
            ratio = by_events;
    }
    if (ratio < 0.0)
        ratio = 0.0;
    if (ratio > 1.0)
        ratio = 1.0;
    return ratio;
}

#endif
