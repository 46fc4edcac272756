"""Every documented AWS IoT SQL function, table-driven (helpers in tests/test_iotsql.py).

Examples quoted from the reference's function pages are marked "ref".
"""

from __future__ import annotations

import pytest
from test_iotsql import (
    BETA,
    NO_RESULT,
    NOW,
    V1,
    V2,
    Case,
    EvalErr,
    ParseErr,
    Text,
    case,
    check,
)

PI = "3.141592653589793"

MATH_CASES = [
    case("SELECT abs(-5) AS a, abs(-5.123) AS b, abs('-5.123') AS c, abs(true) AS d, abs(null) AS e FROM 't'",
         {"a": 5, "b": 5.123, "c": 5.123}, id="abs"),
    case("SELECT acos(0) AS a, acos(2) AS b, acos('1') AS c FROM 't'", Text('{"a":1.5707963267948966,"c":0.0}'),
         version=V1, id="acos (ref; imaginary results Undefined)"),
    case("SELECT asin(0) AS a, asin(-2) AS b FROM 't'", Text('{"a":0.0}'), version=V1, id="asin"),
    case("SELECT atan(1) AS a, atan2(1, 0) AS b, atan2('0', -1) AS c FROM 't'",
         {"a": 0.7853981633974483, "b": 1.5707963267948966, "c": float(PI)}, id="atan atan2 (ref)"),
    case("SELECT cos(0) AS a, cosh(0) AS b, sin(0) AS c, sinh(0) AS d, tan(0) AS e, tanh(0) AS f FROM 't'",
         Text('{"a":1.0,"b":1.0,"c":0.0,"d":0.0,"e":0.0,"f":0.0}'), version=V1, id="trig-v1"),
    case("SELECT cos(0) AS a, sin(1) AS b, tan(1) AS c, cosh(1) AS d, sinh(1) AS e, tanh(1) AS f FROM 't'",
         {"a": 1, "b": 0.8414709848078965, "c": 1.5574077246549023, "d": 1.5430806348152437,
          "e": 1.1752011936438014, "f": 0.7615941559557649}, id="trig-v2"),
    case("SELECT exp(1) AS a, ln(1) AS b, log(100) AS c, sqrt(9) AS d, power(2, 8) AS e FROM 't'",
         Text('{"a":2.718281828459045,"b":0.0,"c":2.0,"d":3.0,"e":256.0}'), version=V1, id="exp ln log sqrt power v1"),
    case("SELECT log(100) AS c, sqrt(9) AS d, power(2, 8) AS e, power(2, 0.5) AS f, sqrt(2) AS g FROM 't'",
         {"c": 2, "d": 3, "e": 256, "f": 1.4142135623730951, "g": 1.4142135623730951}, id="math-v2-whole"),
    case("SELECT sqrt(-1) AS a, ln(0) AS b, log(-5) AS c, exp(100000) AS d, power(-8, 0.5) AS e, sqrt('x') AS f "
         "FROM 't'", {}, id="math-nan-and-overflow"),
    case("SELECT nanvl(8, 3) AS a, nanvl(sqrt(-1), 3) AS b, nanvl(missing, 3) AS c, nanvl(null, 'n') AS d, "
         "nanvl('s', 3) AS e FROM 't'", {"a": 8, "b": 3, "c": 3, "d": "n", "e": "s"}, id="nanvl (ref)"),
    case("SELECT bitand(13, 5) AS a, bitor(8, 5) AS b, bitxor(13, 5) AS c, bitnot(13) AS d, bitand('13', 5.9) AS e, "
         "bitor(true, 1) AS f FROM 't'", {"a": 5, "b": 13, "c": 8, "d": -14, "e": 5}, id="bitwise (ref)"),
    case("SELECT ceil(1.2) AS a, ceil(-1.2) AS b, floor(1.2) AS c, floor(-1.2) AS d, ceil(5) AS e, floor('3.7') AS f "
         "FROM 't'", {"a": 2, "b": -1, "c": 1, "d": -2, "e": 5, "f": 3}, id="ceil floor (ref)"),
    case("SELECT round(1.2) AS a, round(1.5) AS b, round(1.7) AS c, round(-1.1) AS d, round(-1.5) AS e, "
         "round('2.5') AS f, round([1]) AS g FROM 't'", {"a": 1, "b": 2, "c": 2, "d": -1, "e": -2, "f": 3},
         id="round (ref)"),
    case("SELECT sign(-7) AS a, sign(0) AS b, sign(13) AS c, sign(-0.5) AS d, sign('2') AS e, sign('x') AS f "
         "FROM 't'", {"a": -1, "b": 0, "c": 1, "d": -1, "e": 1}, id="sign (ref)"),
    case("SELECT trunc(2.3, 0) AS a, trunc(2.3123, 2) AS b, trunc(2.888, 2) AS c, trunc(2.00, 5) AS d, "
         "trunc(-2.77, 1) AS e, trunc(7, 2) AS f, trunc(1.23456, 99) AS g, trunc(9.99, -1) AS h FROM 't'",
         Text('{"a":2,"b":2.31,"c":2.88,"d":2,"e":-2.7,"f":7,"g":1.23456,"h":9}'), version=V1, id="trunc (ref)"),
    case("SELECT mod(8, 3) AS a, remainder(8, 3) AS b, mod(-8, 3) AS c, mod(8.5, 3) AS d, mod('9', 4) AS e, "
         "mod(8, 0) AS f FROM 't'", {"a": 2, "b": 2, "c": -2, "d": 2.5, "e": 1}, id="mod remainder (ref)"),
    case("SELECT rand() AS r FROM 't'", {"r": 0.25}, random=lambda: 0.25, id="rand"),
]

CONVERSION_CASES = [
    case("SELECT cast(true AS Int) AS a, cast(false AS Integer) AS b, cast('1.9' AS Int) AS c, cast(-1.9 AS Int) AS d, "
         "cast('x' AS Int) AS e, cast(null AS Int) AS f FROM 't'", {"a": 1, "b": 0, "c": 1, "d": -1},
         id="cast-int (ref: cast(true as Int) = 1)"),
    case("SELECT cast(5 AS Decimal) AS a, cast('2.50' AS Decimal) AS b, cast(true AS Decimal) AS c, "
         "cast(arr AS Decimal) AS d FROM 't'", Text('{"a":5,"b":2.50,"c":1.0}'), {"arr": [1]}, version=V1,
         id="cast-decimal-v1"),
    case("SELECT cast(true AS Decimal) AS c, cast('3.0' AS Decimal) AS d FROM 't'", {"c": 1, "d": 3},
         id="cast-decimal-v2-whole"),
    case("SELECT cast(0 AS Bool) AS a, cast(2.5 AS Boolean) AS b, cast('TRUE' AS Bool) AS c, cast('yes' AS Bool) AS d "
         "FROM 't'", {"a": False, "b": True, "c": True}, id="cast-bool"),
    case("SELECT cast(5 AS String) AS a, cast(1.50 AS varchar) AS b, cast(true AS Text) AS c, "
         "cast(arr AS nvarchar) AS d, cast(obj AS ntext) AS e, cast(null AS String) AS f FROM 't'",
         {"a": "5", "b": "1.50", "c": "true", "d": '[1,"a",null]', "e": '{"k":{"n":1.5}}'},
         {"arr": [1, "a", None], "obj": {"k": {"n": 1.5}}}, version=V1, id="cast-string"),
    case("SELECT cast(a AS Blob) FROM 't'", ParseErr("expected a type after AS"), id="cast-unknown-type"),
    # Double: the cast keyword table lists it for both SQL versions (a Decimal with double precision).
    case("SELECT cast('1.1' AS Double) AS a, cast(2 AS double) AS b, cast(true AS Double) AS c, "
         "cast(1 / 3.0 AS Double) AS d, cast('x' AS Double) AS e FROM 't'",
         Text('{"a":1.1,"b":2.0,"c":1.0,"d":0.3333333333333333}'), version=V1, id="cast-double-v1"),
    case("SELECT cast('2.5' AS Double) AS a, cast(2 AS Double) AS b FROM 't'", {"a": 2.5, "b": 2},
         id="cast-double-v2"),
    case("SELECT isNull(null) AS a, isNull(5) AS b, isNull(missing) AS c, isUndefined(missing) AS d, "
         "isUndefined(null) AS e, isUndefined(floor([1, 2, 3])) AS f FROM 't'",
         {"a": True, "b": False, "c": False, "d": True, "e": False, "f": True}, id="isNull isUndefined (ref)"),
]

STRING_CASES = [
    case("SELECT chr(65) AS a, chr(49) AS b, chr(65.9) AS c, chr(-1) AS d FROM 't'", {"a": "A", "b": "1", "c": "A"},
         id="chr (ref)"),
    case("SELECT concat() AS a, concat(1) AS b, concat([1, 2, 3], 4) AS c, concat([1, 2, 3], 'hello') AS d, "
         "concat('con', 'cat') AS e, concat(1, 'hello') AS f, concat('he', 'is', 'man') AS g, "
         "concat([1, 2, 3], 'hello', [4, 5, 6]) AS h FROM 't'",
         {"b": "1", "c": [1, 2, 3, 4], "d": [1, 2, 3, "hello"], "e": "concat", "f": "1hello", "g": "heisman",
          "h": [1, 2, 3, "hello", 4, 5, 6]}, id="concat (ref)"),
    case("SELECT concat('a', missing) AS a, concat('a', null) AS b, concat('a', true, 1.5) AS c FROM 't'",
         {"c": "atrue1.5"}, id="concat-undefined"),
    case("SELECT startswith('ranger', 'ran') AS a, endswith('cat', 'at') AS b, startswith(123, 1) AS c, "
         "endswith(null, 'a') AS d, startswith('a', missing) AS e FROM 't'", {"a": True, "b": True, "c": True},
         id="startswith endswith (ref)"),
    case("SELECT indexof('abcd', 'bc') AS a, indexof('abcd', 'x') AS b, indexof(12345, 34) AS c FROM 't'",
         {"a": 1, "b": -1, "c": 2}, id="indexof (ref)"),
    case("SELECT length('hi') AS a, length(false) AS b, length('') AS c, length(missing) AS d, numbytes('hi') AS e, "
         "numbytes('€') AS f FROM 't'", {"a": 2, "b": 5, "c": 0, "e": 2, "f": 3}, id="length numbytes (ref)"),
    case("SELECT lower('HELLO') AS a, lower(['HELLO']) AS b, upper('hello') AS c, upper(['hello']) AS d, "
         "upper(null) AS e FROM 't'", {"a": "hello", "b": '["hello"]', "c": "HELLO", "d": '["HELLO"]'},
         id="lower upper (ref)"),
    case("SELECT lpad('hello', 2) AS a, lpad(1, 3) AS b, rpad('hello', 2) AS c, rpad('a', -3) AS d, "
         "lpad('x', 1.9) AS e, length(rpad('', 5000)) AS f, lpad('x', 'y') AS g FROM 't'",
         {"a": "  hello", "b": "   1", "c": "hello  ", "d": "a", "e": " x", "f": 1000}, id="lpad rpad (ref)"),
    case("SELECT ltrim(' h i ') AS a, rtrim(' h i ') AS b, trim(' hi ') AS c, trim('\\t x \\n') AS d FROM 't'",
         {"a": "h i ", "b": " h i", "c": "hi", "d": "x"}, id="trim (ref)"),
    case("SELECT replace('abcd', 'bc', 'x') AS a, replace('abcdabcd', 'b', 'x') AS b, replace(1212, 1, 3) AS c "
         "FROM 't'", {"a": "axd", "b": "axcdaxcd", "c": "3232"}, id="replace (ref)"),
    case("SELECT substring('012345', 0) AS a, substring('012345', 2) AS b, substring('012345', 2.745) AS c, "
         "substring(123, 2) AS d, substring('012345', -1) AS e, substring(true, 1.2) AS f, "
         "substring(false, -2.411E5) AS g, substring('012345', 1, 3) AS h, substring('012345', -50, 50) AS i, "
         "substring('012345', 3, 1) AS j FROM 't'",
         {"a": "012345", "b": "2345", "c": "2345", "d": "3", "e": "012345", "f": "rue", "g": "false", "h": "12",
          "i": "012345", "j": ""}, id="substring (ref)"),
    # Indexes far past any string are clamped like the others, not Undefined.
    case("SELECT substring(false, -2.411E247) AS a, substring('012345', 2, 1E400) AS b, "
         "substring('012345', 9.9E99) AS c, substring('012345', '-1E60', '3') AS d, substring('012', 'NaN') AS e "
         "FROM 't'", {"a": "false", "b": "2345", "c": "", "d": "012"}, id="substring-huge-indexes"),
    case("SELECT get(['a', 'b', 'c'], 1) AS a, get({'a': 'b'}, 'a') AS b, get('abc', 1) AS c, get(arr, 5) AS d, "
         "get(obj, 1) AS e, get(arr, '0') AS f, get(5, 0) AS g FROM 't'", {"a": "b", "b": "b", "c": "b", "f": 1},
         {"arr": [1, 2], "obj": {"1": "one"}}, id="get (ref)"),
    case("SELECT regexp_matches('aaaa', 'a{2,}') AS a, regexp_matches('aaaa', 'b') AS b, "
         "regexp_matches('aaa', '(aaa|bbb)') AS c, regexp_matches('bbb', '(aaa|bbb)') AS d, "
         "regexp_matches('ccc', '(aaa|bbb)') AS e, regexp_matches('x', '(') AS f FROM 't'",
         {"a": True, "b": False, "c": True, "d": True, "e": False}, id="regexp_matches (ref)"),
    case("SELECT regexp_replace('abcd', 'bc', 'x') AS a, regexp_replace('abcd', 'b(.*)d', '$1') AS b, "
         "regexp_replace('a1b22', '\\d+', '#') AS c, regexp_replace('ab', 'b', '\\\\$') AS d FROM 't'",
         {"a": "axd", "b": "ac", "c": "a#b#", "d": "a$"}, id="regexp_replace (ref)"),
    case("SELECT regexp_substr('hihihello', 'hi') AS a, regexp_substr('hihihello', '(hi)*') AS b, "
         "regexp_substr('abc', 'x') AS c FROM 't'", {"a": "hi", "b": "hihi", "c": ""}, id="regexp_substr (ref)"),
    case("SELECT md2('hello') AS md2, md5('hello') AS md5, sha1('hello') AS sha1, sha224('hello') AS sha224 FROM 't'",
         {"md2": "a9046c73e00331af68917d3804f70655", "md5": "5d41402abc4b2a76b9719d911017c592",
          "sha1": "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d",
          "sha224": "ea09ae9cc6768c50fcee903ed054556e5bfc8347907f12598aa24193"}, id="hashes-1 (ref)"),
    case("SELECT sha256('hello') AS a, sha384('') AS b, sha512(1) AS c, md5(missing) AS d FROM 't'",
         {"a": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
          "b": "38b060a751ac96384cd9327eb1b1e36a21fdb71114be07434c0cc7bf63f6e1da274edebfe76f65fbd51ad2f14898b95b",
          "c": "4dff4ea340f0a823f15d3f4f01ab62eae0e5da579ccb851f8db9dfe84c58b2b37b89903a740e1ee172da793a6e79d560e5f7f9bd058a12a280433ed6fa46510a"},
         id="hashes-2"),
    case("SELECT transform('enrichArray', attributes, values) AS values FROM 'iot/rules'",
         {"values": [{"a": 3, "data1": 1, "data2": 2}, {"b": 4, "data1": 1, "data2": 2},
                     {"c": 5, "data1": 1, "data2": 2}]},
         {"attributes": {"data1": 1, "data2": 2}, "values": [{"a": 3}, {"b": 4}, {"c": 5}]}, id="transform (ref)"),
    case("SELECT transform('other', attributes, values) AS a, transform('enrichArray', 5, values) AS b FROM 't'", {},
         {"attributes": {"d": 1}, "values": [{"a": 3}]}, id="transform-undefined"),
]

ENCODING_CASES = [
    case("SELECT decode(encoded_temp, \"base64\").temperature AS temp from 'conveyer/belt/+'", {"temp": 33},
         {"encoded_temp": "eyAidGVtcGVyYXR1cmUiOiAzMyB9Cg=="}, id="decode (ref)"),
    case("SELECT decode('aGVsbG8=', 'base64') AS a, decode('aGVsbG8', 'base64') AS b, decode('***', 'base64') AS c, "
         "decode(missing, 'base64') AS d FROM 't'", {"a": "hello", "b": "hello", "c": None}, id="decode-text"),
    # A decoded JSON scalar is that JSON value: a number stays a number.
    case("SELECT decode('NDI=', 'base64') AS n, decode('MS41', 'base64') AS d, decode('dHJ1ZQ==', 'base64') AS t, "
         "decode('InMi', 'base64') AS s, decode('bnVsbA==', 'base64') AS z, decode('WzEsMl0=', 'base64') AS a, "
         "decode(encode(num, 'base64'), 'base64') + 1 AS round_trip FROM 't'",
         {"n": 42, "d": 1.5, "t": True, "s": "s", "z": None, "a": [1, 2], "round_trip": 8}, {"num": 7},
         id="decode-json-scalars"),
    case("SELECT decode(*, 'proto', 'bucket', 'key', 'file', 'Message') AS p FROM 't'",
         EvalErr("decode(..., 'proto') is not supported by localiot"), id="decode-proto"),
    case("SELECT decode(a, 'hex') FROM 't'", ParseErr("argument 2 must be one of 'base64', 'proto'"),
         id="decode-unknown-scheme"),
    case("SELECT decode(a, scheme) FROM 't'", ParseErr("argument 2 must be a literal string"), id="decode-scheme"),
    case("SELECT encode('hello', 'base64') AS a, encode(5, 'base64') AS b, encode(missing, 'base64') AS c FROM 't'",
         {"a": "aGVsbG8=", "b": "NQ=="}, id="encode"),
    case("SELECT encode(*, 'hex') FROM 't'", ParseErr("argument 2 must be one of 'base64'"), id="encode-scheme"),
]

DATE_CASES = [
    case("SELECT parse_time(\"yyyy-MM-dd'T'HH:mm:ss.SSSZ\", 1520376945014, 'America/Belize') AS ts FROM 't'",
         {"ts": "2018-03-06T16:55:45.014-0600"}, id="parse_time-zone"),
    case("SELECT parse_time('yyyy-MM-dd HH:mm:ss z', timestamp()) AS a, parse_time('yy/M/d h:mm a ZZ', 0) AS b "
         "FROM 't'", {"a": "2016-12-15 18:07:31 UTC", "b": "70/1/1 12:00 AM +00:00"}, id="parse_time-utc"),
    case("SELECT parse_time('EEEE, MMMM d, yyyy (EEE MMM) D w e', 1520376945014) AS a, "
         "parse_time('H k K h m s S SS ZZZ', 1520376945014, 'Asia/Kolkata') AS b FROM 't'",
         {"a": "Tuesday, March 6, 2018 (Tue Mar) 65 10 2", "b": "4 4 4 4 25 45 0 01 Asia/Kolkata"},
         id="parse_time-fields"),
    case("SELECT parse_time('yyyy', 0, 'Not/AZone') AS a, parse_time('qqq', 0) AS b, parse_time('HH', 'x') AS c "
         "FROM 't'", {}, id="parse_time-undefined"),
    case("SELECT time_to_epoch('2020-04-03 09:45:18 UTC+01:00', 'yyyy-MM-dd HH:mm:ss VV') AS a, "
         "time_to_epoch('18 December 2015', 'dd MMMM yyyy') AS b, "
         "time_to_epoch('2007-12-03 10:15:30.592 America/Los_Angeles', 'yyyy-MM-dd HH:mm:ss.SSS z') AS c FROM 't'",
         {"a": 1585903518000, "b": 1450396800000, "c": 1196705730592}, id="time_to_epoch (ref)"),
    case("SELECT time_to_epoch('20180306165545', 'yyyyMMddHHmmss') AS a, "
         "time_to_epoch('03/06/18 4:55 PM -0600', 'MM/dd/yy h:mm a Z') AS b, "
         "time_to_epoch('2018-03-06', 'yyyy/MM/dd') AS c FROM 't'", {"a": 1520355345000, "b": 1520376900000},
         id="time_to_epoch-more"),
    case("SELECT parse_time('yyyy', 0) AS a FROM 't'", ParseErr("requires SQL version 2016-03-23"), version=V1,
         id="parse_time-v1"),
]

CONTEXT_CASES = [
    case("SELECT accountid() AS a, clientid() AS c, principal() AS p, traceid() AS t, sourceip() AS s FROM 't'",
         {"a": "123456789012", "c": "client-1", "p": "cert-123", "t": "12345678-1234-1234-1234-123456789012",
          "s": "192.158.1.38"}, trace_id="12345678-1234-1234-1234-123456789012", source_ip="192.158.1.38",
         id="identity-functions"),
    case("SELECT clientid() AS c, traceid() AS t, sourceip() AS s, principal() AS p FROM 't'", {"c": "n/a"},
         client_id=None, principal=None, id="not-over-mqtt"),
    case("SELECT topic() AS a, topic(1) AS b, topic(3) AS c, topic(4) AS d, topic(0) AS e, topic('2') AS f FROM 't'",
         {"a": "things/myThings/thingOne", "b": "things", "c": "thingOne", "f": "myThings"}, id="topic (ref)"),
    case("SELECT timestamp() AS ts FROM 't'", {"ts": NOW}, id="timestamp"),
    case("SELECT newuuid() AS a FROM 't'", {"a": "123a4567-b89c-12d3-e456-123456789abc"},
         uuid_factory=lambda: "123a4567-b89c-12d3-e456-123456789abc", id="newuuid"),
    case("SELECT sql_version() AS v FROM 't'", {"v": "2016-03-23"}, id="sql_version"),
    case("SELECT get_mqtt_property('content_type') AS a, get_mqtt_property('format_indicator') AS b, "
         "get_mqtt_property('response_topic') AS c, get_mqtt_property('correlation_data') AS d FROM 't'",
         {"a": "application/json", "b": "UTF8_DATA", "c": "reply/here", "d": "AAE="},
         content_type="application/json", payload_format_indicator=1, response_topic="reply/here",
         correlation_data=b"\x00\x01", id="get_mqtt_property"),
    case("SELECT get_mqtt_property('format_indicator') AS b, get_mqtt_property('content_type') AS a FROM 't'",
         {"b": "UNSPECIFIED_BYTES"}, payload_format_indicator=0, id="get_mqtt_property-absent"),
    case("SELECT get_mqtt_property('qos') FROM 't'", ParseErr("argument 1 must be one of"),
         id="get_mqtt_property-unknown"),
    case("SELECT get_mqtt_property('content_type') AS a, get_mqtt_property('format_indicator') AS b, "
         "get_mqtt_property('correlation_data') AS d, get_user_properties('k') AS k FROM 't'",
         {"a": "text/plain", "b": "UTF8_DATA", "d": "AAE=", "k": ["v"]},
         mqtt_properties={"content_type": "text/plain", "payload_format_indicator": True,
                          "correlation_data": b"\x00\x01", "user_property": [("k", "v")]},
         id="mqtt-properties-from-the-broker-dict"),
    case("SELECT get_user_properties('k') AS k, get_user_properties('none') AS n FROM 't'", {"k": ["v1", "v2"]},
         user_properties=[("k", "v1"), ("other", "x"), ("k", "v2")], id="get_user_properties"),
    case("SELECT machinelearning_predict('model', 'role', *) AS p FROM 't'",
         EvalErr("machinelearning_predict() is not supported by localiot"), id="machinelearning_predict"),
    case("SELECT Round(1.5) AS a, NANVL(null, 1) AS b, IsNull(null) AS c, isnull(1) AS d FROM 't'",
         {"a": 2, "b": 1, "c": True, "d": False}, id="names-any-case"),
]


def lambda_hook(arn, payload):
    return {"some_value": {"arn": arn, "got": payload}, "f": 1.5}


def shadow_hook(thing, shadow, role):
    if thing == "missing":
        return None
    return {"state": {"reported": {"alarm": "ON", "thing": thing, "shadow": shadow, "role": role}}}


def dynamodb_hook(table, key, role):
    return None if key.get("hashKey") == "nope" else {"table": table, "key": key, "role": role, "inService": True}


def secret_hook(secret_id, secret_type, role):
    if secret_id == "bin":
        return b"\x00\x01"
    if secret_id == "gone":
        return None
    return '{"password": "hunter2", "port": 5432}' if secret_id == "json" else "plain-secret"


def registry_hook(api, thing, role):
    return {"api": api, "thingName": thing} if thing != "ghost" else None


def failing_hook(*args):
    raise RuntimeError("boom")


ROLE = "arn:aws:iam::123456789012:role/r"
LAMBDA = "arn:aws:lambda:us-east-1:123456789012:function:myLambdaFunction"

HOOK_CASES = [
    case(f"SELECT aws_lambda('{LAMBDA}', {{'payload': attribute1}}).some_value AS output_value FROM 'topic/subtopic'",
         {"output_value": {"arn": LAMBDA, "got": {"payload": 7}}}, {"attribute1": 7}, lambda_invoke=lambda_hook,
         id="aws_lambda (ref)"),
    case(f"SELECT aws_lambda('{LAMBDA}', *).f AS f FROM 't'", {"f": 1.5}, {"a": 1}, lambda_invoke=lambda_hook,
         id="aws_lambda-star"),
    case(f"SELECT aws_lambda('{LAMBDA}', *) AS r FROM 't'",
         EvalErr("aws_lambda() is unavailable: the rules engine provided no 'lambda_invoke' hook"), id="aws_lambda-no-hook"),
    case(f"SELECT aws_lambda('{LAMBDA}', *) AS r FROM 't'", EvalErr("aws_lambda() failed: boom"),
         lambda_invoke=failing_hook, id="aws_lambda-hook-fails"),
    case(f"SELECT aws_lambda('{LAMBDA}', *) AS r FROM 't'", EvalErr("binary payload cannot be passed as JSON"),
         b"\x00\xff", lambda_invoke=lambda_hook, id="aws_lambda-binary"),
    case(f"SELECT * FROM 'topic/subtopic' WHERE get_thing_shadow('MyThing', '{ROLE}').state.reported.alarm = 'ON'",
         {"a": 1}, {"a": 1}, thing_shadow_lookup=shadow_hook, id="get_thing_shadow (ref)"),
    case(f"SELECT get_thing_shadow('MyThing', 'config', '{ROLE}').state.reported AS r FROM 't'",
         {"r": {"alarm": "ON", "thing": "MyThing", "shadow": "config", "role": ROLE}}, thing_shadow_lookup=shadow_hook,
         id="get_thing_shadow-named"),
    case(f"SELECT * FROM 't' WHERE get_thing_shadow('missing', '{ROLE}').state.reported.alarm = 'ON'", NO_RESULT,
         thing_shadow_lookup=shadow_hook, id="get_thing_shadow-absent"),
    case(f"SELECT get_thing_shadow('MyThing', '{ROLE}') AS s FROM 't'", EvalErr("no 'thing_shadow_lookup' hook"),
         id="get_thing_shadow-no-hook"),
    case(f"SELECT get_dynamodb('InServiceTable', 'hashKey', 'abc', '{ROLE}').inService AS inService FROM 't'",
         {"inService": True}, get_dynamodb=dynamodb_hook, id="get_dynamodb (ref)"),
    case(f"SELECT get_dynamodb('T', 'pk', id, 'sk', 2, '{ROLE}') AS item FROM 't'",
         {"item": {"table": "T", "key": {"pk": "x1", "sk": 2}, "role": ROLE, "inService": True}}, {"id": "x1"},
         get_dynamodb=dynamodb_hook, id="get_dynamodb-sort-key"),
    case(f"SELECT get_dynamodb('T', 'hashKey', 'nope', '{ROLE}') AS item FROM 't'", {}, get_dynamodb=dynamodb_hook,
         id="get_dynamodb-no-item"),
    case(f"SELECT get_dynamodb('T', 'pk', 'v', 'sk', '{ROLE}') FROM 't'",
         ParseErr("takes 4 arguments (partition key only) or 6"), id="get_dynamodb-5-args"),
    case(f"SELECT get_dynamodb('T', 'pk', 'a', '{ROLE}') AS a, get_dynamodb('T', 'pk', 'b', '{ROLE}') AS b FROM 't'",
         EvalErr("get_dynamodb() can be called at most once"), get_dynamodb=dynamodb_hook, id="get_dynamodb-twice"),
    case(f"SELECT get_secret('s', 'SecretString', '{ROLE}') AS a, get_secret('json', 'SecretString', 'port', "
         f"'{ROLE}') AS b, get_secret('bin', 'SecretBinary', '{ROLE}') AS c FROM 't'",
         {"a": "plain-secret", "b": 5432, "c": "AAE="}, get_secret=secret_hook, id="get_secret"),
    case(f"SELECT get_secret('s', 'SecretString', 'port', '{ROLE}') AS b FROM 't'",
         EvalErr("is not a JSON object with the key 'port'"), get_secret=secret_hook, id="get_secret-key-not-json"),
    case(f"SELECT get_secret('gone', 'SecretString', '{ROLE}') AS b FROM 't'", EvalErr("has no SecretString"),
         get_secret=secret_hook, id="get_secret-missing"),
    case(f"SELECT get_secret('s', 'Other', '{ROLE}') AS b FROM 't'", EvalErr("secretType must be"),
         get_secret=secret_hook, id="get_secret-type"),
    case(f"SELECT get_registry_data('DescribeThing', 'lamp', '{ROLE}') AS a, "
         f"get_registry_data('ListThingGroupsForThing', 'ghost', '{ROLE}') AS b FROM 't'",
         {"a": {"api": "DescribeThing", "thingName": "lamp"}}, get_registry_data=registry_hook,
         id="get_registry_data"),
    case(f"SELECT get_registry_data('DeleteThing', 'lamp', '{ROLE}') AS a FROM 't'",
         EvalErr("registryAPI must be one of"), get_registry_data=registry_hook, id="get_registry_data-api"),
    case(f"SELECT get_or_default(missing, 'x') AS a, get_or_default(n, 'x') AS b, get_or_default(5, 'x') AS c, "
         f"get_or_default(aws_lambda('{LAMBDA}', *), 'fallback') AS d, get_or_default(missing) AS e FROM 't'",
         {"a": "x", "b": "x", "c": 5, "d": "fallback"}, {"n": None}, id="get_or_default"),
    case("SELECT get_or_default(a, 1) AS a FROM 't'", ParseErr("requires SQL version 2016-03-23"), version=V1,
         id="get_or_default-v1"),
]

CASES = MATH_CASES + CONVERSION_CASES + STRING_CASES + ENCODING_CASES + DATE_CASES + CONTEXT_CASES + HOOK_CASES


@pytest.mark.parametrize("c", CASES)
def test_function(c: Case) -> None:
    check(c)


def test_every_documented_function_is_registered() -> None:
    from localiot.iotsql.registry import FUNCTIONS

    documented = """abs accountid acos asin atan atan2 aws_lambda bitand bitor bitxor bitnot cast ceil chr clientid
        concat cos cosh decode encode endswith exp floor get get_dynamodb get_mqtt_property get_or_default
        get_registry_data get_secret get_thing_shadow get_user_properties indexof isnull isundefined length ln log
        lower lpad ltrim machinelearning_predict md2 md5 mod nanvl newuuid numbytes parse_time power principal rand
        regexp_matches regexp_replace regexp_substr remainder replace rpad round rtrim sha1 sha224 sha256 sha384
        sha512 sign sin sinh sourceip sql_version sqrt startswith substring tan tanh time_to_epoch timestamp topic
        traceid transform trim trunc upper""".split()  # noqa: SIM905
    assert sorted(set(documented) - set(FUNCTIONS)) == []


def test_hooks_receive_plain_values() -> None:
    from localiot.iotsql import parse

    seen = []
    query = parse(f"SELECT aws_lambda('{LAMBDA}', {{'d': 1.25, 'l': [1, null], 'm': missing}}) AS r FROM 't'", V2)
    from test_iotsql import context

    [result] = query.evaluate(b"{}", context(lambda_invoke=lambda arn, p: seen.append(p) or "ok"))
    assert seen == [{"d": 1.25, "l": [1, None]}]
    assert result.value == {"r": "ok"}


def test_versions_constant_beta() -> None:
    assert BETA == "beta" and V1 < V2
