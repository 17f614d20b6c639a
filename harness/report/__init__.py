"""The analysis report of a sweep (``python -m harness.report --sweep runs/<name>``).

Modules: :mod:`~harness.report.collect` (read the results table and MLflow),
:mod:`~harness.report.figures` (draw), :mod:`~harness.report.build` (write the page, log the PNGs),
:mod:`~harness.report.links` (MLflow UI URLs).
"""
