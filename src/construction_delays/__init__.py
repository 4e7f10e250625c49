"""The project's library: config, data, features, models, evaluation, tracking, registry, serving."""

import os

# MLflow 3 sends usage telemetry to its vendor from every process that imports it, unless told not
# to. This project makes no network calls its user did not configure (a tracking server is one they
# did): off by default, before any module imports MLflow. Set MLFLOW_DISABLE_TELEMETRY=false to opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
# MLflow retries a failing server 7 times with doubling waits: over 4 minutes before a command
# says anything. 4 retries (about 30 s) still ride out a restart. Set the variable to change it.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "4")
# Progress bars of artifact downloads (a model is a handful of small files) only bury the output.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
