#!/usr/bin/env python3
"""envelope_writer.py - a producer in another language.

Writes order events into an outbox with pymongo, following docs/envelope.md
only (no liboutbox), so that the C tail tests prove the envelope spec:

    envelope_writer.py URI DATABASE OUTBOX COUNT

Event i (1-based) has data.ordernr = i. Events 1..COUNT share one created
time, odd events have a null key, even ones headers; the ObjectIds are made
by pymongo (bson.ObjectId), as any driver would.
"""
import datetime
import sys

import pymongo
from bson import ObjectId


def main() -> int:
    uri, database, outbox, count = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    client = pymongo.MongoClient(uri)
    log = client[database][outbox]
    created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    for i in range(1, count + 1):
        doc = {
            "_id": ObjectId(),
            "type": "order.created",
            "key": None if i % 2 else f"order-{i}",
            "data": {"ordernr": i, "total": 9.5},
            "created": created,
            "v": 1,
        }
        if i % 2 == 0:
            doc["headers"] = {"source": "python", "seq": str(i)}
        log.insert_one(doc)
        print(doc["_id"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
