"""The models ml.decals_validation scores: packaged TFLite models and PyTorch training runs,
each as a predictor of Galaxy10 probabilities (and vote fractions, where it has them) from
serving inputs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.config import Config
from ml.evaluate import TFLiteModel
from ml.model import build_model
from ml.vote_loss import VoteHead, expected_fractions

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass
class LoadedModel:
    name: str
    predict: Predictor
    config: Config
    sdss_pooled: dict[str, Any] | None  # val/pooled as recorded, when the model carries it
    # A run's vote head (vote_head.pt): inputs -> raw outputs (N, votes.NUM_ANSWERS), or None.
    predict_votes: Predictor | None = None
    # Inputs -> expected vote fractions (N, votes.NUM_ANSWERS): the vote head's, or a TFLite output.
    predict_fractions: Predictor | None = None


def load_model(path: Path, run_config: Config | None = None) -> LoadedModel:
    """A packaged model folder (galaxy10.tflite + galaxy10.json), a .tflite file beside its
    manifest, or a training run folder (model.pt + run.json, scored in PyTorch). A run still
    training has only best.pt: it is scored with ``run_config`` (the configuration it was
    started with) and no temperature, which moves no top class."""
    if path.is_dir() and (path / "run.json").exists() and not (path / "galaxy10.tflite").exists():
        return _torch_model(path)
    if path.is_dir() and (path / "best.pt").exists() and run_config is not None:
        return _torch_model(path, "best.pt", {"config": run_config.as_dict()})
    tflite = path / "galaxy10.tflite" if path.is_dir() else path
    manifest = json.loads(tflite.with_suffix(".json").read_text())
    model = TFLiteModel(tflite)
    return LoadedModel(
        f"{tflite} ({manifest.get('model_version', '?')})",
        model,
        Config.from_dict(manifest["training"]["config"]),
        manifest.get("metrics", {}).get("val/pooled"),
        predict_fractions=model.votes if model.has_votes else None,
    )


def _batches(inputs: np.ndarray, size: int = 64) -> Iterator[torch.Tensor]:
    """NHWC model inputs as NCHW tensors, ``size`` images at a time."""
    batch = torch.from_numpy(inputs).permute(0, 3, 1, 2).contiguous()
    return (batch[i : i + size] for i in range(0, len(batch), size))


def _torch_model(run_dir: Path, weights: str = "model.pt", run: dict[str, Any] | None = None) -> LoadedModel:
    run = run or json.loads((run_dir / "run.json").read_text())
    config = Config.from_dict(run["config"])
    model = build_model(config.image_size, pretrained=False)
    model.load_state_dict(torch.load(run_dir / weights))
    model.eval()
    temperature = float(run.get("temperature", 1.0))

    @torch.no_grad()
    def predict(inputs: np.ndarray) -> np.ndarray:
        logits = torch.cat([model(batch) for batch in _batches(inputs)])
        return torch.softmax(logits / temperature, dim=1).numpy()

    predict_votes = predict_fractions = None
    if (run_dir / "vote_head.pt").exists():
        head = VoteHead(model._fc.in_features)
        head.load_state_dict(torch.load(run_dir / "vote_head.pt"))
        head.attach(model._fc)
        head.eval()

        @torch.no_grad()
        def predict_votes(inputs: np.ndarray) -> np.ndarray:
            outputs = []
            for batch in _batches(inputs):
                # The head reads the features this forward pass leaves on the classifier's layer.
                model(batch)
                outputs.append(head())
            return torch.cat(outputs).numpy()

        def predict_fractions(inputs: np.ndarray) -> np.ndarray:
            return expected_fractions(torch.from_numpy(predict_votes(inputs))).numpy()

    return LoadedModel(
        f"{run_dir}/{weights} (PyTorch)", predict, config, None, predict_votes, predict_fractions
    )
