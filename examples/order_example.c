/*
 * order_example.c - the original module's order example, in C: a service
 * declares its event types, creates its outbox, records orders (with their
 * events), and a reader tails the events in order.
 *
 *   order_example URI DATABASE OUTBOX SCHEMA_DIR
 *
 * When the server supports transactions, each order is written to an
 * "orders" collection and its event put in the same transaction, so the two
 * commit or roll back together; otherwise (FerretDB) the event is put alone
 * and the program says so.
 */
#include <outbox/outbox.h>

#include <stdio.h>
#include <stdlib.h>

static int die(const char *what, const outbox_error_t *err) {
    fprintf(stderr, "order_example: %s: %s\n", what, err->message);
    return 1;
}

/* Inserts the order and puts its event inside one transaction. */
static bool place_order_in_transaction(outbox_t *ob, mongoc_client_t *client, const char *db,
                                       const bson_t *order, const char *key, outbox_error_t *err) {
    bson_error_t berr;
    bool ok = false;
    mongoc_client_session_t *session = mongoc_client_start_session(client, NULL, &berr);
    mongoc_collection_t *orders = mongoc_client_get_collection(client, db, "orders");
    bson_t opts = BSON_INITIALIZER;
    if (!session || !mongoc_client_session_start_transaction(session, NULL, &berr) ||
        !mongoc_client_session_append(session, &opts, &berr) ||
        !mongoc_collection_insert_one(orders, order, &opts, NULL, &berr)) {
        snprintf(err->message, sizeof err->message, "order insert: %s", berr.message);
        goto out;
    }
    if (outbox_put(ob, session, "order.created", key, order, NULL, NULL, err) != OUTBOX_OK) {
        mongoc_client_session_abort_transaction(session, NULL);
        goto out;
    }
    if (!mongoc_client_session_commit_transaction(session, NULL, &berr)) {
        snprintf(err->message, sizeof err->message, "commit: %s", berr.message);
        goto out;
    }
    ok = true;
out:
    bson_destroy(&opts);
    mongoc_collection_destroy(orders);
    if (session)
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
    int status = 0;
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
        size_t moved;
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
