"""AWS IoT SQL values, the standard conversions, JSON in and out, and the operators.

Representation (the reference's "Data types"):

    Int        int (never bool)
    Decimal    decimal.Decimal, 34 digits of precision (Java's DECIMAL128)
    Boolean    bool
    String     str
    Array      list
    Object     dict
    Null       None
    Undefined  UNDEFINED (omitted from JSON output)
    (payload)  Binary: a message payload that is not JSON, usable through `*`

With SQL version 2016-03-23 and later, numeric values that are whole numbers
(10.0) are processed as Int (10): `Numbers.dec` does that normalization.
"""

from __future__ import annotations

import decimal
import json
import math
import re
from decimal import Decimal
from typing import Any

from localiot.iotsql.errors import SqlEvaluationError
from localiot.protocol import jsontext

DECIMAL128 = decimal.Context(prec=34, rounding=decimal.ROUND_HALF_EVEN, Emax=999999, Emin=-999999,
                             traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow])


# "Int: discrete Int, 34 digits maximum": larger whole numbers stay Decimals.
MAX_INT_DIGITS = 34


class _Undefined:
    __slots__ = ()
    _instance: _Undefined | None = None

    def __new__(cls) -> _Undefined:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


class Binary:
    """A message payload that is not JSON: only `*`, encode(*, ...) and the
    functions documented as accepting binary data can use it."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Binary) and other.data == self.data

    def __hash__(self) -> int:
        return hash(self.data)

    def __repr__(self) -> str:
        return f"Binary({self.data!r})"


def kind(value: Any) -> str:
    """The reference's type name of a value."""
    if value is UNDEFINED:
        return "Undefined"
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "Boolean"
    if isinstance(value, int):
        return "Int"
    if isinstance(value, Decimal):
        return "Decimal"
    if isinstance(value, str):
        return "String"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, Binary):
        return "Binary"
    raise TypeError(f"not an AWS IoT SQL value: {value!r}")


def is_number(value: Any) -> bool:
    return isinstance(value, (int, Decimal)) and not isinstance(value, bool)


class Numbers:
    """Version-dependent numeric normalization."""

    __slots__ = ("whole_decimals_are_ints",)

    def __init__(self, whole_decimals_are_ints: bool) -> None:
        self.whole_decimals_are_ints = whole_decimals_are_ints

    def dec(self, value: Decimal) -> Decimal | int:
        if (self.whole_decimals_are_ints and value.is_finite() and value.adjusted() < MAX_INT_DIGITS
                and value == value.to_integral_value()):
            return int(value)
        return value

    def from_float(self, value: float) -> Any:
        if math.isnan(value) or math.isinf(value):
            return Decimal("NaN") if math.isnan(value) else Decimal(value)
        return self.dec(Decimal(repr(value)))

    def normalize(self, value: Any) -> Any:
        """Apply `dec` throughout a parsed JSON value."""
        if not self.whole_decimals_are_ints:
            return value
        if isinstance(value, Decimal):
            return self.dec(value)
        if isinstance(value, list):
            return [self.normalize(v) for v in value]
        if isinstance(value, dict):
            return {k: self.normalize(v) for k, v in value.items()}
        return value


# ---------------------------------------------------------------------------
# Standard conversions (reference: Data types > Conversions)
# ---------------------------------------------------------------------------

DECIMAL_STRING = re.compile(r"-?\d+(\.\d+)?([eE]-?\d+)?")


def string_to_decimal(text: str) -> Decimal | None:
    if DECIMAL_STRING.fullmatch(text) is None:
        return None
    try:
        return DECIMAL128.create_decimal(text)
    except decimal.DecimalException:
        return None


def to_decimal(value: Any) -> Decimal | None:
    """Int -> Decimal, Decimal -> itself, String -> parsed; anything else -> None (Undefined)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, Decimal):
        return value
    if isinstance(value, str):
        return string_to_decimal(value)
    return None


def to_number(value: Any) -> int | Decimal | None:
    """Like to_decimal, but an Int stays an Int."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return to_decimal(value)


def decimal_to_int(value: Decimal, rounding: str = decimal.ROUND_DOWN) -> int | None:
    """Decimals are rounded down (towards zero, Java's RoundingMode.DOWN) to the nearest Int;
    None (Undefined) for NaN, infinities and magnitudes far beyond an Int's 34 digits."""
    if not value.is_finite() or value.adjusted() > 4 * MAX_INT_DIGITS:
        return None
    return int(value.to_integral_value(rounding=rounding))


def to_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = to_decimal(value)
    return None if number is None else decimal_to_int(number)


def to_index(value: Any) -> int | None:
    """An Int argument that positions into a string (substring): like to_int, but a
    magnitude past any index (-2.411E247, 1E400) is clamped to one instead of
    being Undefined, since the function clamps indexes anyway. NaN stays None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    number = to_decimal(value)
    if number is None or number.is_nan():
        return None
    if number.is_infinite() or number.adjusted() > 4 * MAX_INT_DIGITS:
        return -INDEX_LIMIT if number < 0 else INDEX_LIMIT
    return decimal_to_int(number)


INDEX_LIMIT = 2 ** 63


def to_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return None


def to_string(value: Any) -> str | None:
    """Standard string conversion; None means Undefined (Null and Undefined convert to Undefined)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal, list, dict)):
        return dumps(value)
    return None


def decimal_text(value: Decimal) -> str:
    # Python's str() of a Decimal is the General Decimal Arithmetic
    # to-scientific-string, the same text as Java's BigDecimal.toString().
    return str(value)


# ---------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_bytes(payload: bytes, numbers: Numbers) -> tuple[bool, Any]:
    """(True, value) for a JSON payload, (False, None) otherwise."""
    try:
        text = bytes(payload).decode("utf-8")
    except UnicodeDecodeError:
        return False, None
    return parse_json_text(text, numbers)


def parse_json_text(text: str, numbers: Numbers) -> tuple[bool, Any]:
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return False, None
    try:
        # Nesting past jsontext.MAX_DEPTH makes the payload not JSON (binary to SQL).
        value = jsontext.loads(text, surrogates=True, parse_float=Decimal, parse_constant=_reject_constant)
    except ValueError:
        return False, None
    if jsontext.may_hold_surrogate(text):
        # Choice: a lone surrogate escape does not drop the message; it reads as
        # U+FFFD, what a UTF-8 writer that cannot fail puts in its place.
        value = jsontext.scrub(value)
    return True, numbers.normalize(value)


def from_python(value: Any, numbers: Numbers) -> Any:
    """A value handed back by a hook (Lambda, shadow, DynamoDB...) as an SQL value."""
    if value is None or value is UNDEFINED or isinstance(value, (bool, str, Binary)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return numbers.from_float(value)
    if isinstance(value, Decimal):
        return numbers.dec(value)
    if isinstance(value, dict):
        converted = ((str(k), from_python(v, numbers)) for k, v in value.items())
        return {k: v for k, v in converted if v is not UNDEFINED}
    if isinstance(value, (list, tuple)):
        return [from_python(v, numbers) for v in value]
    if isinstance(value, (bytes, bytearray)):
        ok, parsed = parse_json_bytes(bytes(value), numbers)
        return parsed if ok else Binary(bytes(value))
    raise SqlEvaluationError(f"cannot use a {type(value).__name__} as an AWS IoT SQL value")


def is_representable(value: Any) -> bool:
    if value is UNDEFINED or isinstance(value, Binary):
        return False
    if isinstance(value, Decimal):
        return value.is_finite()
    return True


def dumps(value: Any) -> str:
    """Compact JSON as AWS IoT writes it (UTF-8, no spaces, Undefined members omitted)."""
    parts: list[str] = []
    _dump(value, parts)
    return "".join(parts)


def _dump(value: Any, out: list[str]) -> None:
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        out.append(str(value))
    elif isinstance(value, Decimal):
        out.append(decimal_text(value) if value.is_finite() else "null")
    elif isinstance(value, str):
        out.append(json.dumps(value, ensure_ascii=False))
    elif isinstance(value, list):
        out.append("[")
        first = True
        for item in value:
            if not is_representable(item):
                continue
            if not first:
                out.append(",")
            first = False
            _dump(item, out)
        out.append("]")
    elif isinstance(value, dict):
        out.append("{")
        first = True
        for key, item in value.items():
            if not is_representable(item):
                continue
            if not first:
                out.append(",")
            first = False
            out.append(json.dumps(str(key), ensure_ascii=False))
            out.append(":")
            _dump(item, out)
        out.append("}")
    elif isinstance(value, Binary):
        raise SqlEvaluationError("a binary (non-JSON) payload cannot be serialized inside a JSON document")
    else:
        raise SqlEvaluationError(f"cannot serialize {value!r}")


# ---------------------------------------------------------------------------
# Operators (reference: Operators)
# ---------------------------------------------------------------------------


def logical_operand(value: Any) -> bool | None:
    """AND / OR / NOT take Booleans or the strings "true"/"false" (any case)."""
    return to_bool(value)


def sql_and(left: Any, right: Any) -> Any:
    a, b = logical_operand(left), logical_operand(right)
    if a is None or b is None:
        return UNDEFINED
    return a and b


def sql_or(left: Any, right: Any) -> Any:
    a, b = logical_operand(left), logical_operand(right)
    if a is None or b is None:
        return UNDEFINED
    return a or b


def sql_not(operand: Any) -> Any:
    a = logical_operand(operand)
    return UNDEFINED if a is None else not a


def equal(left: Any, right: Any) -> Any:
    """`=`: Undefined with an Undefined operand, False for mismatched types."""
    if left is UNDEFINED or right is UNDEFINED:
        return UNDEFINED
    return _same(left, right)


def _same(left: Any, right: Any) -> bool:
    if is_number(left) and is_number(right):
        if isinstance(left, Decimal) and left.is_nan() or isinstance(right, Decimal) and right.is_nan():
            return False
        return Decimal(left) == Decimal(right) if isinstance(left, Decimal) or isinstance(right, Decimal) \
            else left == right
    if kind(left) != kind(right):
        return False
    if isinstance(left, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right))
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    return left == right


def not_equal(left: Any, right: Any) -> Any:
    result = equal(left, right)
    return result if result is UNDEFINED else not result


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """`<`, `>`...: numbers, or strings that all convert to Decimal."""
    if not (isinstance(left, (int, Decimal, str)) and isinstance(right, (int, Decimal, str))):
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    a, b = to_number(left), to_number(right)
    if a is None or b is None:
        return None
    if isinstance(a, Decimal) and a.is_nan() or isinstance(b, Decimal) and b.is_nan():
        return None
    return a, b


def compare(op: str, left: Any, right: Any) -> Any:
    pair = _comparable(left, right)
    if pair is None:
        return UNDEFINED
    a, b = pair
    if op == "<":
        return a < b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    return a >= b


def contained_in(element: Any, array: Any) -> Any:
    """`x IN array`."""
    if element is UNDEFINED or not isinstance(array, list):
        return UNDEFINED
    return any(_same(element, item) for item in array)


def contains(container: Any, element: Any) -> Any:
    """`string CONTAINS substring`, `array CONTAINS element`."""
    if element is UNDEFINED or container is UNDEFINED:
        return UNDEFINED
    if isinstance(container, str):
        needle = to_string(element)
        return UNDEFINED if needle is None else needle in container
    if isinstance(container, list):
        return any(_same(element, item) for item in container)
    return UNDEFINED


def _arith_operands(left: Any, right: Any) -> tuple[Any, Any] | None:
    if left is UNDEFINED or right is UNDEFINED:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        return None
    if isinstance(left, int) and isinstance(right, int):
        return left, right
    a, b = to_decimal(left), to_decimal(right)
    if a is None or b is None:
        return None
    return a, b


def _int_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _int_rem(a: int, b: int) -> int:
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def arithmetic(op: str, left: Any, right: Any, numbers: Numbers) -> Any:
    """`+ - * / %`: Int op Int is an Int; with a Decimal (or, but for `+`, a numeric
    String) a Decimal. `+` with a String on either side joins the two as strings
    (the other converted by the standard string conversion), as the operator
    table of the SQL reference says: 'a' + 'b' is "ab", '1' + 2 is "12"."""
    if op == "+" and (isinstance(left, str) or isinstance(right, str)):
        if isinstance(left, Binary) or isinstance(right, Binary):
            return UNDEFINED
        a, b = to_string(left), to_string(right)
        return UNDEFINED if a is None or b is None else a + b
    pair = _arith_operands(left, right)
    if pair is None:
        return UNDEFINED
    a, b = pair
    if isinstance(a, int):
        if op == "+":
            return a + b
        if op == "-":
            return a - b
        if op == "*":
            return a * b
        if b == 0:
            return UNDEFINED
        return _int_div(a, b) if op == "/" else _int_rem(a, b)
    try:
        if op == "+":
            result = DECIMAL128.add(a, b)
        elif op == "-":
            result = DECIMAL128.subtract(a, b)
        elif op == "*":
            result = DECIMAL128.multiply(a, b)
        elif b == 0:
            return UNDEFINED
        elif op == "/":
            result = DECIMAL128.divide(a, b)
        else:
            result = DECIMAL128.remainder(a, b)
    except decimal.DecimalException:
        return UNDEFINED
    return numbers.dec(result)


def negate(operand: Any, numbers: Numbers) -> Any:
    if isinstance(operand, bool):
        return UNDEFINED
    if isinstance(operand, int):
        return -operand
    number = to_decimal(operand)
    return UNDEFINED if number is None else numbers.dec(-number)


def truthy(value: Any) -> bool:
    """Whether a WHERE clause (or a searched CASE condition) holds."""
    return to_bool(value) is True
