"""What training processes under Ray report, and what their drivers read back.

A Ray Train worker and its driver (:mod:`~engine.orchestration.ray_worker`,
:mod:`~engine.orchestration.ray_train`), a Tune trial and its search
(:mod:`~engine.orchestration.tune_trial`, :mod:`~engine.orchestration.tune`) meet on these
names; each side imports them from here, so neither imports the other.
"""

from __future__ import annotations

#: the MLflow run id, in every report a trial (or a Ray Train run's rank 0) makes
RUN_ID_KEY = "mlflow_run_id"
#: what Ray's Train-to-Tune forwarding calls the path of a Ray Train checkpoint
RAY_TRAIN_CHECKPOINT_KEY = "checkpoint_path"
#: the file name of the Lightning checkpoint inside each checkpoint folder Ray Train keeps
CHECKPOINT_NAME = "checkpoint.ckpt"
#: what rank 0 of a Ray Train run returns: stopped on request, and the step whose loss was not finite (or None)
STOPPED_KEY, NONFINITE_KEY = "stopped_by_request", "nonfinite_step"

__all__ = ["CHECKPOINT_NAME", "NONFINITE_KEY", "RAY_TRAIN_CHECKPOINT_KEY", "RUN_ID_KEY", "STOPPED_KEY"]
