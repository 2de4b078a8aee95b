"""One reader per raw source; importing this package registers them all in ``READERS``.

Use ``load_source("cow_nmc")`` to get a source's typed table; each reader's docstring
documents its columns and coverage.
"""

from foedus.features.readers import alliances, conflict, economy, geography, system  # noqa: F401
from foedus.features.readers.core import READERS, load_source, source_years

# Keys (as in data/sources.toml) of the sources that several feature families read.
GML, COWMID = "gml_mid_ddydisps", "cow_mid_ddydisps"
TD, TSS = "td_rivalries", "tss_rivalries"
NMC, TERR, SYSTEM = "cow_nmc", "terrthreat", "cw_system"

__all__ = ["READERS", "load_source", "source_years", "GML", "COWMID", "TD", "TSS", "NMC", "TERR", "SYSTEM"]
