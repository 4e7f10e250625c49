"""DVC stage `log_run`: record the pipeline run and its best model in MLflow."""

import argparse
from pathlib import Path

from construction_delays.batch import collector_paused
from construction_delays.config import load_params
from construction_delays.errors import reported
from construction_delays.tracking import log_pipeline_run


@reported
@collector_paused()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--split", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--report", type=Path, action="append", required=True)
    parser.add_argument("--figures", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="the run's id and model URI")
    parser.add_argument("--receipt", type=Path, help="what was logged, without the run id")
    parser.add_argument("--timings", type=Path, help="the train stages' --timings directory")
    args = parser.parse_args()
    info = log_pipeline_run(
        load_params(args.params),
        Path.cwd(),
        data_path=args.data,
        split_dir=args.split,
        models_dir=args.models,
        reports=args.report,
        figures_dir=args.figures,
        run_info_path=args.out,
        timings_dir=args.timings,
        receipt_path=args.receipt,
    )
    print(f"MLflow run {info['run_id']} logged to {info['tracking_uri']}")


if __name__ == "__main__":
    main()
