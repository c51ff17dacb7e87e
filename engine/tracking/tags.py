"""The names Lightbox writes on an MLflow run, defined once for every writer and reader.

The training process, the search, the launcher, the exporter and the desktop app all
meet on these names; a copy of a name in one of them would drift. Importing this module
costs nothing (no MLflow, no torch).
"""

from __future__ import annotations

#: every tag of Lightbox's own starts with this (the app reads all of them)
PREFIX = "lightbox."

# ---------------------------------------------------------------------- a run and its folder
RUN_DIR_TAG = "lightbox.run_dir"
TASK_TAG = "lightbox.task"
#: training processes of the run (devices x nodes)
PROCESSES_TAG = "lightbox.processes"
#: which weights the run starts from, said plainly (offline presets are randomly initialised)
WEIGHTS_TAG = "lightbox.weights"
#: images left out of a split for having no usable annotation: this prefix + the split's name
DROPPED_IMAGES_TAG_PREFIX = "lightbox.dropped_images."
DATA_PROBLEMS_TAG = "lightbox.data_problems"
#: a Ray Train run: its strategy ("ray") and number of workers
STRATEGY_TAG = "lightbox.strategy"
NUM_WORKERS_TAG = "lightbox.num_workers"

# ---------------------------------------------------------------------- checkpoints
BEST_CHECKPOINT_TAG = "lightbox.best_checkpoint"
#: the metric the best checkpoint was chosen by
BEST_MONITOR_TAG = "lightbox.best_monitor"
LAST_CHECKPOINT_TAG = "lightbox.last_checkpoint"

# ---------------------------------------------------------------------- a live run
#: set by whoever wants the run to stop (the app, ``lightbox jobs stop``); polled by the training process
STOP_TAG = "lightbox.stop_requested"
#: set by the training process when it ended because of such a request
STOPPED_TAG = "lightbox.stopped_by_request"
#: Unix time the training process last showed it is alive (a stale one tells a lost run)
HEARTBEAT_TAG = "lightbox.heartbeat"
#: a launcher puts a fresh id in the child's environment (this variable); the run logger tags the run with it
LAUNCH_ID_ENV, LAUNCH_ID_TAG = "LIGHTBOX_LAUNCH_ID", "lightbox.launch_id"
#: why a run failed: the line the command printed after ``lightbox <verb>:``
ERROR_TAG = "lightbox.error"

# ---------------------------------------------------------------------- searches
#: "true" on a search's own (parent) run
SEARCH_TAG = "lightbox.search"
#: on the search's run: its best trial's run id
BEST_RUN_TAG = "lightbox.best_run_id"
#: on a trial's run: Ray Tune's id of the trial
TRIAL_TAG = "lightbox.trial_id"
#: "true" on a trial the scheduler (ASHA) ended early: FINISHED, not failed
EARLY_STOPPED_TAG = "lightbox.early_stopped"

# ---------------------------------------------------------------------- label-error searches
#: "true" on a label-error search's own run (which is a search too: it carries :data:`SEARCH_TAG`)
LABEL_ERRORS_TAG = "lightbox.label_errors"
#: on a fold's run: which fold of the images it held out (0 .. K-1)
FOLD_TAG = "lightbox.fold"
#: on the label-error search's run: the errors.json it wrote
LABEL_ERRORS_FILE_TAG = "lightbox.label_errors_file"

# ---------------------------------------------------------------------- MLflow's own tags
#: a child run's parent: a trial points at its search
PARENT_RUN_TAG = "mlflow.parentRunId"
RUN_NAME_TAG = "mlflow.runName"

# ---------------------------------------------------------------------- registered model versions
#: the checkpoint an exported model version was made from (with :data:`TASK_TAG`)
CHECKPOINT_TAG = "lightbox.checkpoint"

# ---------------------------------------------------------------------- not tags, read beside them
#: the metric holding the best checkpoint's score (by :data:`BEST_MONITOR_TAG`)
BEST_SCORE_METRIC = "best_score"
#: the artifact holding the latest validation confusion matrix (classification)
CONFUSION_MATRIX_FILE = "confusion_matrix.json"
