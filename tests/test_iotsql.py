"""AWS IoT SQL (localiot.iotsql): the SELECT / FROM / WHERE clauses, literals,
operators and their conversions, CASE, nested queries, SQL versions, binary
payloads, parse errors, topic matching and substitution templates.

Table-driven: each case is (sql, expected, payload, version, context overrides).
The function suite (tests/test_iotsql_functions.py) reuses the helpers here.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from localiot.iotsql import EvalContext, SqlEvaluationError, SqlParseError, parse

V1, V2, BETA = "2015-10-08", "2016-03-23", "beta"
NOW = 1481825251155
TOPIC = "things/myThings/thingOne"


class _NoResult:
    def __repr__(self) -> str:
        return "NO_RESULT"


NO_RESULT = _NoResult()


@dataclass(frozen=True)
class ParseErr:
    fragment: str


@dataclass(frozen=True)
class EvalErr:
    fragment: str


@dataclass(frozen=True)
class Text:
    """The exact payload text (for number formatting that a Python value can't express)."""
    text: str


@dataclass
class Case:
    sql: str
    expected: Any
    payload: Any = field(default_factory=dict)
    version: str = V2
    ctx: dict = field(default_factory=dict)
    id: str | None = None


def case(sql: str, expected: Any, payload: Any = None, version: str = V2, id: str | None = None,
         **ctx: Any) -> Any:
    return pytest.param(Case(sql, expected, {} if payload is None else payload, version, ctx),
                        id=id or sql[:70])


def context(**overrides: Any) -> EvalContext:
    base = {"topic": TOPIC, "client_id": "client-1", "principal": "cert-123", "timestamp_ms": NOW,
            "account": "123456789012", "region": "us-east-1"}
    base.update(overrides)
    return EvalContext(**base)


def payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, (bytes, bytearray)):
        return bytes(payload)
    return json.dumps(payload).encode("utf-8")


def expected_text(expected: Any) -> str:
    if isinstance(expected, Text):
        return expected.text
    return json.dumps(expected, separators=(",", ":"), ensure_ascii=False)


def check(c: Case) -> None:
    expected = c.expected
    if isinstance(expected, ParseErr):
        with pytest.raises(SqlParseError) as info:
            parse(c.sql, c.version)
        assert expected.fragment in str(info.value)
        return
    query = parse(c.sql, c.version)
    ctx = context(**c.ctx)
    if isinstance(expected, EvalErr):
        with pytest.raises(SqlEvaluationError) as info:
            query.evaluate(payload_bytes(c.payload), ctx)
        assert expected.fragment in str(info.value)
        return
    results = query.evaluate(payload_bytes(c.payload), ctx)
    if expected is NO_RESULT:
        assert results == []
        return
    assert len(results) == 1
    if isinstance(expected, bytes):
        assert results[0].value == expected
        assert results[0].to_payload() == expected
        return
    assert results[0].to_payload().decode("utf-8") == expected_text(expected)


COLOR = {"color": "red", "temperature": 50}
SENSORS = {"e": [{"n": "temperature", "u": "Cel", "t": 1234, "v": 22.5},
                 {"n": "light", "u": "lm", "t": 1235, "v": 135},
                 {"n": "acidity", "u": "pH", "t": 1235, "v": 7}]}
ARR = {"arr": [1, 2, 3, "three", 5.7, None]}

SELECT_CASES = [
    # The SELECT clause page of the reference.
    case("SELECT * FROM 'topic/subtopic'", COLOR, COLOR),
    case("SELECT color FROM 'topic/subtopic'", {"color": "red"}, COLOR),
    case("SELECT color AS my_color FROM 'topic/subtopic'", {"my_color": "red"}, COLOR),
    case("SELECT color as my_color, temperature as fahrenheit FROM 'topic/subtopic'",
         {"my_color": "red", "fahrenheit": 50}, COLOR),
    case("SELECT *, 15 as speed FROM 'topic/subtopic'", {"color": "red", "temperature": 50, "speed": 15}, COLOR),
    case("SELECT VALUE color FROM 'topic/subtopic'", "red", COLOR),
    case("SELECT color.red as red_value FROM 'topic/subtopic'", {"red_value": 255},
         {"color": {"red": 255, "green": 0, "blue": 0}, "temperature": 50}),
    case("SELECT (temperature - 32) * 5 / 9 AS celsius, upper(color) as my_color FROM 'topic/subtopic'",
         {"celsius": 10, "my_color": "RED"}, COLOR),
    # JSON extensions page: dotted alias, get() for awkward keys, md5 on an attribute.
    case("SELECT foo.bar AS bar.baz FROM 'topic/subtopic'", {"bar": {"baz": "RED"}},
         {"foo": {"bar": "RED", "bar1": "GREEN", "bar2": "BLUE"}}),
    case("SELECT * from 'iot/rules' WHERE get(get(get(mydata,\"item2\"),\"0\"),\"my-key\") = \"myValue\"",
         {"mydata": {"item2": {"0": {"my-key": "myValue"}}}}, {"mydata": {"item2": {"0": {"my-key": "myValue"}}}}),
    case("SELECT temp, md5(deviceid) AS hashed_id FROM topic/#",
         {"temp": 54.98, "hashed_id": "e37f81fb397e595c4aeb5645b8cbbbd1"},
         {"deviceid": "iot123", "temp": 54.98, "humidity": 32.43}),
    # Undefined members are left out; null is a value.
    case("SELECT color, missing, a.b.c AS deep FROM 't'", {"color": "red"}, COLOR, id="undefined-omitted"),
    case("SELECT missing FROM 't'", {}, COLOR, id="all-undefined-empty-object"),
    case("SELECT n FROM 't'", {"n": None}, {"n": None}, id="null-kept"),
    case("SELECT a.b.c FROM 't'", {"c": 1}, {"a": {"b": {"c": 1}}}, id="unaliased-path-key"),
    case("SELECT upper(color) FROM 't'", {"upper": "RED"}, COLOR, id="unaliased-function-key"),
    case("SELECT 1 + 1, 'x' FROM 't'", {"_1": 2, "_2": "x"}, id="unaliased-expression-key"),
    case("SELECT *, 15 AS color FROM 't'", {"color": 15, "temperature": 50}, COLOR, id="later-key-wins"),
    case("SELECT *, 1 AS color.x, color AS copy FROM 't'", {"color": {"r": 1, "x": 1}, "copy": {"r": 1}},
         {"color": {"r": 1}}, id="dotted-alias-into-existing-object"),
    case("SELECT state.reported.* FROM 't'", {"on": True, "level": 3},
         {"state": {"reported": {"on": True, "level": 3}}}, id="path-star-merges"),
    # Arrays.
    case("SELECT a[1] FROM 't'", {"a": 20}, {"a": [10, 20]}, id="index"),
    case("SELECT a[0].b AS x FROM 't'", {"x": "first"}, {"a": [{"b": "first"}, {"b": "second"}]}, id="index-member"),
    case("SELECT a[5] AS x, a[-1] AS y, o[0] AS z FROM 't'", {}, {"a": [1], "o": {"k": 1}}, id="index-out-of-range"),
    case("SELECT a[i] AS x FROM 't'", {"x": "c"}, {"a": ["a", "b", "c"], "i": 2}, id="index-expression"),
    case("SELECT m[0][1] AS x FROM 't'", {"x": 2}, {"m": [[1, 2], [3, 4]]}, id="index-of-index"),
    # Payload shapes and serialization.
    case("SELECT * FROM 't'", [1, 2, {"a": "b"}], [1, 2, {"a": "b"}], id="star-array-payload"),
    case("SELECT * FROM 't'", Text('{"a":1,"b":[1,2]}'), b'{ "a" : 1 ,\n "b" : [ 1, 2 ] }', id="compact"),
    case("SELECT name FROM 't'", {"name": "café €"}, {"name": "café €"}, id="utf8"),
    case("SELECT big FROM 't'", {"big": 123456789012345678901234567890}, b'{"big": 123456789012345678901234567890}',
         id="big-int"),
    case("SELECT value FROM 't'", {"value": 5}, {"value": 5}, id="value-as-attribute"),
    case("SELECT value * 2 AS x FROM 't'", {"x": 10}, {"value": 5}, id="value-times"),
    case("SELECT VALUE value FROM 't'", 5, {"value": 5}, id="select-value-value"),
    case("SELECT VALUE * FROM 't'", {"value": 5}, {"value": 5}, id="select-value-star"),
    case("SELECT VALUE [value, 1] FROM 't'", [5, 1], {"value": 5}, id="select-value-array-literal"),
    case("SELECT value[1] AS v FROM 't'", {"v": 2}, {"value": [1, 2]}, id="value-indexed"),
    case("SELECT VALUE missing FROM 't'", NO_RESULT, COLOR, id="select-value-undefined"),
    case("select Color from 'T' where TRUE", {"Color": 1}, {"Color": 1}, id="keywords-any-case"),
    case("SELECT color FROM \"topic/subtopic\"", {"color": "red"}, COLOR, id="double-quoted-topic"),
]

LITERAL_CASES = [
    case("SELECT 'it''s' AS a, \"say \\\"hi\\\"\" AS b, 'tab\\there' AS c, '\\u00e9' AS d FROM 't'",
         {"a": "it's", "b": 'say "hi"', "c": "tab\there", "d": "é"}, id="string-escapes"),
    case("SELECT '\\d+' AS re FROM 't'", {"re": "\\d+"}, id="unknown-escape-kept"),
    case("SELECT 10 AS i, 10.5 AS d, 10.0 AS w, 1e3 AS e, -4 AS n FROM 't'",
         Text('{"i":10,"d":10.5,"w":10.0,"e":1E+3,"n":-4}'), version=V1, id="numbers-v1"),
    case("SELECT 10 AS i, 10.5 AS d, 10.0 AS w, 1e3 AS e, -4 AS n FROM 't'",
         {"i": 10, "d": 10.5, "w": 10, "e": 1000, "n": -4}, id="numbers-v2-whole-decimals-are-ints"),
    case("SELECT true AS t, FALSE AS f, null AS n FROM 't'", {"t": True, "f": False, "n": None}),
    case("SELECT [lat, long] AS lat_long FROM 'topic/subtopic'", {"lat_long": [47.606, -122.332]},
         {"lat": 47.606, "long": -122.332}),
    case("SELECT {'latitude': get(lat_long, 0), 'longitude': get(lat_long, 1)} AS lat_long FROM 'topic/subtopic'",
         {"lat_long": {"latitude": 47.606, "longitude": -122.332}}, {"lat_long": [47.606, -122.332]}),
    case("SELECT {\"a\": missing, \"b\": 1, c: [missing, 2]} AS o FROM 't'", {"o": {"b": 1, "c": [2]}},
         id="undefined-left-out-of-literals"),
    case("SELECT VALUE {'x': [1, {'y': null}]} FROM 't'", {"x": [1, {"y": None}]}, id="select-value-literal"),
    case("SELECT [1, 2] AS a FROM 't'", ParseErr("array literal requires SQL version 2016-03-23"), version=V1),
    case("SELECT {'a': 1} AS a FROM 't'", ParseErr("object literal requires SQL version 2016-03-23"), version=V1),
]

OPERATOR_CASES = [
    # + - * / % : Int op Int is Int; Decimal (or numeric String) makes Decimal; anything else Undefined.
    case("SELECT 2 + 3 AS a, 2 - 3 AS b, 2 * 3 AS c, 7 / 2 AS d, -7 / 2 AS e, 7 % 3 AS f FROM 't'",
         {"a": 5, "b": -1, "c": 6, "d": 3, "e": -3, "f": 1}, id="int-arithmetic"),
    case("SELECT 1.5 + 1 AS a, 1.5 * 2 AS b, 5 - 0.5 AS c, 7.0 / 2 AS d, 7.5 % 2 AS e FROM 't'",
         Text('{"a":2.5,"b":3.0,"c":4.5,"d":3.5,"e":1.5}'), version=V1, id="decimal-arithmetic-v1"),
    case("SELECT 1.5 * 2 AS b, 7.5 / 2.5 AS d FROM 't'", {"b": 3, "d": 3}, id="decimal-arithmetic-v2-whole"),
    case("SELECT 1 / 3.0 AS third FROM 't'", Text('{"third":0.3333333333333333333333333333333333}'), version=V1,
         id="decimal-34-digits"),
    # + joins as soon as one side is a String (the operator table); - * / % convert numeric strings.
    case("SELECT '10' + 5 AS a, '2.5' * '2' AS b, 5 - '1e1' AS c FROM 't'", {"a": "105", "b": 5, "c": -5},
         id="numeric-strings-convert"),
    case("SELECT '10' + 5 AS a FROM 't'", Text('{"a":"105"}'), version=V1, id="numeric-string-v1"),
    case("SELECT true + 1 AS b, null + 1 AS c, missing + 1 AS d, [1] + 1 AS e, 'a' + null AS f, missing + 'a' AS g "
         "FROM 't'", {}, id="non-numeric-arithmetic-undefined"),
    case("SELECT 'a' + 'b' AS ab, '1' + 2 AS s12, 1 + '2' AS s12b, 'abc' + 1 AS a, ' 1' + 1 AS f, 'v' + true AS t, "
         "'n=' + 1.5 AS d, 'o' + {'k': [1]} AS o, 'a' + 'b' + 1 + 2 AS left_to_right, 1 + 2 + 'x' AS sum_first "
         "FROM 't'",
         {"ab": "ab", "s12": "12", "s12b": "12", "a": "abc1", "f": " 11", "t": "vtrue", "d": "n=1.5",
          "o": 'o{"k":[1]}', "left_to_right": "ab12", "sum_first": "3x"}, id="plus-joins-strings"),
    case("SELECT 'a' + 'b' AS ab, '1' + 2 AS s FROM 't'", Text('{"ab":"ab","s":"12"}'), version=V1,
         id="plus-joins-strings-v1"),
    case("SELECT 1 / 0 AS a, 1.5 / 0 AS b, 5 % 0 AS c FROM 't'", {}, id="division-by-zero-undefined"),
    case("SELECT -7 % 3 AS a, 7 % -3 AS b, -7.5 % 2 AS c FROM 't'", {"a": -1, "b": 1, "c": -1.5},
         id="remainder-sign-of-dividend"),
    case("SELECT 2 + 3 * 4 AS a, (2 + 3) * 4 AS b, 10 - 4 - 3 AS c, 2 * 3 % 4 AS d, -x * 2 AS e FROM 't'",
         {"a": 14, "b": 20, "c": 3, "d": 2, "e": -6}, {"x": 3}, id="precedence"),
    case("SELECT -x AS a, -s AS b, -t AS c FROM 't'", {"a": -2.5, "b": -4}, {"x": 2.5, "s": "4", "t": True},
         id="negation"),
    case("SELECT * FROM 't'", Text('{"w":10.0,"d":1.50}'), b'{"w": 10.0, "d": 1.50}', version=V1,
         id="v1-keeps-decimals"),
    case("SELECT * FROM 't'", Text('{"w":10,"d":1.50}'), b'{"w": 10.0, "d": 1.50}', id="v2-whole-decimal-to-int"),
    # Comparisons: numbers, or strings that all convert to Decimal; otherwise Undefined.
    case("SELECT 5 > 3 AS a, 3 >= 3 AS b, 2.5 < 3 AS c, 4 <= 3.9 AS d, '10' > 9 AS e, '10' > '9' AS f FROM 't'",
         {"a": True, "b": True, "c": True, "d": False, "e": True, "f": True}, id="ordering"),
    case("SELECT 'abc' < 'abd' AS a, true > false AS b, null < 1 AS c, missing > 1 AS d, [1] < [2] AS e FROM 't'",
         {}, id="ordering-undefined"),
    # = and <>: no conversion; mismatched types are simply unequal; Undefined stays Undefined.
    case("SELECT 1 = 1.0 AS a, '5' = 5 AS b, 'a' = 'a' AS c, null = null AS d, [1, 'x'] = [1, 'x'] AS e, "
         "{'k': 1} = {'k': 1.0} AS f, true = 'true' AS g FROM 't'",
         {"a": True, "b": False, "c": True, "d": True, "e": True, "f": True, "g": False}, id="equality"),
    case("SELECT [1, 2] = [2, 1] AS a, {'k': 1} = {'k': 1, 'j': 2} AS b, 1 <> 2 AS c, '5' <> 5 AS d, "
         "1 != 1 AS e FROM 't'", {"a": False, "b": False, "c": True, "d": True, "e": False}, id="inequality"),
    case("SELECT missing = 1 AS a, missing <> 1 AS b, null = missing AS c FROM 't'", {}, id="equality-undefined"),
    # AND / OR / NOT: Booleans or "true"/"false" strings; any other operand gives Undefined.
    case("SELECT true AND false AS a, true OR false AS b, NOT false AS c, 'TRUE' AND true AS d, "
         "NOT 'false' AS e, 'False' OR 'fAlSe' AS f FROM 't'",
         {"a": False, "b": True, "c": True, "d": True, "e": True, "f": False}, id="logic"),
    case("SELECT 1 AND true AS a, NOT 5 AS b, true OR missing AS c, false AND missing AS d, 'yes' OR true AS e, "
         "NOT missing AS f, NOT null AS g FROM 't'", {}, id="logic-undefined"),
    case("SELECT NOT 1 = 2 AS a, true OR false AND false AS b, NOT true OR true AS c FROM 't'",
         {"a": True, "b": True, "c": True}, id="logic-precedence"),
    # IN and CONTAINS.
    case("SELECT 3 IN arr AS a, 'three' IN arr AS b, 5.7 IN arr AS c, 4 IN arr AS d, null IN arr AS e, "
         "'3' IN arr AS f FROM 't'", {"a": True, "b": True, "c": True, "d": False, "e": True, "f": False}, ARR,
         id="in"),
    case("SELECT 3 IN 'abc3' AS a, missing IN arr AS b, [1] IN [[1], 2] AS c FROM 't'", {"c": True}, ARR,
         id="in-undefined"),
    case("SELECT 'contains' CONTAINS 'ont' AS a, arr CONTAINS 3 AS b, arr CONTAINS 9 AS c, 'abc' CONTAINS 'x' AS d, "
         "5 CONTAINS 5 AS e FROM 't'", {"a": True, "b": True, "c": False, "d": False}, ARR, id="contains"),
]

WHERE_CASES = [
    case("SELECT * FROM 't' WHERE temperature > 40", COLOR, COLOR),
    case("SELECT * FROM 't' WHERE temperature > 60", NO_RESULT, COLOR),
    case("SELECT * FROM 't' WHERE humidity > 60", NO_RESULT, COLOR, id="where-undefined"),
    case("SELECT * FROM 't' WHERE temperature > 40 OR humidity > 80", NO_RESULT, COLOR,
         id="where-or-with-undefined-is-undefined"),
    case("SELECT * FROM 't' WHERE temperature > 40 AND color = 'red'", COLOR, COLOR),
    case("SELECT * FROM 't' WHERE NOT (color = 'blue')", COLOR, COLOR),
    case("SELECT * FROM 't' WHERE flag", {"flag": "True"}, {"flag": "True"}, id="where-true-string"),
    case("SELECT * FROM 't' WHERE 1", NO_RESULT, COLOR, id="where-number-is-not-true"),
    case("SELECT * FROM 't' WHERE null", NO_RESULT, COLOR, id="where-null"),
    case("SELECT * FROM 't' WHERE isUndefined(humidity)", COLOR, COLOR),
    case("SELECT c AS celsius FROM 't' WHERE celsius > 0", NO_RESULT, {"c": 5}, id="where-sees-payload-not-aliases"),
    case("SELECT * FROM 't' WHERE topic(2) = 'myThings' AND clientid() = 'client-1'", COLOR, COLOR),
]

CASE_CASES = [
    case("SELECT CASE color WHEN 'green' THEN 'go' WHEN 'yellow' THEN 'caution' WHEN 'red' THEN 'stop' "
         "ELSE 'you are not at a stop light' END as instructions FROM 'topic/subtopic'",
         {"instructions": "caution"}, {"color": "yellow"}, id="case-reference-example"),
    case("SELECT CASE color WHEN 'green' THEN 'go' ELSE 'other' END AS x FROM 't'", {"x": "other"}, COLOR),
    case("SELECT CASE color WHEN 'green' THEN 'go' END AS x FROM 't'", {}, COLOR, id="case-no-match-no-else"),
    case("SELECT CASE missing WHEN 'green' THEN 'go' ELSE 'else' END AS x FROM 't'", {}, COLOR,
         id="case-undefined-subject"),
    case("SELECT CASE n WHEN 1.0 THEN 'one' WHEN 2 THEN 'two' END AS x FROM 't'", {"x": "one"}, {"n": 1},
         id="case-numeric-equality"),
    case("SELECT CASE n WHEN 1 THEN 'a' WHEN 1 THEN 'b' END AS x FROM 't'", {"x": "a"}, {"n": 1},
         id="case-first-match"),
    case("SELECT CASE WHEN temperature > 80 THEN 'hot' WHEN temperature > 40 THEN 'warm' ELSE 'cold' END AS x "
         "FROM 't'", {"x": "warm"}, COLOR, id="case-searched"),
    case("SELECT CASE color WHEN 'red' THEN temperature * 2 END + 1 AS x FROM 't'", {"x": 101}, COLOR,
         id="case-in-expression"),
    case("SELECT CASE color ELSE 1 END AS x FROM 't'", ParseErr("expected WHEN"), id="case-needs-when"),
    case("SELECT CASE color WHEN 'red' THEN 1 AS x FROM 't'", ParseErr("expected WHEN, ELSE or END"),
         id="case-needs-end"),
]

NESTED_CASES = [
    case("SELECT (SELECT VALUE n FROM e) as sensors FROM 'my/topic'",
         {"sensors": ["temperature", "light", "acidity"]}, SENSORS),
    case("SELECT (SELECT v FROM e WHERE n = 'temperature') as temperature FROM 'my/topic'",
         {"temperature": [{"v": 22.5}]}, SENSORS),
    case("SELECT get((SELECT v FROM e WHERE n = 'temperature'), 0).v as temperature FROM 'topic'",
         {"temperature": 22.5}, SENSORS),
    case("SELECT (SELECT n, v * 2 AS double FROM e WHERE t = 1235) AS x FROM 't'",
         {"x": [{"n": "light", "double": 270}, {"n": "acidity", "double": 14}]}, SENSORS, id="nested-projection"),
    case("SELECT (SELECT * FROM e WHERE v > 100) AS x FROM 't'",
         {"x": [{"n": "light", "u": "lm", "t": 1235, "v": 135}]}, SENSORS, id="nested-star"),
    case("SELECT (SELECT VALUE u FROM e WHERE v > 1000) AS x FROM 't'", {"x": []}, SENSORS, id="nested-empty"),
    case("SELECT (SELECT VALUE n FROM missing) AS x, (SELECT VALUE n FROM 5) AS y FROM 't'", {}, SENSORS,
         id="nested-from-not-array"),
    case("SELECT (SELECT VALUE b FROM a) AS x, (SELECT b, c FROM a) AS y, (SELECT b FROM a WHERE b > 1) AS z "
         "FROM 't'", {"x": 1, "y": {"b": 1, "c": [2]}}, {"a": {"b": 1, "c": [2]}}, id="nested-from-object"),
    case("SELECT (SELECT VALUE (SELECT VALUE y FROM xs) FROM outer) AS x FROM 't'", {"x": [[1, 2], [3]]},
         {"outer": [{"xs": [{"y": 1}, {"y": 2}]}, {"xs": [{"y": 3}]}]}, id="nested-twice"),
    case("SELECT VALUE (SELECT VALUE n FROM e) FROM 't'", ["temperature", "light", "acidity"], SENSORS,
         id="select-value-of-nested"),
    case("SELECT * FROM 't' WHERE get((SELECT VALUE v FROM e WHERE n = 'light'), 0) > 100", SENSORS, SENSORS,
         id="nested-in-where"),
    case("SELECT * FROM 't' WHERE 'pH' IN (SELECT VALUE u FROM e)", SENSORS, SENSORS, id="nested-with-in"),
    case("SELECT (SELECT VALUE n FROM e) AS s FROM 't'", {"s": ["temperature", "light", "acidity"]}, SENSORS,
         version=BETA, id="nested-beta"),
    case("SELECT (SELECT VALUE n FROM e) AS s FROM 't'", ParseErr("nested SELECT requires SQL version 2016-03-23"),
         version=V1, id="nested-v1"),
]

VERSION_CASES = [
    case("SELECT VALUE color FROM 't'", "red", COLOR, version=V1, id="v1-select-value-scalar"),
    case("SELECT VALUE arr FROM 't'", [1, 2, 3, 4], {"arr": [1, 2, 3, 4]}, id="v2-select-value-array"),
    case("SELECT VALUE arr FROM 't'", EvalErr("SELECT VALUE of an array needs SQL version 2016-03-23"),
         {"arr": [1, 2, 3, 4]}, version=V1, id="v1-select-value-array"),
    case("SELECT VALUE a, b FROM 't'", ParseErr("SELECT VALUE takes exactly one expression"), id="value-two-items"),
    case("SELECT VALUE a AS b FROM 't'", ParseErr("SELECT VALUE takes exactly one expression"), id="value-alias"),
    case("SELECT sql_version() AS v FROM 't'", {"v": "2015-10-08"}, version=V1),
    case("SELECT sql_version() AS v FROM 't'", {"v": "beta"}, version=BETA),
    case("SELECT 10.0 AS w FROM 't'", {"w": 10}, version=BETA, id="beta-whole-decimals"),
    case("SELECT * FROM 't'", ParseErr("unsupported SQL version '2017-01-01'"), version="2017-01-01"),
    case("SELECT encode(*, 'base64') AS d FROM 't'", ParseErr("function encode() requires SQL version 2016-03-23"),
         version=V1, id="v1-encode"),
    case("SELECT get_thing_shadow('t', 'r') AS d FROM 't'", ParseErr("requires SQL version 2016-03-23"), version=V1,
         id="v1-get-thing-shadow"),
]

BINARY = b"\x00\x01\xffbinary"

BINARY_CASES = [
    case("SELECT * FROM 'topic/subtopic'", BINARY, BINARY, id="binary-star"),
    case("SELECT * FROM 't'", b"plain text, not json", b"plain text, not json", id="text-star"),
    case("SELECT * FROM 't'", b"\xc3\x28{}", b"\xc3\x28{}", id="invalid-utf8-is-binary"),
    case("SELECT * FROM 'topic/subtopic' WHERE timestamp() % 5 = 0", BINARY, BINARY, id="binary-where-function"),
    case("SELECT * FROM 'topic/subtopic' WHERE device_type = 'thermostat'", NO_RESULT, BINARY,
         id="binary-where-attribute"),
    case("SELECT encode(*, 'base64') AS data, timestamp() AS ts FROM 'topic/subtopic'",
         {"data": "AAH/YmluYXJ5", "ts": NOW}, BINARY, id="binary-encode"),
    case("SELECT encode(*, 'base64') AS data FROM 't'", {"data": "eyJhIjogMX0="}, b'{"a": 1}',
         id="json-encode-raw-bytes"),
    case("SELECT decode(encode(*, 'base64'), 'base64') AS payload FROM 'topic'", {"payload": {"a": 1}}, b'{"a": 1}',
         id="decode-encode-roundtrip"),
    case("SELECT *, principal() as principal FROM 't'", EvalErr("attributes cannot be added to a binary payload"),
         BINARY, id="binary-star-plus"),
    case("SELECT *, principal() as principal, timestamp() as time FROM 't'", {"principal": "cert-123", "time": NOW},
         b"", id="empty-payload-star-plus"),
    case("SELECT * FROM 't'", b"", b"", id="empty-payload-star"),
    case("SELECT a, upper(*) AS u, length(*) AS l FROM 't'", {}, BINARY, id="binary-attributes-undefined"),
    case("SELECT * AS whole FROM 't'", EvalErr("binary payload can only be selected as SELECT *"), BINARY,
         id="binary-aliased"),
    case("SELECT VALUE * FROM 't'", BINARY, BINARY, id="binary-select-value-star"),
    case("SELECT *, 1 AS x FROM 't'", EvalErr("not a JSON object"), [1, 2], id="json-array-star-plus"),
]

PARSE_ERROR_CASES = [
    case("SELECT FROM 't'", ParseErr("expected an expression but found 'FROM' (line 1, column 8)")),
    case("SELECT a 't'", ParseErr("expected FROM but found string 't'")),
    case("SELECT a", ParseErr("expected FROM but found end of statement")),
    case("a FROM 't'", ParseErr("expected SELECT but found 'a' (line 1, column 1)")),
    case("SELECT a FROM 't' WHERE", ParseErr("expected an expression but found end of statement")),
    case("SELECT a FROM 't' WHERE a = 1 b", ParseErr("expected WHERE or the end of the statement but found 'b'")),
    case("SELECT a, FROM 't'", ParseErr("expected an expression but found 'FROM'")),
    case("SELECT a FROM 't' WHERE b = 'abc", ParseErr("unterminated string literal (line 1, column 29)")),
    case("SELECT (a + 1 FROM 't'", ParseErr("expected ')' to close the '(' at column 8")),
    case("SELECT a.0 FROM 't'", ParseErr("expected an attribute name after '.' (use get()")),
    case("SELECT a[0 FROM 't'", ParseErr("expected ']'")),
    case("SELECT a FROM", ParseErr("expected a topic filter after FROM")),
    case("SELECT a FROM 'a/#/b'", ParseErr("'#' must be a whole level and the last one")),
    case("SELECT a FROM 'a/b#'", ParseErr("'#' must be a whole level")),
    case("SELECT a FROM 'a/+b'", ParseErr("'+' must be a whole level")),
    case("SELECT a FROM ''", ParseErr("invalid topic filter '' in FROM clause: it is empty")),
    case("SELECT from FROM 't'", ParseErr("expected an expression but found 'from'")),
    case("SELECT a AS FROM 't'", ParseErr("expected an alias after AS")),
    case("SELECT nosuch(a) FROM 't'", ParseErr("unknown function nosuch()")),
    case("SELECT upper(a, b) FROM 't'", ParseErr("function upper() takes 1 argument, got 2")),
    case("SELECT substring('a') FROM 't'", ParseErr("function substring() takes 2 to 3 arguments, got 1")),
    case("SELECT a # b FROM 't'", ParseErr("unexpected character '#'")),
    case("SELECT 12abc FROM 't'", ParseErr("malformed number")),
    case("SELECT a FROM 't'\nWHERE b = = 1", ParseErr("expected an expression but found '=' (line 2, column 11)")),
]

CASES = (SELECT_CASES + LITERAL_CASES + OPERATOR_CASES + WHERE_CASES + CASE_CASES + NESTED_CASES + VERSION_CASES
         + BINARY_CASES + PARSE_ERROR_CASES)


@pytest.mark.parametrize("c", CASES)
def test_statement(c: Case) -> None:
    check(c)


# ---------------------------------------------------------------------------
# The interface the rules engine uses
# ---------------------------------------------------------------------------


def test_query_interface() -> None:
    from decimal import Decimal

    from localiot.iotsql import Query, Result

    query = parse("SELECT 1.5 AS a, b FROM '$aws/things/+/shadow/update/accepted' WHERE b <> 2")
    assert isinstance(query, Query)
    assert query.topic_filter == "$aws/things/+/shadow/update/accepted"
    assert query.version == "2015-10-08"
    assert query.matches_topic("$aws/things/lamp/shadow/update/accepted")
    assert not query.matches_topic("$aws/things/lamp/shadow/update/rejected")
    [result] = query.evaluate(b'{"b": [1, 2]}', EvalContext())
    assert isinstance(result, Result)
    assert result.value == {"a": Decimal("1.5"), "b": [1, 2]}
    assert result.to_payload() == b'{"a":1.5,"b":[1,2]}'
    assert query.evaluate(b'{"b": 2}', EvalContext()) == []
    assert parse("SELECT * FROM 'a'").evaluate(b"\x01").pop().value == b"\x01"


def test_parse_error_is_value_error_with_position() -> None:
    with pytest.raises(ValueError) as info:
        parse("SELECT a FROM 't' WHERE (")
    assert isinstance(info.value, SqlParseError)
    assert info.value.position == 25
    assert (info.value.line, info.value.column) == (1, 26)


def test_timestamp_is_read_once_per_message() -> None:
    ticks = iter(range(1000, 2000))
    query = parse("SELECT timestamp() AS a, timestamp() AS b FROM 't'")
    [result] = query.evaluate(b"{}", EvalContext(timestamp_ms=lambda: next(ticks)))
    assert result.value == {"a": 1000, "b": 1000}


def test_wall_clock_by_default() -> None:
    import time

    before = int(time.time() * 1000)
    [result] = parse("SELECT timestamp() AS t FROM 'x'").evaluate(b"{}", EvalContext())
    assert before <= result.value["t"] <= int(time.time() * 1000)


def test_functions_used_are_listed() -> None:
    query = parse("SELECT upper(a), get_or_default(b, 1) AS b FROM 't' WHERE Topic(1) = 'x'", V2)
    assert query.functions == {"upper", "get_or_default", "topic"}


# ---------------------------------------------------------------------------
# FROM: topic filters
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("topic_filter,topic,expected", [
    ("a/+/c", "a/b/c", True),
    ("a/+/c", "a/b/d", False),
    ("a/+/c", "a/b/c/d", False),
    ("a/+/c", "a//c", True),
    ("a/#", "a", True),
    ("a/#", "a/b/c", True),
    ("a/#", "ab", False),
    ("#", "x/y", True),
    ("#", "$aws/things/t/shadow/update", False),
    ("+/things/+", "$aws/things/t", False),
    ("$aws/things/+/shadow/update/accepted", "$aws/things/t1/shadow/update/accepted", True),
    ("$aws/things/+/shadow/name/+/update/accepted", "$aws/things/t1/shadow/name/s/update/accepted", True),
    ("a/b", "a/b", True),
    ("a/b", "a/b/", False),
    ("a/b", "A/b", False),
    ("+/+", "/x", True),
    ("+", "", False),
])
def test_topic_matching(topic_filter: str, topic: str, expected: bool) -> None:
    assert parse(f"SELECT * FROM '{topic_filter}'").matches_topic(topic) is expected


def test_bare_topic_filter() -> None:
    assert parse("SELECT * FROM a/+/c WHERE x = 1").topic_filter == "a/+/c"
    assert parse("SELECT * FROM topic/#").topic_filter == "topic/#"


# ---------------------------------------------------------------------------
# Substitution templates
# ---------------------------------------------------------------------------

TEMPLATE_PAYLOAD = b'{"device_id": "d1", "temp": 22, "obj": {"a": 1}, "my-key": "k", "name": "bob", "n": null}'


@pytest.mark.parametrize("template,expected", [
    ("${topic()}/republish", "things/myThings/thingOne/republish"),
    ("device/${device_id}", "device/d1"),
    ("${topic(2)}-${clientid()}", "myThings-client-1"),
    ("${temp * 2}", "44"),
    ("${temp > 20}", "true"),
    ("${obj}", '{"a":1}'),
    ("${obj.a}", "1"),
    ("x${missing}y", "xy"),
    ("x${n}y", "xy"),
    ("no template at all", "no template at all"),
    ("$ and { alone", "$ and { alone"),
    ("${get(*, 'my-key')}", "k"),
    ("${'}'}", "}"),
    ("${ upper(name) }", "BOB"),
    ("${concat(name, '-', timestamp())}", f"bob-{NOW}"),
    ("${newuuid()}", "uuid-1"),
    ("${CASE temp WHEN 22 THEN 'exact' ELSE 'other' END}", "exact"),
    ("s3://${topic(1)}/${principal()}.json", "s3://things/cert-123.json"),
    # + joins strings inside templates too; $$ writes one $ (republishing to a reserved topic)
    ("${device_id + '-' + temp}", "d1-22"),
    ("${'n' + 1 + 2}", "n12"),
    ("$$aws/things/${device_id}/shadow/update", "$aws/things/d1/shadow/update"),
    ("cost$$5 and $${literal}", "cost$5 and ${literal}"),
])
def test_substitution_template(template: str, expected: str) -> None:
    from localiot.iotsql import substitute

    ctx = context(uuid_factory=lambda: "uuid-1")
    assert substitute(template, ctx, TEMPLATE_PAYLOAD) == expected


def test_substitution_template_payload_forms() -> None:
    from localiot.iotsql import substitute

    assert substitute("${a}", context(), {"a": 1.5}) == "1.5"
    assert substitute("${topic(1)}/${a}", context(), b"\x00binary") == "things/"
    assert substitute("${encode(*, 'base64')}", context(), b"\x00binary") == "AGJpbmFyeQ=="


@pytest.mark.parametrize("template,fragment", [
    ("${a", "expected '}' to close the substitution template but found the end of the template"),
    ("${}", "expected an expression but found '}'"),
    ("${a b}", "expected '}' to close the substitution template but found 'b'"),
    ("${nosuch()}", "unknown function nosuch()"),
])
def test_substitution_template_errors(template: str, fragment: str) -> None:
    from localiot.iotsql import parse_template, substitute

    with pytest.raises(SqlParseError) as info:
        substitute(template, context(), b"{}")
    assert fragment in str(info.value)
    with pytest.raises(SqlParseError):
        parse_template(template)


def test_substitution_template_cannot_see_select_aliases() -> None:
    from localiot.iotsql import substitute

    query = parse("SELECT temp AS t FROM 'x'", V2)
    [result] = query.evaluate(TEMPLATE_PAYLOAD, context())
    assert result.value == {"t": 22}
    assert substitute("${t}|${temp}", context(), TEMPLATE_PAYLOAD) == "|22"
