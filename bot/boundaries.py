"""Ward boundaries: which ward a shared point is in, to check the ward a reporter chose.

The boundaries are an optional GeoJSON file of ward polygons (``wards.boundaries_file``), as
the ONS Open Geography Portal publishes them: a FeatureCollection whose features carry the
ward's name in ``WDyyNM`` (e.g. ``WD23NM``) or ``name``, with Polygon or MultiPolygon geometry
in WGS84 longitude/latitude (RFC 7946). Names must be wards of the partnership.

Point-in-polygon is the even-odd ray cast (holes count as outside): a few lines, enough for a
yes/no at the ~100 m the point is kept to, so no geometry library (and its native build) is
needed. The answer is never finer than the ward.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Ring = list[tuple[float, float]]  # (longitude, latitude), closed or not
_NAME = re.compile(r"^WD\d\dNM$")


class BoundaryError(ValueError):
    """The boundaries file cannot be used; the message says why."""


@dataclass(frozen=True)
class WardShape:
    """One ward: polygons, each an outer ring and its holes."""

    name: str
    polygons: tuple[tuple[Ring, ...], ...]

    def contains(self, lon: float, lat: float) -> bool:
        """Whether the point is inside (on an edge counts either way: it is ~100 m coarse)."""
        for rings in self.polygons:
            if _inside(rings[0], lon, lat) and not any(_inside(h, lon, lat) for h in rings[1:]):
                return True
        return False


def _inside(ring: Ring, x: float, y: float) -> bool:
    """Even-odd ray cast: count the ring's edges a ray from the point eastwards crosses."""
    inside = False
    n = len(ring)
    for i in range(n):
        x1, y1 = ring[i]
        x2, y2 = ring[(i + 1) % n]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


@dataclass(frozen=True)
class Boundaries:
    """The wards with boundaries (some of the partnership's wards may have none)."""

    wards: tuple[WardShape, ...]

    def names(self) -> list[str]:
        """The wards the file covers."""
        return [w.name for w in self.wards]

    def ward_at(self, lat: float, lon: float) -> str | None:
        """The ward the point is in, or None if it is in none of them."""
        return next((w.name for w in self.wards if w.contains(lon, lat)), None)

    def check(self, lat: float, lon: float, chosen: str) -> WardCheck:
        """The point against the ward chosen."""
        found = self.ward_at(lat, lon)
        if found == chosen:
            return WardCheck("in", chosen, None)
        if found is None and chosen not in self.names():
            return WardCheck("not checked", chosen, None)  # no boundary for it, none other
        return WardCheck("outside", chosen, found)


@dataclass(frozen=True)
class WardCheck:
    """A shared point checked against the ward chosen: ``in``, ``outside`` (with the ward it
    looks like, if any), or ``not checked`` (no boundaries for it)."""

    result: str
    chosen: str
    looks_like: str | None

    def describe(self) -> str:
        """As stored with the report: ``in Park``, ``outside Park (looks like Heath Town)``,
        ``outside Park``, or ``Park given, not checked``."""
        if self.result == "in":
            return f"in {self.chosen}"
        if self.result == "outside":
            like = f" (looks like {self.looks_like})" if self.looks_like else ""
            return f"outside {self.chosen}{like}"
        return f"{self.chosen} given, not checked" if self.chosen else "ward not checked"


def _ring(value: Any) -> Ring:
    if not isinstance(value, list) or len(value) < 3:
        raise BoundaryError("a ring needs at least 3 positions")
    ring: Ring = []
    for position in value:
        if not (isinstance(position, list) and len(position) >= 2):
            raise BoundaryError("a position must be [longitude, latitude]")
        lon, lat = float(position[0]), float(position[1])
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise BoundaryError(
                "coordinates must be WGS84 longitude/latitude (was the file in British "
                "National Grid metres? download the GeoJSON in WGS84)"
            )
        ring.append((lon, lat))
    return ring


def _polygons(geometry: Any) -> tuple[tuple[Ring, ...], ...]:
    kind = (geometry or {}).get("type")
    coordinates: Any = (geometry or {}).get("coordinates") or []
    if kind == "Polygon":
        return (tuple(_ring(r) for r in coordinates),)
    if kind == "MultiPolygon":
        return tuple(tuple(_ring(r) for r in polygon) for polygon in coordinates)
    raise BoundaryError(f"geometry {kind!r}: only Polygon and MultiPolygon are wards")


def _name(properties: Any) -> str:
    properties = properties or {}
    for key, value in properties.items():
        if _NAME.match(str(key)) and isinstance(value, str):
            return value.strip()
    name = properties.get("name")
    if isinstance(name, str) and name.strip():
        return name.strip()
    raise BoundaryError("a feature has no ward name (WDyyNM or name)")


def load_boundaries(path: Path, wards: Sequence[str] | None = None) -> Boundaries:
    """Read a GeoJSON FeatureCollection of ward polygons; with ``wards``, every name must be
    one of them. Raises :class:`BoundaryError` saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BoundaryError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise BoundaryError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise BoundaryError(f"{path}: not a GeoJSON FeatureCollection")
    shapes: list[WardShape] = []
    for i, feature in enumerate(data.get("features") or []):
        try:
            shapes.append(
                WardShape(_name(feature.get("properties")), _polygons(feature.get("geometry")))
            )
        except (BoundaryError, TypeError, ValueError, AttributeError) as exc:
            raise BoundaryError(f"{path}: feature {i}: {exc}") from None
    if not shapes:
        raise BoundaryError(f"{path}: no ward features")
    if wards is not None:
        unknown = [s.name for s in shapes if s.name not in wards]
        if unknown:
            raise BoundaryError(f"{path}: not wards of the partnership: {', '.join(unknown)}")
    return Boundaries(tuple(shapes))
