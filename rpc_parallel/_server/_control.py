"""The built-in ``rpc_parallel.v1.Control`` service of every worker server (control.proto):
init, connections, shutdown, close_server, settings, the schema (Describe), pipelined calls, log
subscriptions and the master's Watch stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from .._proto import control_pb2, control_pb2_grpc
from . import _pipeline as pipeline
from ._core import Context, WorkerCore, cancelled_here, when_done
from ._logs import LogHub

__all__ = ("Control",)


class Control(control_pb2_grpc.ControlServicer):
    def __init__(self, core: WorkerCore) -> None:
        self._core = core
        self._logs = LogHub(core)

    async def InitWorker(self, request: control_pb2.InitWorkerRequest, context: Context
                         ) -> control_pb2.InitWorkerReply:
        core = self._core
        await core.check_hosted(request.worker_id, context, required=True)
        core.hooks.init_arrived(request)
        try:
            await core.threads.run(core.init_worker_state, core.codec.decode_init(request.arg))
        except BaseException as exc:
            if cancelled_here(exc):
                raise
            if not isinstance(exc, SystemExit):
                when_done(context, core.hooks.init_failed)
            await core.fail_call(exc, context)
        core.hooks.initialized()
        return control_pb2.InitWorkerReply()

    async def OpenConnection(self, request: control_pb2.OpenConnectionRequest,
                             context: Context) -> AsyncIterator[control_pb2.ConnectionEvent]:
        async for event in self._core.open_connection(request, context):  # (an async generator: gRPC looks)
            yield event

    async def Shutdown(self, request: control_pb2.ShutdownRequest, context: Context
                       ) -> control_pb2.ShutdownReply:
        await self._core.check_hosted(request.worker_id, context, required=True)
        when_done(context, self._core.hooks.shutdown_requested)  # once it is answered
        return control_pb2.ShutdownReply()

    async def CloseServer(self, request: control_pb2.CloseServerRequest, context: Context
                          ) -> control_pb2.CloseServerReply:
        await self._core.check_hosted(request.worker_id, context, required=True)
        self._core.close_server()
        return control_pb2.CloseServerReply()

    async def Settings(self, request: control_pb2.SettingsRequest, context: Context
                       ) -> control_pb2.SettingsReply:
        await self._core.check_hosted(request.worker_id, context, required=False)
        return control_pb2.SettingsReply(settings_json=self._core.settings.to_json())

    async def Describe(self, request: control_pb2.DescribeRequest, context: Context
                       ) -> control_pb2.DescribeReply:
        await self._core.check_hosted(request.worker_id, context, required=False)
        return self._core.describe()

    async def Pipeline(self, request_iterator: AsyncIterator[control_pb2.PipelineRequests],
                       context: Context) -> AsyncIterator[control_pb2.PipelineReplies]:
        async for replies in pipeline.serve(self._core, request_iterator, context):
            yield replies

    async def Call(self, request_iterator: AsyncIterator[control_pb2.PipelineCall],
                   context: Context) -> AsyncIterator[control_pb2.PipelineResult]:
        async for result in pipeline.serve_calls(self._core, request_iterator, context):
            yield result

    async def Logs(self, request: control_pb2.LogsRequest, context: Context
                   ) -> AsyncIterator[control_pb2.LogRecords]:
        await self._core.check_hosted(request.worker_id, context, required=False)
        async for records in self._logs.serve(request):
            yield records

    async def Watch(self, request: control_pb2.WatchRequest, context: Context
                    ) -> AsyncIterator[control_pb2.WatchEvent]:
        await self._core.check_hosted(request.worker_id, context, required=True)
        done = self._core.hold()
        try:
            yield control_pb2.WatchEvent()
            await done
        finally:
            self._core.release(done)
