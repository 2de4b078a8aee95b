"""Feature families, one module each, in the order their columns appear in the table.

Each module defines ``FAMILY`` (a ``foedus.features.catalogue.Family``): its sources, its
declared features and its compute function, a pure function of the source tables.
``declared(name)`` finds any feature's declaration (label, level, unit, meaning, sources).
"""

from __future__ import annotations

from functools import lru_cache

from foedus.features.catalogue import Feature
from foedus.features.families import capability, economy, geography, network, regime, system, threat

# FAMILIES is the default build (labels and network from ATOP).
FAMILIES = [capability.FAMILY, regime.FAMILY, geography.FAMILY, economy.FAMILY, system.FAMILY,
            threat.FAMILY, network.FAMILY]


def feature_families(alliance: str = "atop") -> list:
    """The families of a build whose labels come from ``alliance`` (atop or cow): the network
    family reads the label source."""
    return [network.make_family(alliance) if f is network.FAMILY else f for f in FAMILIES]


@lru_cache(maxsize=1)
def _declarations() -> dict[str, Feature]:
    from foedus.features.alliances import ALLIANCE_SOURCES
    from foedus.features.table import with_coverage

    found: dict[str, Feature] = {}
    for alliance in ALLIANCE_SOURCES:  # the coverage flags differ by label source
        for family in with_coverage(feature_families(alliance)):
            for feature in family.features:
                found.setdefault(feature.name, feature)
    return found


def declared(name: str) -> Feature | None:
    """The declaration of the feature column ``name`` in any build, or None for a column no
    family declares (the key ``year``, a column added by hand)."""
    return _declarations().get(name)


__all__ = ["FAMILIES", "declared", "feature_families"]
