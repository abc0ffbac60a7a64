"""The raw-grpcio baseline: a generic-handler bytes server (sync or aio) and its clients.

The server is started as its own process, ``python -m bench._raw_grpc --port 0 --mode sync|aio``,
and prints its port on stdout once it serves. It has no protobuf and no (de)serializers: requests
and replies are raw bytes, which is the floor any typed layer on grpcio can reach.

Methods of ``/bench.Raw``:

- ``Echo`` (unary): returns the request (the no-op call);
- ``Incr`` (unary): an int64 (little endian) in, that int + 1 out;
- ``Size`` (unary): any bytes in, their length as an int64 out;
- ``Ints`` (server streaming): an int64 ``n`` in, ``n`` messages out, each one int64.

The server exits on SIGTERM/SIGINT and when its stdin reaches EOF (its parent died).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

__all__ = ("ECHO", "INCR", "INTS", "OPTIONS", "SIZE", "RawServer", "decode_int", "encode_int")

GIB = 1024**3
OPTIONS: list[tuple[str, Any]] = [
    ("grpc.max_send_message_length", GIB),
    ("grpc.max_receive_message_length", GIB),
]
SERVER_OPTIONS: list[tuple[str, Any]] = [*OPTIONS, ("grpc.so_reuseport", 0)]
SERVICE = "bench.Raw"
ECHO = f"/{SERVICE}/Echo"
INCR = f"/{SERVICE}/Incr"
SIZE = f"/{SERVICE}/Size"
INTS = f"/{SERVICE}/Ints"
PINGPONG = f"/{SERVICE}/PingPong"  # a bidi stream answering each message with itself


def encode_int(x: int) -> bytes:
    return x.to_bytes(8, "little", signed=True)


def decode_int(data: bytes) -> int:
    return int.from_bytes(data, "little", signed=True)


# -- server ------------------------------------------------------------------------------------


def _service(echo: Any, incr: Any, size: Any, ints: Any, pingpong: Any) -> grpc.GenericRpcHandler[Any, Any]:
    """The service of the five methods (sync or async implementations alike)."""
    return grpc.method_handlers_generic_handler(SERVICE, {
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Incr": grpc.unary_unary_rpc_method_handler(incr),
        "Size": grpc.unary_unary_rpc_method_handler(size),
        "Ints": grpc.unary_stream_rpc_method_handler(ints),
        "PingPong": grpc.stream_stream_rpc_method_handler(pingpong),
    })


def _sync_handler() -> grpc.GenericRpcHandler[Any, Any]:
    def echo(request: bytes, context: Any) -> bytes:
        return request

    def incr(request: bytes, context: Any) -> bytes:
        return encode_int(decode_int(request) + 1)

    def size(request: bytes, context: Any) -> bytes:
        return encode_int(len(request))

    def ints(request: bytes, context: Any) -> Iterator[bytes]:
        for i in range(decode_int(request)):
            yield encode_int(i)

    def pingpong(requests: Iterator[bytes], context: Any) -> Iterator[bytes]:
        yield from requests

    return _service(echo, incr, size, ints, pingpong)


def _aio_handler() -> grpc.GenericRpcHandler[Any, Any]:
    async def echo(request: bytes, context: Any) -> bytes:
        return request

    async def incr(request: bytes, context: Any) -> bytes:
        return encode_int(decode_int(request) + 1)

    async def size(request: bytes, context: Any) -> bytes:
        return encode_int(len(request))

    async def ints(request: bytes, context: Any) -> AsyncIterator[bytes]:
        for i in range(decode_int(request)):
            yield encode_int(i)

    async def pingpong(requests: AsyncIterator[bytes], context: Any) -> AsyncIterator[bytes]:
        async for request in requests:
            yield request

    return _service(echo, incr, size, ints, pingpong)


def _announce(port: int) -> None:
    if port == 0:
        raise SystemExit("could not bind 127.0.0.1")
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()


def _serve_sync(port: int) -> None:
    server = grpc.server(ThreadPoolExecutor(max_workers=128), handlers=[_sync_handler()], options=SERVER_OPTIONS)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    def on_eof() -> None:
        sys.stdin.read()
        done.set()

    threading.Thread(target=on_eof, daemon=True).start()
    _announce(bound)
    while not done.wait(0.5):
        pass
    server.stop(0).wait(5)


async def _serve_aio(port: int) -> None:
    server = grpc.aio.server(handlers=[_aio_handler()], options=SERVER_OPTIONS)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    loop.add_signal_handler(signal.SIGINT, done.set)
    def on_eof() -> None:
        sys.stdin.read()
        loop.call_soon_threadsafe(done.set)

    threading.Thread(target=on_eof, daemon=True).start()
    _announce(bound)
    await done.wait()
    await server.stop(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--mode", choices=("sync", "aio"), default="sync")
    args = parser.parse_args(argv)
    if args.mode == "sync":
        _serve_sync(args.port)
    else:
        asyncio.run(_serve_aio(args.port))


# -- the master's side -------------------------------------------------------------------------


class RawServer:
    """A raw server process (started with subprocess, never forked from this process)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.port = 0
        self.address = ""
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench._raw_grpc", "--port", "0", "--mode", mode],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=root, close_fds=True)

    def wait_ready(self) -> None:
        """Read the port the server printed once it serves."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"raw {self.mode} server did not start (got {line!r})")
        self.port = int(line)
        self.address = f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """Terminate the server by pid and reap it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def sync_channel(address: str) -> grpc.Channel:
    channel = grpc.insecure_channel(address, options=OPTIONS)
    grpc.channel_ready_future(channel).result(timeout=30)
    return channel


async def aio_channel(address: str) -> grpc.aio.Channel:
    channel = grpc.aio.insecure_channel(address, options=OPTIONS)
    await asyncio.wait_for(channel.channel_ready(), 30)
    return channel


if __name__ == "__main__":
    main()
