"""The training data every part of ml/ shares: sources, their splits, batches and preprocessing.

``collect_sources`` finds the labelled collections under a data root; ``split_indices``
(ml/sources.py) splits each one the same way for training, evaluation and experiments;
``prepare_splits`` attaches the cached pixels and the training-only targets; ``epoch_plan``
and ``batch_tensors`` turn the training splits into batches.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch

from classifier.core.preprocessing import PreprocessConfig
from ml import sources as src
from ml.cache import cache_pixels, cached_fraction, source_inputs
from ml.config import Config, ConfigLike, TrainSettings
from ml.metrics import GROUP_MATRIX
from ml.votes import ANSWER_SLICES, NUM_ANSWERS

log = logging.getLogger("ml.dataset")

# The source galamo's groups teach (ml/experiments/teacher.py writes its file).
TEACHER_SOURCE = "gz_decals_partial"


@dataclass
class Split:
    """One source's split, with its cached pixels.

    ``target_domain``: images from the survey the model serves (DECaLS).
    ``consistency``: unlabelled target-domain images, trained by agreement between two views.
    ``teacher``: (N, 4) group distributions from galamo's CNN (ml/experiments/teacher.py), or None.
    """

    source: src.SourceSet
    pixels: np.ndarray
    zoom: float
    target_domain: bool = False
    consistency: bool = False
    teacher: np.ndarray | None = None


def serving_preprocess_config(config: ConfigLike) -> PreprocessConfig:
    """The serving preprocessing: the model's input size and Galaxy10's crop."""
    config = Config.of(config)
    return PreprocessConfig(size=config.image_size, crop_fraction=config.crops.galaxy10)


def collect_sources(
    config: ConfigLike,
    data_root: Path,
    galaxy10_h5: Path | None = None,
    folders: list[Path] | None = None,
    manifests: list[Path] | None = None,
) -> list[src.SourceSet]:
    """Every labelled source found under ``data_root`` (missing ones are skipped with a warning),
    the real Galaxy10 file, and the users' folders and CSV manifests."""
    config = Config.of(config)
    crops = config.crops
    read_spiral = config.labels.read_spiral
    found: list[src.SourceSet] = []
    loaders = [
        (
            "gz2_votes_sdss",
            partial(src.load_gz2_hart, read_spiral=read_spiral, with_votes=config.train.gz2_votes),
            crops.gz2_hart,
        ),
        ("kaggle_gz_votes_sdss", partial(src.load_gz2_kaggle, read_spiral=read_spiral), crops.gz2_kaggle),
        ("gz1_sdss", src.load_gz1, crops.gz1),
        ("gz_decals_partial", src.load_gz_decals_partial, crops.gz_decals_partial),
    ]
    if config.train.gz_decals_votes:
        loaders.append(
            ("gz_decals_votes", partial(src.load_gz_decals_votes, config=config), crops.decals_votes)
        )
    for folder, loader, crop in loaders:
        if (data_root / folder).is_dir():
            found.append(loader(data_root / folder, crop))
        else:
            log.warning("source %s not found under %s; skipped", folder, data_root)
    if galaxy10_h5:
        found.append(src.load_galaxy10_h5(galaxy10_h5, crops.galaxy10))
    for folder in folders or []:
        found.append(src.load_folder(folder, crops.user))
    for manifest in manifests or []:
        found.append(src.load_csv_manifest(manifest, crops.user))
    return found


def dev_inputs(dev: src.SourceSet, pre: PreprocessConfig) -> torch.Tensor:
    """Galaxy10 DECaLS images through the serving preprocessing, exactly."""
    return torch.from_numpy(source_inputs(dev, pre)).permute(0, 3, 1, 2).contiguous()


def group_targets(path: Path, source: src.SourceSet) -> np.ndarray:
    """(N, 4) teacher group distributions for the rows of ``source`` (a training split).

    Every row must have an entry, and the file must hold nothing but training images:
    a teacher that saw an evaluation image would leak into the scores.
    """
    table = json.loads(path.read_text())
    if table.get("source") != source.name or table.get("split") != "train":
        raise ValueError(f"{path} holds {table.get('source')}/{table.get('split')}, not {source.name}/train")
    probabilities = table["probabilities"]
    missing = [key for key in source.keys if key not in probabilities]
    if missing:
        raise ValueError(f"{path} lacks {len(missing)} training images of {source.name}, e.g. {missing[0]}")
    extra = set(probabilities) - set(source.keys)
    if extra:
        raise ValueError(f"{path} holds {len(extra)} images outside {source.name}'s training split")
    classes = np.array([probabilities[key] for key in source.keys], dtype=np.float32)
    groups = classes @ GROUP_MATRIX.astype(np.float32)
    return groups / groups.sum(axis=1, keepdims=True)


def vote_soft_weight(counts: np.ndarray, settings: TrainSettings) -> np.ndarray:
    """The weight of a GZ DECaLS galaxy's vote-implied 10-class target: ``votes_soft_weight``
    times its smooth-or-featured vote count over ``votes_full_weight`` (at most 1), so a 5-vote
    galaxy's noisy target teaches a quarter as much as a 20-vote one's; 0 turns the soft
    targets off and leaves the vote likelihood."""
    answered = counts[:, ANSWER_SLICES["smooth-or-featured"]].sum(axis=1)
    scale = np.minimum(1.0, answered / settings.votes_full_weight)
    return (settings.votes_soft_weight * scale).astype(np.float32)


def prepare_splits(sources: list[src.SourceSet], config: Config) -> dict[str, list[Split]]:
    """Each source's train/validation/test split, cached pixels attached.

    With ``train.decals_partial = "adaptation"`` the Galaxy Zoo DECaLS training images
    lose their group targets (the three fractions contradict each other there) and
    train by view consistency only; their validation and test splits keep the
    fractions as a reported group error. With ``train.teacher_weight`` > 0 those training
    images also get galamo's group distribution as a low-weight target (ml/experiments/teacher.py).
    """
    side = round(config.image_size * config.cache_margin)
    settings = config.train
    target_domain = set(settings.target_domain_sources)
    splits: dict[str, list[Split]] = {"train": [], "val": [], "test": []}
    for source in sources:
        pixels = cache_pixels(source, side=side, margin=config.cache_margin)
        zoom = source.crop_fraction / cached_fraction(source.crop_fraction, config.cache_margin)
        for name, indices in src.split_indices(source, config).items():
            subset = source.subset(indices)
            adapt = (
                name == "train"
                and source.name == "gz_decals_partial"
                and settings.decals_partial == "adaptation"
            )
            if adapt:
                subset.group_weights[:] = 0.0
            # Only the GZ DECaLS targets are implied by these counts; GZ2's (train.gz2_votes) come
            # from its debiased fractions and keep their weight.
            if name == "train" and source.name == "gz_decals_votes" and source.votes is not None:
                subset.soft_weight[:] = subset.soft_weight * vote_soft_weight(subset.votes, settings)
            taught = name == "train" and source.name == TEACHER_SOURCE and settings.teacher_weight > 0
            teacher = group_targets(Path(settings.teacher_file), subset) if taught else None
            split = Split(subset, pixels[indices], zoom, source.name in target_domain, adapt, teacher)
            splits[name].append(split)
    return splits


def epoch_plan(train: list[Split], config: Config, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Which (split, row) pairs one epoch visits, shuffled."""
    plan: list[tuple[int, int]] = []
    settings = config.train
    for index, split in enumerate(train):
        n = len(split.source)
        if split.source.name == "gz1":
            strata = split.source.strata
            groups = np.unique(strata)
            per_group = settings.gz1_per_epoch // len(groups)
            for g in groups:
                members = np.flatnonzero(strata == g)
                picks = rng.choice(members, size=per_group, replace=len(members) < per_group)
                plan.extend((index, int(i)) for i in picks)
        elif split.source.name == "gz_decals_partial":
            plan.extend((index, i) for _ in range(settings.decals_partial_repeats) for i in range(n))
        else:
            plan.extend((index, i) for i in range(n))
    order = rng.permutation(len(plan))
    return [plan[i] for i in order]


def batch_tensors(splits: list[Split], picks: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    fields = ("soft", "soft_weight", "group_masks", "group_targets", "group_weights")
    out = {f: torch.from_numpy(np.stack([getattr(splits[s].source, f)[i] for s, i in picks])) for f in fields}
    # Only batches that hold GZ DECaLS rows carry vote counts; other rows count no votes,
    # which the Dirichlet-multinomial scores as exactly zero.
    if any(splits[s].source.votes is not None for s, _ in picks):
        no_votes = np.zeros(NUM_ANSWERS, np.float32)
        out["votes"] = torch.from_numpy(
            np.stack(
                [no_votes if splits[s].source.votes is None else splits[s].source.votes[i] for s, i in picks]
            )
        )
    out["pixels"] = torch.from_numpy(np.stack([splits[s].pixels[i] for s, i in picks]))
    out["zoom"] = torch.tensor([splits[s].zoom for s, _ in picks], dtype=torch.float32)
    out["target_domain"] = torch.tensor([splits[s].target_domain for s, _ in picks], dtype=torch.bool)
    out["consistency"] = torch.tensor([splits[s].consistency for s, _ in picks], dtype=torch.bool)
    taught = [splits[s].teacher is not None for s, _ in picks]
    # Only batches that hold taught rows carry the teacher's groups (none when it is off).
    if any(taught):
        out["has_teacher"] = torch.tensor(taught, dtype=torch.bool)
        out["teacher"] = torch.from_numpy(
            np.stack(
                [
                    splits[s].teacher[i] if splits[s].teacher is not None else np.zeros(4, np.float32)
                    for s, i in picks
                ]
            )
        )
    return out
