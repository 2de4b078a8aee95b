"""foedus.models: estimators, out-of-time folds, metrics, explanations and MLflow logging.

It may import ``foedus.features``, never the CLI.
"""
