"""Experiment tracking for Lightbox, on top of MLflow.

- ``tags``: the names Lightbox writes on a run (tags, the best-score metric), defined once.
- ``client``: reaching MLflow: is it installed, a client for a URI, run searches, is a server up.
- ``store``: which MLflow store a run talks to (an SQLite file in the workspace
  unless told otherwise) and where its artifacts go.
- ``logger``: ``RunLogger``, one MLflow run seen from the training process;
  metrics are queued and written in batches by a background thread.
- ``local_run``: ``LocalRunLogger``, the same interface as files, where MLflow is not installed.
- ``runs``: opening a training process's run (either logger), recording its configuration.
- ``callback``: ``MlflowCallback``, the Lightning side of ``RunLogger``.
- ``shared_run``: one run for every process of a multi-device training.
- ``run_error``: why a run failed, as printed and as the run's error tag.
- ``history``: what the desktop app reads (metric curves, run lists, status).

Nothing is imported here so that ``import engine.tracking`` stays free of
mlflow and torch; import the submodule you need.
"""
