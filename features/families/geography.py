"""Geography: contiguity, border distance, distance between capitals, same region.

Neighbours ally against each other's rivals and against each other (Kautilya's mandala,
Walt's proximity as a source of threat); distance is the loss-of-strength gradient that
limits what an ally can deliver. Each feature of year t describes the map at the end of
t-1: the contiguity spell and the capital in effect then, the border distance of t-1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from foedus.features.catalogue import Family
from foedus.features.dyads import Columns, Dyads, Sources

FAMILY = Family(
    "geography",
    ("cow_contdir", "cow_mindist", "cow_capitals"),
    "Geography from COW Direct Contiguity 3.2 (to 2016), CShapes minimum border distances "
    "(1886-2019) and peacesciencer's capitals. Contiguity and capitals are those in effect in "
    "December of t-1; the border distance is that of year t-1.",
)
CONTIG = ("cow_contdir",)
MINDIST = ("cow_mindist",)
CAPITALS = ("cow_capitals",)

NOT_CONTIGUOUS = 6  # the class beyond COW's five; peacesciencer's old convention
SEA_MILES = {2: 12, 3: 24, 4: 150, 5: 400}  # COW type -> at most this many miles of water
EARTH_RADIUS_KM = 6371.0088  # mean radius (IUGG)
# Regions are blocks of COW codes (as in Our World in Data's "States in regions (COW)"):
# Americas 2-165, Europe 200-399, Africa 400-626 (with Morocco to Sudan), Middle East
# 630-698 (Iran, Turkey, Egypt and eastward), Asia and Oceania 700-990. Bounds are each
# block's first code.
REGION_STARTS = np.array([200, 400, 630, 700])

FAMILY.feature("contig_land", "0/1", "contiguous by land or river (COW type 1) in December of t-1", CONTIG,
               label="contiguous by land")
for _type, _miles in SEA_MILES.items():
    FAMILY.feature(f"contig_{_miles}mi", "0/1",
                   f"contiguous by land or by at most {_miles} miles of water (COW type <= {_type}) in December of t-1",
                   CONTIG, label=f"contiguous (land or up to {_miles} miles of water)")
FAMILY.feature("contig_type", "ordinal 1-6",
               "closest COW contiguity type in December of t-1: 1 land, 2-5 water <= 12/24/150/400 miles, "
               "6 not contiguous", CONTIG, label="contiguity type (1 land ... 6 none)")
FAMILY.feature("mindist_km", "km", "minimum distance between the two states' borders in t-1 (CShapes; 0 = touching)",
               MINDIST, label="distance between borders (km)")
FAMILY.feature("log1p_mindist", "log km", "log(1 + minimum border distance in km) in t-1", MINDIST,
               label="distance between borders (log km)")
FAMILY.feature("capital_distance_km", "km", "great-circle distance between the capitals in effect on 31 Dec of t-1",
               CAPITALS, label="distance between capitals (km)")
FAMILY.feature("log1p_capital_distance", "log km", "log(1 + great-circle distance between capitals in km)", CAPITALS,
               label="distance between capitals (log km)")
FAMILY.feature("same_region", "0/1",
               "both in the same COW region (Americas, Europe, Africa, Middle East, Asia and Oceania)", (),
               label="same region")


def years_between(first: np.ndarray, last: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, year) for every year first..last of each row (none where last < first)."""
    n = np.maximum(last - first + 1, 0)
    rows = np.repeat(np.arange(len(first)), n)
    return rows, first[rows] + np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)


def december_years(start: pd.Series, end: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(row of the spell, year) for every year whose December the spell reaches.

    COW contiguity dates are months (peacesciencer writes the first of the month; the day
    means nothing): a spell ending in December of y, or later, is in effect at the end of y.
    A spell cut at a vintage ends on 31 Dec, so it still counts for that year.
    """
    last = end.dt.year.to_numpy() - (end.dt.month.to_numpy() < 12)
    return years_between(start.dt.year.to_numpy(), last)


def contiguity_years(contdir: pd.DataFrame) -> pd.DataFrame:
    """Undirected pair-years (ccode1 < ccode2) with the closest type in effect in December.

    Type-0 rows are peacesciencer's explicit "no contiguity" spells; no row means the same,
    so they are dropped. Overlapping spells (a land border and a sea crossing, or a change of
    type within a month) resolve to the closest type, as in peacesciencer.
    """
    spells = contdir[contdir["conttype"] > 0]
    rows, years = december_years(spells["stdate"], spells["enddate"])
    a, b = spells["ccode1"].to_numpy()[rows], spells["ccode2"].to_numpy()[rows]
    pair_years = pd.DataFrame({"ccode1": np.minimum(a, b), "ccode2": np.maximum(a, b), "year": years,
                               "conttype": spells["conttype"].to_numpy()[rows]})
    return pair_years.groupby(["ccode1", "ccode2", "year"], as_index=False)["conttype"].min()


def capital_years(capitals: pd.DataFrame) -> pd.DataFrame:
    """State-years (ccode, year, lat, lng) of the capital in effect on 31 December.

    The coordinates are the source's: its Brasilia row holds Brazil's centre (-10.3, -53.2),
    some 840 km from the city, and Riyadh is about 200 km off; neither is corrected here.
    """
    end = capitals["enddate"]
    last = end.dt.year.to_numpy() - ~((end.dt.month == 12) & (end.dt.day == 31)).to_numpy()
    rows, years = years_between(capitals["stdate"].dt.year.to_numpy(), last)
    return pd.DataFrame({"ccode": capitals["ccode"].to_numpy()[rows], "year": years,
                         "lat": capitals["lat"].to_numpy()[rows], "lng": capitals["lng"].to_numpy()[rows]})


def great_circle_km(lat1, lng1, lat2, lng2) -> np.ndarray:
    """Haversine distance on a sphere of the Earth's mean radius; NaN if a point is missing."""
    lat1, lng1, lat2, lng2 = (np.radians(x) for x in (lat1, lng1, lat2, lng2))
    h = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lng2 - lng1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(h, 1.0)))


def region_of(ccode: np.ndarray) -> np.ndarray:
    return np.searchsorted(REGION_STARTS, ccode, side="right")


@FAMILY.compute
def geography(dyads: Dyads, sources: Sources) -> pd.DataFrame:
    out = Columns()
    closest = dyads.dyad_values(contiguity_years(sources["cow_contdir"]), "conttype")
    covered = sources.covers("cow_contdir", dyads.year - 1)
    closest = np.where(covered, np.nan_to_num(closest, nan=NOT_CONTIGUOUS), np.nan)
    out["contig_land"] = np.where(covered, closest == 1, np.nan)
    for conttype, miles in SEA_MILES.items():
        out[f"contig_{miles}mi"] = np.where(covered, closest <= conttype, np.nan)
    out["contig_type"] = closest

    mindist = dyads.dyad_values(sources["cow_mindist"], "mindist")
    mindist = np.where(sources.covers("cow_mindist", dyads.year - 1), mindist, np.nan)
    out["mindist_km"] = mindist
    out["log1p_mindist"] = np.log1p(mindist)

    capitals = capital_years(sources["cow_capitals"])
    lat1, lat2 = dyads.state_values(capitals, "lat")
    lng1, lng2 = dyads.state_values(capitals, "lng")
    km = great_circle_km(lat1, lng1, lat2, lng2)
    km = np.where(sources.covers("cow_capitals", dyads.year - 1), km, np.nan)
    out["capital_distance_km"] = km
    out["log1p_capital_distance"] = np.log1p(km)

    out["same_region"] = (region_of(dyads.ccode1) == region_of(dyads.ccode2)).astype(float)
    return pd.DataFrame(out, copy=False)
