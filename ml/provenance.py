"""What a training run records about its inputs: per-source counts and checksums, the commit."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from ml import sources as src


def provenance(source: src.SourceSet) -> dict[str, Any]:
    """Counts and a content checksum of the images and labels a source used."""
    digest = hashlib.sha256()
    for ref in source.images:
        if isinstance(ref, src.H5Image):
            digest.update(f"{ref.path}#{ref.index}".encode())
        else:
            digest.update(Path(ref).read_bytes())
    labels = hashlib.sha256(
        np.ascontiguousarray(source.soft).tobytes() + np.ascontiguousarray(source.group_targets).tobytes()
    ).hexdigest()
    return {
        "name": source.name,
        "images": len(source),
        "crop_fraction": source.crop_fraction,
        "images_sha256": digest.hexdigest(),
        "targets_sha256": labels,
        **{k: v for k, v in source.notes.items() if isinstance(v, int | float | str)},
    }


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
