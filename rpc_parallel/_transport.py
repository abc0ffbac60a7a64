"""The transport: every gRPC channel and server rpc_parallel opens is made here.

``open_channel`` makes a channel to a peer with the options of its ``RpcSettings`` (``dial``
also waits until it is connected); ``new_server`` makes a
server that checks the master's token on every call before anything else runs; ``listen`` binds
it to a loopback port, a unix socket in a fresh 0700 directory, or (for remote peers) a port on
one interface with mutual TLS. This is the one place where channel credentials or another backend
plug in.

Mutual TLS: a peer that serves TLS is named by the id of its CA (``WorkerHandle.ca``); a channel
to it presents this process's ``Identity`` from that CA (``hold`` records one), and checks the
server's certificate against the CA and the identity's ``server_name``.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
import grpc.aio

from ._errors import WorkerConnectionError
from ._pki import Identity
from ._protocol import TOKEN_KEY
from ._settings import RpcSettings, grpc_options

__all__ = ("Listener", "at_thread_exit", "dial", "hold", "identities", "identity_for", "install_identity_source",
           "listen", "new_aio_server", "new_server", "open_aio_channel",
           "open_channel", "route_source", "socket_dir_of", "split_host_port")

if TYPE_CHECKING:  # generic only in the type stubs
    _HandlerBase = grpc.RpcMethodHandler[Any, Any]
    _InterceptorBase = grpc.ServerInterceptor[Any, Any]
    _AioInterceptorBase = grpc.aio.ServerInterceptor[Any, Any]
else:
    _HandlerBase = grpc.RpcMethodHandler
    _InterceptorBase = grpc.ServerInterceptor
    _AioInterceptorBase = grpc.aio.ServerInterceptor


_IDENTITIES: dict[str, Identity] = {}  # CA id -> this process's identity from that CA
_IDENTITIES_LOCK = threading.Lock()


def hold(identity: Identity) -> None:
    """Make ``identity`` what this process presents to servers of its CA (the latest one wins)."""
    with _IDENTITIES_LOCK:
        _IDENTITIES[identity.ca_id] = identity


# Where a worker gets an identity it lacks: from its master (installed by the worker process,
# which this layer cannot import); None in a master.
_source: Callable[[str], Identity | None] | None = None


def install_identity_source(source: Callable[[str], Identity | None]) -> None:
    """Make ``source(ca)`` what this process asks for an identity from a CA it holds none of."""
    global _source
    _source = source


def identity_for(ca: str) -> Identity | None:
    """This process's identity from the CA whose id is ``ca``: one it holds, else one its
    identity source (a worker's master) gives it, then held."""
    with _IDENTITIES_LOCK:
        found = _IDENTITIES.get(ca)
    if found is None and _source is not None:
        found = _source(ca)
        if found is not None:
            hold(found)
    return found


def identities() -> list[Identity]:
    """Every identity this process holds."""
    with _IDENTITIES_LOCK:
        return list(_IDENTITIES.values())


def open_channel(address: str, settings: RpcSettings, *, private: bool = False, ca: str = "") -> grpc.Channel:
    """A channel to the server at ``address`` (not yet connected), configured by ``settings``;
    with ``ca``, a CA id, over mutual TLS (``WorkerConnectionError`` if this process holds no
    identity from that CA).

    ``private``: on a connection of its own (a private subchannel), never one shared with other
    channels to the same address, which a stream that just broke could make fail at once.
    """
    options: list[tuple[str, int | str]] = [*grpc_options(settings, server=False)]
    if private:
        options.append(("grpc.use_local_subchannel_pool", 1))
    if not ca:
        return grpc.insecure_channel(address, options=options)
    credentials = _credentials(address, ca, options)
    return grpc.secure_channel(address, credentials, options=options)


def open_aio_channel(address: str, settings: RpcSettings, *, ca: str = "") -> grpc.aio.Channel:
    """``open_channel`` for ``grpc.aio``, on the running event loop (the same options and credentials)."""
    options: list[tuple[str, int | str]] = [*grpc_options(settings, server=False)]
    if not ca:
        return grpc.aio.insecure_channel(address, options=options)
    credentials = _credentials(address, ca, options)
    return grpc.aio.secure_channel(address, credentials, options=options)


def _credentials(address: str, ca: str, options: list[tuple[str, int | str]]) -> grpc.ChannelCredentials:
    """This process's mutual-TLS credentials for a server of the CA ``ca`` (its name check added
    to ``options``); ``WorkerConnectionError`` if it holds none."""
    identity = identity_for(ca)
    if identity is None:
        raise WorkerConnectionError(
            f"the server at {address} takes only mutual-TLS clients with a certificate from its CA (id {ca}), and "
            "neither this process nor its master holds one: connect from the master that started that worker or "
            "from one of that master's workers, or through rpcpar, which keeps the credentials of the workers it "
            "spawned")
    options.append(("grpc.ssl_target_name_override", identity.server_name))
    return grpc.ssl_channel_credentials(root_certificates=identity.ca, private_key=identity.key,
                                        certificate_chain=identity.cert)


def dial(address: str, settings: RpcSettings, label: str, *, ca: str = "",
         expire: Callable[[], Exception] | None = None, within: float | None = None) -> grpc.Channel:
    """``open_channel``, connected: ``WorkerConnectionError`` at once if nothing accepts connections
    at ``address`` (``label``, a worker, is gone), or if it does not answer within
    ``settings.handshake_timeout`` (a silent peer). With ``within`` seconds (a caller's deadline)
    shorter than that, ``expire()`` is raised once they passed. ``ca`` as for ``open_channel``."""
    channel = open_channel(address, settings, ca=ca)
    outcome: list[grpc.ChannelConnectivity] = []
    settled = threading.Event()

    def watch(state: grpc.ChannelConnectivity) -> None:
        if state in (grpc.ChannelConnectivity.READY, grpc.ChannelConnectivity.TRANSIENT_FAILURE) and not outcome:
            outcome.append(state)
            settled.set()

    patience = settings.handshake_timeout if within is None else min(within, settings.handshake_timeout)
    channel.subscribe(watch, try_to_connect=True)
    settled.wait(patience)
    channel.unsubscribe(watch)
    if outcome == [grpc.ChannelConnectivity.READY]:
        return channel
    channel.close()
    if not outcome and expire is not None and patience < settings.handshake_timeout:
        raise expire()
    if outcome:
        why = ("the TLS handshake or the connection failed (is the worker gone, or does it not take this "
               "process's certificate?)" if ca else
               "the connection failed (nothing accepts connections there: is the worker gone?)")
        raise WorkerConnectionError(f"could not reach {label} at {address}: {why}")
    raise WorkerConnectionError(
        f"could not reach {label} at {address} within handshake_timeout {settings.handshake_timeout}s")


class _Reject(_HandlerBase):
    """The handler for calls without the right token: rejected before any decoding."""

    def __init__(self) -> None:
        self.request_streaming = False
        self.response_streaming = False
        self.request_deserializer = None
        self.response_serializer = None
        self.unary_unary = _reject
        self.unary_stream = None
        self.stream_unary = None
        self.stream_stream = None


def _reject(request: Any, context: grpc.ServicerContext) -> None:
    context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or wrong {TOKEN_KEY}")


async def _reject_aio(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> None:
    await context.abort(grpc.StatusCode.UNAUTHENTICATED, f"missing or wrong {TOKEN_KEY}")


_OPEN_PREFIX = "/grpc.health.v1.Health/"


def _admits(token: str, details: grpc.HandlerCallDetails) -> bool:
    """Whether a call carries ``token`` (health checks need none: load balancers hold no token)."""
    if details.method.startswith(_OPEN_PREFIX):
        return True
    for key, value in details.invocation_metadata or ():
        if key == TOKEN_KEY:
            return bool(value == token)
    return False


class _TokenCheck(_InterceptorBase):
    """Rejects (``UNAUTHENTICATED``) every call whose metadata lacks the token, but health checks."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._reject = _Reject()

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        return continuation(details) if _admits(self._token, details) else self._reject


class _AioTokenCheck(_AioInterceptorBase):
    """``_TokenCheck`` for a ``grpc.aio`` server. Its rejection is a streaming handler that reads
    nothing, so a call of any shape is refused at once (a unary one would first wait for a request
    message, which a streaming call may never send)."""

    def __init__(self, token: str) -> None:
        self._token = token
        self._reject = grpc.stream_stream_rpc_method_handler(_reject_aio)

    async def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        return await continuation(details) if _admits(self._token, details) else self._reject


def new_server(settings: RpcSettings, executor: ThreadPoolExecutor, *, token: str) -> grpc.Server:
    """A gRPC server configured by ``settings``, running calls on ``executor`` (a sync server: every
    open stream holds one of its threads), that refuses calls without ``token``."""
    return grpc.server(executor, options=grpc_options(settings, server=True), interceptors=[_TokenCheck(token)])


def new_aio_server(settings: RpcSettings, *, token: str) -> grpc.aio.Server:
    """``new_server`` as a ``grpc.aio`` server of the running event loop (its handlers must be
    coroutines)."""
    return grpc.aio.server(options=grpc_options(settings, server=True), interceptors=[_AioTokenCheck(token)])


@dataclass(frozen=True)
class Listener:
    """Where a server listens: ``address``, as a channel dials it; ``close`` removes the private
    directory of a unix socket."""

    address: str

    def close(self) -> None:
        directory = socket_dir_of(self.address)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def listen(server: grpc.Server | grpc.aio.Server, *, unix_socket: bool = False, host: str | None = None, port: int = 0,
           identity: Identity | None = None) -> Listener:
    """Bind ``server`` to a loopback port the OS picks, or to a unix socket in a fresh 0700 directory
    (only processes of this user can reach it), or to ``port`` (0: one the OS picks) on the
    interface ``host``, serving mutual TLS with ``identity`` when given (a client without a
    certificate from its CA is refused at the handshake)."""
    if host is not None:
        bound = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if identity is None:
            got = server.add_insecure_port(bound)
        else:
            credentials = grpc.ssl_server_credentials([(identity.key, identity.cert)], root_certificates=identity.ca,
                                                      require_client_auth=True)
            got = server.add_secure_port(bound, credentials)
        if got == 0:
            raise OSError(f"could not bind {bound}")
        return Listener(bound.rsplit(":", 1)[0] + f":{got}")
    if unix_socket:
        directory = tempfile.mkdtemp(prefix="rpcpar-")  # mode 0700
        address = f"unix:{directory}/worker.sock"
        server.add_insecure_port(address)
        return Listener(address)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise OSError("could not bind a port on 127.0.0.1")
    return Listener(f"127.0.0.1:{port}")


def route_source(host: str) -> str:
    """The address of this machine's interface that reaches ``host`` (a name or an address): where
    a peer on ``host`` can reach a server of ours. Nothing is sent (a UDP socket is only connected)."""
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise OSError(f"cannot resolve {host!r}: {exc}") from exc
    last: OSError | None = None
    for family, kind, proto, _, sockaddr in infos:
        with socket.socket(family, kind, proto) as s:
            try:
                s.connect(sockaddr)
            except OSError as exc:
                last = exc
                continue
            return str(s.getsockname()[0])
    raise OSError(f"no route to {host!r}: {last}")


def split_host_port(address: str) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` as (host, port); port 0 when none is given."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest.removeprefix(":") or 0)
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        return host, int(port)
    return address, 0


def socket_dir_of(address: str) -> str | None:
    """The private directory of a unix-socket ``address`` made by ``listen`` (None for a port)."""
    return os.path.dirname(address.removeprefix("unix:")) if address.startswith("unix:") else None


def at_thread_exit(hook: Callable[[], None]) -> None:
    """Run ``hook`` at interpreter exit *before* ``concurrent.futures`` joins its pool threads.

    The master server's pool threads hold the workers' heartbeat streams open; if the server were
    stopped by a plain ``atexit`` hook (which runs after that join), the interpreter would wait
    forever. ``threading._register_atexit`` hooks run in reverse order of registration, so this one
    runs before the join registered when ``concurrent.futures.thread`` was imported.
    """
    threading._register_atexit(hook)  # type: ignore[attr-defined]
