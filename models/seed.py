"""The seed of every fit, backtest and sampled explanation unless the user gives another: the
same data and seed give the same numbers. Its own module, below the catalogue, the estimators and
the tuning that all use it."""

DEFAULT_SEED = 7
