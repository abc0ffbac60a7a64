"""Spawn's keyword options: one typed list, checked before any process starts."""

from __future__ import annotations

import inspect

import pytest

import rpc_parallel as rp
from examples.counter import Counter
from rpc_parallel._options import ForegroundOptions, SpawnOptions
from rpc_parallel._spawn import spawn_worker


def test_an_unknown_option_is_a_type_error_naming_spawn() -> None:
    with pytest.raises(TypeError, match=r"^Counter\.spawn\(\) got an unexpected keyword argument 'redirect_stdot'$"):
        Counter.spawn(0, redirect_stdot=rp.DEV_NULL)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match=r"^Counter\.spawn_in_foreground\(\) got an unexpected keyword argument "
                                        r"'redirect_stdout'$"):
        Counter.spawn_in_foreground(0, redirect_stdout=rp.DEV_NULL)  # type: ignore[call-arg]


def test_the_options_are_those_of_spawn_worker() -> None:
    params = inspect.signature(spawn_worker).parameters
    assert set(SpawnOptions.__optional_keys__) == {n for n, p in params.items() if p.default is not p.empty}
    assert set(ForegroundOptions.__optional_keys__) == set(SpawnOptions.__optional_keys__) - {
        "redirect_stdout", "redirect_stderr"}
