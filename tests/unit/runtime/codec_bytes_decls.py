"""A worker type with several bytes fields, for the large-bytes splice of the codec."""

from __future__ import annotations

import rpc_parallel as rp


class Bytesy(rp.Worker):
    @rp.rpc
    def put(self, a: int, data: bytes, tail: str, more: bytes) -> bytes: ...

    @rp.rpc
    def maybe(self, data: bytes | None) -> list[bytes]: ...
