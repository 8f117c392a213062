/*
 * transaction.c - the caller's writes and its events in one transaction,
 * retried as the drivers' convenient transaction API says. The retry loop
 * is libmongoc's own (mongoc_client_session_with_transaction): the one
 * implementation of the drivers' specification, reviewed against it in
 * docs/design.md. What this file adds: the defaults an outbox needs
 * (majority writes, snapshot reads, the primary), a put shaped for the
 * callback that keeps the server's reply with its labels, and errors in
 * the outbox's words.
 */
#include "internal.h"

#include <stdio.h>

bool outbox_batch_put_cb(outbox_batch_t *batch, mongoc_client_session_t *session, bson_t **reply,
                         bson_error_t *error) {
    outbox_error_t oerr;
    bson_t r;
    outbox_code_t rc = outbox_batch_put_reply(batch, session, &r, &oerr);
    if (rc == OUTBOX_OK) {
        bson_destroy(&r);
        return true;
    }
    if (error) {
        /* A server's or the network's failure stays in the server's domain
         * (with the server's code, or 0: the reply's labels say more); our
         * own refusals (a NULL batch, a batch written outside a
         * transaction, an outbox never created) are libmongoc's
         * invalid-argument error. */
        if (rc == OUTBOX_ERR_SERVER)
            bson_set_error(error, MONGOC_ERROR_SERVER, (uint32_t)oerr.server_code, "%s", oerr.message);
        else
            bson_set_error(error, MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG, "%s", oerr.message);
    }
    if (reply)
        *reply = bson_copy(&r);
    bson_destroy(&r);
    return false;
}

outbox_code_t outbox_with_transaction(outbox_t *ob, mongoc_client_session_t *session,
                                      mongoc_client_session_with_transaction_cb_t fn, void *ctx,
                                      const mongoc_transaction_opt_t *opts, bson_t *reply,
                                      outbox_error_t *error) {
    bson_t local_reply;
    if (!reply)
        reply = &local_reply;
    outbox__clear_error(error);
    if (!ob || !session || !fn) {
        bson_init(reply);
        if (reply == &local_reply)
            bson_destroy(reply);
        return outbox__fail(error, OUTBOX_ERR_INVALID_ARG, "outbox_with_transaction: outbox, session and fn are required");
    }
    mongoc_transaction_opt_t *defaults = NULL;
    if (!opts) {
        /* Majority: a commit acknowledged by one node can be rolled back
         * by a failover, and the promoter reads majority-committed events
         * only. Snapshot: the callback's reads agree with each other. */
        defaults = mongoc_transaction_opts_new();
        mongoc_write_concern_t *wc = mongoc_write_concern_new();
        mongoc_write_concern_set_w(wc, MONGOC_WRITE_CONCERN_W_MAJORITY);
        mongoc_read_concern_t *rc = mongoc_read_concern_new();
        mongoc_read_concern_set_level(rc, MONGOC_READ_CONCERN_LEVEL_SNAPSHOT);
        mongoc_read_prefs_t *rp = mongoc_read_prefs_new(MONGOC_READ_PRIMARY);
        mongoc_transaction_opts_set_write_concern(defaults, wc);
        mongoc_transaction_opts_set_read_concern(defaults, rc);
        mongoc_transaction_opts_set_read_prefs(defaults, rp);
        mongoc_write_concern_destroy(wc);
        mongoc_read_concern_destroy(rc);
        mongoc_read_prefs_destroy(rp);
        opts = defaults;
    }
    /* libmongoc leaves it as it was when fn fails without setting it. */
    bson_error_t berr = {0};
    bool ok = mongoc_client_session_with_transaction(session, fn, opts, ctx, reply, &berr);
    if (!ok && berr.code == 0 && berr.domain == 0)
        bson_set_error(&berr, MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG,
                       "the callback failed without setting its error");
    mongoc_transaction_opts_destroy(defaults);
    outbox_code_t code = OUTBOX_OK;
    if (!ok) {
        char labels[120];
        outbox__labels_text(reply, labels, sizeof labels);
        const char *what = mongoc_error_has_label(reply, "UnknownTransactionCommitResult")
                               ? "the transaction's commit result is unknown: it may have committed"
                           : mongoc_error_has_label(reply, "TransientTransactionError")
                               ? "the transaction failed and its retries ran out (120 s)"
                               : "the transaction failed and was not retried (the error is not transient, "
                                 "or the transaction could not start)";
        code = outbox__fail_bson(error, &berr, "%s%s", what, labels);
    }
    if (reply == &local_reply)
        bson_destroy(reply);
    return code;
}
