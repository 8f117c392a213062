/*
 * order_example.c - the original module's order example, in C: a service
 * declares its event types, creates its outbox, records orders (with their
 * events), and a reader tails the events in order.
 *
 *   order_example URI DATABASE OUTBOX SCHEMA_DIR
 *
 * When the server supports transactions, each order is written to an
 * "orders" collection and its event put in the same transaction
 * (outbox_with_transaction, which retries as the drivers' rules say), so the
 * two commit or roll back together; otherwise (FerretDB) the event is put
 * alone and the program says so.
 */
#include <outbox/outbox.h>

#include <stdio.h>
#include <stdlib.h>

static int die(const char *what, const outbox_error_t *err) {
    fprintf(stderr, "order_example: %s: %s\n", what, err->message);
    return 1;
}

/* What one attempt of the transaction needs. */
typedef struct {
    outbox_t *ob;
    const char *db;
    const bson_t *order;
    const char *key;
} order_txn_t;

/* One attempt: the order and its event, in the session's transaction.
 * outbox_with_transaction may run it again (a write conflict, a failover),
 * so it builds everything it writes each time. On failure it hands the
 * failed write's reply back: its labels decide whether to retry. */
static bool place_order(mongoc_client_session_t *session, void *ctx, bson_t **reply, bson_error_t *error) {
    order_txn_t *t = ctx;
    mongoc_client_t *client = mongoc_client_session_get_client(session);
    mongoc_collection_t *orders = mongoc_client_get_collection(client, t->db, "orders");
    bson_t opts = BSON_INITIALIZER, r;
    bool ok = mongoc_client_session_append(session, &opts, error);
    if (ok) {
        ok = mongoc_collection_insert_one(orders, t->order, &opts, &r, error);
        if (!ok)
            *reply = bson_copy(&r);
        bson_destroy(&r);
    }
    if (ok) {
        outbox_batch_t *batch = outbox_batch_new(t->ob);
        outbox_error_t err;
        if (outbox_batch_add(batch, "order.created", t->key, t->order, NULL, &err) != OUTBOX_OK) {
            bson_set_error(error, MONGOC_ERROR_COMMAND, MONGOC_ERROR_COMMAND_INVALID_ARG, "%s", err.message);
            ok = false;
        } else {
            ok = outbox_batch_put_cb(batch, session, reply, error);
        }
        outbox_batch_destroy(batch);
    }
    bson_destroy(&opts);
    mongoc_collection_destroy(orders);
    return ok;
}

/* Inserts the order and puts its event in one transaction, retried as the
 * drivers' rules say; committed with a majority. */
static bool place_order_in_transaction(outbox_t *ob, mongoc_client_t *client, const char *db,
                                       const bson_t *order, const char *key, outbox_error_t *err) {
    bson_error_t berr;
    mongoc_client_session_t *session = mongoc_client_start_session(client, NULL, &berr);
    if (!session) {
        snprintf(err->message, sizeof err->message, "session: %s", berr.message);
        return false;
    }
    order_txn_t t = {ob, db, order, key};
    bool ok = outbox_with_transaction(ob, session, place_order, &t, NULL, NULL, err) == OUTBOX_OK;
    mongoc_client_session_destroy(session);
    return ok;
}

int main(int argc, char **argv) {
    outbox_error_t err;
    unsigned caps = 0;
    if (argc != 5) {
        fprintf(stderr, "usage: order_example URI DATABASE OUTBOX SCHEMA_DIR\n");
        return 2;
    }
    mongoc_init();
    outbox_conf_t *conf = outbox_conf_new();
    if (outbox_conf_set(conf, "uri", argv[1], &err) || outbox_conf_set(conf, "database", argv[2], &err) ||
        outbox_conf_set(conf, "outbox", argv[3], &err) || outbox_conf_add_types_dir(conf, argv[4], &err)) {
        outbox_conf_destroy(conf);
        return die("configuration", &err);
    }
    outbox_t *ob = outbox_new(conf, &err); /* takes conf */
    if (!ob) {
        outbox_conf_destroy(conf);
        return die("outbox_new", &err);
    }
    if (outbox_ensure(ob, &err) || outbox_server_caps(ob, &caps, &err)) {
        outbox_destroy(ob);
        return die("ensure", &err);
    }

    mongoc_client_t *client = mongoc_client_new(argv[1]);
    mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
    int status = 0;
    if (caps & OUTBOX_CAP_TRANSACTIONS) {
        /* The service's own collection exists before its transactions:
         * MongoDB 4.2 creates none inside one (neither does the outbox:
         * outbox_ensure made N.pending above). */
        bson_error_t berr;
        mongoc_database_t *database = mongoc_client_get_database(client, argv[2]);
        mongoc_collection_t *made = mongoc_database_create_collection(database, "orders", NULL, &berr);
        mongoc_collection_destroy(made);
        mongoc_database_destroy(database);
    }
    for (int i = 1; i <= 3 && status == 0; i++) {
        char key[32];
        bson_t *order = BCON_NEW("ordernr", BCON_INT32(1000 + i), "total", BCON_DOUBLE(19.95 * i),
                                 "customer", BCON_UTF8("ada"), "lines", "[", "{", "sku",
                                 BCON_UTF8("ABC-42"), "qty", BCON_INT32(i), "}", "]");
        snprintf(key, sizeof key, "order-%d", 1000 + i);
        bool ok = (caps & OUTBOX_CAP_TRANSACTIONS)
                      ? place_order_in_transaction(ob, client, argv[2], order, key, &err)
                      : outbox_put(ob, NULL, "order.created", key, order, NULL, NULL, &err) == OUTBOX_OK;
        if (!ok)
            status = die("put", &err);
        bson_destroy(order);
    }
    if (!(caps & OUTBOX_CAP_TRANSACTIONS))
        printf("(this server has no transactions: events were put without one)\n");

    /* A bad event is refused before anything is written. */
    if (outbox_put_json(ob, NULL, "order.shipped", "order-1001",
                        "{\"ordernr\": 1001, \"carrier\": \"pigeon\"}", NULL, NULL, &err) != OUTBOX_OK)
        printf("refused as expected: %s\n", err.message);
    if (status == 0 && outbox_put_json(ob, NULL, "order.shipped", "order-1001",
                                       "{\"ordernr\": 1001, \"carrier\": \"dhl\"}", NULL, NULL, &err))
        status = die("put", &err);
    if (status == 0 && (caps & OUTBOX_CAP_TRANSACTIONS)) {
        size_t moved; /* outboxd's promoter does this in production */
        if (outbox_promote(ob, &moved, &err))
            status = die("promote", &err);
    }

    /* Read the log back in order. */
    outbox_tail_t *tail = outbox_tail_new(ob, OUTBOX_TAIL_FROM_START, NULL, &err);
    const outbox_event_t *ev;
    while (status == 0 && outbox_tail_next(tail, 1000, &ev, &err) == OUTBOX_OK) {
        char *line = outbox_event_to_json(ev, NULL);
        printf("%s\n", line);
        outbox_free(line);
    }
    outbox_tail_destroy(tail);
    mongoc_client_destroy(client);
    outbox_destroy(ob);
    mongoc_cleanup();
    return status;
}
