/*
 * promote.h - the promoter's steps, exposed inside the library so tests can
 * stop it between them (as a crash would).
 */
#ifndef OUTBOX_CORE_PROMOTE_H
#define OUTBOX_CORE_PROMOTE_H

#include "internal.h"

/* Moves up to limit pending events: insert into N (or quarantine), then
 * (unless skip_delete, which the tests use to play a crash between the two
 * steps) delete them from N.pending. *moved receives how many were
 * settled, *quarantined how many of them went to N.quarantine; report
 * (may be NULL) the message naming the last quarantined one. */
outbox_code_t outbox__promote_batch(outbox_t *ob, size_t limit, bool skip_delete, size_t *moved,
                                    size_t *quarantined, outbox_error_t *report, outbox_error_t *error);

#endif
