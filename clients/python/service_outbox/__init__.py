"""service-outbox for Python producers: put events into an outbox that
outboxd publishes, with the validation and the transactional path of
liboutbox (clients/python/README.md)."""

from .outbox import (LimitError, NotEnsuredError, Outbox, OutboxError, UnknownTypeError,
                     ValidationError)
from .schema import Schema, SchemaError, bson_type

__all__ = ["Outbox", "OutboxError", "ValidationError", "LimitError", "UnknownTypeError", "NotEnsuredError",
           "Schema", "SchemaError", "bson_type"]
__version__ = "0.1.0"
