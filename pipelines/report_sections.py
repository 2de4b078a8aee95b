"""The sections of ``foedus report`` (``foedus.report``): each reads what a backtest logged,
read-only, and returns blocks for ``foedus.models.report.render_html``. A section whose data are
missing says so and which command fills it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from foedus.features.labels import DEFAULT_LABEL_SPEC, LabelSpec, as_label_spec
from foedus.features.years import NEXT_YEAR
from foedus.infra.config import Paths
from foedus.infra.errors import FoedusError, InvalidInput
from foedus.models.report import Image, Paragraph, Section, Table, percent

# the artifacts of a backtest the report shows as figures, by the name of the PNG it writes
FIGURES = {
    "pr_curves": "plots/pr_curves.png",
    "calibration": "plots/calibration.png",
    "feature_importance": "plots/feature_importance.png",
    "shap_summary": "plots/shap_summary.png",
    "onset_rate_by_era": "plots/onset_rate_by_era.png",
}
SKILL_FIGURE = "skill/skill_by_staleness.png"
TOP_THREATS = 15  # rows of the threat-without-alliance list, and of the reasons table
TOP_PAIRS = 10  # this year's likeliest new alliances per label spec

# how each headline metric (``run_view.HEADLINE``) is shown: digits, and what it is
HEADLINE_TEXT = {
    "continuing_dyads_average_precision": (4, "average precision on continuing dyads (pairs that were a system dyad "
                                              "in t-1), pooled over every test block: the figure the champion rule "
                                              "uses"),
    "continuing_dyads_median_onset_percentile": (1, "median percentile of the onsets among their year's continuing "
                                                    "dyads (100 = ranked first)"),
    "all_rows_average_precision": (4, "average precision on every at-risk dyad-year, new dyads included, pooled"),
    "roc_auc": (3, "ROC-AUC on every at-risk dyad-year, pooled"),
    "brier": (5, "Brier score: mean squared error of the probability (lower is better)"),
    "ece": (4, "expected calibration error (lower is better)"),
}


def _fixed(digits: int):
    return lambda value: "-" if value is None or value != value else f"{value:.{digits}f}"


def _when(milliseconds: int | None) -> str:
    if milliseconds is None:
        return "-"
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _note(text: str) -> Paragraph:
    return Paragraph(text, note=True)


# --- finding runs and their artifacts, read-only --------------------------------------------

def _experiments(client, prefix: str) -> list:
    return [e for e in client.search_experiments() if e.name.startswith(prefix)]


def chosen_run(client, run_id: str | None, uri: str):
    """The run ``run_id`` (a backtest's parent run), or by default the newest finished lightgbm
    backtest of the default label spec, else the newest finished backtest of any model."""
    from foedus.models.tracking import EXPERIMENT_PREFIX, experiment_name
    from mlflow.exceptions import MlflowException

    if run_id is not None:
        try:
            run = client.get_run(run_id)
        except MlflowException as error:
            raise FoedusError(f"no run {run_id} in the tracking store {uri}: `foedus compare` lists the backtests' "
                              "run ids") from error
        kind = run.data.tags.get("kind")
        if kind != "backtest":
            raise InvalidInput(f"run {run_id} is {'a ' + kind if kind else 'not a foedus'} run, not a backtest: "
                               "give a backtest's run id (`foedus compare` lists them)")
        return run
    finished = "tags.kind = 'backtest' and attributes.status = 'FINISHED'"
    default = client.get_experiment_by_name(experiment_name(as_label_spec(DEFAULT_LABEL_SPEC)))
    searches = [([e.experiment_id for e in _experiments(client, EXPERIMENT_PREFIX)], finished)]
    if default is not None:
        searches.insert(0, ([default.experiment_id], finished + " and tags.model = 'lightgbm'"))
    for experiments, where in searches:
        if experiments:
            runs = client.search_runs(experiments, where, order_by=["attributes.start_time DESC"], max_results=1)
            if runs:
                return runs[0]
    raise FoedusError(f"no finished backtest in the tracking store {uri}: run `foedus run` or `foedus backtest` "
                      "first")


class Artifacts:
    """A run's artifacts, downloaded on first use into a temporary folder."""

    def __init__(self, folder: Path):
        self.folder = folder

    def path(self, run_id: str, artifact: str) -> Path | None:
        """The local copy of ``artifact`` of ``run_id``, or None if the run did not log it."""
        import mlflow
        from mlflow.exceptions import MlflowException

        try:
            local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=artifact,
                                                             dst_path=str(self.folder / run_id)))
        except (MlflowException, OSError):
            return None
        return local if local.is_file() else None

    def csv(self, run_id: str, artifact: str, **read) -> pd.DataFrame | None:
        local = self.path(run_id, artifact)
        return None if local is None else pd.read_csv(local, **read)


# --- the sections --------------------------------------------------------------------------

def header_blocks(run, spec: LabelSpec, slices: pd.DataFrame | None) -> list:
    from foedus.models.run_view import HEADLINE, PRIMARY, run_metric

    tags, info = run.data.tags, run.info
    facts = [("model", tags.get("model", "-")), ("label spec", str(spec)), ("run", info.run_id),
             ("run name", tags.get("mlflow.runName", "-")), ("status", info.status),
             ("started", _when(info.start_time)), ("test blocks", run.data.params.get("folds", "-")),
             ("git commit", tags.get("git_commit", "-")), ("data digest", tags.get("data_digest", "-")),
             ("foedus version", tags.get("foedus_version", "-"))]
    if tags.get("for_year"):
        facts.insert(2, ("present-day model for", tags["for_year"]))
    metrics = [{"metric": name, "value": _fixed(HEADLINE_TEXT[name][0])(run_metric(run, name)),
                "what it is": HEADLINE_TEXT[name][1]} for name in HEADLINE]
    blocks = [Table(pd.DataFrame(facts, columns=["", "value"])),
              Paragraph(f"The first figure, {PRIMARY}, is the one a backtest is judged by: average precision pooled "
                        "over every test block's forecasts of continuing dyads, each block forecast strictly out of "
                        "time by a model trained only on earlier years.")]
    if slices is not None and "continuing_dyad" in set(slices["slice"]):
        rate = slices.set_index("slice").loc["continuing_dyad", "prevalence"]
        metrics.append({"metric": "continuing-dyad onset rate", "value": f"{rate:.4f}",
                        "what it is": "share of continuing dyad-years with an onset: the AP of a random ranking"})
    blocks.append(Table(pd.DataFrame(metrics), caption="Headline metrics"))
    return blocks


def _label_order(specs, first: str) -> list[str]:
    return sorted(set(specs), key=lambda s: (s != first, s != DEFAULT_LABEL_SPEC, s))


def comparison(root: Path, run, spec: LabelSpec) -> Section:
    from foedus.models.experiment import compare_runs

    # every foedus-onset-* experiment in one read-only query (compare_runs per spec would
    # create or retag the experiment); the newest backtest of each model per label spec
    runs = compare_runs(root, None, last=5000)
    if runs.empty:
        return Section("Model comparison", [_note("No backtest in the foedus-onset-* experiments of this store: "
                                                  "`foedus backtest` or `foedus run` fills this section.")])
    blocks = [Paragraph("The latest backtest of each model, per label spec, best continuing-dyad AP first "
                        "(the champion rule's figure). Runs of different test blocks do not compare.")]
    for label in _label_order(runs["label_spec"].dropna(), str(spec)):
        latest = runs[runs["label_spec"] == label].drop_duplicates("model")
        latest = latest.sort_values("continuing_dyad_average_precision", ascending=False, na_position="last",
                                    kind="stable").reset_index(drop=True)
        table = pd.DataFrame({
            "model": [m + (" (this report)" if r == run.info.run_id else "") for m, r in
                      zip(latest["model"], latest["run_id"])],
            "continuing-dyad AP": latest["continuing_dyad_average_precision"],
            "median onset percentile": latest["median_onset_percentile"],
            "all-rows AP": latest["average_precision"],
            "all-rows AP, mean of folds": latest["mean_fold_average_precision"],
            "ROC-AUC": latest["roc_auc"], "Brier": latest["brier"],
            "started": [s.strftime("%Y-%m-%d %H:%M UTC") for s in latest["started"]],
            "run": latest["run_id"],
        })
        blocks.append(Table(table, caption=f"{label}", formats={
            "continuing-dyad AP": _fixed(4), "median onset percentile": _fixed(1), "all-rows AP": _fixed(4),
            "all-rows AP, mean of folds": _fixed(4), "ROC-AUC": _fixed(3), "Brier": _fixed(5)}))
    if run.data.tags.get("for_year"):
        blocks.append(_note(f"This report's run is the backtest of a present-day model (for "
                            f"{run.data.tags['for_year']}); the tables compare the ordinary backtests."))
    elif run.info.run_id not in set(runs.drop_duplicates(["label_spec", "model"])["run_id"]):
        blocks.append(_note(f"This report's run is not the latest {run.data.tags.get('model')} backtest of {spec}; "
                            "the table shows the latest."))
    if runs["label_spec"].nunique() == 1:
        other = "atop:defense:1" if str(spec) != "atop:defense:1" else DEFAULT_LABEL_SPEC
        blocks.append(_note(f"Only {runs['label_spec'].iloc[0]} has backtests in this store; another label spec "
                            f"appears here once backtested (e.g. `foedus backtest -l {other}`)."))
    return Section("Model comparison", blocks)


def _fold_table(client, run, folds: pd.DataFrame) -> Table:
    from foedus.models.run_view import PRIMARY, run_metric

    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{run.info.run_id}'")
    continuing = {c.data.tags.get("fold"): run_metric(c, PRIMARY) for c in children}
    columns = {"fold": "test block", "n": "dyad-years", "onsets": "onsets", "average_precision": "AP (all rows)",
               "roc_auc": "ROC-AUC", "brier": "Brier", "median_onset_percentile": "median onset percentile"}
    table = folds[[c for c in columns if c in folds]].rename(columns=columns)
    if any(v is not None for v in continuing.values()):
        table.insert(min(3, table.shape[1]), "continuing-dyad AP", [continuing.get(f) for f in folds["fold"]])
    return Table(table, caption="Per test block (metrics/folds.csv)", formats={
        "continuing-dyad AP": _fixed(4), "AP (all rows)": _fixed(4), "ROC-AUC": _fixed(3), "Brier": _fixed(5),
        "median onset percentile": _fixed(1)})


def _figure(figures: dict, artifacts: Artifacts, run_id: str, name: str, artifact: str, caption: str):
    local = artifacts.path(run_id, artifact)
    if local is None:
        return None
    figures[name] = local.read_bytes()
    return Image(figures[name], caption)


def accuracy(client, run, artifacts: Artifacts, figures: dict) -> Section:
    run_id = run.info.run_id
    blocks = [b for b in (
        _figure(figures, artifacts, run_id, "pr_curves", FIGURES["pr_curves"],
                "Precision-recall by test block and pooled, over every at-risk dyad-year (the all-rows AP, not "
                "the continuing-dyad headline); precision on a log scale."),
        _figure(figures, artifacts, run_id, "calibration", FIGURES["calibration"],
                "Observed onset rate against forecast probability, equal-count bins, log-log axes."),
    ) if b is not None]
    if not blocks:
        blocks.append(_note("The run logged no precision-recall or calibration plot (plots/)."))
    folds = artifacts.csv(run_id, "metrics/folds.csv")
    blocks.append(_fold_table(client, run, folds) if folds is not None else
                  _note("The run logged no per-fold table (metrics/folds.csv)."))
    return Section("Precision-recall, calibration and test blocks", blocks)


def explanations(run, artifacts: Artifacts, figures: dict) -> Section:
    run_id = run.info.run_id
    importance = _figure(figures, artifacts, run_id, "feature_importance", FIGURES["feature_importance"],
                         "Share of the total gain by feature, the last test block's model.")
    shap = _figure(figures, artifacts, run_id, "shap_summary", FIGURES["shap_summary"],
                   "Mean absolute SHAP contribution (log-odds) over a sample of the last test block.")
    model = run.data.tags.get("model", "this model")
    return Section("Feature importance and SHAP", [
        importance or _note(f"No feature importance: {model} has no gain importance (LightGBM logs one)."),
        shap or _note(f"No SHAP summary: {model} gives no SHAP contributions (LightGBM does)."),
    ])


def formation(run, artifacts: Artifacts, figures: dict) -> Section:
    run_id = run.info.run_id
    blocks = []
    plot = _figure(figures, artifacts, run_id, "onset_rate_by_era", FIGURES["onset_rate_by_era"],
                   "Onset rate among all at-risk dyad-years and among those sharing a threat, by era (the whole "
                   "labelled table, not only the test blocks).")
    blocks.append(plot or _note("The run logged no plot of onset rates by era (plots/onset_rate_by_era.png)."))
    era = artifacts.csv(run_id, "threat_without_alliance/formation_by_era.csv", dtype={"era": str})
    if era is None:
        blocks.append(_note("The run logged no table of formation by era "
                            "(threat_without_alliance/formation_by_era.csv)."))
    else:
        table = pd.DataFrame({
            "era": era["era"], "dyad-years": era["dyad_years"], "shared threat": era["shared_threat"],
            "onsets among them": era["threat_onsets"], "formed an alliance": era["threat_formation_rate"],
            "mean forecast": era["threat_mean_probability"], "no shared threat": era["no_threat"],
            "onsets without threat": era["no_threat_onsets"], "formed (no threat)": era["no_threat_formation_rate"],
            "threat unknown": era["threat_unknown"]})
        blocks.append(Table(table, caption="Alliance formation among the test blocks' dyad-years, by era", formats={
            c: percent for c in ("formed an alliance", "mean forecast", "formed (no threat)")}))
    return Section("Onset rate within shared-threat pairs, by era", blocks)


def _pairs(frame: pd.DataFrame, names: dict[int, str] | None) -> list[str]:
    if "name1" in frame and "name2" in frame:
        first, second = frame["name1"], frame["name2"]
    elif names is not None:
        first, second = frame["ccode1"].map(names), frame["ccode2"].map(names)
    else:
        first, second = frame["ccode1"].astype(str), frame["ccode2"].astype(str)
    return [f"{a} - {b}" for a, b in zip(first.fillna(frame["ccode1"].astype(str)),
                                         second.fillna(frame["ccode2"].astype(str)))]


def _state_names(paths: Paths) -> dict[int, str] | None:
    try:
        from foedus.features.states import load_registry

        return load_registry(paths).names()
    except FoedusError:
        return None  # no raw data here: pairs are shown by COW code


def threats(run, artifacts: Artifacts, paths: Paths) -> Section:
    run_id = run.info.run_id
    blocks = [Paragraph("At-risk dyad-years of the test blocks that shared a threat (shared_threat = 1) and formed "
                        "no alliance. A reason reads: the feature in words, its value for that dyad-year, and its "
                        "SHAP contribution to the log-odds (relative to the model's average forecast, not a causal "
                        "effect).")]
    reasons = artifacts.csv(run_id, "threat_without_alliance/reasons.csv")
    if reasons is None:
        blocks.append(_note("The run logged no reasons table (threat_without_alliance/reasons.csv)."))
    elif reasons.empty:
        blocks.append(_note(f"No reasons: {run.data.tags.get('model', 'this model')} gives no SHAP contributions."))
    else:
        shown = reasons.head(TOP_THREATS)
        blocks.append(Table(pd.DataFrame({
            "reason": shown["reason"], "feature": shown["feature"], "cases": shown["count"],
            "share of cases": shown["share"], "as first reason": shown["first"], "mean SHAP": shown["mean_shap"]}),
            caption=f"What held shared-threat pairs back: how often each feature is among the three strongest "
                    f"downward pushes (top {len(shown)} of {len(reasons)} features)",
            formats={"share of cases": percent, "mean SHAP": lambda v: f"{v:+.2f}"}))
    local = artifacts.path(run_id, "threat_without_alliance/threat_without_alliance.parquet")
    if local is None:
        blocks.append(_note("The run logged no list of shared-threat pairs without an alliance "
                            "(threat_without_alliance/threat_without_alliance.parquet)."))
        return Section("Threat without alliance", blocks)
    listing = pd.read_parquet(local)
    if listing.empty:
        blocks.append(_note("No at-risk dyad-year of the test blocks shared a threat without forming an alliance."))
        return Section("Threat without alliance", blocks)
    # least likely first, as the run's report.md: the reasons are what pushed each probability down;
    # one row per pair (its least likely year), or a pair held back year after year fills the table
    least = (listing.sort_values("probability", kind="stable").drop_duplicates(["ccode1", "ccode2"])
             .head(TOP_THREATS).reset_index(drop=True))
    names = None if "name1" in least else _state_names(paths)
    table = pd.DataFrame({"pair": _pairs(least, names), "year": least["year"].astype(int)})
    if "fold" in least:
        table["test block"] = least["fold"].to_numpy()
    table["probability"] = least["probability"].to_numpy()
    reason_columns = sorted(c for c in least.columns if c.startswith("reason_") and c[len("reason_"):].isdigit())
    for column in reason_columns:
        table[column.replace("_", " ")] = least[column].to_numpy()
    pairs = len(listing.drop_duplicates(["ccode1", "ccode2"]))
    blocks.append(Table(table, caption=f"The {len(least)} least likely pairs of the {pairs:,} that shared a threat "
                        f"and formed no alliance ({len(listing):,} dyad-years), each in its least likely year"))
    if not reason_columns:
        blocks.append(_note("The model gives no SHAP contributions: the list has no reasons."))
    return Section("Threat without alliance", blocks)


def skill(client, spec: LabelSpec, model: str, artifacts: Artifacts, figures: dict) -> Section:
    from foedus.models.skill import brier_skill
    from foedus.models.tracking import experiment_name

    how = f"`foedus staleness -l {spec} --model {model}` fills this section."
    experiment = client.get_experiment_by_name(experiment_name(spec, present=True))
    runs = [] if experiment is None else client.search_runs(
        [experiment.experiment_id],
        f"tags.kind = 'skill' and tags.model = '{model}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    if not runs:
        return Section("Skill by staleness", [_note(f"No skill-by-staleness run of {model} for {spec} in "
                                                    f"{experiment_name(spec, present=True)}: {how}")])
    skill_run = runs[0].info.run_id
    table = artifacts.csv(skill_run, "skill/skill_by_staleness.csv", dtype={"target": str})
    blocks = [Paragraph(f"How much a forecast for a year past the data's end can know: {model} backtested on the "
                        "post-Cold War blocks fresh (every source read at t-1) and as stale as each target year's "
                        f"forecast (skill run {skill_run}, {_when(runs[0].info.start_time)}). Continuing dyads.")]
    if table is None:
        blocks.append(_note(f"The skill run {skill_run} logged no table (skill/skill_by_staleness.csv)."))
    else:
        blocks.append(Table(pd.DataFrame({
            "target": table["target"], "label source stale (years)": table["label_staleness"],
            "sources stale": table["stale_sources"],
            "median / max staleness": [f"{m:g} / {x}" for m, x in zip(table["median_staleness"],
                                                                      table["max_staleness"])],
            "continuing-dyad AP": table["continuing_dyad_average_precision"],
            "median onset percentile": table["median_onset_percentile"], "Brier": table["brier"],
            "Brier skill": brier_skill(table), "onset rate": table["onset_rate"]}),
            caption=f"Skill by staleness, {spec}, {model}", formats={
                "continuing-dyad AP": _fixed(4), "median onset percentile": _fixed(1), "Brier": _fixed(5),
                "Brier skill": lambda v: f"{v:+.3f}", "onset rate": _fixed(4)}))
    plot = _figure(figures, artifacts, skill_run, "skill_by_staleness", SKILL_FIGURE,
                   "Continuing-dyad AP, median onset percentile and Brier skill by target year; dashed: the "
                   "ordinary model.")
    blocks.append(plot or _note(f"The skill run {skill_run} logged no plot ({SKILL_FIGURE})."))
    return Section("Skill by staleness", blocks)


def _known_specs(client, run_spec: LabelSpec) -> list[str]:
    from foedus.models.tracking import EXPERIMENT_PREFIX, PRESENT_PREFIX

    found = {str(run_spec)}
    for prefix in (EXPERIMENT_PREFIX, PRESENT_PREFIX):
        found |= {e.tags["label_spec"] for e in _experiments(client, prefix) if e.tags.get("label_spec")}
    return _label_order(found, str(run_spec))


def _has_registered(client, name: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        return False
    return True


def next_pairs(client, spec: LabelSpec, paths: Paths) -> Section:
    from foedus.models.registry import registered_name
    from foedus.scoring import rank

    year = NEXT_YEAR - 1
    blocks = [Paragraph(f"The {TOP_PAIRS} likeliest new alliances of {year} among the pairs not yet allied, by "
                        f"the present-day model of each label spec (trained on sources as stale as a forecast for "
                        f"{year}); the main reason is the feature that pushed the probability up most.")]
    for text in _known_specs(client, spec):
        label = as_label_spec(text)
        name = registered_name(label, year)
        if not _has_registered(client, name):
            blocks.append(_note(f"{label}: no present-day model for {year} is registered ({name}); "
                                f"`foedus train -l {label} --for-year {year}` makes one."))
            continue
        try:
            ranked = rank(year, label, top=TOP_PAIRS, paths=paths)
        except FoedusError as error:
            blocks.append(_note(f"{label}: cannot rank {year}: {error}"))
            continue
        table = pd.DataFrame({"#": range(1, len(ranked) + 1), "pair": _pairs(ranked, None),
                              "probability": ranked["probability"], "percentile": ranked["percentile"],
                              "main reason": ranked["reason"]})
        blocks.append(Table(table, caption=f"{label}, {year}", formats={"probability": _fixed(4),
                                                                         "percentile": _fixed(2)}))
        blocks.append(Paragraph(_ranked_source(ranked)))
    return Section(f"Likeliest new alliances of {year}", blocks)


def _ranked_source(ranked: pd.DataFrame) -> str:
    model, data = ranked.attrs.get("model", {}), ranked.attrs.get("data", {})
    line = (f"Model {model.get('name')} {model.get('registered') or ''} v{model.get('version') or '-'} (run "
            f"{model.get('run_id')}); data {data.get('digest')}; {ranked.attrs.get('at_risk_dyads', 0):,} at-risk "
            f"dyads that year; alliance record of {data.get('record_year')}.")
    vintage = data.get("vintage")
    if vintage is not None:
        stale = [f"{r['source']} to {r['last_year']}" for r in vintage["sources"] if r["staleness"]]
        line += f" Stale sources (last year): {', '.join(stale) or 'none'}."
    return line


