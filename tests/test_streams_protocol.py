"""The MQTT-based file delivery protocol module (localiot.services.ota.file_delivery),
tested directly: requests, bitmaps, blocks and the JSON / CBOR messages."""

import base64
import json

import cbor2
import pytest

from localiot.services.ota import file_delivery as fd
from localiot.services.ota.file_delivery import GetRequest, Rejected


def rejected(fn, *args):
    with pytest.raises(Rejected) as e:
        fn(*args)
    return e.value.code, e.value.token


def test_describe_request_and_response():
    assert fd.parse_describe(b"", "json").token is None
    assert fd.parse_describe(b'{"c": "ec944cfb"}', "json").token == "ec944cfb"
    assert fd.parse_describe(cbor2.dumps({"c": "t"}), "cbor").token == "t"
    body = fd.description("ec944cfb", 1, "This is the description of stream ABC.", [(0, 131072), (1, 51200)])
    assert body == {"c": "ec944cfb", "s": 1, "d": "This is the description of stream ABC.",
                    "r": [{"f": 0, "z": 131072}, {"f": 1, "z": 51200}]}
    assert fd.description(None, 2, None, [(3, 10)]) == {"s": 2, "r": [{"f": 3, "z": 10}]}


def test_get_request_fields_json_and_cbor():
    doc = {"c": "1bb8aaa1", "s": 1, "f": 0, "l": 4098, "o": 2, "n": 100}
    assert fd.parse_get(json.dumps(doc).encode(), "json") == GetRequest(0, 4098, "1bb8aaa1", 1, 2, 100, None)
    request = fd.parse_get(cbor2.dumps({**doc, "b": b"\x13\x00\x80"}), "cbor")
    assert request.bitmap == b"\x13\x00\x80" and request.count == 100
    # the optional fields default: offset 0, no version, no count
    assert fd.parse_get(b'{"f": 3, "l": 256}', "json") == GetRequest(3, 256)


def test_the_guide_bitmap_example():
    """Blocks 20, 21, 24 and 43 from offset 20 are bits 0, 1, 4, 23: "0x130080"."""
    request = fd.parse_get(b'{"c":"1","s":1,"l":256,"f":1,"o":20,"n":32,"b":"0x130080"}', "json")
    assert request.bitmap == bytes.fromhex("130080")
    assert list(fd.bits(request.bitmap)) == [0, 1, 4, 23]
    assert fd.bitmap_of([20, 21, 24, 43], offset=20) == bytes.fromhex("130080")
    assert fd.blocks_for(request, 256 * 100) == [20, 21, 24, 43]
    assert fd.parse_get(b'{"f":1,"l":256,"b":"130080"}', "json").bitmap == bytes.fromhex("130080")


@pytest.mark.parametrize("payload, fmt, expected", [
    (b"{not json", "json", ("InvalidJson", None)),
    (b"\xff\xfe", "cbor", ("InvalidCbor", None)),
    (b"[1, 2]", "json", ("InvalidRequest", None)),
    (json.dumps({"c": "x" * 65, "f": 0, "l": 256}).encode(), "json", ("InvalidRequest", None)),
    (b'{"c": "t", "l": 256}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": 0}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": "0", "l": 256}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": true, "l": 256}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": 256, "l": 256}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": 0, "l": 255}', "json", ("BlockSizeOutOfBounds", "t")),
    (b'{"c": "t", "f": 0, "l": 131073}', "json", ("BlockSizeOutOfBounds", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "o": 98305}', "json", ("OffsetOutOfBounds", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "o": -1}', "json", ("OffsetOutOfBounds", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "n": 98305}', "json", ("BlockCountLimitExceeded", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "b": "xyz"}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "b": ""}', "json", ("InvalidRequest", "t")),
    (b'{"c": "t", "f": 0, "l": 256, "b": 5}', "json", ("InvalidRequest", "t")),
    (json.dumps({"c": "t", "f": 0, "l": 256, "b": "ff" * 12288}).encode(), "json", ("BlockBitmapLimitExceeded", "t")),
    (cbor2.dumps({"c": "t", "f": 0, "l": 256, "b": b"\x01" * 12288}), "cbor", ("BlockBitmapLimitExceeded", "t")),
])
def test_bad_requests(payload, fmt, expected):
    assert rejected(fd.parse_get, payload, fmt) == expected


def test_longest_token_and_bitmap_accepted():
    request = fd.parse_get(cbor2.dumps({"c": "x" * 64, "f": 0, "l": 256, "b": b"\x01" * 12287}), "cbor")
    assert request.token == "x" * 64 and len(request.bitmap) == 12287


def test_blocks_by_count():
    size = 10 * 1024 + 100  # 11 blocks of 1 KB, the last one 100 bytes
    assert fd.blocks_for(GetRequest(0, 1024, offset=0, count=3), size) == [0, 1, 2]
    assert fd.blocks_for(GetRequest(0, 1024, offset=9, count=5), size) == [9, 10]  # stops at the end
    # no count: 131072 / block size blocks, at most the file
    assert fd.blocks_for(GetRequest(0, 1024), size) == list(range(11))
    assert len(fd.blocks_for(GetRequest(0, 1024), 1024 * 1024)) == 128
    # never more than 128 KB of payload for one request
    assert fd.blocks_for(GetRequest(0, 32768, count=5), 1024 * 1024) == [0, 1, 2, 3]
    assert fd.blocks_for(GetRequest(0, 131072, count=3), 1024 * 1024) == [0]


def test_blocks_by_bitmap():
    size = 20 * 256
    missing = [1, 5, 6, 19]
    request = GetRequest(0, 256, bitmap=fd.bitmap_of(missing))
    assert fd.blocks_for(request, size) == missing
    assert fd.blocks_for(GetRequest(0, 256, count=2, bitmap=fd.bitmap_of(missing)), size) == [1, 5]
    assert fd.blocks_for(GetRequest(0, 256, offset=4, bitmap=fd.bitmap_of([5, 6], offset=4)), size) == [5, 6]
    # a bitmap longer than the file: the blocks past the end are left out
    assert fd.blocks_for(GetRequest(0, 256, offset=16, bitmap=b"\xff\xff"), size) == [16, 17, 18, 19]
    # AWS's downloader: "MQ==" as bytes (bits 0, 2, 3, 6 ...) with n=1 asks for the offset block only
    assert fd.blocks_for(GetRequest(0, 256, offset=19, count=1, bitmap=b"MQ=="), size) == [19]


def test_blocks_past_the_end():
    assert rejected(fd.blocks_for, GetRequest(0, 256, token="t", offset=20), 20 * 256) == ("ResourceNotFound", "t")
    assert rejected(fd.blocks_for, GetRequest(0, 256, offset=0, bitmap=b"\x00\x00\x80"), 20 * 256)[0] \
        == "ResourceNotFound"
    assert rejected(fd.blocks_for, GetRequest(0, 256, bitmap=b"\x00"), 20 * 256)[0] == "InvalidRequest"
    assert rejected(fd.blocks_for, GetRequest(0, 256), 0)[0] == "ResourceNotFound"  # an empty file has no block


def test_block_slices_and_data_messages():
    data = bytes(range(256)) * 5  # 1280 bytes: blocks of 512, 512, 256
    assert fd.block(data, 2, 512) == data[1024:]
    as_json = json.loads(fd.data_message("tok", 3, 2, fd.block(data, 2, 512), "json"))
    assert as_json == {"c": "tok", "f": 3, "l": 256, "i": 2, "p": base64.b64encode(data[1024:]).decode()}
    assert fd.payload_of(as_json) == data[1024:]
    as_cbor = cbor2.loads(fd.data_message(None, 3, 0, fd.block(data, 0, 512), "cbor"))
    assert as_cbor == {"f": 3, "l": 512, "i": 0, "p": data[:512]}
    assert fd.payload_of(as_cbor) == data[:512]


def test_rejected_documents_and_topics():
    assert Rejected("BlockSizeOutOfBounds", "The block size is out of bounds", "1bb8").document() == {
        "o": "BlockSizeOutOfBounds", "m": "The block size is out of bounds", "c": "1bb8"}
    assert Rejected("InvalidJson", "bad").document() == {"o": "InvalidJson", "m": "bad"}
    assert cbor2.loads(fd.encode({"o": "X", "m": "y"}, "cbor")) == {"o": "X", "m": "y"}
    assert fd.topic("dev", "s1", "data", "cbor") == "$aws/things/dev/streams/s1/data/cbor"
