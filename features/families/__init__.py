"""Feature families, one module each, in the order their columns appear in the table.

Each module defines ``FAMILY`` (a ``foedus.features.catalogue.Family``): its sources, its
declared features and its compute function, a pure function of the source tables.
"""

from foedus.features.families import capability, economy, regime, system

FAMILIES = [capability.FAMILY, regime.FAMILY, economy.FAMILY, system.FAMILY]

__all__ = ["FAMILIES"]
