"""The model registry: final models per label spec, and the champion rule.

``foedus train`` registers every final model it fits as a new version of
``foedus-onset-<label spec>`` and moves the alias ``champion`` to it only if its backtest
average precision on continuing dyads beats the current champion's (strictly). The AP a version was
judged by is kept as a version tag, so the rule never needs the old run.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

CHAMPION = "champion"
AP_TAG = "backtest_continuing_dyad_average_precision"
REGISTERED_PREFIX = "foedus-onset-"
# a registered version's progress through the champion rule, as a version tag: pending from its
# registration until its alias is settled (``apply``), abandoned by ``foedus.models.recovery``
# when its train was killed before the rule could be applied
PROMOTION, PENDING, DONE, ABANDONED = "foedus.promotion", "pending", "done", "abandoned"


def registered_name(spec, for_year: int | None = None) -> str:
    """``foedus-onset-<spec>``, or ``foedus-onset-<spec>-for<year>`` for a present-day model."""
    return f"{REGISTERED_PREFIX}{spec.name}" + ("" if for_year is None else f"-for{for_year}")


@dataclass(frozen=True)
class Promotion:
    name: str
    version: str
    average_precision: float
    previous_version: str | None
    previous_average_precision: float | None
    promoted: bool
    reused: object | None = None  # foedus.models.reuse.Reused: an earlier identical final model, not trained now

    def describe(self) -> str:
        if self.reused is not None:
            where = ("is the champion" if self.promoted else
                     f"is not the champion (v{self.previous_version}, AP {self.previous_average_precision:.4f}, is)")
            return (f"{self.reused.describe()}: {self.name} v{self.version} (continuing-dyad AP "
                    f"{self.average_precision:.4f}) {where}")
        if self.previous_version is None:
            return (f"{self.name} v{self.version} (continuing-dyad AP {self.average_precision:.4f}) is the first "
                    f"champion")
        verdict = "beats" if self.promoted else "does not beat"
        tail = ("alias 'champion' moved to it" if self.promoted
                else f"alias 'champion' stays on v{self.previous_version}")
        return (f"{self.name} v{self.version} (continuing-dyad AP {self.average_precision:.4f}) {verdict} the champion "
                f"v{self.previous_version} (AP {self.previous_average_precision:.4f}): {tail}")


def current_champion(client: MlflowClient, name: str) -> tuple[str, float] | None:
    """(version, backtest AP) of the champion, or None if there is none yet."""
    try:
        version = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
    return str(version.version), float(version.tags.get(AP_TAG, "nan"))


def standing(client: MlflowClient, name: str, version: str, reused=None) -> Promotion:
    """Where an already judged ``version`` stands now: its backtest AP, and whether it is the
    champion (else which version is). For a final model taken again (``reused``)."""
    tags = client.get_model_version(name, version).tags
    champion = current_champion(client, name)
    promoted = champion is not None and champion[0] == str(version)
    other = None if champion is None or promoted else champion
    return Promotion(name, str(version), float(tags.get(AP_TAG, "nan")), other[0] if other else None,
                     other[1] if other else None, promoted, reused)


def judge(client: MlflowClient, name: str, version: str, average_precision: float) -> Promotion:
    """Tag ``version`` with its backtest AP and decide whether it beats the champion; the alias
    is not moved yet (``apply``), and the version's ``foedus.promotion`` tag says so (pending)."""
    client.set_model_version_tag(name, version, AP_TAG, f"{average_precision:.10g}")
    client.set_model_version_tag(name, version, PROMOTION, PENDING)
    previous = current_champion(client, name)
    # a champion without a recorded AP (NaN) cannot defend its title
    promoted = previous is None or previous[1] != previous[1] or average_precision > previous[1]
    return Promotion(name, str(version), average_precision, previous[0] if previous else None,
                     previous[1] if previous else None, promoted)


def apply(client: MlflowClient, promotion: Promotion) -> None:
    """Move the alias if ``promotion`` won, and mark the version's champion rule done. One write
    moves the alias: a reader sees the old champion or the new one."""
    if promotion.promoted:
        client.set_registered_model_alias(promotion.name, CHAMPION, promotion.version)
    client.set_model_version_tag(promotion.name, promotion.version, PROMOTION, DONE)


def promote_if_better(client: MlflowClient, name: str, version: str, average_precision: float) -> Promotion:
    """Tag ``version`` with its backtest AP and make it champion if it beats the champion."""
    promotion = judge(client, name, version, average_precision)
    apply(client, promotion)
    return promotion
