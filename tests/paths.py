"""Where the repository and the reference data beside it are. A module of its own, without fixtures,
so that benchmark child processes can import it without pulling in the test machinery."""

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CONCEPTFREQ_SHARED_DATA", REPO.parent / "shared" / "data"))
