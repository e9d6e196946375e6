"""Where the project lives on disk: the repository root and the shipped suites (torch-free)."""

from __future__ import annotations

from pathlib import Path

from bench.core.errors import BenchError

REPO_ROOT = Path(__file__).resolve().parents[2]
SUITES_DIR = REPO_ROOT / "suites"


def resolve_suite_path(suite: str | Path) -> Path:
    """A suite file path, or a shipped suite's name (`smoke` -> suites/smoke.yaml).

    Neither: BenchError naming the shipped suites.
    """
    path = Path(suite)
    if path.exists():
        return path
    shipped = SUITES_DIR / f"{suite}.yaml"
    if not path.suffix and shipped.exists():
        return shipped
    names = ", ".join(p.stem for p in sorted(SUITES_DIR.glob("*.yaml"))) or "none"
    listing = f"shipped suites: {names} (`bench list suites` describes them)"
    if path.suffix:
        raise BenchError(f"suite file {str(suite)!r} does not exist; {listing}")
    raise BenchError(f"no suite file or shipped suite named {str(suite)!r}; {listing}")
