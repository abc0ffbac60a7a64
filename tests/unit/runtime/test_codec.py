"""The runtime codec: binding, type checks, and the bytes of every message kind (no processes)."""

from __future__ import annotations

import importlib
import math
import sys
from collections import deque
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import descriptor_pool
from grpc_tools import protoc

import rpc_parallel as rp
from rpc_parallel._codec import MethodCodec, ServiceCodec, _classes, _service, codec_for, message_classes
from rpc_parallel._schema import file_descriptor, file_spec, service_spec
from rpc_parallel.codegen._proto_text import render_proto

from . import codec_decls as d, codec_fresh_decls, codec_stale_decls
from .codec_decls import Codec, Color, Derived, Empty, Everything, Point, Positive, Tree

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@pytest.fixture(scope="module")
def codec() -> ServiceCodec:
    return codec_for(Codec)


def method(codec: ServiceCodec, name: str) -> MethodCodec:
    return codec.method(name)


def request_round_trip(m: MethodCodec, *args: Any, **kwargs: Any) -> list[Any]:
    return m.decode_request(m.encode_request(m.bind(args, kwargs)))


def everything(**overrides: Any) -> Everything:
    values: dict[str, Any] = {
        "i": -42, "f": 2.5, "b": True, "s": "héllo ✓ 𝄞", "raw": b"\x00\xff", "color": Color.BLUE,
        "maybe_int": 0, "maybe_color": Color.RED, "maybe_point": Point(0.0, 0.0),
        "ints": [INT64_MIN, -1, 0, 1, INT64_MAX], "words": ("a", "", "ü"), "nested": [[], [1], [2, 3]],
        "optionals": [None, 0, 5, None], "dict_of_lists": {"a": [], "b": [1, 2]},
        "by_id": {-3: Point(1.0, -1.0), 7: Point(0.0, 0.0)}, "maybe_list": [],
        "colors": [Color.GREEN, Color.RED, Color.GREEN], "pickled": {1, 2, 3},
        "handle": rp.WorkerHandle("w1", "127.0.0.1:5000", name=None, token="t", pid=17,
                                  settings=rp.RpcSettings(max_message_size=3000,
                                                          heartbeat=rp.Heartbeat(timeout=8.0, send_every=2.0))),
    }
    values.update(overrides)
    return Everything(**values)


# -- message classes -----------------------------------------------------------------------------


def test_message_classes_are_cached_and_outside_the_default_pool() -> None:
    fs = file_spec(d.__name__)
    classes = message_classes(fs)
    assert message_classes(fs) is classes
    assert set(classes) == {m.name for m in fs.messages}
    pool = classes["CodecIncrRequest"].DESCRIPTOR.file.pool
    assert pool is not descriptor_pool.Default()
    with pytest.raises(KeyError):
        descriptor_pool.Default().FindFileByName(fs.proto_file)


def _generate(tmp_path: Path, module: str, *, stale: bool) -> str:
    fs = file_spec(module)
    fdp = file_descriptor(fs)
    if stale:
        fdp.message_type.add(name="AddedLater")
    proto = tmp_path / fs.proto_file
    proto.write_text(render_proto(fs, fdp, module))
    assert protoc.main(["grpc_tools.protoc", f"-I{tmp_path}", f"--python_out={tmp_path}", str(proto)]) == 0
    return fs.proto_file.removesuffix(".proto").replace("/", ".") + "_pb2"


def test_message_classes_use_a_fresh_generated_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _generate(tmp_path, codec_fresh_decls.__name__, stale=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_classes, "_CLASSES", {})
    monkeypatch.setattr(_service, "_CODECS", {})
    classes = message_classes(file_spec(codec_fresh_decls.__name__))
    generated = importlib.import_module(name)
    assert classes["FreshPingRequest"] is generated.FreshPingRequest
    m = codec_for(codec_fresh_decls.Fresh).method("ping")
    data = m.encode_request(m.bind((3,), {}))
    parsed: Any = generated.FreshPingRequest.FromString(data)
    assert parsed.n == 3
    assert m.decode_result(generated.FreshPingResponse(value="pong").SerializeToString()) == "pong"


def test_message_classes_ignore_a_stale_generated_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _generate(tmp_path, codec_stale_decls.__name__, stale=True)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(_classes, "_CLASSES", {})
    monkeypatch.setattr(_service, "_CODECS", {})
    classes = message_classes(file_spec(codec_stale_decls.__name__))
    assert name in sys.modules  # it was tried
    generated = sys.modules[name]
    assert classes["StalePingRequest"] is not generated.StalePingRequest
    assert classes["StalePingRequest"].DESCRIPTOR.file.pool is not descriptor_pool.Default()
    m = codec_for(codec_stale_decls.Stale).method("ping")
    assert m.decode_request(m.encode_request(m.bind((), {"n": 4}))) == [4]


def test_codec_for_accepts_a_class_or_its_spec(codec: ServiceCodec) -> None:
    assert codec_for(service_spec(Codec)) is codec
    assert list(codec.methods) == [m.name for m in service_spec(Codec).methods]
    with pytest.raises(KeyError):
        codec.method("nope")


# -- binding -------------------------------------------------------------------------------------


def test_bind_positional_keyword_and_defaults(codec: ServiceCodec) -> None:
    m = method(codec, "mixed")
    assert m.bind((1,), {}) == [1, "x", 1.5]
    assert m.bind((1, "y"), {"c": 2}) == [1, "y", 2]
    assert m.bind((), {"a": 1, "c": 0.5, "b": "z"}) == [1, "z", 0.5]
    assert method(codec, "three").bind((1,), {"c": 3, "b": 2}) == [1, 2, 3]
    assert method(codec, "posonly").bind((1,), {"b": 2}) == [1, 2]
    assert method(codec, "kwonly").bind((1,), {"c": 3, "b": 2}) == [1, 2, 3]
    assert method(codec, "nothing").bind((), {}) == []


@pytest.mark.parametrize(("name", "args", "kwargs", "message"), [
    ("incr", (), {}, "Codec.incr() missing 1 required positional argument: 'by'"),
    ("three", (), {}, "Codec.three() missing 3 required positional arguments: 'a', 'b', and 'c'"),
    ("three", (1,), {}, "Codec.three() missing 2 required positional arguments: 'b' and 'c'"),
    ("incr", (1, 2), {}, "Codec.incr() takes 1 positional argument but 2 were given"),
    ("mixed", (1, "a", 2.0), {}, "Codec.mixed() takes from 1 to 2 positional arguments but 3 were given"),
    ("nothing", (1,), {}, "Codec.nothing() takes 0 positional arguments but 1 was given"),
    ("incr", (), {"bye": 1}, "Codec.incr() got an unexpected keyword argument 'bye'"),
    ("incr", (1,), {"by": 1}, "Codec.incr() got multiple values for argument 'by'"),
    ("posonly", (), {"a": 1, "b": 2},
     "Codec.posonly() got some positional-only arguments passed as keyword arguments: 'a'"),
    ("kwonly", (1, 2), {}, "Codec.kwonly() takes 1 positional argument but 2 were given"),
    ("kwonly", (1,), {"b": 2}, "Codec.kwonly() missing 1 required keyword-only argument: 'c'"),
])
def test_bind_errors_read_like_python(codec: ServiceCodec, name: str, args: tuple[Any, ...],
                                      kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(TypeError) as info:
        method(codec, name).bind(args, kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(("name", "args", "message"), [
    ("incr", ("1",), "Codec.incr() argument 'by' must be int, got str"),
    ("incr", (True,), "Codec.incr() argument 'by' must be int, got bool"),
    ("incr", (1.0,), "Codec.incr() argument 'by' must be int, got float"),
    ("incr", (None,), "Codec.incr() argument 'by' must be int, got NoneType"),
    ("floats", ([1.0, True], None), "Codec.floats() argument 'xs' must be list[float]: xs[1] must be float, got bool"),
    ("floats", ([1.0], "2"), "Codec.floats() argument 'maybe' must be float | None, got str"),
    ("floats", ("12", None), "Codec.floats() argument 'xs' must be list[float], got str"),
    ("floats", ({1.0}, None), "Codec.floats() argument 'xs' must be list[float], got set"),
    ("raw", ("abc", []), "Codec.raw() argument 'b' must be bytes, got str"),
    ("raw", (b"", [b"", "x"]), "Codec.raw() argument 'bs' must be list[bytes]: bs[1] must be bytes, got str"),
    ("maybe_color", ("RED",), "Codec.maybe_color() argument 'c' must be Color | None, got str"),
    ("tree", (Tree(1, [Tree(2), Tree("3")]),),  # type: ignore[arg-type]
     "Codec.tree() argument 't' must be Tree: t.children[1].value must be int, got str"),
    ("tree", (Point(1, 2),), "Codec.tree() argument 't' must be Tree, got Point"),
    ("maps", ({"a": 1, 2: 3}, {}),
     "Codec.maps() argument 'm' must be dict[str, int]: the key of m[2] must be str, got int"),
    ("maps", ({"a": "1"}, {}), "Codec.maps() argument 'm' must be dict[str, int]: m['a'] must be int, got str"),
    ("maps", ({}, {1: "RED"}),
     "Codec.maps() argument 'colors' must be dict[int, Color]: colors[1] must be Color, got str"),
    ("maps", ([], {}), "Codec.maps() argument 'm' must be dict[str, int], got list"),
    ("optional_points", ([None, 3],),
     "Codec.optional_points() argument 'ps' must be list[Point | None]: ps[1] must be Point | None, got int"),
    ("list_of_maps", ([{"a": 1}, {"b": None}],),
     "Codec.list_of_maps() argument 'ms' must be list[dict[str, int]]: ms[1]['b'] must be int, got NoneType"),
    ("handle", ("w1",), "Codec.handle() argument 'h' must be WorkerHandle, got str"),
    ("everything", (everything(nested=[[1], [2, "x"]]),),
     "Codec.everything() argument 'e' must be Everything: e.nested[1][1] must be int, got str"),
    ("everything", (everything(maybe_list=(1, None)),),
     "Codec.everything() argument 'e' must be Everything: e.maybe_list[1] must be int, got NoneType"),
])
def test_bind_checks_types_deeply(codec: ServiceCodec, name: str, args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(TypeError) as info:
        method(codec, name).bind(args, {})
    assert str(info.value) == message


def test_bind_checks_long_lists_item_by_item_after_the_fast_path(codec: ServiceCodec) -> None:
    m = method(codec, "floats")
    m.bind(([1.0] * 100 + [2] * 100, None), {})
    with pytest.raises(TypeError, match=r"xs\[150\] must be float, got bool"):
        m.bind(([1.0] * 150 + [True] + [1.0] * 10, None), {})
    with pytest.raises(OverflowError, match=r"ms\[0\]\['k'\] must fit in a signed 64-bit integer"):
        method(codec, "list_of_maps").bind(([{"k": 2**63}],), {})
    with pytest.raises(TypeError, match=r"e.colors\[20\] must be Color, got str"):
        method(codec, "everything").bind((everything(colors=[Color.RED] * 20 + ["RED"]),), {})


def test_int64_range(codec: ServiceCodec) -> None:
    m = method(codec, "incr")
    assert request_round_trip(m, INT64_MAX) == [INT64_MAX]
    assert request_round_trip(m, INT64_MIN) == [INT64_MIN]
    with pytest.raises(OverflowError) as info:
        m.bind((2**63,), {})
    assert str(info.value) == ("Codec.incr() argument 'by' must fit in a signed 64-bit integer (sint64), "
                               "got 9223372036854775808")
    with pytest.raises(OverflowError, match=r"got an int of 1001 bits"):
        m.bind((-(2**1000),), {})
    with pytest.raises(OverflowError, match=r"e.ints\[16\] must fit"):
        method(codec, "everything").bind((everything(ints=[0] * 16 + [INT64_MIN - 1]),), {})
    with pytest.raises(OverflowError, match=r"the key of colors\[9223372036854775808\] must fit"):
        method(codec, "maps").bind(({}, {2**63: Color.RED}), {})


def test_bind_accepts_compatible_values(codec: ServiceCodec) -> None:
    m = method(codec, "floats")
    assert request_round_trip(m, deque([1, 2.5]), 3) == [[1.0, 2.5], 3.0]
    assert request_round_trip(method(codec, "raw"), bytearray(b"ab"), [memoryview(b"c"), b"d"]) == [b"ab", [b"c", b"d"]]
    assert request_round_trip(method(codec, "maybe_color"), None) == [None]


def test_bind_leaves_reverse_pipe_updates_in_place(codec: ServiceCodec) -> None:
    m = method(codec, "total_of")
    updates = iter([1, 2])
    values = m.bind((updates,), {"scale": 2})
    assert values[0] is updates and values[1] == 2
    assert m.bind(([1, "not checked here"], 1), {})[0] == [1, "not checked here"]
    with pytest.raises(TypeError) as info:
        m.bind((5, 2), {})
    assert str(info.value) == "Codec.total_of() argument 'updates' must be an iterable of int, or a function writing them to an rp.DirectWriter, got int"
    with pytest.raises(TypeError, match="argument 'scale' must be int, got str"):
        m.bind(([], "2"), {})


# -- round trips of every type shape -------------------------------------------------------------


def test_everything_round_trips(codec: ServiceCodec) -> None:
    m = method(codec, "everything")
    e = everything()
    (back,) = request_round_trip(m, e)
    assert back == e
    assert isinstance(back.words, tuple) and isinstance(back.ints, list)
    assert back.handle.settings.heartbeat == rp.Heartbeat(timeout=8.0, send_every=2.0)
    assert m.decode_result(m.encode_result(e)) == e


def test_everything_with_absent_optionals_round_trips(codec: ServiceCodec) -> None:
    m = method(codec, "everything")
    e = everything(maybe_int=None, maybe_color=None, maybe_point=None, maybe_list=None, handle=None,
                   ints=[], words=(), nested=[], optionals=[], dict_of_lists={}, by_id={}, colors=[],
                   pickled=set(), i=0, f=0.0, b=False, s="", raw=b"", color=Color.RED)
    assert request_round_trip(m, e) == [e]


@pytest.mark.parametrize("args", [
    (None, None, None),
    (0, [], Point(0.0, 0.0)),
    (-5, [INT64_MIN, 3], Point(-1.5, 1e300)),
])
def test_optionals_keep_presence(codec: ServiceCodec, args: tuple[Any, ...]) -> None:
    assert request_round_trip(method(codec, "maybe"), *args) == list(args)


def test_nested_wrappers_round_trip(codec: ServiceCodec) -> None:
    m = method(codec, "maybe")
    result = {"a": [None, 0, None, -1], "b": [], "": [INT64_MAX]}
    assert m.decode_result(m.encode_result(result)) == result
    lm = method(codec, "list_of_maps")
    maps = [{}, {"a": 1, "b": -2}, {}]
    assert request_round_trip(lm, maps) == [maps]
    tuples = [(), (1, 2), (3,)]
    decoded = lm.decode_result(lm.encode_result(tuples))
    assert decoded == tuples and all(isinstance(t, tuple) for t in decoded)
    op = method(codec, "optional_points")
    points = [None, Point(0.0, 0.0), None, Point(1.0, 2.0)]
    assert request_round_trip(op, points) == [points]
    decoded_points = op.decode_result(op.encode_result(tuple(points)))
    assert decoded_points == tuple(points) and isinstance(decoded_points, tuple)


def test_maps_round_trip(codec: ServiceCodec) -> None:
    m = method(codec, "maps")
    args = ({"a": 1, "ü": -(2**40), "": 0}, {-1: Color.GREEN, 0: Color.RED, INT64_MAX: Color.BLUE})
    assert request_round_trip(m, *args) == list(args)
    result = {"x": {}, "y": {"a": 1}}
    assert m.decode_result(m.encode_result(result)) == result


def test_recursive_dataclass_round_trips(codec: ServiceCodec) -> None:
    m = method(codec, "tree")
    t = Tree(1, [Tree(2, [Tree(3)]), Tree(4, parent=Tree(0))])
    assert request_round_trip(m, t) == [t]
    assert m.decode_result(m.encode_result(Tree(0))) == Tree(0)


def test_empty_and_init_false_dataclasses(codec: ServiceCodec) -> None:
    m = method(codec, "empty")
    derived = Derived(5)
    derived.doubled = 11  # not what __post_init__ computes: the sent value wins
    (e, back) = request_round_trip(m, Empty(), derived)
    assert e == Empty() and back.a == 5 and back.doubled == 11
    assert m.decode_result(m.encode_result(Empty())) == Empty()


def test_enums_travel_by_member_index(codec: ServiceCodec) -> None:
    m = method(codec, "maybe_color")
    assert m.encode_result(Color.RED) == b""  # the first member is proto's default 0
    assert m.encode_result(Color.BLUE) == b"\x08\x02"
    for c in Color:
        assert m.decode_result(m.encode_result(c)) is c
        assert request_round_trip(m, c) == [c]


def test_pickled_values(codec: ServiceCodec) -> None:
    m = method(codec, "pick")
    assert request_round_trip(m, {1, 2, 3}) == [{1, 2, 3}]
    value = {"frozen": frozenset({1}), "complex": 1 + 2j}
    assert m.decode_result(m.encode_result(value)) == value
    with pytest.raises(TypeError, match=r"^Codec.pick\(\) argument 'v' cannot be encoded: .*lambda"):
        m.encode_request(m.bind((lambda: 1,), {}))


def test_pickled_in_containers(codec: ServiceCodec) -> None:
    m = method(codec, "pickles")
    args: tuple[Any, ...] = ([None, {1}, (2, "x")], {"a": None, "b": frozenset()}, None)
    assert request_round_trip(m, *args) == list(args)
    assert request_round_trip(m, [], {}, 0) == [[], {}, 0]


@pytest.mark.parametrize("args", [
    ({}, [], None),
    ({"a": None, "b": 0, "c": -1}, [None, [], ["x", ""], None], []),
    ({"": None}, [[]], [[], [INT64_MIN], [1, 2, 3]]),
])
def test_optionals_inside_containers(codec: ServiceCodec, args: tuple[Any, ...]) -> None:
    m = method(codec, "sparse")
    assert request_round_trip(m, *args) == list(args)
    result = {0: [], -1: [Point(1.0, 2.0), Point(0.0, 0.0)]}
    assert m.decode_result(m.encode_result(result)) == result
    with pytest.raises(TypeError, match=r"deep\[1\]\[0\] must be int, got str$"):
        m.bind(({}, [], [[1], ["x"]]), {})


def test_worker_handle_round_trips(codec: ServiceCodec) -> None:
    m = method(codec, "handle")
    h = rp.WorkerHandle("id-1", "unix:/tmp/x.sock", name="w", token="secret", fingerprint="abc", pid=99,
                        settings=rp.RpcSettings(max_message_size=2**31 - 1, handshake_timeout=0.5))
    assert request_round_trip(m, h) == [h]
    assert m.decode_result(m.encode_result(h)) == h


def test_floats_and_strings(codec: ServiceCodec) -> None:
    m = method(codec, "floats")
    (xs, maybe) = request_round_trip(m, [math.inf, -math.inf, -0.0, 1e-310, math.nan], 0.0)
    assert xs[:2] == [math.inf, -math.inf] and math.copysign(1, xs[2]) == -1 and xs[3] == 1e-310
    assert math.isnan(xs[4]) and maybe == 0.0
    assert math.isnan(m.decode_result(m.encode_result(math.nan)))
    r = method(codec, "raw")
    blob = bytes(range(256)) * 100
    assert request_round_trip(r, blob, [b"", blob]) == [blob, [b"", blob]]
    log = method(codec, "log")
    text = "ascii, é, 中文, 🎉, \x00"
    assert request_round_trip(log, text) == [text]


def test_strings_that_cannot_be_encoded(codec: ServiceCodec) -> None:
    m = method(codec, "log")
    with pytest.raises(TypeError, match=r"^Codec.log\(\) argument 'line' cannot be encoded: UnicodeEncodeError"):
        m.encode_request(m.bind(("\ud800",), {}))


# -- every kind ----------------------------------------------------------------------------------


def test_rpc_result(codec: ServiceCodec) -> None:
    m = method(codec, "incr")
    assert m.encode_result(0) == b""
    for v in (0, 1, -1, INT64_MIN, INT64_MAX):
        assert m.decode_result(m.encode_result(v)) == v
    with pytest.raises(TypeError) as info:
        m.encode_result("5")
    assert str(info.value) == "Codec.incr() result must be int, got str"
    with pytest.raises(OverflowError, match=r"^Codec.incr\(\) result must fit"):
        m.encode_result(2**64)


def test_none_results(codec: ServiceCodec) -> None:
    for name in ("nothing", "log", "mixed"):
        m = method(codec, name)
        assert m.encode_result(None) == b""
        assert m.decode_result(b"") is None
    with pytest.raises(TypeError, match=r"^Codec.nothing\(\) result must be None, got int$"):
        method(codec, "nothing").encode_result(3)


def test_one_way_request(codec: ServiceCodec) -> None:
    m = method(codec, "log")
    assert m.decode_request(m.encode_request(["hello"])) == ["hello"]


def test_pipe_items(codec: ServiceCodec) -> None:
    m = method(codec, "count_to")
    assert request_round_trip(m, 10) == [10]
    assert m.decode_items(m.encode_items([])) == []
    items = list(range(-5, 1000))
    assert m.decode_items(m.encode_items(items)) == items
    with pytest.raises(TypeError) as info:
        m.encode_items([1, 2, "3"])
    assert str(info.value) == "Codec.count_to() item must be int, got str"
    with pytest.raises(TypeError, match="item must be int, got str"):
        m.encode_items([1] * 50 + ["x"])
    p = method(codec, "points")
    points = [Point(1.0, 2.0), None, Point(0.0, 0.0)]
    assert p.decode_items(p.encode_items(points)) == points
    with pytest.raises(TypeError) as info:
        p.encode_items([Point(1.0, "2")])  # type: ignore[arg-type]
    assert str(info.value) == "Codec.points() item must be Point | None: item.y must be float, got str"


def test_direct_pipe_items(codec: ServiceCodec) -> None:
    m = method(codec, "ticks")
    assert [p.name for p in m.spec.params] == ["every"]
    assert request_round_trip(m, 0.25) == [0.25]
    assert m.decode_items(m.encode_items([1, 2.5])) == [1.0, 2.5]


def test_state_messages(codec: ServiceCodec) -> None:
    m = method(codec, "watch")
    assert m.decode_state_message(m.encode_state(7)) == (True, 7, [])
    assert m.decode_state_message(m.encode_state(0)) == (True, 0, [])  # an empty message: the default state
    assert m.decode_state_message(m.encode_updates_batch(["a", ""])) == (False, None, ["a", ""])
    with pytest.raises(TypeError, match=r"^Codec.watch\(\) state must be int, got str$"):
        m.encode_state("7")
    with pytest.raises(TypeError, match=r"^Codec.watch\(\) update must be str, got int$"):
        m.encode_updates_batch(["a", 1])


def test_state_messages_with_presence(codec: ServiceCodec) -> None:
    m = method(codec, "watch_point")
    assert request_round_trip(m, Point(1.0, 2.0)) == [Point(1.0, 2.0)]
    assert m.decode_state_message(m.encode_state(Point(0.0, 0.0))) == (True, Point(0.0, 0.0), [])
    assert m.decode_state_message(m.encode_state(None)) == (True, None, [])
    assert m.decode_state_message(m.encode_updates_batch([Color.RED, Color.BLUE])) == (
        False, None, [Color.RED, Color.BLUE])
    lm = method(codec, "watch_list")
    assert lm.decode_state_message(lm.encode_state([1, 2])) == (True, [1, 2], [])
    assert lm.decode_state_message(lm.encode_updates_batch([3])) == (False, None, [3])
    nm = method(codec, "watch_none")
    assert nm.encode_state(None) == b""
    assert nm.decode_state_message(b"") == (True, None, [])
    assert nm.decode_state_message(nm.encode_updates_batch([0, 1])) == (False, None, [0, 1])


def test_reverse_pipe_messages(codec: ServiceCodec) -> None:
    m = method(codec, "total_of")
    values = m.bind((iter([1, 2]),), {"scale": 3})
    first = m.encode_request(values)
    assert m.decode_request(first) == [[], 3]
    batch = m.encode_updates([1, -2, INT64_MAX])
    assert m.decode_updates(batch) == [1, -2, INT64_MAX]
    assert m.decode_request(batch) == [[1, -2, INT64_MAX], 0]
    assert m.decode_updates(first) == []
    assert m.decode_result(m.encode_result(42)) == 42
    with pytest.raises(TypeError) as info:
        m.encode_updates([1, "2"])
    assert str(info.value) == "Codec.total_of() item of argument 'updates' must be int, got str"
    c = method(codec, "collect")
    assert c.decode_request(c.encode_request(c.bind((2, [Point(1.0, 1.0)]), {}))) == [2, []]
    assert c.decode_updates(c.encode_updates([Point(1.0, 1.0), Point(0.0, 0.0)])) == [Point(1.0, 1.0),
                                                                                         Point(0.0, 0.0)]
    assert c.encode_result(None) == b""


def test_methods_refuse_what_their_kind_does_not_have(codec: ServiceCodec) -> None:
    with pytest.raises(TypeError, match=r"encode_items does not apply to Codec.incr, a rpc function"):
        method(codec, "incr").encode_items([1])
    with pytest.raises(TypeError, match="encode_result does not apply to Codec.count_to"):
        method(codec, "count_to").encode_result(1)
    with pytest.raises(TypeError, match="encode_updates does not apply"):
        method(codec, "incr").encode_updates([1])
    with pytest.raises(ValueError, match="expected 1 values, got 2"):
        method(codec, "incr").encode_request([1, 2])


def test_init_messages(codec: ServiceCodec) -> None:
    assert codec.decode_init(codec.encode_init(-3)) == -3
    assert codec.decode_connection_init(codec.encode_connection_init(None)) is None
    assert codec.decode_connection_init(codec.encode_connection_init(Point(1.0, 0.0))) == Point(1.0, 0.0)
    with pytest.raises(TypeError) as info:
        codec.encode_init("3")
    assert str(info.value) == "Codec.init_worker_state() argument must be int, got str"
    with pytest.raises(TypeError, match=r"^Codec.init_connection_state\(\) argument must be Point \| None, got int"):
        codec.encode_connection_init(3)
    fresh = codec_for(codec_fresh_decls.Fresh)  # declares no init functions: the argument is None
    assert fresh.encode_init(None) == b"" and fresh.decode_init(b"") is None
    with pytest.raises(TypeError, match=r"^Fresh.init_worker_state\(\) argument must be None, got int"):
        fresh.encode_init(1)


# -- malformed input -----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"\xff", b"\x08", b"\x0a\x05ab", b"\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"])
def test_malformed_bytes_are_protocol_errors(codec: ServiceCodec, data: bytes) -> None:
    m = method(codec, "incr")
    with pytest.raises(rp.ProtocolError, match=r"^Codec.incr CodecIncrRequest: malformed message"):
        m.decode_request(data)
    for decode in (m.decode_result, method(codec, "count_to").decode_items,
                   method(codec, "watch").decode_state_message, method(codec, "total_of").decode_updates,
                   codec.decode_init, codec.decode_connection_init):
        with pytest.raises(rp.ProtocolError):
            decode(data)


def test_invalid_utf8_is_a_protocol_error(codec: ServiceCodec) -> None:
    with pytest.raises(rp.ProtocolError, match="malformed message"):
        method(codec, "log").decode_request(b"\x0a\x02\xff\xfe")


def test_unknown_enum_index_is_a_protocol_error(codec: ServiceCodec) -> None:
    m = method(codec, "maybe_color")
    with pytest.raises(rp.ProtocolError) as info:
        m.decode_result(b"\x08\x07")
    assert str(info.value) == ("Codec.maybe_color CodecMaybeColorResponse: enum Color has no member with "
                               "index 7 (it has 3)")
    with pytest.raises(rp.ProtocolError, match="no member with index -1"):
        m.decode_request(b"\x08" + b"\xff" * 9 + b"\x01")
    e = method(codec, "everything")
    with pytest.raises(rp.ProtocolError, match="no member with index 5"):
        e.decode_request(b"\x0a\x04\x8a\x01\x01\x05")  # e.colors = [5]


def test_unpicklable_bytes_are_a_protocol_error(codec: ServiceCodec) -> None:
    with pytest.raises(rp.ProtocolError, match="cannot unpickle"):
        method(codec, "pick").decode_request(b"\x0a\x03abc")


def test_invalid_dataclass_values_are_protocol_errors(codec: ServiceCodec) -> None:
    m = method(codec, "positive")
    assert request_round_trip(m, Positive(3)) == [Positive(3)]
    with pytest.raises(rp.ProtocolError, match=r"cannot build a Positive from the received message: ValueError: n "):
        m.decode_request(b"")
    # a handle message with empty settings: a heartbeat timeout of 0
    with pytest.raises(rp.ProtocolError, match=r"cannot build a Heartbeat .*SettingsError"):
        method(codec, "handle").decode_request(b"\x0a\x00")


# -- fixed tuples and unions ---------------------------------------------------------------------


def test_fixed_tuples_round_trip_position_by_position(codec: ServiceCodec) -> None:
    m = method(codec, "fixed")
    assert request_round_trip(m, (1, "a", Point(1.0, 2.0))) == [(1, "a", Point(1.0, 2.0))]
    assert request_round_trip(m, [0, "", None]) == [(0, "", None)]  # a list is accepted; a tuple comes back
    assert m.decode_result(m.encode_result((1, 2))) == (1, 2)
    assert m.decode_result(m.encode_result((1.5,))) == (1.5,)
    assert m.decode_result(m.encode_result(())) == ()


@pytest.mark.parametrize("args, message", [
    (((1, "a"),), r"^Codec.fixed\(\) argument 'p' must be tuple\[int, str, Point \| None\], got tuple of 2 items$"),
    (((1, 2, None),), (r"^Codec.fixed\(\) argument 'p' must be tuple\[int, str, Point \| None\]: p\[1\] must be str, "
                      r"got int$")),
    (("abc",), r"^Codec.fixed\(\) argument 'p' must be tuple\[int, str, Point \| None\], got str$"),
])
def test_fixed_tuples_are_checked_by_length_and_position(codec: ServiceCodec, args: tuple[Any, ...],
                                                         message: str) -> None:
    with pytest.raises(TypeError, match=message):
        method(codec, "fixed").bind(args, {})


@pytest.mark.parametrize("value", [3, 0, 2.5, 0.0, True, False, "s", "", b"\x00", b"", Color.GREEN, Point(1.0, 0.0),
                                   [1, 2], [], (1, 2), (), {"a": 1}, {}, ("a", 1)])
def test_a_union_value_comes_back_as_the_member_it_was(codec: ServiceCodec, value: Any) -> None:
    (out,) = request_round_trip(method(codec, "choice"), value)
    assert out == value and type(out) is type(value)  # 3 stays an int, 0.0 a float, False a bool, () a tuple


def test_a_union_picks_the_member_of_the_value_s_own_class_first(codec: ServiceCodec) -> None:
    m = method(codec, "choice")
    message = m.encode_request([3])
    request = m._request_cls.FromString(message)
    assert request.v.WhichOneof("value") == "int"  # not float, which takes ints too
    assert m._request_cls.FromString(m.encode_request([3.0])).v.WhichOneof("value") == "float"
    assert m._request_cls.FromString(m.encode_request([("a", 1)])).v.WhichOneof("value") == "str_and_int_tuple2"
    assert m._request_cls.FromString(m.encode_request([(1, 2)])).v.WhichOneof("value") == "int_tuple"
    assert m.decode_result(m.encode_result([1, "a", None])) == [1, "a", None]


@pytest.mark.parametrize("value, message", [
    (None, (r"must be int \| float \| bool \| str \| bytes \| Color \| Point \| list\[int\] \| tuple\[int, \.\.\.\] \| "
           r"dict\[str, int\] \| tuple\[str, int\], got NoneType$")),
    ([1, "a"], r"must be .*: v\[1\] must be int, got str$"),
    ({"a": "b"}, r"must be .*: v\['a'\] must be int, got str$"),
    (1.5j, r"must be int \| .*, got complex$"),
])
def test_a_value_of_no_member_is_a_type_error(codec: ServiceCodec, value: Any, message: str) -> None:
    with pytest.raises(TypeError, match=r"^Codec.choice\(\) argument 'v' " + message):
        method(codec, "choice").bind((value,), {})


def test_pickled_is_the_union_member_of_last_resort(codec: ServiceCodec) -> None:
    m = method(codec, "pickled_or_int")
    assert request_round_trip(m, 3) == [3, None]
    assert request_round_trip(m, {1}, ["x"]) == [{1}, ["x"]]
    assert request_round_trip(m, "s", Point(0.0, 0.0)) == ["s", Point(0.0, 0.0)]
    assert m._request_cls.FromString(m.encode_request([7, None])).v.WhichOneof("value") == "int"


def test_a_union_with_no_member_set_is_a_protocol_error(codec: ServiceCodec) -> None:
    with pytest.raises(rp.ProtocolError, match=r"a value of int \| float \| .* arrived with no member set"):
        method(codec, "choice").decode_request(b"\x0a\x00")  # v: an empty union message


def test_none_is_a_value_of_a_union_with_a_pickled_member(codec: ServiceCodec) -> None:
    m = method(codec, "pickled_none")
    assert request_round_trip(m, None, (None, 1)) == [None, (None, 1)]
    assert m.decode_result(m.encode_result(None)) is None


def test_an_int_too_large_is_no_float_of_a_union_with_int(codec: ServiceCodec) -> None:
    with pytest.raises(OverflowError, match="sint64"):
        method(codec, "big_or_float").bind((2**63,), {})
    assert request_round_trip(method(codec, "big_or_float"), 2.0**63) == [2.0**63]


def test_generated_names_of_nested_tuples_differ_and_a_member_named_value_works(codec: ServiceCodec) -> None:
    m = method(codec, "nested_tuples")
    assert request_round_trip(m, (1, ("a",)), ((2, "b"),)) == [(1, ("a",)), ((2, "b"),)]
    assert m.decode_result(m.encode_result(d.Value(3))) == d.Value(3)
    assert m.decode_result(m.encode_result(3)) == 3
    response = message_classes(file_spec(d.__name__))["CodecNestedTuplesResponse"]
    union = response.DESCRIPTOR.fields_by_name["value"].message_type
    assert [f.name for f in union.fields] == ["value_case", "int"]
