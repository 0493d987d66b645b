"""The bundled sample county builds to exactly the pinned layers (rows, columns, values, geometries).

Why: a refactoring, a dependency upgrade or a change elsewhere must not move a single vertex of what
``make run``'s ``gridgeo build`` writes without someone deciding so. ``sample_build.json`` holds one
digest per layer (:func:`bench.compare_layers.layer_digest`). After an intended change of the build,
re-pin it with ``GRIDGEO_UPDATE_DIGEST=1 python -m pytest tests/test_sample_build.py`` and say why in
the commit; ``python bench/compare_layers.py OLD.gpkg NEW.gpkg`` shows what moved.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.compare_layers import layer_digest
from gridgeo.cli import main
from gridgeo.data.io import list_layers

ROOT = Path(__file__).resolve().parents[1]
PINNED = Path(__file__).with_name("sample_build.json")


@pytest.mark.slow
def test_sample_build_is_unchanged(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "county.gpkg"
    assert main(["build", str(ROOT / "boundaries" / "sample_rules.toml"), "-o", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    import geopandas as gpd

    got = {}
    for name in list_layers(out):  # the data layers: not QGIS's layer_styles (gridgeo.data.gpkg_styles)
        gdf = gpd.read_file(out, layer=name)
        got[str(name)] = {"rows": len(gdf), "digest": layer_digest(gdf)}
    if os.environ.get("GRIDGEO_UPDATE_DIGEST") == "1":
        PINNED.write_text(json.dumps(got, indent=1) + "\n", encoding="utf-8")
    pinned = json.loads(PINNED.read_text(encoding="utf-8"))
    assert list(got) == list(pinned)
    changed = {k: (pinned[k], got[k]) for k in pinned if pinned[k] != got[k]}
    assert not changed, f"the sample build changed in {sorted(changed)}: {changed}"
