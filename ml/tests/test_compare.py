"""The comparison script scores every model on the same images under each label rule."""

import numpy as np

from ml import sources
from ml.evaluate import EvaluationSet
from ml.experiments.compare import relabelled


def test_relabelled_keeps_images_and_inputs_and_swaps_targets():
    keys = ["a", "b", "c"]
    v1 = sources.soft_source("gz2_hart", keys, keys, np.eye(10, dtype=np.float32)[[6, 2, 7]], 0.6)
    v2 = sources.soft_source("gz2_hart", keys, keys, np.eye(10, dtype=np.float32)[[6, 2, 6]], 0.6)
    v2.soft_weight[:] = [0.1, 1.0, 0.9]
    held_out = v1.subset([2, 0])
    inputs = np.arange(2 * 4 * 4 * 3, dtype=np.float32).reshape(2, 4, 4, 3)

    (swapped,) = relabelled([EvaluationSet("test/gz2_hart", held_out, inputs)], {"gz2_hart": v2})

    assert swapped.name == "test/gz2_hart"
    assert swapped.source.keys == ["c", "a"]
    assert swapped.inputs is inputs
    assert swapped.source.soft.argmax(axis=1).tolist() == [6, 6]
    assert swapped.source.soft_weight.tolist() == [np.float32(0.9), np.float32(0.1)]
