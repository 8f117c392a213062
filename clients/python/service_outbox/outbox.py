"""An outbox producer on pymongo: events validated against their type's
schema, written into the capped log N, or into N.pending inside the
caller's transaction (MongoDB refuses capped writes in transactions;
outboxd's promoter moves them once committed). The envelope is
docs/envelope.md's, the same liboutbox writes.
"""

import datetime
import json
import os

from bson import BSON, ObjectId
from pymongo import ReadPreference
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from .schema import Schema, SchemaError

ENVELOPE_VERSION = 1
MAX_DEPTH = 100                 # the envelope's levels, data's included (liboutbox's OUTBOX_MAX_DEPTH)
EVENT_MAX_SIZE = 8 * 1024 * 1024  # an envelope's BSON bytes (OUTBOX_EVENT_MAX_SIZE)


class OutboxError(Exception):
    """Base of every error the library raises itself."""


class UnknownTypeError(OutboxError):
    pass


class ValidationError(OutboxError):
    """An event refused before anything was written. .index is the event's
    place in its batch, .type its type, .path the failing field."""

    def __init__(self, index, type_, path, message):
        super().__init__(f"event {index} ({type_}): {path}: {message}")
        self.index, self.type, self.path = index, type_, path


class LimitError(ValidationError):
    pass


class NotEnsuredError(OutboxError):
    """The outbox's collections are not there: run outboxctl init."""


def _too_deep(data, limit):
    """Whether data (itself a level below the envelope: level 2) nests
    documents and arrays deeper than limit levels; stops at the first
    level past it, so a hostile depth costs neither stack nor time."""
    stack = [(data, 2)]
    while stack:
        value, level = stack.pop()
        if level > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((v, level + 1) for v in children if isinstance(v, (dict, list, tuple)))
    return False


class Outbox:
    """outbox = Outbox(client, "shop", "events"); outbox.load_types() (or
    declare); outbox.put("order.created", "order-1", {...}, session=s)."""

    def __init__(self, client, database, outbox):
        self.client = client
        self.db = client[database]
        self.name = outbox
        self._types = {}
        self._pending_checked = False

    # --- types -----------------------------------------------------------
    def declare(self, type_, schema):
        """Declares type_ with its schema (a dict, or JSON text). Raises
        SchemaError naming the keyword for a schema outside the subset."""
        if isinstance(schema, (str, bytes)):
            schema = json.loads(schema)
        self._types[type_] = Schema(schema)

    def declare_dir(self, path):
        """Every TYPE.json of path, as outboxctl --schemas reads them."""
        for name in sorted(os.listdir(path)):
            if name.endswith(".json"):
                with open(os.path.join(path, name), encoding="utf-8") as f:
                    try:
                        self.declare(name[:-5], f.read())
                    except (SchemaError, ValueError) as e:
                        raise SchemaError(os.path.join(path, name), str(e)) from None

    def load_types(self):
        """Declares every type the outbox keeps in N.schemas that is not
        declared here already (docs/schemas.md); returns how many."""
        n = 0
        for doc in self.db[self.name + ".schemas"].find({}, sort=[("_id", 1)]):
            if doc["_id"] not in self._types:
                self._types[doc["_id"]] = Schema(doc["schema"])
                n += 1
        return n

    # --- put -------------------------------------------------------------
    def envelope(self, index, type_, key, data, headers=None):
        """The validated envelope of one event (what put writes)."""
        schema = self._types.get(type_)
        if schema is None:
            raise UnknownTypeError(f"event {index}: type \"{type_}\" is not declared for outbox {self.db.name}.{self.name}")
        if key is not None and not isinstance(key, str):
            raise ValidationError(index, type_, "key", "expected string or null")
        if not isinstance(data, dict):
            raise ValidationError(index, type_, "data", "expected an object")
        if _too_deep(data, MAX_DEPTH):
            raise LimitError(index, type_, "data", f"nested deeper than {MAX_DEPTH - 1} levels of documents and arrays")
        failure = schema.first_failure(data)
        if failure:
            raise ValidationError(index, type_, failure[0], failure[1])
        for name, value in (headers or {}).items():
            if not isinstance(value, str):
                raise ValidationError(index, type_, f"headers.{name}", "expected string")
        doc = {"_id": ObjectId(), "type": type_, "key": key, "data": data,
               "created": datetime.datetime.now(datetime.timezone.utc)}
        if headers:
            doc["headers"] = dict(headers)
        doc["v"] = ENVELOPE_VERSION
        size = len(BSON.encode(doc))
        if size > EVENT_MAX_SIZE:
            raise LimitError(index, type_, "data", f"the envelope has {size} bytes of BSON, more than {EVENT_MAX_SIZE}")
        return doc

    def put(self, type_, key, data, session=None, headers=None):
        """Validates and writes one event; returns its id."""
        return self.put_many([(type_, key, data, headers)], session=session)[0]

    def put_many(self, events, session=None):
        """events: (type, key, data[, headers]) tuples, all validated before
        any is written, then written in one ordered insert: into N, or
        inside session's transaction into N.pending. Returns their ids."""
        docs = [self.envelope(i, *e) for i, e in enumerate(events)]
        if not docs:
            return []
        in_txn = session is not None and session.in_transaction
        if in_txn and not self._pending_checked:
            # Outside the transaction: MongoDB 4.2 creates no collection in
            # one, 4.4+ creates it bare (docs/transactions.md).
            names = set(self.db.list_collection_names(filter={"name": {"$in": [self.name, self.name + ".pending"]}}))
            if self.name + ".pending" not in names:
                raise NotEnsuredError(f"{self.db.name}.{self.name}.pending does not exist: run outboxctl init "
                                      f"for outbox {self.name} before transactional puts")
            self._pending_checked = True
        target = self.db[self.name + ".pending" if in_txn else self.name]
        target.insert_many(docs, ordered=True, session=session)
        return [d["_id"] for d in docs]

    def with_transaction(self, session, callback):
        """Runs callback(session) in a transaction and commits it, retried as
        the drivers' rules say (pymongo's ClientSession.with_transaction:
        the whole transaction again on TransientTransactionError, the commit
        again on UnknownTransactionCommitResult, for up to 120 s), with
        majority writes, snapshot reads, on the primary. callback may run
        several times: build its events inside it."""
        return session.with_transaction(callback, read_concern=ReadConcern("snapshot"),
                                        write_concern=WriteConcern("majority"),
                                        read_preference=ReadPreference.PRIMARY)
