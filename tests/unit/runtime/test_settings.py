"""Settings: defaults, validation, JSON, per-field precedence and the gRPC options they become."""

from __future__ import annotations

import json

import pytest

import rpc_parallel as rp
from rpc_parallel._settings import ENV_VAR, grpc_options, resolve


def test_defaults() -> None:
    s = rp.RpcSettings()
    assert (s.max_message_size, s.heartbeat, s.handshake_timeout) == (1 << 30, rp.Heartbeat(30.0, 10.0), 30.0)
    assert s == rp.RpcSettings(max_message_size=1 << 30)  # given or default, the same value is equal


@pytest.mark.parametrize("kwargs", [{"max_message_size": 0}, {"max_message_size": 2**31}, {"max_message_size": 1.5},
                                    {"max_message_size": True}, {"handshake_timeout": -1.0}, {"heartbeat": 3}])
def test_invalid_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(rp.SettingsError):
        rp.RpcSettings(**kwargs)  # type: ignore[arg-type]


def test_invalid_heartbeat_is_refused() -> None:
    with pytest.raises(rp.SettingsError, match="positive"):
        rp.Heartbeat(timeout=0)


def test_json_round_trip() -> None:
    s = rp.RpcSettings(max_message_size=123, heartbeat=rp.Heartbeat(4.0, 2.0), handshake_timeout=5.0)
    assert rp.RpcSettings.from_json(s.to_json()) == s


def test_precedence_is_per_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    app = rp.RpcSettings(max_message_size=4000, heartbeat=rp.Heartbeat(timeout=20.0, send_every=5.0))
    worker = rp.RpcSettings(max_message_size=5000, heartbeat=rp.Heartbeat(timeout=8.0))
    assert resolve(worker, app) == rp.RpcSettings(max_message_size=5000, heartbeat=rp.Heartbeat(8.0, 5.0),
                                                  handshake_timeout=30.0)
    assert resolve(None, app) == app
    assert resolve(None, None) == rp.RpcSettings()
    monkeypatch.setenv(ENV_VAR, json.dumps({"heartbeat": {"send_every": 1.0}, "handshake_timeout": 2.0}))
    assert resolve(worker, app) == rp.RpcSettings(max_message_size=5000, heartbeat=rp.Heartbeat(8.0, 1.0),
                                                  handshake_timeout=2.0)


@pytest.mark.parametrize("text", ["{", "[]", '{"nope": 1}', '{"heartbeat": {"timeout": "x"}}',
                                  '{"max_message_size": -5}'])
def test_bad_env_json_is_a_settings_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(ENV_VAR, text)
    with pytest.raises(rp.SettingsError):
        resolve(None)


def test_grpc_options_on_both_ends() -> None:
    s = rp.RpcSettings(max_message_size=777, heartbeat=rp.Heartbeat(timeout=3.0, send_every=1.5),
                       handshake_timeout=4.0)
    server, client = dict(grpc_options(s, server=True)), dict(grpc_options(s, server=False))
    for opts in (server, client):
        assert opts["grpc.max_send_message_length"] == opts["grpc.max_receive_message_length"] == 777
        assert opts["grpc.keepalive_time_ms"] == 1500
        assert opts["grpc.http2.ping_timeout_ms"] == opts["grpc.keepalive_timeout_ms"] == 3000
        assert opts["grpc.keepalive_permit_without_calls"] == 1
    assert server["grpc.server_handshake_timeout_ms"] == 4000
    assert server["grpc.http2.min_ping_interval_without_data_ms"] <= 1500
