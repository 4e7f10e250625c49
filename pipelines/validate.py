"""DVC stage `validate`: check the raw data against the schema declared in params.yaml."""

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
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--report", type=Path, required=True)
    args = parser.parse_args()
    stages.validate(load_params(args.params), args.data, args.report)


if __name__ == "__main__":
    main()
