"""ml.renderings on generated images whose colour and size are known."""

import numpy as np
import pytest
import torch
from PIL import Image

from ml import renderings


def galaxy(side=256, sigma=12.0, colour=(1.0, 0.8, 0.6), sky=0.1, noise=0.01, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side]
    profile = np.exp(-(((yy - side / 2) ** 2 + (xx - side / 2) ** 2) / (2 * sigma**2)))
    image = sky + 0.8 * profile[..., None] * np.array(colour)[None, None, :]
    image = image + rng.normal(0, noise, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def test_a_grey_galaxy_is_less_saturated_than_a_coloured_one():
    grey = renderings.image_stats(galaxy(colour=(0.8, 0.8, 0.8)))
    coloured = renderings.image_stats(galaxy(colour=(1.0, 0.6, 0.3)))
    assert grey.saturation < 0.1 < coloured.saturation
    assert grey.red_over_blue == pytest.approx(1.0, abs=0.05)
    assert coloured.red_over_blue > 1.5


def test_a_zoomed_in_galaxy_has_a_larger_extent_and_the_sky_is_measured():
    small = renderings.image_stats(galaxy(sigma=6))
    large = renderings.image_stats(galaxy(sigma=24))
    assert large.extent > 2 * small.extent
    assert small.sky_level == pytest.approx(0.1, abs=0.01)
    noisy = renderings.image_stats(galaxy(sigma=6, noise=0.05))
    assert noisy.sky_noise > 3 * small.sky_noise


def test_sources_are_measured_from_the_folders_present(tmp_path):
    folder = tmp_path / "gz_decals_votes" / "images"
    folder.mkdir(parents=True)
    for seed in range(4):
        Image.fromarray(galaxy(sigma=8 + seed, seed=seed)).save(folder / f"g{seed}.png")
    rows = renderings.measure(tmp_path, per_source=3)
    assert [r.source for r in rows] == ["gz_decals_votes"]
    assert rows[0].images == 3
    assert rows[0].extent_iqr[0] <= rows[0].extent_median <= rows[0].extent_iqr[1]
    assert "gz_decals_votes" in renderings.markdown_table(rows)


def measured(image01):
    return renderings.image_stats((np.clip(image01, 0, 1) * 255).round().astype(np.uint8))


@pytest.mark.parametrize("sigma", [8, 16])
def test_a_gz_decals_like_galaxy_measures_like_galaxy10_once_mapped(sigma):
    # Greyish galaxy on a dark sky: measured saturation and sky near GZ DECaLS's 0.139 and 0.068.
    image = galaxy(side=128, sigma=sigma, colour=(1.0, 0.9, 0.85), sky=0.068, noise=0.01) / 255.0
    before = measured(image)
    assert before.saturation == pytest.approx(renderings.GZ_DECALS_SATURATION, abs=0.01)
    assert before.sky_level == pytest.approx(renderings.GZ_DECALS_SKY, abs=0.005)
    after = measured(renderings.to_galaxy10_rendering(image, channel_axis=-1))
    assert after.saturation == pytest.approx(renderings.GALAXY10_SATURATION, abs=0.015)
    assert after.sky_level == pytest.approx(renderings.GALAXY10_SKY, abs=0.005)
    # The hue is kept (still redder than blue, only more so) and the framing is left alone.
    assert after.red_over_blue > before.red_over_blue > 1
    assert after.extent == pytest.approx(before.extent, rel=0.1)


def test_the_mapping_is_the_same_on_nchw_tensors_and_nhwc_arrays():
    hwc = np.stack([galaxy(side=32, sigma=s, seed=s) / 255.0 for s in (3, 5)]).astype(np.float32)
    mapped = renderings.to_galaxy10_rendering(hwc, channel_axis=-1)
    assert isinstance(mapped, np.ndarray)
    assert mapped.shape == hwc.shape
    assert mapped.dtype == np.float32
    tensor = renderings.to_galaxy10_rendering(torch.from_numpy(hwc).permute(0, 3, 1, 2))
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_allclose(tensor.permute(0, 2, 3, 1).numpy(), mapped, atol=1e-6)
    assert not np.allclose(mapped, hwc, atol=0.01)
