from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
EXERMOTE_DIR = SHARED_DATA / "exermote"


@pytest.fixture
def exermote_files() -> list[Path]:
    files = sorted(EXERMOTE_DIR.glob("*.csv"))
    if not files:
        pytest.skip(f"real Exermote recordings not found at {EXERMOTE_DIR} (../shared is absent)")
    return files
