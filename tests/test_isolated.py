"""The child process an own-process runtime (TensorFlow) is measured in: claimed, kept, replaced."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from bench.core.errors import BenchError
from bench.core.models import build_model
from bench.measure import isolated


@pytest.fixture(autouse=True)
def no_child_left() -> Iterator[None]:
    """Every test ends with no child kept."""
    yield
    isolated.close_child()


def test_the_child_is_claimed_and_kept_per_key() -> None:
    assert not isolated.process_is_owned()  # this process: own-process runtimes go to a child
    assert isolated.measure_in_child(isolated.process_is_owned, {}, ("probe", 1)) is True
    first = isolated.child_pool(("probe", 1))
    assert isolated.child_pool(("probe", 1)) is first  # the same key reuses the child
    second = isolated.child_pool(("probe", 2))
    assert second is not first and isolated._STATE["key"] == ("probe", 2)  # one alive at a time


def test_a_child_that_dies_is_one_line_and_is_replaced() -> None:
    with pytest.raises(BenchError, match="child process measuring runtime probe died"):
        isolated.measure_in_child(os.abort, {}, ("probe", 1))
    assert isolated._STATE["pool"] is None
    assert isolated.measure_in_child(isolated.process_is_owned, {}, ("probe", 1)) is True


def test_exceptions_come_back_as_raised() -> None:
    with pytest.raises(BenchError, match="unknown model"):
        isolated.measure_in_child(build_model, {"model_or_spec": "nosuchnet"}, ("probe", 1))
