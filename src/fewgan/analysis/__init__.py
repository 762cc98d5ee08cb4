"""fewgan.analysis: reading results (no torch, no matplotlib): the metric table and mean ± std over seeds."""
