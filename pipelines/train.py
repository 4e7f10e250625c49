"""DVC stage `train@<model>`: tune one model of the zoo with GridSearchCV."""

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
    parser.add_argument("--model", required=True, help="key under `models:` in params.yaml")
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--timings", type=Path, help="where to write how long it took (not a stage output)"
    )
    args = parser.parse_args()
    stages.train(load_params(args.params), args.model, args.train, args.out, args.timings)


if __name__ == "__main__":
    main()
