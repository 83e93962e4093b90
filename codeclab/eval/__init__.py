"""Batch evaluation: JVET-style sequence catalogue, resumable job grid on a local pool or
a Dask cluster, SQLite results, BD-rate tables, RD plots and reports.

Modules: ``catalogue`` (sequences), ``config`` (experiments), ``jobs`` (the grid),
``worker`` (one job), ``store`` (SQLite), ``runner`` (executors), ``analysis``
(BD-rates, time ratios), ``report`` (Markdown/CSV/PNG/HTML), ``bdrate`` (the BD
implementation), ``rdcsv`` (RD-point CSVs), ``evaluate`` (run/report entry points); the commands are
:mod:`codeclab.cli.eval`. Nothing heavy is imported here.
"""
