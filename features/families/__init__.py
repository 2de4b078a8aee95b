"""Feature families, one module each, in the order their columns appear in the table.

Each module defines ``FAMILY`` (a ``foedus.features.catalogue.Family``): its sources, its
declared features and its compute function, a pure function of the source tables.
"""

from foedus.features.families import capability, economy, geography, network, regime, system, threat

# FAMILIES is the default build (labels and network from ATOP).
FAMILIES = [capability.FAMILY, regime.FAMILY, geography.FAMILY, economy.FAMILY, system.FAMILY,
            threat.FAMILY, network.FAMILY]


def feature_families(alliance: str = "atop") -> list:
    """The families of a build whose labels come from ``alliance`` (atop or cow): the network
    family reads the label source."""
    return [network.make_family(alliance) if f is network.FAMILY else f for f in FAMILIES]


__all__ = ["FAMILIES", "feature_families"]
