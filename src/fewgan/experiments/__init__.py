"""Experiment grids: spec -> jobs -> executor -> tables and reports."""
