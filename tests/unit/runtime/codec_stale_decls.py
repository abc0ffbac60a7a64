# mypy: disable-error-code="empty-body"
"""A worker type whose generated ``_pb2`` module the codec tests write stale."""

from __future__ import annotations

import rpc_parallel as rp


class Stale(rp.Worker, proto_package="rpc_parallel_codec_test_stale"):
    @rp.rpc
    def ping(self, n: int) -> str: ...
