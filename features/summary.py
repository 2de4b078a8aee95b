"""Descriptive summaries of a labelled feature table: the first numbers on threat without alliance."""

from __future__ import annotations

import pandas as pd

from foedus.features.years import era_of


def threat_onset_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per era and overall: onset rate among at-risk dyad-years, and among those sharing a threat.

    Only at-risk dyad-years with a known onset count. Columns: at_risk, onsets, onset_rate,
    shared_threat_known, shared_threat (at-risk dyad-years with ``shared_threat == 1``),
    shared_threat_share (of those known), threat_onsets, threat_onset_rate, and
    threat_no_alliance (shared a threat, no onset: the cases threat theories do not explain).
    """
    known = table[table["at_risk"].fillna(False).astype(bool) & table["onset"].notna()]
    known = known.assign(era=era_of(known["year"]), onset=known["onset"].astype(bool))
    groups = {"all": known, **{str(e): g for e, g in known.groupby("era", observed=True)}}
    rows = {}
    for name, g in groups.items():
        t = g["shared_threat"] == 1
        known_threat = g["shared_threat"].notna()
        rows[name] = {
            "at_risk": len(g),
            "onsets": int(g["onset"].sum()),
            "onset_rate": g["onset"].mean() if len(g) else float("nan"),
            "shared_threat_known": int(known_threat.sum()),
            "shared_threat": int(t.sum()),
            "shared_threat_share": t.sum() / known_threat.sum() if known_threat.any() else float("nan"),
            "threat_onsets": int(g.loc[t, "onset"].sum()),
            "threat_onset_rate": g.loc[t, "onset"].mean() if t.any() else float("nan"),
            "threat_no_alliance": int((t & ~g["onset"]).sum()),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "era"
    return out.loc[[*(k for k in rows if k != "all"), "all"]]
