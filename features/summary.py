"""Descriptive summaries of a labelled feature table: the first numbers on threat without alliance."""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.labels import labelled
from foedus.features.years import count_by_era


def threat_onset_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per era and overall: onset rate among at-risk dyad-years, and among those sharing a threat.

    Only at-risk dyad-years with a known onset count. Columns: at_risk, onsets, onset_rate,
    shared_threat_known, shared_threat (at-risk dyad-years with ``shared_threat == 1``),
    shared_threat_share (of those known), threat_onsets, threat_onset_rate, and
    threat_no_alliance (shared a threat, no onset: the cases threat theories do not explain).
    """
    known = table.loc[labelled(table), ["year", "onset", "shared_threat"]]
    onset = known["onset"].to_numpy(dtype=bool)
    threat = (known["shared_threat"] == 1).to_numpy()
    out = count_by_era(known["year"].to_numpy(), {
        "at_risk": np.ones(len(known), dtype=bool),
        "onsets": onset,
        "shared_threat_known": known["shared_threat"].notna().to_numpy(),
        "shared_threat": threat,
        "threat_onsets": threat & onset,
        "threat_no_alliance": threat & ~onset,
    }, every_era=False)
    rate = {"onset_rate": ("onsets", "at_risk"), "shared_threat_share": ("shared_threat", "shared_threat_known"),
            "threat_onset_rate": ("threat_onsets", "shared_threat")}
    for name, (part, whole) in rate.items():
        out[name] = out[part] / out[whole].replace(0, np.nan)
    columns = ["at_risk", "onsets", "onset_rate", "shared_threat_known", "shared_threat", "shared_threat_share",
               "threat_onsets", "threat_onset_rate", "threat_no_alliance"]
    return out[columns]
