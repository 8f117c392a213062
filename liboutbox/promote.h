/*
 * promote.h - the promoter's steps, exposed inside the library so tests can
 * stop it between them (as a crash would).
 */
#ifndef OUTBOX_CORE_PROMOTE_H
#define OUTBOX_CORE_PROMOTE_H

#include "internal.h"

/* Moves up to limit pending events (those filter selects; NULL: all): insert into N (or quarantine), then
 * (unless skip_delete, which the tests use to play a crash between the two
 * steps) delete them from N.pending. *moved receives how many were
 * settled, *quarantined how many of them went to N.quarantine; report
 * (may be NULL) the message naming the last quarantined one. */
outbox_code_t outbox__promote_batch(outbox_t *ob, const bson_t *filter, size_t limit, bool skip_delete, size_t *moved,
                                    size_t *quarantined, outbox_error_t *report, outbox_error_t *error);

/* outbox_promote_ex over the pending documents filter selects (NULL: all),
 * batch after batch until none is left. */
outbox_code_t outbox__promote_all(outbox_t *ob, const bson_t *filter, size_t *moved, size_t *quarantined,
                                  outbox_error_t *error);

/* Settles docs (borrowed; N.pending's documents, in the order to promote
 * them) as one promoter batch through client: screened, inserted into N
 * in one ordered insert at a time or quarantined, then (unless
 * skip_delete) deleted from N.pending. */
outbox_code_t outbox__promote_docs(outbox_t *ob, mongoc_client_t *client, bson_t **docs, size_t n, bool skip_delete,
                                   size_t *moved, size_t *quarantined, outbox_error_t *report, outbox_error_t *error);

/* Appends read concern majority (read) or write concern majority to opts. */
void outbox__majority_opts(bson_t *opts, bool read);

/* Events per promoter batch. */
#define OUTBOX_PROMOTE_BATCH 500

#endif
