"""The documented AWS IoT SQL functions that only look at their arguments.

Functions that read the message context or call out through hooks live in
`context_functions`. Each body gets `(env, args)` with evaluated arguments
(or argument nodes for lazy functions) and returns a value; arguments of the
wrong type go through the standard conversions, and what cannot be
converted gives Undefined, as the reference's tables say.
"""

from __future__ import annotations

import base64
import binascii
import decimal
import hashlib
import math
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from localiot.iotsql import values as v
from localiot.iotsql.errors import SqlEvaluationError
from localiot.iotsql.registry import FUNCTIONS, MANY, fn, literal_string
from localiot.iotsql.timefmt import format_epoch, parse_to_epoch
from localiot.iotsql.values import UNDEFINED, Binary

U = UNDEFINED
WIDE = decimal.Context(prec=2000, Emax=999999, Emin=-999999)

CAST_TYPES = {
    "INT": "Int", "INTEGER": "Int", "DECIMAL": "Decimal", "BOOL": "Boolean", "BOOLEAN": "Boolean",
    "STRING": "String", "NVARCHAR": "String", "TEXT": "String", "NTEXT": "String", "VARCHAR": "String",
    "DOUBLE": "Double",  # a Decimal with double precision (the cast keyword table, both SQL versions)
}


def _string(value: Any) -> str | None:
    return None if isinstance(value, Binary) else v.to_string(value)


def _strings(args: list[Any]) -> list[str] | None:
    out = [_string(a) for a in args]
    return None if any(s is None for s in out) else out  # type: ignore[return-value]


# ---------------------------------------------------------------------------
# Math
# ---------------------------------------------------------------------------


def _double(value: Any) -> float | None:
    number = v.to_decimal(value)
    if number is None or number.is_nan():
        return None
    return float(number)


def _math(name: str, f: Callable[..., float], arity: int = 1, imaginary_undefined: bool = False) -> None:
    """Decimal arguments are rounded to double precision; the result is a (double) Decimal."""
    def impl(env: Any, args: list[Any]) -> Any:
        doubles = [_double(a) for a in args]
        if any(d is None for d in doubles):
            return U
        try:
            result = f(*doubles)
        except ValueError:
            return U if imaginary_undefined else Decimal("NaN")
        except OverflowError:
            return U
        if isinstance(result, complex) or math.isnan(result) and imaginary_undefined:
            return U
        return env.numbers.from_float(result)
    fn(name, arity)(impl)


_math("acos", math.acos, imaginary_undefined=True)
_math("asin", math.asin, imaginary_undefined=True)
_math("atan", math.atan)
_math("atan2", math.atan2, 2)
_math("cos", math.cos)
_math("cosh", math.cosh)
_math("sin", math.sin)
_math("sinh", math.sinh)
_math("tan", math.tan)
_math("tanh", math.tanh)
_math("exp", math.exp)
_math("ln", math.log)
_math("log", math.log10)
_math("sqrt", math.sqrt)
_math("power", lambda x, y: math.pow(x, y), 2)


@fn("abs", 1)
def _abs(env: Any, args: list[Any]) -> Any:
    number = v.to_number(args[0])
    if number is None:
        return U
    return abs(number) if isinstance(number, int) else env.numbers.dec(abs(number))


def _to_int_fn(name: str, rounding: str) -> None:
    def impl(env: Any, args: list[Any]) -> Any:
        number = v.to_number(args[0])
        if number is None:
            return U
        if isinstance(number, int):
            return number
        result = v.decimal_to_int(number, rounding)
        return U if result is None else result
    fn(name, 1)(impl)


_to_int_fn("ceil", decimal.ROUND_CEILING)
_to_int_fn("floor", decimal.ROUND_FLOOR)
_to_int_fn("round", decimal.ROUND_HALF_UP)   # round(-1.5) = -2, round(1.5) = 2


@fn("sign", 1)
def _sign(env: Any, args: list[Any]) -> Any:
    number = v.to_number(args[0])
    if number is None or isinstance(number, Decimal) and number.is_nan():
        return U
    return (number > 0) - (number < 0)


@fn("trunc", 2)
def _trunc(env: Any, args: list[Any]) -> Any:
    number, places = v.to_number(args[0]), v.to_int(args[1])
    if number is None or places is None:
        return U
    if isinstance(number, int):
        return number
    places = min(max(places, 0), 34)
    if not number.is_finite():
        return U
    if number.as_tuple().exponent >= -places:     # nothing to cut off
        truncated = number
    else:
        truncated = number.quantize(Decimal(1).scaleb(-places), rounding=decimal.ROUND_DOWN, context=WIDE)
    # Trailing zeroes are stripped from the result.
    if truncated == truncated.to_integral_value():
        whole = v.decimal_to_int(truncated)
        return env.numbers.dec(truncated) if whole is None else whole
    return env.numbers.dec(truncated.normalize(WIDE))


def _remainder(env: Any, args: list[Any]) -> Any:
    return v.arithmetic("%", args[0], args[1], env.numbers)


fn("mod", 2)(_remainder)
fn("remainder", 2)(_remainder)


@fn("nanvl", 2)
def _nanvl(env: Any, args: list[Any]) -> Any:
    first = args[0]
    if first is U or first is None or isinstance(first, Decimal) and first.is_nan():
        return args[1]
    return first


def _bitwise(name: str, f: Callable[..., int], arity: int) -> None:
    def impl(env: Any, args: list[Any]) -> Any:
        ints = [v.to_int(a) for a in args]
        return U if any(i is None for i in ints) else f(*ints)
    fn(name, arity)(impl)


_bitwise("bitand", lambda a, b: a & b, 2)
_bitwise("bitor", lambda a, b: a | b, 2)
_bitwise("bitxor", lambda a, b: a ^ b, 2)
_bitwise("bitnot", lambda a: ~a, 1)


# ---------------------------------------------------------------------------
# Types
# ---------------------------------------------------------------------------


@fn("cast", 2)
def _cast(env: Any, args: list[Any]) -> Any:
    value, target = args
    if isinstance(value, Binary):
        return U
    if target == "String":
        text = v.to_string(value)
        return U if text is None else text
    if target == "Boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, Decimal)):
            return not (isinstance(value, Decimal) and value.is_nan()) and value != 0
        result = v.to_bool(value)
        return U if result is None else result
    if target == "Int":
        if isinstance(value, bool):
            return int(value)
        result = v.to_int(value)
        return U if result is None else result
    # Decimal, or Double: a Decimal rounded to double precision
    if isinstance(value, bool):
        return env.numbers.dec(Decimal("1.0") if value else Decimal("0.0"))
    number = v.to_decimal(value)
    if number is None:
        return U
    if target == "Double":
        return U if number.is_nan() else env.numbers.from_float(float(number))
    return env.numbers.dec(number)


@fn("isNull", 1)
def _is_null(env: Any, args: list[Any]) -> Any:
    return args[0] is None


@fn("isUndefined", 1)
def _is_undefined(env: Any, args: list[Any]) -> Any:
    return args[0] is U


# ---------------------------------------------------------------------------
# Strings and collections
# ---------------------------------------------------------------------------


@fn("concat", 0, MANY)
def _concat(env: Any, args: list[Any]) -> Any:
    if not args or any(a is U or isinstance(a, Binary) for a in args):
        return U
    if any(isinstance(a, list) for a in args):
        out: list[Any] = []
        for a in args:
            out.extend(a) if isinstance(a, list) else out.append(a)
        return out
    parts = _strings(args)
    return U if parts is None else "".join(parts)


def _string_fn(name: str, f: Callable[..., Any], arity: int = 1) -> None:
    def impl(env: Any, args: list[Any]) -> Any:
        parts = _strings(args)
        return U if parts is None else f(*parts)
    fn(name, arity)(impl)


WHITESPACE = " \t\n\r\f\v"
_string_fn("lower", str.lower)
_string_fn("upper", str.upper)
_string_fn("trim", lambda s: s.strip(WHITESPACE))
_string_fn("ltrim", lambda s: s.lstrip(WHITESPACE))
_string_fn("rtrim", lambda s: s.rstrip(WHITESPACE))
_string_fn("length", len)
_string_fn("numbytes", lambda s: len(s.encode("utf-8")))
_string_fn("startswith", str.startswith, 2)
_string_fn("endswith", str.endswith, 2)
_string_fn("indexof", str.find, 2)
_string_fn("replace", str.replace, 3)


def _pad(name: str, left: bool) -> None:
    def impl(env: Any, args: list[Any]) -> Any:
        text, count = _string(args[0]), v.to_int(args[1])
        if text is None or count is None:
            return U
        padding = " " * min(max(count, 0), 1000)
        return padding + text if left else text + padding
    fn(name, 2)(impl)


_pad("lpad", True)
_pad("rpad", False)


@fn("substring", 2, 3)
def _substring(env: Any, args: list[Any]) -> Any:
    text = _string(args[0])
    bounds = [v.to_index(a) for a in args[1:]]
    if text is None or any(b is None for b in bounds):
        return U
    start = min(max(bounds[0], 0), len(text))
    end = min(max(bounds[1], 0), len(text)) if len(bounds) == 2 else len(text)
    return text[start:end] if start < end else ""


@fn("chr", 1)
def _chr(env: Any, args: list[Any]) -> Any:
    code = v.to_int(args[0])
    if code is None or not 0 <= code <= 0x10FFFF:
        return U
    return chr(code)


@fn("get", 2)
def _get(env: Any, args: list[Any]) -> Any:
    container, key = args
    if isinstance(container, dict):
        return container.get(key, U) if isinstance(key, str) else U
    if isinstance(container, (list, str)):
        index = v.to_int(key)
        if index is None or not 0 <= index < len(container):
            return U
        return container[index]
    return U


# ---------------------------------------------------------------------------
# Regular expressions (Java syntax; Python's is close enough for the common subset)
# ---------------------------------------------------------------------------


def _regex_fn(name: str, arity: int) -> Callable:
    """Registers `body(parts, compiled)`: the arguments as strings, the second one compiled;
    Undefined when an argument is not a string or the pattern does not compile."""
    def register(body: Callable[[list[str], re.Pattern], Any]) -> Callable:
        def impl(env: Any, args: list[Any]) -> Any:
            parts = _strings(args)
            if parts is None:
                return U
            try:
                compiled = re.compile(parts[1])
            except re.error:
                return U
            return body(parts, compiled)
        fn(name, arity)(impl)
        return body
    return register


@_regex_fn("regexp_matches", 2)
def _regexp_matches(parts: list[str], compiled: re.Pattern) -> Any:
    return compiled.search(parts[0]) is not None


@_regex_fn("regexp_substr", 2)
def _regexp_substr(parts: list[str], compiled: re.Pattern) -> Any:
    match = compiled.search(parts[0])
    return match.group(0) if match else ""


JAVA_GROUP = re.compile(r"\\(.)|\$(\d+)|\$\{(\w+)\}", re.DOTALL)


@_regex_fn("regexp_replace", 3)
def _regexp_replace(parts: list[str], compiled: re.Pattern) -> Any:
    replacement = parts[2]

    def expand(match: re.Match) -> str:
        def group(ref: re.Match) -> str:
            if ref.group(1) is not None:
                return ref.group(1)
            name = ref.group(2) or ref.group(3)
            try:
                return match.group(int(name) if name.isdigit() else name) or ""
            except IndexError:
                raise SqlEvaluationError(f"regexp_replace(): no group {name} in {parts[1]!r}") from None
        return JAVA_GROUP.sub(group, replacement)

    return compiled.sub(expand, parts[0])



# ---------------------------------------------------------------------------
# Hashes, encodings
# ---------------------------------------------------------------------------

MD2_S = bytes.fromhex(
    "292e43c9a2d87c013d3654a1ecf0061362a705f3c0c7738c98932bd9bc4c82ca1e9b573cfdd4e01667426f188a17e512"
    "be4ec4d6da9ede49a0fbf58ebb2fee7aa968799115b2073f94c210890b225f21807f5d9a5a903227353ecce7bff79703"
    "ff1930b348a5b5d1d75e922aac56aac64fb838d296a47db676fc6be29c7404f1459d705964718720865bcf65e62da802"
    "1b6025adaeb0b9f61c46616934407e0f5547a323dd51af3ac35cf9cebac5ea262c530d6e85288409d3dfcdf441814d52"
    "6adc37c86cc1abfa24e17b080cbdb14a7888958be363e86de9cbd5fe3b001d39f2efb70e6658d0e4a67772f8eb754b0a"
    "314450b48fed1f1adb998d339f118314")


def md2_hex(data: bytes) -> str:
    """RFC 1319 (hashlib has no MD2)."""
    pad = 16 - len(data) % 16
    data = data + bytes([pad]) * pad
    checksum, last = [0] * 16, 0
    for i in range(0, len(data), 16):
        for j in range(16):
            checksum[j] ^= MD2_S[data[i + j] ^ last]
            last = checksum[j]
    data += bytes(checksum)
    x = [0] * 48
    for i in range(0, len(data), 16):
        for j in range(16):
            x[16 + j] = data[i + j]
            x[32 + j] = x[16 + j] ^ x[j]
        t = 0
        for j in range(18):
            for k in range(48):
                x[k] ^= MD2_S[t]
                t = x[k]
            t = (t + j) % 256
    return bytes(x[:16]).hex()


for _name in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512"):
    _string_fn(_name, lambda s, _n=_name: hashlib.new(_n, s.encode("utf-8")).hexdigest())
_string_fn("md2", lambda s: md2_hex(s.encode("utf-8")))


@fn("encode", 2, v2=True, lazy=True, check=literal_string(1, ("base64",)))
def _encode(env: Any, nodes: list[Any]) -> Any:
    target = nodes[0]
    value = target.eval(env)
    if isinstance(value, Binary):
        data = value.data
    elif type(target).__name__ == "Star" and env.top and env.raw is not None:
        data = env.raw                              # the payload exactly as received
    else:
        text = v.to_string(value)
        if text is None:
            return U
        data = text.encode("utf-8")
    return base64.b64encode(data).decode("ascii")


@fn("decode", 2, 6, v2=True, check=literal_string(1, ("base64", "proto")))
def _decode(env: Any, args: list[Any]) -> Any:
    value, scheme = args[0], args[1]
    if scheme == "proto":
        raise SqlEvaluationError("decode(..., 'proto') is not supported by localiot: protobuf "
                                 "descriptor files in S3 are not emulated")
    if len(args) != 2:
        raise SqlEvaluationError("decode(value, 'base64') takes exactly 2 arguments")
    if isinstance(value, Binary):
        text = value.data.decode("latin-1")
    else:
        text = v.to_string(value)
        if text is None:
            return U
    compact = "".join(text.split())
    try:
        data = base64.b64decode(compact + "=" * (-len(compact) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    decoded = data.decode("utf-8", errors="replace")
    # Decoded JSON is its JSON value, scalars included (base64 of "42" is the number 42).
    is_json, parsed = v.parse_json_text(decoded, env.numbers)
    return parsed if is_json else decoded


# ---------------------------------------------------------------------------
# Dates
# ---------------------------------------------------------------------------


@fn("parse_time", 2, 3, v2=True)
def _parse_time(env: Any, args: list[Any]) -> Any:
    pattern, stamp = _string(args[0]), v.to_int(args[1])
    zone = _string(args[2]) if len(args) == 3 else "UTC"
    if pattern is None or stamp is None or zone is None:
        return U
    try:
        return format_epoch(pattern, stamp, zone)
    except (ValueError, OverflowError):
        return U


@fn("time_to_epoch", 2, v2=True)
def _time_to_epoch(env: Any, args: list[Any]) -> Any:
    parts = _strings(args)
    if parts is None:
        return U
    try:
        return parse_to_epoch(parts[0], parts[1])
    except (ValueError, OverflowError):
        return U


@fn("machinelearning_predict", 3)
def _machinelearning_predict(env: Any, args: list[Any]) -> Any:
    raise SqlEvaluationError("machinelearning_predict() is not supported by localiot: Amazon Machine "
                             "Learning models are not emulated")


from localiot.iotsql import context_functions  # noqa: F401  (registers the rest)

__all__ = ["CAST_TYPES", "FUNCTIONS"]
