"""Ward boundaries: the point-in-polygon check and the file's own checks at config load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.boundaries import load_boundaries
from bot.config import ConfigError
from tests.conftest import make_config

SIMPLIFIED = Path(__file__).resolve().parents[1] / "sim/data/wards_simplified.geojson"


def test_a_point_is_in_its_ward_outside_others_and_a_hole_is_outside() -> None:
    b = load_boundaries(SIMPLIFIED, ["Heath Town", "Park", "Penn"])
    assert b.check(52.5886, -2.1103, "Heath Town").describe() == "in Heath Town"
    assert b.check(52.5886, -2.1103, "Park").describe() == "outside Park (looks like Heath Town)"
    assert b.ward_at(52.5925, -2.1450) is None  # in the hole cut out of Park
    assert b.check(52.5925, -2.1450, "Park").describe() == "outside Park"
    assert b.check(52.6500, -2.2000, "Penn").describe() == "Penn given, not checked"


def test_a_boundaries_file_naming_unknown_wards_or_in_grid_metres_is_refused(
    tmp_path: Path, db_url: str
) -> None:
    data = json.loads(SIMPLIFIED.read_text())
    data["features"][0]["properties"]["WD23NM"] = "Heath Towne"
    odd = tmp_path / "odd.geojson"
    odd.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not wards of the partnership: Heath Towne"):
        make_config(db_url, wards={"boundaries_file": str(odd)})
    data = json.loads(SIMPLIFIED.read_text())
    data["features"][1]["geometry"]["coordinates"][0][0][0] = [391500.0, 299200.0]
    metres = tmp_path / "bng.geojson"
    metres.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="WGS84"):
        make_config(db_url, wards={"boundaries_file": str(metres)})
