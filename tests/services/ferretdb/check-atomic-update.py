#!/usr/bin/python3
"""Check that a conditional write is atomic under contention, against a running server.

outboxd fences a deposed lease holder with a compare-and-set on the sink's checkpoint
document ({_id: SINK, term: T}): that is only a fence when no two clients can both match one
version of a document. MongoDB guarantees it per document; FerretDB 1.24.2 does not (its
handler reads, applies the update in Go and writes the document back), and patch f in
ferretdb-v1.24.2.patch makes update, findAndModify and delete hold one lock per collection.

Each check runs 4 client threads racing to move one document from term T to T+1 after
reading T, ROUNDS times each, and prints the number of successful writes and the final
term: atomic means they are equal (each success moved the term by exactly one) and no read
ever saw the term go back.
  (update)        update {_id, term: T} -> {$set: {term: T+1}}
  (findandmodify) findAndModify {_id, term: T} -> {$set: {term: T+1}}
  (delete)        delete {_id, term: T} racing the same updates: a delete that matched a
                  version another client had already moved on must not happen

Usage: /usr/bin/python3 check-atomic-update.py [--uri URI] [--rounds N]
The URI defaults as in check-tailable.py. Exit status 0 when every check passes.
"""

import argparse
import os
import sys
import threading

import pymongo
from pymongo import ReturnDocument

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from importlib import import_module  # noqa: E402

default_uri = import_module("check-tailable").default_uri

CLIENTS = 4


def race(coll, rounds, op):
    """CLIENTS threads each try `rounds` compare-and-sets; returns (successes, went_back)."""
    coll.delete_many({})
    coll.insert_one({"_id": "x", "term": 0})
    successes = [0] * CLIENTS
    went_back = [False] * CLIENTS

    def client(i):
        seen = -1
        for _ in range(rounds):
            doc = coll.find_one({"_id": "x"})
            if doc is None:
                return
            term = doc["term"]
            if term < seen:
                went_back[i] = True
            seen = term
            if op == "update":
                ok = coll.update_one({"_id": "x", "term": term},
                                     {"$set": {"term": term + 1}}).modified_count == 1
            else:
                ok = coll.find_one_and_update({"_id": "x", "term": term},
                                              {"$set": {"term": term + 1}},
                                              return_document=ReturnDocument.AFTER) is not None
            if ok:
                successes[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    final = coll.find_one({"_id": "x"})["term"]
    return sum(successes), final, any(went_back)


def check_cas(coll, rounds, op):
    n, final, back = race(coll, rounds, op)
    ok = n == final and not back
    print(f"{'ok' if ok else 'FAIL'}: {op}: {CLIENTS} clients x {rounds} rounds: {n} successful "
          f"compare-and-sets, final term {final}{', a read saw the term go back' if back else ''}")
    return ok


def check_delete(coll, rounds):
    """A deleter removes {_id, term: T} for a T it read, while updaters move the term on:
    every delete that reports n=1 must have removed the version it read, so the document
    is gone only if the last term the updaters wrote equals the one the deleter read."""
    bad = 0
    for _ in range(rounds):
        coll.delete_many({})
        coll.insert_one({"_id": "x", "term": 0})
        stop = threading.Event()
        writes = []

        def updater():
            while not stop.is_set():
                doc = coll.find_one({"_id": "x"})
                if doc is None:
                    return
                if coll.update_one({"_id": "x", "term": doc["term"]},
                                   {"$set": {"term": doc["term"] + 1}}).modified_count == 1:
                    writes.append(doc["term"] + 1)

        threads = [threading.Thread(target=updater) for _ in range(CLIENTS - 1)]
        for t in threads:
            t.start()
        doc = coll.find_one({"_id": "x"})
        deleted = doc is not None and coll.delete_one({"_id": "x", "term": doc["term"]}).deleted_count == 1
        stop.set()
        for t in threads:
            t.join()
        # an update that succeeded after the delete matched a document that was gone,
        # and one that wrote doc.term + 1 before the delete means the delete removed a
        # newer version than the one it was conditioned on
        if deleted and (doc["term"] + 1) in writes:
            bad += 1
    ok = bad == 0
    print(f"{'ok' if ok else 'FAIL'}: delete: {rounds} races of a conditional delete against "
          f"{CLIENTS - 1} updaters: {bad} deleted a version newer than the one matched")
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--uri", default=default_uri())
    ap.add_argument("--rounds", type=int, default=50)
    args = ap.parse_args()
    client = pymongo.MongoClient(args.uri)
    db = client["outbox_check_atomic"]
    coll = db["cas"]
    results = [check_cas(coll, args.rounds, "update"),
               check_cas(coll, args.rounds, "findandmodify"),
               check_delete(coll, args.rounds)]
    client.drop_database(db)
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
