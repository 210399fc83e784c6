"""ml/experiments/peer.py: galamo's framing and preprocessing, and which comparison the model card takes."""

import json

import numpy as np
import pytest
from PIL import Image

from ml import sources
from ml.experiments.peer import GALAMO_SIZE, peer_inputs
from ml.pipeline import peer_results

cv2 = pytest.importorskip("cv2", reason="opencv-python-headless (requirements-train.txt) is not installed")


def galaxy_folder(root, side):
    """One image in class folder "2": a bright square whose size says what the crop kept."""
    pixels = np.zeros((side, side, 3), np.uint8)
    pixels[side // 4 : 3 * side // 4, side // 4 : 3 * side // 4] = (200, 120, 40)
    (root / "2").mkdir(parents=True)
    Image.fromarray(pixels).save(root / "2" / "a.png")
    return pixels


def test_a_frame_framed_like_galaxy10_is_passed_whole_as_galamo_reads_it(tmp_path):
    pixels = galaxy_folder(tmp_path / "data", 256)
    source = sources.load_folder(tmp_path / "data", crop_fraction=0.7)

    [image] = peer_inputs(source, serving_crop=0.7)

    expected = cv2.resize(pixels, (GALAMO_SIZE, GALAMO_SIZE)).astype(np.float32) / 255.0
    assert image.shape == (GALAMO_SIZE, GALAMO_SIZE, 3)
    np.testing.assert_allclose(image, expected, atol=1e-6)


def test_a_tighter_source_crop_gives_galamo_the_same_field_of_view(tmp_path):
    # A source cropped at 0.35 against a serving crop of 0.7 fills the frame as a Galaxy10
    # galaxy does at half the field: galamo gets the central half, where the square is all.
    galaxy_folder(tmp_path / "data", 400)
    source = sources.load_folder(tmp_path / "data", crop_fraction=0.35)

    [image] = peer_inputs(source, serving_crop=0.7)

    inside = image[2:-2, 2:-2]
    np.testing.assert_allclose(
        inside, np.broadcast_to(np.array([200, 120, 40]) / 255.0, inside.shape), atol=1e-6
    )


def test_the_model_card_takes_only_a_comparison_of_the_same_file(tmp_path):
    manifest = {"sha256": "a" * 64}
    assert peer_results(tmp_path, manifest) is None
    (tmp_path / "peer.json").write_text(json.dumps({"model_sha256": "b" * 64, "metrics": {}}))
    assert peer_results(tmp_path, manifest) is None
    (tmp_path / "peer.json").write_text(json.dumps({"model_sha256": "a" * 64, "metrics": {}}))
    assert peer_results(tmp_path, manifest) == {"model_sha256": "a" * 64, "metrics": {}}


@pytest.mark.parametrize(("weight", "says"), [(0.0, "does not learn from it"), (0.25, "weight 0.25")])
def test_the_card_says_whether_the_model_learnt_from_galamo(weight, says):
    from ml.model_card import _peer_section

    peer = {"metrics": {}, "latency_ms": {"ours": 1.0, "galamo": 2.0}}
    section = "\n".join(_peer_section(peer, weight))
    assert says in section
    assert _peer_section(None, weight) == []
