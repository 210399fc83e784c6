"""Source adapters: a generated Galaxy10-schema h5, user folders and CSVs, real data."""

import h5py
import numpy as np
import pytest
from PIL import Image

from ml import sources
from ml.config import load_config


def write_h5(path, images, answers):
    with h5py.File(path, "w") as h5:
        h5["images"] = np.asarray(images, dtype=np.uint8)
        h5["ans"] = np.asarray(answers, dtype=np.uint8)
        h5["ra"] = np.zeros(len(answers))
        h5["dec"] = np.zeros(len(answers))
        h5["redshift"] = np.zeros(len(answers))
        h5["pxscale"] = np.full(len(answers), 0.262)


def test_h5_drops_duplicates_and_conflicting_pairs(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(8, 16, 16, 3), dtype=np.uint8)
    answers = [0, 1, 2, 3, 4, 5, 6, 7]
    images[5] = images[4]  # same image, labels 4 and 5: conflicting, both dropped
    images[7] = images[6]
    answers[7] = 6  # same image, same label: one copy kept
    path = tmp_path / "Galaxy10_DECals.h5"
    write_h5(path, images, answers)

    source = sources.load_galaxy10_h5(path, crop_fraction=0.7)

    assert [ref.index for ref in source.images] == [0, 1, 2, 3, 6]
    assert source.soft.argmax(axis=1).tolist() == [0, 1, 2, 3, 6]
    assert source.notes == {"rows": 8, "dropped_duplicates": 1, "dropped_conflicting": 2}


def test_h5_images_load_through_the_cache_loader(tmp_path):
    from ml.cache import load_image

    images = np.zeros((2, 20, 20, 3), dtype=np.uint8)
    images[1, :, :, 0] = 200
    path = tmp_path / "g.h5"
    write_h5(path, images, [1, 2])
    source = sources.load_galaxy10_h5(path, 0.7)
    assert np.asarray(load_image(source.images[1]))[0, 0].tolist() == [200, 0, 0]


def test_stratified_split_is_disjoint_proportional_and_seeded():
    strata = np.repeat(np.arange(5), 40)
    train, val, test = sources.stratified_split(strata, (0.8, 0.1, 0.1), seed=1)
    assert len(set(train) | set(val) | set(test)) == 200
    assert not set(train) & set(val)
    assert not set(val) & set(test)
    assert not set(train) & set(test)
    assert np.bincount(strata[val]).tolist() == [4] * 5
    again = sources.stratified_split(strata, (0.8, 0.1, 0.1), seed=1)
    assert np.array_equal(again[1], val)
    other = sources.stratified_split(strata, (0.8, 0.1, 0.1), seed=2)
    assert not np.array_equal(other[1], val)


def test_split_indices_follow_the_configured_fractions_and_top_level_seed_only():
    strata = np.repeat(np.arange(5), 40)
    source = sources.soft_source(
        "gz2_hart", list(range(200)), list(range(200)), np.eye(10, dtype=np.float32)[strata], 0.6
    )
    source.strata = strata
    config = load_config(overrides={"seed": 3, "split.fractions": [0.7, 0.2, 0.1], "train.seed": 99})
    parts = sources.split_indices(source, config)
    expected = sources.stratified_split(strata, (0.7, 0.2, 0.1), seed=3)
    assert list(parts) == ["train", "val", "test"]
    for got, want in zip(parts.values(), expected, strict=True):
        assert np.array_equal(got, want)
    assert len(parts["val"]) == 40


def make_image(path, colour=(10, 20, 30)):
    Image.new("RGB", (32, 32), colour).save(path)


def test_folder_source_reads_index_or_name_folders(tmp_path):
    root = tmp_path / "dataset"
    for folder in ("2", "Barred Spiral", "Edge-on with Bulge"):
        (root / folder).mkdir(parents=True)
    make_image(root / "2" / "a.png")
    make_image(root / "Barred Spiral" / "b.jpg")
    make_image(root / "Edge-on with Bulge" / "c.jpeg")
    (root / "2" / "notes.txt").write_text("not an image")
    source = sources.load_folder(root, 0.7)
    assert len(source) == 3
    assert sorted(source.soft.argmax(axis=1).tolist()) == [2, 5, 9]


def test_csv_manifest_and_unknown_labels(tmp_path):
    make_image(tmp_path / "x.png")
    make_image(tmp_path / "y.png")
    (tmp_path / "m.csv").write_text("path,label\nx.png,7\ny.png,Merging\n")
    source = sources.load_csv_manifest(tmp_path / "m.csv", 0.7)
    assert source.soft.argmax(axis=1).tolist() == [7, 1]
    (tmp_path / "bad.csv").write_text("path,label\nx.png,Quasar\n")
    with pytest.raises(ValueError, match="Quasar"):
        sources.load_csv_manifest(tmp_path / "bad.csv", 0.7)


def test_real_sources_load_with_valid_targets(data_root):
    hart = sources.load_gz2_hart(data_root / "gz2_votes_sdss", 0.6)
    kaggle = sources.load_gz2_kaggle(data_root / "kaggle_gz_votes_sdss", 0.6)
    gz1 = sources.load_gz1(data_root / "gz1_sdss", 0.4)
    decals = sources.load_gz_decals_partial(data_root / "gz_decals_partial", 0.85)
    dev = sources.load_galaxy10_dev(data_root / "galaxy10_decals_dev", 0.7)
    assert (len(hart), len(kaggle), len(decals), len(dev)) == (1000, 4064, 470, 30)
    assert len(gz1) == 6664 - 56  # don't-know dropped
    for soft in (hart.soft, kaggle.soft):
        np.testing.assert_allclose(soft.sum(axis=1), 1.0, atol=1e-5)
        assert (soft >= 0).all()
        # Every Galaxy10 class is the most likely one for some galaxy.
        assert len(np.unique(np.concatenate([hart.soft, kaggle.soft]).argmax(axis=1))) == 10
    assert (gz1.group_weights[:, 0] == 1).all()
    assert (gz1.group_targets[:, 0] == 1).all()
    assert ((decals.group_targets >= 0) & (decals.group_targets <= 1)).all()
    assert np.bincount(dev.soft.argmax(axis=1)).tolist() == [3] * 10
