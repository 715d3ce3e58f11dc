"""Settings, read once at the edge (CLI, app) and passed down.

Core modules never read the environment.

Every field can be set as an environment variable with the ``NACHTBUS_`` prefix, e.g.
``NACHTBUS_OSM_FILE=/data/soest.osm.bz2``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OSM_RELPATH = Path("data/osm/soest_roads_drive.osm.bz2")
DEFAULT_AREA_RELPATH = Path("data/soest/service_area.geojson")


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nachtbus"


def find_shared_dir() -> Path | None:
    """The project's ``shared/`` data folder beside the checkout or the working directory."""
    for candidate in (REPO_ROOT.parent / "shared", Path.cwd().parent / "shared"):
        if (candidate / DEFAULT_OSM_RELPATH).is_file():
            return candidate
    return None


class Settings(BaseSettings):
    """Everything configurable about one nachtbus deployment."""

    model_config = SettingsConfigDict(env_prefix="NACHTBUS_", extra="ignore")

    shared_dir: Path | None = Field(
        default=None,
        description="Folder with data/osm and data/soest; default: ../shared beside the checkout.",
    )
    osm_file: Path | None = Field(
        default=None,
        description="OSM XML road network (.osm or .osm.bz2). Default: the Soest file in "
        "shared_dir; without one the network of `place` is downloaded with osmnx.",
    )
    place: str = Field(
        default="Soest, Nordrhein-Westfalen, Germany",
        description="Place whose drivable network (and boundary) osmnx downloads when no file "
        "is set.",
    )
    service_area_file: Path | None = Field(
        default=None,
        description="GeoJSON polygon of the service area. Default: the Soest one in shared_dir; "
        "without one the boundary of `place` is downloaded with osmnx.",
    )
    speed_profile_file: Path | None = Field(
        default=None,
        description="TOML night-speed profile overriding the built-in graphs/night_speeds.toml.",
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir, description="Where built networks are cached."
    )
    apsp_max_nodes: int = Field(
        default=12_000,
        ge=0,
        description="Largest network for which the all-pairs travel-time table is built "
        "(n^2 x 4 bytes: 6,400 nodes = 164 MB); bigger networks use cached rows.",
    )
    row_cache_size: int = Field(
        default=4096, ge=1, description="Rows kept when the all-pairs table is not used."
    )
    snap_max_distance_m: int = Field(
        default=1000, ge=1, description="Farthest a point may be from a drivable road to be served."
    )

    @field_validator("osm_file", "service_area_file", "speed_profile_file", "shared_dir")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    def resolved_shared_dir(self) -> Path | None:
        return self.shared_dir if self.shared_dir is not None else find_shared_dir()

    def graph_source(self) -> Path | str:
        """The OSM file to read, or the place name to download when there is none."""
        if self.osm_file is not None:
            return self.osm_file
        shared = self.resolved_shared_dir()
        if shared is not None and (shared / DEFAULT_OSM_RELPATH).is_file():
            return shared / DEFAULT_OSM_RELPATH
        return self.place

    def service_area_source(self) -> Path | str:
        """The service-area GeoJSON, or the place whose boundary to download when there is none."""
        if self.service_area_file is not None:
            return self.service_area_file
        shared = self.resolved_shared_dir()
        if shared is not None and (shared / DEFAULT_AREA_RELPATH).is_file():
            return shared / DEFAULT_AREA_RELPATH
        return self.place
