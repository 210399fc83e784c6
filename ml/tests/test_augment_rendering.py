"""ml.augment's rendering augmentation: DECaLS rows moved between the GZ DECaLS and Galaxy10 renderings."""

from dataclasses import replace

import pytest
import torch

from ml import augment
from ml.augment import augmented_views
from ml.config import Config, load_config


def reference_call(params):
    pixels = torch.randint(
        0, 256, (6, 40, 40, 3), generator=torch.Generator().manual_seed(3), dtype=torch.uint8
    )
    generator = torch.Generator().manual_seed(7)
    bridge = torch.tensor([True, False, True, False, False, True])
    out = augmented_views(pixels, torch.full((6,), 0.8), 32, params, generator, bridge)
    return out, generator


def test_probability_zero_reproduces_the_views_from_before_the_augmentation_existed():
    # Computed with ml/augment.py as it was before the rendering augmentation (commit 223acb8),
    # so the running reference ablation stays comparable with a configuration that leaves it off.
    params = load_config().augment
    assert params.rendering_probability == 0.0
    out, generator = reference_call(params)
    weights = torch.arange(out.numel(), dtype=torch.float64).remainder(97).view(out.shape)
    assert float(out.double().sum()) == pytest.approx(9535.264003416523, rel=1e-6)
    assert float((out.double() * weights).sum()) == pytest.approx(457168.0118746348, rel=1e-6)
    # The same number of draws: the generator's next number is the one it was.
    assert float(torch.rand(1, generator=generator)) == pytest.approx(0.3502, abs=1e-4)
    # The check can fail: turning the augmentation on moves both.
    on, _ = reference_call(replace(params, rendering_probability=0.5))
    assert float(on.double().sum()) != pytest.approx(9535.264003416523, rel=1e-6)


def quiet(**changes):
    """The committed settings with every other photometric change off."""
    return replace(
        load_config().augment,
        colour_jitter=0.0,
        brightness=0.0,
        saturation=(1.0, 1.0),
        sky_probability=0.0,
        neighbour_probability=0.0,
        noise_sigma=0.0,
        resolution_probability=0.0,
        blur_probability=0.0,
        **changes,
    )


def flat(n, colour):
    return torch.tensor(colour, dtype=torch.uint8).expand(n, 16, 16, 3).contiguous()


def run(params, pixels, bridge, seed=0):
    return augmented_views(
        pixels, torch.ones(len(pixels)), 8, params, torch.Generator().manual_seed(seed), bridge
    )


def hsv_saturation(images):
    high, low = images.amax(dim=1), images.amin(dim=1)
    return (high - low) / high


def test_rerender_moves_hsv_saturation_and_luminance_by_exactly_the_amounts_asked():
    # Pale colours, so that neither the saturation nor any channel reaches the clamp.
    images = 0.3 + 0.2 * torch.rand(4, 3, 6, 6, generator=torch.Generator().manual_seed(1))
    out = augment.rerender(images, 1.5, 0.05)
    torch.testing.assert_close(out.mean(dim=1), images.mean(dim=1) + 0.05)
    torch.testing.assert_close(hsv_saturation(out), (1.5 * hsv_saturation(images)).clamp(max=1.0))
    # The hue: the channels keep their order and relative place between the largest and smallest.
    position = (images.amax(dim=1, keepdim=True) - images) / (
        images.amax(dim=1, keepdim=True) - images.amin(dim=1, keepdim=True)
    )
    new_position = (out.amax(dim=1, keepdim=True) - out) / (
        out.amax(dim=1, keepdim=True) - out.amin(dim=1, keepdim=True)
    )
    torch.testing.assert_close(new_position, position, atol=1e-4, rtol=0)
    grey = torch.full((1, 3, 2, 2), 0.3)
    torch.testing.assert_close(augment.rerender(grey, 1.8, -0.1), torch.full_like(grey, 0.2))


def test_decals_rows_get_their_saturation_scaled_within_the_bounds_and_bridged_rows_do_not():
    n = 200
    bridge = torch.arange(n) % 2 == 0
    params = quiet(rendering_probability=0.5, rendering_sky=0.0, rendering_saturation=1.8)
    pixels = flat(n, (150, 100, 75))
    views = run(params, pixels, bridge)
    original = hsv_saturation(pixels.permute(0, 3, 1, 2).float() / 255)[:, 4, 4]
    factor = hsv_saturation(views)[:, 4, 4] / original
    torch.testing.assert_close(factor[bridge], torch.ones(n // 2), atol=1e-4, rtol=0)
    # The luminance stays where there is no sky offset.
    torch.testing.assert_close(views.mean(dim=1)[:, 4, 4], torch.full((n,), 325 / 765), atol=1e-4, rtol=0)
    decals = factor[~bridge]
    assert decals.min() >= 1 / 1.8 - 1e-4
    assert decals.max() <= 1.8 + 1e-4
    changed = (decals - 1).abs() > 1e-3
    # About half the DECaLS rows are chosen, and they go both ways: greyer and more colourful.
    assert 0.3 < changed.float().mean() < 0.7
    assert (decals < 0.8).any()
    assert (decals > 1.3).any()


def test_decals_rows_get_a_sky_offset_either_way_within_the_bound():
    n = 200
    bridge = torch.zeros(n, dtype=torch.bool)
    params = quiet(rendering_probability=1.0, rendering_saturation=1.0, rendering_sky=0.06)
    views = run(params, flat(n, (100, 100, 100)), bridge)
    offset = views[:, 0, 4, 4] - 100 / 255
    assert offset.abs().max() <= 0.06 + 1e-5
    assert offset.min() < -0.03
    assert offset.max() > 0.03
    # A flat image stays flat: the offset is one number per image.
    torch.testing.assert_close(views, views[:, :1, :1, :1].expand_as(views))


def test_chosen_decals_rows_get_the_wider_scale_range(monkeypatch):
    scales = []
    original = augment._views

    def spy(pixels, zoom, size, angle, flip, scale, shift):
        scales.append(scale)
        return original(pixels, zoom, size, angle, flip, scale, shift)

    monkeypatch.setattr(augment, "_views", spy)
    n = 400
    bridge = torch.arange(n) % 2 == 0
    run(quiet(rendering_probability=1.0, rendering_scale=1.35, scale_jitter=1.15), flat(n, (9, 9, 9)), bridge)
    logs = scales[0].log()
    assert logs[bridge].abs().max() <= torch.log(torch.tensor(1.15)) + 1e-6
    assert logs[~bridge].abs().max() <= torch.log(torch.tensor(1.35)) + 1e-6
    assert logs[~bridge].abs().max() > torch.log(torch.tensor(1.25))


def test_without_a_bridge_mask_no_row_is_rendered():
    # bridge=None means every row gets the SDSS bridge, so none is DECaLS imaging.
    params = quiet(rendering_probability=1.0, rendering_sky=0.06)
    views = run(params, flat(50, (100, 100, 100)), None)
    torch.testing.assert_close(views, torch.full_like(views, 100 / 255), atol=1e-5, rtol=0)


def test_old_configurations_read_back_with_the_augmentation_off():
    stored = load_config().as_dict()
    for key in ("rendering_probability", "rendering_saturation", "rendering_sky", "rendering_scale"):
        del stored["augment"][key]
    assert Config.from_dict(stored).augment.rendering_probability == 0.0
