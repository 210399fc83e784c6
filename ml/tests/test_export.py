"""PyTorch -> TFLite export computes the same function (random weights, small input)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("tensorflow")

from ml.evaluate import TFLiteModel  # noqa: E402
from ml.export import export  # noqa: E402
from ml.model import build_model  # noqa: E402

SIZE = 64


@pytest.fixture(scope="module")
def trained_like_model():
    torch.manual_seed(0)
    # ImageNet weights and batch-norm statistics with a random head: real
    # activations, so float16 rounding behaves as it does on the trained model.
    return build_model(SIZE, pretrained=True).eval()


@pytest.fixture(scope="module")
def images():
    return np.random.default_rng(0).normal(0, 0.5, size=(8, SIZE, SIZE, 3)).astype(np.float32)


def reference(model, images, temperature):
    with torch.no_grad():
        logits = model(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous())
    return torch.softmax(logits / temperature, dim=1).numpy()


@pytest.mark.parametrize(("quantization", "tolerance"), [("float32", 2e-4), ("float16", 3e-2)])
def test_float_exports_match_pytorch(tmp_path, trained_like_model, images, quantization, tolerance):
    path = export(trained_like_model, SIZE, 0.5, tmp_path / "m.tflite", quantization, images)
    got = TFLiteModel(path)(images)
    expected = reference(trained_like_model, images, 0.5)
    np.testing.assert_allclose(got, expected, atol=tolerance)
    assert (got.argmax(axis=1) == expected.argmax(axis=1)).mean() >= 7 / 8
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-4)


def test_int8_export_keeps_float_io_and_stays_close(tmp_path, trained_like_model, images):
    path = export(trained_like_model, SIZE, 1.0, tmp_path / "m.tflite", "int8", images)
    model = TFLiteModel(path)
    details = model.interpreter.get_input_details()[0]
    assert details["dtype"] == np.float32
    assert details["shape"].tolist() == [1, SIZE, SIZE, 3]
    got = model(images)
    assert np.abs(got - reference(trained_like_model, images, 1.0)).max() < 0.1
