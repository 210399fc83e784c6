"""The TFLite backend and the pool of interpreters that run one model.

A TFLite interpreter is not thread-safe: every set_tensor -> invoke -> get_tensor sequence
runs on an interpreter checked out of the pool's idle queue, which acts as the lock around
invoke(), so concurrent requests in a threaded worker never see each other's tensors. A web
worker holds one interpreter (its requests take turns); `manage.py classify` asks for one per
core and runs them side by side.

A model may have a second output, the Galaxy Zoo vote fractions (ml/export.py). A TFLite file
does not keep its outputs in the order the graph returned them, so they are told apart by
their width (``output_indices``).
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier.core.exceptions import ModelUnavailableError

BACKEND_AI_EDGE_LITERT = "ai-edge-litert"
BACKEND_TFLITE_RUNTIME = "tflite-runtime"
BACKEND_CHOICES = ("auto", BACKEND_AI_EDGE_LITERT, BACKEND_TFLITE_RUNTIME)


def interpreter_class(preference: str) -> tuple[type, str]:
    """The Interpreter class of the backend ``preference`` names ("auto": the first installed)
    and the backend's name; raises ModelUnavailableError."""
    if preference not in BACKEND_CHOICES:
        raise ModelUnavailableError(
            f"TFLITE_BACKEND={preference!r} is not one of {', '.join(BACKEND_CHOICES)}"
        )
    # Imported here, not at module top: which backend is installed is only known at run time.
    if preference in ("auto", BACKEND_AI_EDGE_LITERT):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError as exc:
            if preference != "auto":
                raise ModelUnavailableError(f"ai-edge-litert is not installed: {exc}") from exc
        else:
            return Interpreter, BACKEND_AI_EDGE_LITERT
    try:
        from tflite_runtime.interpreter import Interpreter
    except ImportError as exc:
        raise ModelUnavailableError(
            "no TFLite backend is installed (pip install ai-edge-litert or tflite-runtime)"
        ) from exc
    return Interpreter, BACKEND_TFLITE_RUNTIME


def output_indices(
    details: list[dict[str, Any]], *, outputs: int, votes: int | None
) -> tuple[int, int | None]:
    """The tensor indices of the ``outputs`` probabilities and of the ``votes`` vote fractions
    among an interpreter's output details (None when ``votes`` is None); a model may carry vote
    fractions that the caller does not read. Raises ValueError naming the shapes."""
    shapes = [list(d["shape"]) for d in details]
    by_width = {
        int(d["shape"][-1]): d["index"] for d in details if len(d["shape"]) == 2 and d["shape"][0] == 1
    }
    if len(details) > 2 or len(by_width) != len(details) or outputs not in by_width:
        raise ValueError(f"model outputs are {shapes}, expected [1, {outputs}]")
    if votes is not None and votes not in by_width:
        raise ValueError(f"model outputs are {shapes}, expected [1, {outputs}] and [1, {votes}]")
    return by_width[outputs], None if votes is None else by_width[votes]


@dataclass
class _Slot:
    """One TFLite interpreter and the batch size its tensors are allocated for."""

    interpreter: Any
    batch_size: int = 1


class InterpreterPool:
    """Interpreters of one model, each used by one thread at a time.

    Every interpreter is checked against the expected input shape (a batch of one) and
    number of outputs (and of vote fractions, when ``votes`` is given) as it is built; raises
    ModelUnavailableError.
    """

    def __init__(
        self,
        interpreter: type,
        model_content: bytes,
        *,
        input_shape: tuple[int, ...],
        outputs: int,
        votes: int | None = None,
        num_threads: int = 1,
    ) -> None:
        self._interpreter = interpreter
        self._model_content = model_content
        self._input_shape = [1, *input_shape]
        self._outputs = outputs
        self._votes = votes
        self._num_threads = num_threads
        # Interpreters not in use. Taking one out is the lock around its invoke(): a call
        # waits here until one is free, and no two threads ever hold the same one.
        self._idle: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        self._grow_lock = threading.Lock()
        self.count = 0
        self._add()

    def _add(self) -> None:
        try:
            # The bytes the caller verified are the ones loaded: no window for a file to change.
            interpreter = self._interpreter(model_content=self._model_content, num_threads=self._num_threads)
            interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelUnavailableError(f"the TFLite model could not be loaded: {exc}") from exc
        input_details = interpreter.get_input_details()[0]
        if list(input_details["shape"]) != self._input_shape or input_details["dtype"] != np.float32:
            raise ModelUnavailableError(
                f"model input is {list(input_details['shape'])} {input_details['dtype'].__name__}, "
                f"expected {self._input_shape} float32"
            )
        try:
            self._output_index, self._votes_index = output_indices(
                interpreter.get_output_details(), outputs=self._outputs, votes=self._votes
            )
        except ValueError as exc:
            raise ModelUnavailableError(str(exc)) from exc
        self._input_index = input_details["index"]
        self._idle.put(_Slot(interpreter))
        self.count += 1

    def grow_to(self, count: int) -> None:
        """Hold at least ``count`` interpreters, so that many calls can run at once."""
        with self._grow_lock:
            while self.count < count:
                self._add()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
        """The model's float64 output for ``batch``, its vote fractions (None unless the pool
        reads them) and the milliseconds invoke() took, on the first idle interpreter (waiting
        for one when all are busy)."""
        slot = self._idle.get()
        try:
            started = time.perf_counter()
            interpreter = slot.interpreter
            if batch.shape[0] != slot.batch_size:
                interpreter.resize_tensor_input(self._input_index, list(batch.shape))
                interpreter.allocate_tensors()
                slot.batch_size = batch.shape[0]
            interpreter.set_tensor(self._input_index, batch)
            interpreter.invoke()
            output = np.array(interpreter.get_tensor(self._output_index), dtype=np.float64)
            votes = None
            if self._votes_index is not None:
                votes = np.array(interpreter.get_tensor(self._votes_index), dtype=np.float64)
            elapsed_ms = (time.perf_counter() - started) * 1000.0
        finally:
            self._idle.put(slot)
        return output, votes, elapsed_ms
