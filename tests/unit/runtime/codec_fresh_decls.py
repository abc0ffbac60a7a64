# mypy: disable-error-code="empty-body"
"""A worker type whose generated ``_pb2`` module the codec tests write and find fresh."""

from __future__ import annotations

import rpc_parallel as rp


class Fresh(rp.Worker, proto_package="rpc_parallel_codec_test_fresh"):
    @rp.rpc
    def ping(self, n: int) -> str: ...
