"""The caller's side: ``connect`` and ``Connection`` (run/submit for every kind), ``Pipe``, and
``DynamicClient`` for functions named at run time (``rpcpar call``).

Modules import downward in this order: ``_connection``, ``_dynamic`` -> ``_upload``, ``_pipeline``,
``_pipe`` -> ``_session``. Nothing here imports the server side.
"""

from ._connection import (
    Connection as Connection,
    connect as connect,
    deliver_closed as deliver_closed,
    update_failed as update_failed,
)
from ._dynamic import NOT_GIVEN as NOT_GIVEN, DynamicClient as DynamicClient
from ._pipe import Pipe as Pipe
from ._pipeline import AioCallStream as AioCallStream
from ._session import WouldWait as WouldWait, must_not_wait as must_not_wait, worker_label as worker_label

__all__ = ("NOT_GIVEN", "AioCallStream", "Connection", "DynamicClient", "Pipe", "WouldWait", "connect", "deliver_closed",
           "must_not_wait", "update_failed", "worker_label")
