"""The project's library: config, data, features, models, evaluation, tracking, registry, serving."""

import os

# MLflow 3 sends usage telemetry to its vendor from every process that imports it, unless told not
# to. This project makes no network calls its user did not configure (a tracking server is one they
# did): off by default, before any module imports MLflow. Set MLFLOW_DISABLE_TELEMETRY=false to opt in.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
