"""The built-in ``rpc_parallel.v1.Control`` service of every worker server (control.proto):
init, connections, shutdown, close_server, settings, the schema (Describe), pipelined calls, log
subscriptions and the master's Watch stream."""

from __future__ import annotations

from collections.abc import Iterator

import grpc

from .._proto import control_pb2, control_pb2_grpc
from . import _pipeline as pipeline
from ._core import WorkerCore
from ._logs import LogHub

__all__ = ("Control",)


class Control(control_pb2_grpc.ControlServicer):
    def __init__(self, core: WorkerCore) -> None:
        self._core = core
        self._logs = LogHub(core)

    def InitWorker(self, request: control_pb2.InitWorkerRequest, context: grpc.ServicerContext
                   ) -> control_pb2.InitWorkerReply:
        core = self._core
        core.check_hosted(request.worker_id, context, required=True)
        core.hooks.init_arrived(request)
        try:
            core.init_worker_state(core.codec.decode_init(request.arg))
        except (Exception, SystemExit) as exc:
            if not isinstance(exc, SystemExit):
                context.add_callback(core.hooks.init_failed)
            core.fail_call(exc, context)
        core.hooks.initialized()
        return control_pb2.InitWorkerReply()

    def OpenConnection(self, request: control_pb2.OpenConnectionRequest, context: grpc.ServicerContext
                       ) -> Iterator[control_pb2.ConnectionEvent]:
        return self._core.open_connection(request, context)

    def Shutdown(self, request: control_pb2.ShutdownRequest, context: grpc.ServicerContext
                 ) -> control_pb2.ShutdownReply:
        self._core.check_hosted(request.worker_id, context, required=True)
        context.add_callback(self._core.hooks.shutdown_requested)
        return control_pb2.ShutdownReply()

    def CloseServer(self, request: control_pb2.CloseServerRequest, context: grpc.ServicerContext
                    ) -> control_pb2.CloseServerReply:
        self._core.check_hosted(request.worker_id, context, required=True)
        self._core.close_server()
        return control_pb2.CloseServerReply()

    def Settings(self, request: control_pb2.SettingsRequest, context: grpc.ServicerContext
                 ) -> control_pb2.SettingsReply:
        self._core.check_hosted(request.worker_id, context, required=False)
        return control_pb2.SettingsReply(settings_json=self._core.settings.to_json())

    def Describe(self, request: control_pb2.DescribeRequest, context: grpc.ServicerContext
                 ) -> control_pb2.DescribeReply:
        self._core.check_hosted(request.worker_id, context, required=False)
        return self._core.describe()

    def Pipeline(self, request_iterator: Iterator[control_pb2.PipelineRequests], context: grpc.ServicerContext
                 ) -> Iterator[control_pb2.PipelineReplies]:
        return pipeline.serve(self._core, request_iterator, context)

    def Logs(self, request: control_pb2.LogsRequest, context: grpc.ServicerContext
             ) -> Iterator[control_pb2.LogRecords]:
        self._core.check_hosted(request.worker_id, context, required=False)
        return self._logs.serve(request, context)

    def Watch(self, request: control_pb2.WatchRequest, context: grpc.ServicerContext
              ) -> Iterator[control_pb2.WatchEvent]:
        self._core.check_hosted(request.worker_id, context, required=True)
        done = self._core.hold(context)
        try:
            yield control_pb2.WatchEvent()
            done.wait()
        finally:
            self._core.release(done)
