"""Drift-monitoring benchmark: `mlops monitor` wall time and peak memory by input size.

Run from the repository root after `make run` (it needs reports/reference_profile.json and the
local model it names)::

    python benchmarks/bench_monitor.py [--quick]

Generates new batches from the sample generator (10,000, 100,000 and 1,000,000 rows as Parquet;
1,000,000 is left out with ``--quick``), one of them shifted, and a 100,000-row prediction log in
the server's JSONL format, under ``benchmarks/.work/monitor``. Each `mlops monitor` runs in a fresh
process (start-up, reading, validating, predicting with the model, the checks and the report
files all included) whose peak RSS is measured. Prints a table and writes
``benchmarks/monitor_results.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "monitor"
RESULTS_JSON = BENCH_DIR / "monitor_results.json"
MLOPS = Path(sys.executable).parent / "mlops"
# Runs the command and prints its peak RSS (KiB): a fresh process, so the maximum is that child's.
PEAK_RSS = (
    "import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode;"
    " print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(code)"
)

sys.path.insert(0, str(BENCH_DIR))
from bench_pipeline import machine_info, machine_line  # noqa: E402


def write_batch(rows: int, seed: int, shift: bool) -> Path:
    from construction_delays.sample_data import generate

    frame = generate(rows, seed=seed)
    if shift:
        frame["Weather Delay Days"] = frame["Weather Delay Days"] + 4
        frame.loc[frame.index[: rows * 2 // 5], "Activity Type"] = "Demolition"
    path = WORK / f"batch-{rows}{'-shifted' if shift else ''}.parquet"
    frame.to_parquet(path, index=False)
    return path


def write_log(rows: int, seed: int, per_request: int = 100) -> Path:
    """A prediction log as `mlops serve` writes it, with the local best model's answers."""
    from construction_delays.config import load_params
    from construction_delays.persistence import load_model
    from construction_delays.sample_data import generate

    params = load_params(ROOT / "params.yaml")
    profile = json.loads((ROOT / "reports" / "reference_profile.json").read_text(encoding="utf-8"))
    model = load_model(ROOT / "outputs" / "models" / profile["model"] / "model.skops")
    frame = generate(rows, seed=seed)[params.data.feature_columns]
    labels, probabilities = model.predict(frame).tolist(), model.predict_proba(frame).round(4)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records")
    path = WORK / f"predictions-{rows}.jsonl"
    with path.open("w", encoding="utf-8") as log:
        for start in range(0, rows, per_request):
            end = min(start + per_request, rows)
            entry = {
                "ts": "2026-11-24T10:00:00.000+00:00",
                "model_version": 1,
                "n": end - start,
                "inputs": records[start:end],
                "predictions": labels[start:end],
                "probabilities": probabilities[start:end].tolist(),
            }
            log.write(json.dumps(entry) + "\n")
    return path


def monitor(path: Path) -> dict[str, Any]:
    out = WORK / "out" / path.stem
    command = [sys.executable, "-c", PEAK_RSS, str(MLOPS), "monitor", "--input", str(path)]
    command += ["--out", str(out), "--no-fail"]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"mlops monitor {path} failed:\n{result.stderr[-3000:]}")
    report = json.loads((out / "drift.json").read_text(encoding="utf-8"))
    return {
        "input": path.name,
        "rows": report["rows"],
        "seconds": round(seconds, 2),
        "peak_rss_mib": round(int(result.stdout.strip().splitlines()[-1]) / 1024, 1),
        "verdict": report["verdict"],
        "max_feature_psi": max(
            c["psi"] or 0.0 for c in report["checks"] if c["group"] == "feature"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="leave out the 1,000,000-row batch")
    args = parser.parse_args()
    if not (ROOT / "reports" / "reference_profile.json").is_file():
        raise SystemExit("reports/reference_profile.json not found: run `make run` first")
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    sizes = [10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000]
    inputs = [write_batch(rows, seed=500 + i, shift=False) for i, rows in enumerate(sizes)]
    inputs += [write_batch(100_000, seed=600, shift=True), write_log(100_000, seed=700)]
    rows = [monitor(path) for path in inputs]

    info = machine_info()
    header = f"{'input':<32} {'rows':>10} {'seconds':>8} {'peak MiB':>9} {'max PSI':>8}  verdict"
    print(f"\nmlops monitor on {machine_line(info)}\n\n{header}")
    for row in rows:
        print(
            f"{row['input']:<32} {row['rows']:>10,} {row['seconds']:>8.2f}"
            f" {row['peak_rss_mib']:>9.0f} {row['max_feature_psi']:>8.3f}  {row['verdict']}"
        )
    RESULTS_JSON.write_text(
        json.dumps({"machine": info, "results": rows}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"\nwrote {RESULTS_JSON.relative_to(ROOT)}")
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
