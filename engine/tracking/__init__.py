"""Experiment tracking for Lightbox, on top of MLflow.

- ``store``: which MLflow store a run talks to (an SQLite file in the workspace
  unless told otherwise) and where its artifacts go.
- ``logger``: ``RunLogger``, one MLflow run seen from the training process;
  metrics are queued and written in batches by a background thread.
- ``callback``: ``MlflowCallback``, the Lightning side of ``RunLogger``.
- ``history``: what the desktop app reads (metric curves, run lists, status).

Nothing is imported here so that ``import engine.tracking`` stays free of
mlflow and torch; import the submodule you need.
"""
