"""foedus.models: estimators, out-of-time evaluation, explanations and MLflow logging.

Empty until the modelling issue lands; it may import ``foedus.features``, never the CLI.
"""
