"""DVC stage `evaluate`: test-set metrics per model, best-model choice, plots, and the reference
profile that drift monitoring compares new data with."""

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
    parser.add_argument("--metrics", type=Path, required=True)
    parser.add_argument("--plots", type=Path, required=True)
    parser.add_argument("--figures", type=Path, required=True)
    parser.add_argument("--train", type=Path, help="training split (the profile's reference)")
    parser.add_argument("--profile", type=Path, help="reference profile for `mlops monitor`")
    args = parser.parse_args()
    stages.evaluate(
        load_params(args.params),
        args.test,
        args.models,
        args.metrics,
        args.plots,
        args.figures,
        train_path=args.train,
        profile_path=args.profile,
    )


if __name__ == "__main__":
    main()
