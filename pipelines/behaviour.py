"""DVC stage `behaviour`: behavioural checks of the best model on the test rows (params.yaml
`behaviour:`), written for the `behaviour` quality gate and the pull request's report."""

import argparse
from pathlib import Path

from construction_delays import stages
from construction_delays.batch import collector_paused
from construction_delays.config import load_params
from construction_delays.errors import reported


@reported
@collector_paused()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--models", type=Path, required=True)
    parser.add_argument("--metrics", type=Path, required=True, help="names the best model")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    stages.behaviour(load_params(args.params), args.test, args.models, args.metrics, args.out)


if __name__ == "__main__":
    main()
