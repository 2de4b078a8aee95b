"""Where the project lives and where its data go.

Configuration has one home: ``[tool.foedus]`` in ``pyproject.toml``, with defaults here and
overrides by environment variable:

- ``FOEDUS_HOME``: the project root (the folder holding ``data/sources.toml``). Default: the
  nearest such folder at or above the working directory, else the source checkout.
- ``FOEDUS_DATA_DIR``: where ``raw/``, ``interim/`` and ``processed/`` go. Default: ``<root>/data``.
- ``FOEDUS_MIRROR``: a local copy of the raw data (same layout as ``../shared/data``). Default:
  ``[tool.foedus] mirror`` resolved against the root (``../shared/data``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from foedus.infra.errors import ConfigError

MANIFEST = Path("data") / "sources.toml"
DEFAULT_MIRROR = "../shared/data"


def _find_root() -> Path:
    env = os.environ.get("FOEDUS_HOME")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / MANIFEST).is_file():
            raise ConfigError(f"FOEDUS_HOME={env} has no {MANIFEST}: point it at the foedus project folder")
        return root
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / MANIFEST).is_file():
            return folder
    # An editable install runs from the checkout: infra/ sits in the project root.
    checkout = Path(__file__).resolve().parents[1]
    if (checkout / MANIFEST).is_file():
        return checkout
    raise ConfigError(
        f"cannot find the foedus project ({MANIFEST} not found at or above {here}): "
        "run from the project folder or set FOEDUS_HOME"
    )


def _tool_settings(root: Path) -> dict:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return {}
    try:
        with pyproject.open("rb") as fh:
            return tomllib.load(fh).get("tool", {}).get("foedus", {})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{pyproject} is not valid TOML ({exc}): fix the file") from exc


@dataclass(frozen=True)
class Paths:
    """The project's folders. ``Paths.discover()`` applies the environment overrides."""

    root: Path
    data: Path
    mirror: Path

    @classmethod
    def discover(cls) -> Paths:
        root = _find_root()
        data = Path(os.environ.get("FOEDUS_DATA_DIR") or root / "data").expanduser().resolve()
        mirror_setting = os.environ.get("FOEDUS_MIRROR") or _tool_settings(root).get("mirror", DEFAULT_MIRROR)
        mirror = (root / Path(mirror_setting).expanduser()).resolve()
        return cls(root=root, data=data, mirror=mirror)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def raw(self) -> Path:
        return self.data / "raw"

    @property
    def interim(self) -> Path:
        return self.data / "interim"

    @property
    def processed(self) -> Path:
        return self.data / "processed"
