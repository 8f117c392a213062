/*
 * condwait.h - pthread_cond_timedwait for a number of milliseconds, the one
 * way outboxd's threads wait for each other (and wake early when signalled).
 */
#ifndef OUTBOXD_CONDWAIT_H
#define OUTBOXD_CONDWAIT_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Waits on cond, with mutex held, for up to ms milliseconds. */
static inline void outboxd_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *mutex, int64_t ms) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_cond_timedwait(cond, mutex, &ts);
}

#endif
