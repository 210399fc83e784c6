from pathlib import Path

import pytest

DATA_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture
def data_root() -> Path:
    if not (DATA_ROOT / "galaxy10_decals_dev").is_dir():
        pytest.skip(f"real galaxy data not present at {DATA_ROOT} (read-only, outside the project)")
    return DATA_ROOT
