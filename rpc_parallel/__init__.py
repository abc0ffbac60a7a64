"""rpc_parallel: typed Python functions in worker processes, over gRPC."""

from . import aio as aio
from . import expert as expert
from ._app import start_app as start_app
from ._client import Connection as Connection
from ._client import Pipe as Pipe
from ._client import connect as connect
from ._errors import (
    AuthenticationError as AuthenticationError,
)
from ._errors import (
    ConnectionClosedError as ConnectionClosedError,
)
from ._errors import (
    DeclarationError as DeclarationError,
)
from ._errors import (
    MessageTooLargeError as MessageTooLargeError,
)
from ._errors import (
    ProtocolError as ProtocolError,
)
from ._errors import (
    RemoteError as RemoteError,
)
from ._errors import (
    RpcParallelError as RpcParallelError,
)
from ._errors import (
    SettingsError as SettingsError,
)
from ._errors import (
    SpawnError as SpawnError,
)
from ._errors import (
    SpawnTimeoutError as SpawnTimeoutError,
)
from ._errors import (
    UnsupportedTypeError as UnsupportedTypeError,
)
from ._errors import (
    WorkerConnectionError as WorkerConnectionError,
)
from ._errors import (
    WorkerCrashedError as WorkerCrashedError,
)
from ._errors import (
    WorkerFailedError as WorkerFailedError,
)
from ._function import (
    DirectPipeFunction as DirectPipeFunction,
)
from ._function import (
    Function as Function,
)
from ._function import (
    Kind as Kind,
)
from ._function import (
    OneWayFunction as OneWayFunction,
)
from ._function import (
    Pickled as Pickled,
)
from ._function import (
    PipeFunction as PipeFunction,
)
from ._function import (
    ReversePipeFunction as ReversePipeFunction,
)
from ._function import (
    RpcFunction as RpcFunction,
)
from ._function import (
    StateFunction as StateFunction,
)
from ._function import (
    direct_pipe as direct_pipe,
)
from ._function import (
    one_way as one_way,
)
from ._function import (
    pipe as pipe,
)
from ._function import (
    reverse_pipe as reverse_pipe,
)
from ._function import (
    rpc as rpc,
)
from ._function import (
    state as state,
)
from ._handle import WorkerHandle as WorkerHandle
from ._options import (
    DEV_NULL as DEV_NULL,
)
from ._options import (
    FileAppend as FileAppend,
)
from ._options import (
    FileTruncate as FileTruncate,
)
from ._options import (
    Local as Local,
)
from ._options import (
    ShutdownOn as ShutdownOn,
)
from ._pipes import Closed as Closed
from ._pipes import DirectPipeId as DirectPipeId
from ._pipes import DirectWriter as DirectWriter
from ._pipes import Update as Update
from ._settings import Heartbeat as Heartbeat
from ._settings import RpcSettings as RpcSettings
from ._worker import Worker as Worker
