"""foedus.features: raw-source readers, the state registry, the dyad-year universe and labels.

Data flows one way: raw files (``data/raw``) -> typed source tables (``readers``) ->
dyad-year universe and alliance-onset labels (``universe``, ``alliances``, ``labels``).
Nothing here imports ``foedus.models`` or the CLI.
"""
