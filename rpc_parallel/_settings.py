"""RPC settings: max message size, heartbeat and handshake deadlines, and their gRPC options.

Precedence per field: env ``RPC_PARALLEL_RPC_SETTINGS`` (JSON) > per-worker ``settings=`` >
``start_app(settings=)`` > defaults. ``grpc_options`` is the one place settings become gRPC options.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from typing import Any

from ._errors import SettingsError

__all__ = ("ENV_VAR", "Heartbeat", "RpcSettings", "grpc_options", "resolve")

ENV_VAR = "RPC_PARALLEL_RPC_SETTINGS"
GIB = 1024**3


def _set_fields(obj: object, values: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Set a frozen dataclass's fields, defaults for the None ones, and remember which were given."""
    for name, value in values.items():
        object.__setattr__(obj, name, defaults[name] if value is None else value)
    object.__setattr__(obj, "_given", frozenset(n for n, v in values.items() if v is not None))


@dataclass(frozen=True, init=False)
class Heartbeat:
    """Transport heartbeats: a ping every ``send_every`` seconds; the peer is dead when a ping is
    unanswered for ``timeout`` seconds (defaults 30 and 10)."""

    timeout: float
    send_every: float

    def __init__(self, timeout: float | None = None, send_every: float | None = None) -> None:
        _set_fields(self, {"timeout": timeout, "send_every": send_every}, {"timeout": 30.0, "send_every": 10.0})
        if not (self.timeout > 0 and self.send_every > 0):
            raise SettingsError(f"heartbeat timeout and send_every must be positive, got {self}")

    def explicit(self) -> dict[str, float]:
        """The fields given to the constructor (the others are defaults, open to lower precedence)."""
        return {name: getattr(self, name) for name in self._given}  # type: ignore[attr-defined]


@dataclass(frozen=True, init=False)
class RpcSettings:
    """Settings of a gRPC server and of the channels that dial it (durations in seconds).

    Defaults: 1 GiB messages, ``Heartbeat(timeout=30, send_every=10)``, a 30 s handshake. Fields
    not given (at any depth) are filled from the next source in the precedence order, so
    ``spawn(settings=RpcSettings(max_message_size=...))`` keeps the app's heartbeat.
    """

    max_message_size: int
    heartbeat: Heartbeat
    handshake_timeout: float

    def __init__(self, max_message_size: int | None = None, heartbeat: Heartbeat | None = None,
                 handshake_timeout: float | None = None) -> None:
        _set_fields(self, {"max_message_size": max_message_size, "heartbeat": heartbeat,
                           "handshake_timeout": handshake_timeout},
                    {"max_message_size": GIB, "heartbeat": Heartbeat(), "handshake_timeout": 30.0})
        if isinstance(self.max_message_size, bool) or not isinstance(self.max_message_size, int) \
                or not 0 < self.max_message_size <= 2**31 - 1:
            raise SettingsError(f"max_message_size must be an int in 1..2**31-1, got {self.max_message_size!r}")
        if not isinstance(self.heartbeat, Heartbeat):
            raise SettingsError(f"heartbeat must be an rp.Heartbeat, got {self.heartbeat!r}")
        if not self.handshake_timeout > 0:
            raise SettingsError(f"handshake_timeout must be positive, got {self.handshake_timeout}")

    def explicit(self) -> dict[str, Any]:
        """The fields given to the constructor, as a partial JSON object (see ``merge``)."""
        given: frozenset[str] = self._given  # type: ignore[attr-defined]
        out: dict[str, Any] = {name: getattr(self, name) for name in given if name != "heartbeat"}
        if "heartbeat" in given:
            out["heartbeat"] = self.heartbeat.explicit()
        return out

    def to_json(self) -> str:
        """The JSON form, as ``RPC_PARALLEL_RPC_SETTINGS`` accepts it."""
        return json.dumps({"max_message_size": self.max_message_size,
                           "heartbeat": {"timeout": self.heartbeat.timeout,
                                         "send_every": self.heartbeat.send_every},
                           "handshake_timeout": self.handshake_timeout})

    @classmethod
    def from_json(cls, text: str, base: RpcSettings | None = None) -> RpcSettings:
        """Parse JSON with the field names of ``RpcSettings``; missing fields come from ``base``."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise SettingsError(f"settings are not valid JSON: {exc}: {text!r}") from None
        return merge(base or cls(), data)


def merge(base: RpcSettings, data: Any) -> RpcSettings:
    """``base`` with the fields present in the mapping ``data`` replaced."""
    if not isinstance(data, dict):
        raise SettingsError(f"settings must be a JSON object, got {data!r}")
    unknown = set(data) - {f.name for f in fields(RpcSettings)}
    if unknown:
        raise SettingsError(f"unknown settings field(s) {sorted(unknown)}; "
                            "expected max_message_size, heartbeat, handshake_timeout")
    changes: dict[str, Any] = {}
    try:
        if "max_message_size" in data:
            changes["max_message_size"] = _number(data["max_message_size"], int, "max_message_size")
        if "handshake_timeout" in data:
            changes["handshake_timeout"] = _number(data["handshake_timeout"], float, "handshake_timeout")
        if "heartbeat" in data:
            hb = data["heartbeat"]
            if not isinstance(hb, dict) or set(hb) - {"timeout", "send_every"}:
                raise SettingsError(f"heartbeat must be an object with timeout and send_every, got {hb!r}")
            changes["heartbeat"] = replace(
                base.heartbeat, **{k: _number(v, float, f"heartbeat.{k}") for k, v in hb.items()})
        return replace(base, **changes)
    except TypeError as exc:
        raise SettingsError(str(exc)) from None


def _number(value: Any, kind: type[int] | type[float], name: str) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and value != int(value)):
        raise SettingsError(f"{name} must be a {kind.__name__}, got {value!r}")
    return kind(value)


def resolve(explicit: RpcSettings | None, app: RpcSettings | None = None) -> RpcSettings:
    """Apply the precedence, field by field: env > ``explicit`` (per worker) > ``app`` > defaults."""
    settings = RpcSettings()
    for layer in (app, explicit):
        if layer is not None:
            settings = merge(settings, layer.explicit())
    env = os.environ.get(ENV_VAR)
    return RpcSettings.from_json(env, settings) if env else settings


def grpc_options(settings: RpcSettings, *, server: bool) -> list[tuple[str, int]]:
    """The gRPC channel/server options for ``settings`` (see DESIGN.md section 4).

    ``grpc.keepalive_timeout_ms`` alone never fires in grpcio; ``grpc.http2.ping_timeout_ms`` is
    what drops a peer that stops answering pings, so both are set.
    """
    hb = settings.heartbeat
    every_ms = max(1, int(hb.send_every * 1000))
    timeout_ms = max(1, int(hb.timeout * 1000))
    handshake_ms = max(1, int(settings.handshake_timeout * 1000))
    opts = [
        ("grpc.max_send_message_length", settings.max_message_size),
        ("grpc.max_receive_message_length", settings.max_message_size),
        ("grpc.keepalive_time_ms", every_ms),
        ("grpc.keepalive_timeout_ms", timeout_ms),
        ("grpc.http2.ping_timeout_ms", timeout_ms),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    if server:
        opts += [
            ("grpc.http2.min_ping_interval_without_data_ms", max(1, every_ms // 2)),
            ("grpc.http2.max_ping_strikes", 0),
            ("grpc.server_handshake_timeout_ms", handshake_ms),
            ("grpc.so_reuseport", 0),
        ]
    else:
        opts += [
            ("grpc.initial_reconnect_backoff_ms", 100),
            # gRPC core also takes this as the minimum time a connection attempt may take (its
            # handshake included): the handshake timeout, or a loaded machine fails to connect
            ("grpc.min_reconnect_backoff_ms", handshake_ms),
            ("grpc.max_reconnect_backoff_ms", 1000),
            ("grpc.enable_retries", 0),
        ]
    return opts
