"""Event schemas: the subset of MongoDB's $jsonSchema that liboutbox accepts
(docs/schemas.md), checked when a type is declared and applied to each
event's data before it is written.

Validation is jsonschema's Draft 4 validator (MongoDB's $jsonSchema is
draft 4) with liboutbox's readings where they differ: the keyword bsonType,
which draft 4 does not have; "number" including BSON's Decimal128; bounds
that compare a Decimal128 and refuse NaN; patterns with \\d, \\w and \\s in
ASCII, as PCRE2 reads them. The table of
tests/validation/cases.json holds every verdict to liboutbox's: the same
events are accepted or refused, at the same path.
"""

import datetime
import re
from collections.abc import Mapping

import jsonschema
from bson import Binary, Code, Decimal128, Int64, MaxKey, MinKey, ObjectId, Regex, Timestamp

KEYWORDS = frozenset(
    ("bsonType", "type", "required", "properties", "additionalProperties", "enum", "minimum", "maximum",
     "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "pattern", "items", "minItems", "maxItems",
     "title", "description"))
BSON_TYPES = frozenset(
    ("double", "string", "object", "array", "binData", "undefined", "objectId", "bool", "date", "null", "regex",
     "dbPointer", "javascript", "symbol", "javascriptWithScope", "int", "timestamp", "long", "decimal", "minKey",
     "maxKey", "number"))
JSON_TYPES = frozenset(("object", "array", "number", "boolean", "string", "null"))
NUMBER = frozenset(("int", "long", "double", "decimal"))


class SchemaError(ValueError):
    """A schema outside the subset; .path names the keyword."""

    def __init__(self, path, what):
        super().__init__(f"{path}: {what}")
        self.path = path


def bson_type(value):
    """The BSON type a value is written as: the name bsonType uses. An int
    is int when it fits 32 bits and long otherwise, as every driver writes
    it (a JSON number from another language arrives the same way)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Int64):
        return "long"
    if isinstance(value, int):
        return "int" if -2**31 <= value < 2**31 else "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, (list, tuple)):
        return "array"
    for cls, name in ((Decimal128, "decimal"), (ObjectId, "objectId"), (datetime.datetime, "date"),
                      (Binary, "binData"), (bytes, "binData"), (Regex, "regex"), (re.Pattern, "regex"),
                      (Code, "javascript"), (Timestamp, "timestamp"), (MinKey, "minKey"), (MaxKey, "maxKey")):
        if isinstance(value, cls):
            return name
    return type(value).__name__


def _join(path, key):
    return f"{path}.{key}" if path else key


def _names(v, p, known, kind):
    names = v if isinstance(v, list) else [v]
    if isinstance(v, list) and not v:
        raise SchemaError(p, "needs at least one type")
    for name in names:
        if not isinstance(name, str):
            raise SchemaError(p, "expected a string or an array of strings")
        if name == "integer" and kind == "JSON":
            raise SchemaError(p, 'type "integer" is refused, as MongoDB refuses it: use bsonType "int"')
        if name not in known:
            raise SchemaError(p, f"unknown {kind} type {name!r}")


def _is_count(v):
    """A non-negative integer, or a float that is one (2.0), as liboutbox."""
    if isinstance(v, bool):
        return False
    if isinstance(v, float):
        return v.is_integer() and v >= 0
    return isinstance(v, int) and v >= 0


def check_schema(schema, path=""):
    """Raises SchemaError, naming the keyword's path, for a schema outside
    the subset: liboutbox's rules (schema.c), and its paths."""
    if not isinstance(schema, Mapping):
        raise SchemaError(path or "(schema root)", "a schema must be an object")
    for kw, v in schema.items():
        p = _join(path, kw)
        if kw not in KEYWORDS:
            raise SchemaError(p, "keyword not supported")
        if kw == "bsonType":
            _names(v, p, BSON_TYPES, "BSON")
        elif kw == "type":
            _names(v, p, JSON_TYPES, "JSON")
        elif kw in ("title", "description"):
            if not isinstance(v, str):
                raise SchemaError(p, "expected a string")
        elif kw == "required":
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise SchemaError(p, "expected an array of property names")
            if not v:
                raise SchemaError(p, "must name at least one property")
        elif kw == "properties":
            if not isinstance(v, Mapping):
                raise SchemaError(p, "expected an object of schemas")
            for name, sub in v.items():
                check_schema(sub, _join(p, name))
        elif kw == "additionalProperties":
            if not isinstance(v, bool):
                check_schema(v, p)
        elif kw == "enum":
            if not isinstance(v, list) or not v:
                raise SchemaError(p, "expected a non-empty array of values")
        elif kw in ("minimum", "maximum"):
            if isinstance(v, bool) or not isinstance(v, (int, float, Int64)):
                raise SchemaError(p, "expected a number")
        elif kw in ("exclusiveMinimum", "exclusiveMaximum"):
            if not isinstance(v, bool):
                raise SchemaError(p, "expected a boolean (draft 4, as MongoDB)")
        elif kw in ("minLength", "maxLength", "minItems", "maxItems"):
            if not _is_count(v):
                raise SchemaError(p, "expected a non-negative integer")
        elif kw == "pattern":
            if not isinstance(v, str):
                raise SchemaError(p, "expected a string")
            try:
                re.compile(v, re.ASCII)
            except re.error as e:
                raise SchemaError(p, f"not a valid regular expression: {e}") from None
        elif kw == "items":
            if isinstance(v, list):
                raise SchemaError(p, "the tuple form (an array of schemas) is not supported")
            check_schema(v, p)


def _number(v):
    """A number's value for the bounds (Decimal128 as float, as liboutbox),
    or None for what is no number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, Decimal128):
        return float(v.to_decimal())
    if isinstance(v, (int, float)):
        return float(v)
    return None


def _bound(is_min):
    def keyword(validator, bound, instance, schema):
        v = _number(instance)
        if v is None:
            return
        exclusive = schema.get("exclusiveMinimum" if is_min else "exclusiveMaximum", False)
        # NaN passes no bound (it compares false with everything).
        ok = (v > bound if exclusive else v >= bound) if is_min else (v < bound if exclusive else v <= bound)
        if not ok:
            word = ("exclusive " if exclusive else "") + ("minimum" if is_min else "maximum")
            yield jsonschema.ValidationError(f"{instance!r} is {'below' if is_min else 'above'} {word} {bound}")
    return keyword


def _pattern(validator, pattern, instance, schema):
    # ASCII: \d, \w and \s as PCRE2 (without UCP) reads them.
    if isinstance(instance, str) and not re.search(pattern, instance, re.ASCII):
        yield jsonschema.ValidationError(f"{instance!r} does not match pattern /{pattern}/")


def _bson_type_keyword(validator, wanted, instance, schema):
    names = wanted if isinstance(wanted, list) else [wanted]
    have = bson_type(instance)
    if have in names or ("number" in names and have in NUMBER):
        return
    yield jsonschema.ValidationError(f"expected {' or '.join(names)}, got {have}")


_types = jsonschema.Draft4Validator.TYPE_CHECKER.redefine(
    "number",
    lambda checker, v: isinstance(v, Decimal128) or (isinstance(v, (int, float)) and not isinstance(v, bool)))
_types = _types.redefine("object", lambda checker, v: isinstance(v, Mapping))
_types = _types.redefine("array", lambda checker, v: isinstance(v, (list, tuple)))
Validator = jsonschema.validators.extend(
    jsonschema.Draft4Validator,
    {"bsonType": _bson_type_keyword, "minimum": _bound(True), "maximum": _bound(False), "pattern": _pattern},
    type_checker=_types)


def _path(root, error):
    """liboutbox's path of a failure: root.key[index]..., naming the missing
    property of required and the refused one of additionalProperties."""
    out = root
    for part in error.absolute_path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    if error.validator == "required" and isinstance(error.instance, Mapping):
        missing = [k for k in error.validator_value if k not in error.instance]
        if missing:
            out += f".{missing[0]}"
    elif error.validator == "additionalProperties" and error.validator_value is False:
        declared = error.schema.get("properties", {})
        extra = [k for k in error.instance if k not in declared]
        if extra:
            out += f".{extra[0]}"
    return out


class Schema:
    """A declared type's schema, checked once; validate() per event."""

    def __init__(self, schema):
        check_schema(schema)
        self.document = schema
        self._validator = Validator(schema)

    def first_failure(self, data, root="data"):
        """None, or (path, message) of the first failure."""
        for error in self._validator.iter_errors(data):
            return _path(root, error), error.message
        return None
