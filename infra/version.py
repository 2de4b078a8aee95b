"""foedus's version, with one home: ``[project] version`` in pyproject.toml, as the installed
package's metadata gives it (``0+unknown`` for source files on the path without an install)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    VERSION = version("foedus")
except PackageNotFoundError:
    VERSION = "0+unknown"
