"""Serving benchmarks: our REST server vs ``mlflow models serve`` vs in-process predict; batch scoring.

Run from the repository root::

    python benchmarks/bench_serving.py [--quick]

1. Trains the benchmark model (random forest, 100 trees, depth 10, in the project's Pipeline with
   its ColumnTransformer) on the 5,000-row sample, saves it with skops and registers it (alias
   ``champion``) in a private SQLite MLflow store under ``benchmarks/.work/serving``.
2. Starts ``mlops serve`` and ``mlflow models serve -m models:/...@champion --env-manager local``
   (one uvicorn worker each) on loopback ports.
3. A load generator in a separate process (raw sockets, HTTP/1.1 keep-alive, one thread per
   connection) sends 1-row and 100-row requests over 1 and 4 connections (closed loop, bounded in
   count and time), and 1-row requests at a fixed 50 requests/s (open loop; latency counted from
   the scheduled send time, so queueing is not hidden).
4. Times in-process ``model.predict`` (1 and 100 rows) for reference.
5. Batch: 1,000,000 rows (200,000 with ``--quick``) scored by ``score_file`` (CSV->CSV and
   Parquet->Parquet, 100,000-row chunks) against ``model.predict`` on the whole table in memory,
   each in a fresh process that reports its peak RSS.
6. Prints tables and writes ``benchmarks/serving_results.json`` and ``benchmarks/SERVING_RESULTS.md``.

Every server is stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "serving"
REGISTERED = "bench-serving-rf"
RESULTS_JSON = BENCH_DIR / "serving_results.json"
RESULTS_MD = BENCH_DIR / "SERVING_RESULTS.md"
BIN = Path(sys.executable).parent


# --------------------------------------------------------------------------------------------
# Load generator (runs in its own process: `bench_serving.py --loadgen '<json>'`)
# --------------------------------------------------------------------------------------------


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client for one pre-built POST (Content-Length responses)."""

    def __init__(self, port: int, path: str, body: bytes) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        )
        self.request = head.encode() + body

    def post(self) -> int:
        self.sock.sendall(self.request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(b":", 1)[1])
            for line in lines[1:]
            if line.lower().startswith(b"content-length:")
        )
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            rest += chunk
        return status

    def close(self) -> None:
        self.sock.close()


def run_closed_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """``connections`` threads, each sending back-to-back requests, until ``requests`` or ``seconds``."""
    body = spec["body"].encode()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(spec["requests"]))
    deadline = time.perf_counter() + spec["seconds"]

    def worker() -> None:
        connection = HttpConnection(spec["port"], spec["path"], body)
        try:
            for _ in range(spec["warmup"]):
                connection.post()
            while time.perf_counter() < deadline:
                with lock:
                    if next(counter, None) is None:
                        return
                started = time.perf_counter()
                status = connection.post()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        errors.append(str(status))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(spec["connections"])]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise(latencies, time.perf_counter() - started, errors)


def run_open_loop(spec: dict[str, Any]) -> dict[str, Any]:
    """Requests scheduled at a fixed rate; latency from the *scheduled* time (no coordinated omission)."""
    body = spec["body"].encode()
    rate, total = spec["rate"], int(spec["rate"] * spec["seconds"])
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    counter = iter(range(total))
    warm = HttpConnection(spec["port"], spec["path"], body)
    for _ in range(spec["warmup"]):
        warm.post()
    warm.close()
    start = time.perf_counter() + 0.05

    def worker() -> None:
        connection = HttpConnection(spec["port"], spec["path"], body)
        try:
            while True:
                with lock:
                    index = next(counter, None)
                if index is None:
                    return
                scheduled = start + index / rate
                delay = scheduled - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                status = connection.post()
                elapsed = time.perf_counter() - scheduled
                with lock:
                    latencies.append(elapsed)
                    if status != 200:
                        errors.append(str(status))
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(spec["connections"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return summarise(latencies, time.perf_counter() - start, errors)


def summarise(latencies: list[float], seconds: float, errors: list[str]) -> dict[str, Any]:
    ordered = sorted(latencies)
    n = len(ordered)

    def pct(q: float) -> float:
        return ordered[min(n - 1, int(q * n))] * 1000 if n else float("nan")

    return {
        "requests": n,
        "seconds": round(seconds, 3),
        "throughput_rps": round(n / seconds, 1) if seconds > 0 else 0.0,
        "p50_ms": round(pct(0.50), 2),
        "p90_ms": round(pct(0.90), 2),
        "p99_ms": round(pct(0.99), 2),
        "max_ms": round(ordered[-1] * 1000, 2) if n else float("nan"),
        "errors": len(errors),
        "error_statuses": sorted(set(errors)),
    }


# --------------------------------------------------------------------------------------------
# Batch child (runs in its own process: `bench_serving.py --batch-child '<json>'`)
# --------------------------------------------------------------------------------------------


def batch_child(spec: dict[str, Any]) -> dict[str, Any]:
    os.chdir(spec["root"])
    from construction_delays.config import load_params
    from construction_delays.persistence import load_model
    from construction_delays.scoring import load_scorer, score_file

    params = load_params(Path(spec["root"]) / "params.yaml")
    result: dict[str, Any] = {"mode": spec["mode"]}
    if spec["mode"] == "raw":
        import pandas as pd

        model = load_model(Path(spec["model"]))
        started = time.perf_counter()
        frame = pd.read_parquet(spec["input"], columns=params.data.feature_columns)
        loaded = time.perf_counter()
        model.predict(frame)
        done = time.perf_counter()
        result.update(read_s=loaded - started, predict_s=done - loaded, rows=len(frame))
        result["rows_per_s"] = len(frame) / result["predict_s"]
    else:
        scorer = load_scorer(spec["model"], Path(spec["root"]), params)
        summary = score_file(
            scorer,
            Path(spec["input"]),
            Path(spec["output"]),
            chunk_size=spec["chunk_size"],
            progress=False,
        )
        result.update(
            rows=summary.rows, seconds=summary.seconds, rows_per_s=summary.rows_per_second
        )
    result["peak_rss_mib"] = peak_rss_mib()
    return result


def peak_rss_mib() -> float:
    """This process's peak RSS. VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over
    fork and exec, so a child would report its parent's peak (here: the 1M-row table)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


@dataclass
class Budget:
    requests: int
    seconds: float
    open_loop_seconds: float
    batch_rows: int
    warmup: int = 30


def env() -> dict[str, str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    environment["PATH"] = f"{BIN}{os.pathsep}{environment.get('PATH', '')}"
    environment["MLFLOW_TRACKING_URI"] = f"sqlite:///{WORK / 'mlflow.db'}"
    environment.pop("API_KEY", None)
    return environment


def prepare() -> tuple[Any, Any, Path]:
    """Train, save and register the benchmark model in a fresh private store."""
    import mlflow
    from mlflow import MlflowClient

    from construction_delays.config import ModelSpec, load_params
    from construction_delays.data import select_columns
    from construction_delays.models import build_pipeline
    from construction_delays.persistence import save_model
    from construction_delays.sample_data import generate
    from construction_delays.tracking import log_model

    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["mlflow"]["registered_model"] = REGISTERED
    (WORK / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    params = load_params(WORK / "params.yaml")
    features, target = select_columns(generate(5000, seed=42), params.data)
    spec = ModelSpec(
        estimator="sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 100, "max_depth": 10, "random_state": 42, "n_jobs": 1},
    )
    model, _ = build_pipeline("random_forest", spec, params.data)
    model.fit(features, target)
    model_file = save_model(model, WORK / "model" / "model.skops")
    mlflow.set_tracking_uri(env()["MLFLOW_TRACKING_URI"])
    experiment = mlflow.create_experiment(
        "bench", artifact_location=(WORK / "mlartifacts").as_uri()
    )
    with mlflow.start_run(experiment_id=experiment) as run:
        logged = log_model(model, features)
    client = MlflowClient()
    client.create_registered_model(REGISTERED)
    found = client.create_model_version(REGISTERED, logged.model_uri, run_id=run.info.run_id)
    client.set_registered_model_alias(REGISTERED, "champion", found.version)
    return model, features, model_file


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    path: str
    ready_path: str
    startup_s: float = 0.0


def start(name: str, command: list[str], port: int, path: str, ready_path: str) -> Server:
    log = (WORK / f"{name}.log").open("wb")
    process = subprocess.Popen(command, cwd=WORK, env=env(), stdout=log, stderr=subprocess.STDOUT)
    return Server(name, process, port, path, ready_path)


def wait_ready(server: Server, started: float, deadline: float = 180.0) -> None:
    import httpx

    while time.perf_counter() - started < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(
                f"{server.name} exited {server.process.returncode}; see {WORK}/{server.name}.log"
            )
        with contextlib.suppress(httpx.TransportError):
            if (
                httpx.get(
                    f"http://127.0.0.1:{server.port}{server.ready_path}", timeout=2
                ).status_code
                == 200
            ):
                server.startup_s = time.perf_counter() - started
                return
        time.sleep(0.25)
    raise RuntimeError(f"{server.name} not ready after {deadline}s")


@contextlib.contextmanager
def servers() -> Iterator[dict[str, Server]]:
    ours_port, mlflow_port = free_port(), free_port()
    running = {
        "ours": start(
            "ours",
            [
                str(BIN / "mlops"),
                "serve",
                "--port",
                str(ours_port),
                "--log-file",
                str(WORK / "predictions.jsonl"),
            ],
            ours_port,
            "/predict",
            "/ready",
        ),
        "mlflow": start(
            "mlflow",
            [
                str(BIN / "mlflow"),
                "models",
                "serve",
                "-m",
                f"models:/{REGISTERED}@champion",
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(mlflow_port),
                "--workers",
                "1",
            ],
            mlflow_port,
            "/invocations",
            "/ping",
        ),
    }
    try:
        started = time.perf_counter()
        for server in running.values():
            wait_ready(server, started)
        yield running
    finally:
        for server in running.values():
            if server.process.poll() is None:
                server.process.terminate()
        for server in running.values():
            try:
                server.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(timeout=10)


def bodies(features: Any, rows: int) -> dict[str, str]:
    """The same rows as our ``records`` body and as MLflow's ``dataframe_split`` body."""
    import pandas as pd

    sample = features.head(rows)
    clean = sample.astype(object).where(pd.notna(sample), None)
    return {
        "ours": json.dumps({"records": clean.to_dict(orient="records")}),
        "mlflow": json.dumps(
            {
                "dataframe_split": {
                    "columns": list(sample.columns),
                    "data": clean.to_numpy().tolist(),
                }
            }
        ),
    }


def loadgen(spec: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, __file__, "--loadgen", json.dumps(spec)],
        capture_output=True,
        text=True,
        check=True,
        timeout=spec.get("seconds", 60) * 3 + 120,
    )
    return json.loads(result.stdout)


def measure_http(running: dict[str, Server], features: Any, budget: Budget) -> list[dict[str, Any]]:
    rows_out: list[dict[str, Any]] = []
    for rows in (1, 100):
        payload = bodies(features, rows)
        for connections in (1, 4):
            for name, server in running.items():
                spec = {
                    "kind": "closed",
                    "port": server.port,
                    "path": server.path,
                    "body": payload[name],
                    "connections": connections,
                    "requests": budget.requests,
                    "seconds": budget.seconds,
                    "warmup": budget.warmup,
                }
                result = loadgen(spec)
                rows_out.append(
                    {"server": name, "rows": rows, "connections": connections, **result}
                )
                print(
                    f"  {name:6} rows={rows:<3} conns={connections}: {result['throughput_rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms",
                    file=sys.stderr,
                )
    payload = bodies(features, 1)
    for name, server in running.items():
        spec = {
            "kind": "open",
            "port": server.port,
            "path": server.path,
            "body": payload[name],
            "connections": 4,
            "rate": 50,
            "seconds": budget.open_loop_seconds,
            "warmup": budget.warmup,
        }
        result = loadgen(spec)
        rows_out.append({"server": name, "rows": 1, "connections": "open 50 rps", **result})
        print(
            f"  {name:6} open loop 50 rps: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms",
            file=sys.stderr,
        )
    return rows_out


def measure_in_process(model: Any, features: Any, budget: Budget) -> list[dict[str, Any]]:
    from construction_delays.scoring import FeatureSchema, Predictor, columns_from_records

    results = []
    schema = FeatureSchema(
        tuple(c for c in features.columns if features[c].dtype.kind == "f"),
        tuple(c for c in features.columns if features[c].dtype.kind != "f"),
        "bench",
    )
    predictor = Predictor.build(model, schema)
    for rows in (1, 100):
        frame = features.head(rows)
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        for name, call in (
            ("model.predict", lambda f=frame: model.predict(f)),
            ("model.predict_proba", lambda f=frame: model.predict_proba(f)),
            (
                "our Predictor (records in)",
                lambda r=records: predictor.predict(columns_from_records(r, schema)),
            ),
        ):
            for _ in range(budget.warmup):
                call()
            latencies = []
            deadline = time.perf_counter() + budget.seconds
            while len(latencies) < budget.requests and time.perf_counter() < deadline:
                started = time.perf_counter()
                call()
                latencies.append(time.perf_counter() - started)
            summary = summarise(latencies, sum(latencies), [])
            results.append(
                {"server": f"in-process {name}", "rows": rows, "connections": "-", **summary}
            )
    return results


def measure_batch(model_file: Path, features: Any, budget: Budget) -> list[dict[str, Any]]:
    from construction_delays.sample_data import generate

    rows = budget.batch_rows
    table = generate(rows, seed=1)[list(features.columns)]
    csv_in, parquet_in = WORK / "batch.csv", WORK / "batch.parquet"
    table.to_csv(csv_in, index=False)
    table.to_parquet(parquet_in, index=False)
    del table
    model_uri = f"models:/{REGISTERED}@champion"
    runs = [
        {"mode": "raw", "input": str(parquet_in), "label": "raw model.predict (table in memory)"},
        {
            "mode": "score",
            "input": str(parquet_in),
            "output": str(WORK / "scored.parquet"),
            "label": "score_file Parquet -> Parquet",
        },
        {
            "mode": "score",
            "input": str(csv_in),
            "output": str(WORK / "scored.csv"),
            "label": "score_file CSV -> CSV",
        },
    ]
    results = []
    for run in runs:
        spec = {
            **run,
            "root": str(WORK),
            "model": str(model_file) if run["mode"] == "raw" else model_uri,
            "chunk_size": 100_000,
        }
        completed = subprocess.run(
            [sys.executable, __file__, "--batch-child", json.dumps(spec)],
            capture_output=True,
            text=True,
            env=env(),
            check=True,
            timeout=3600,
        )
        result = {**json.loads(completed.stdout.strip().splitlines()[-1]), "label": run["label"]}
        results.append(result)
        print(
            f"  {run['label']}: {result['rows_per_s']:,.0f} rows/s, peak RSS {result['peak_rss_mib']:.0f} MiB",
            file=sys.stderr,
        )
    return results


def machine() -> dict[str, Any]:
    import psutil

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "versions": {
            p: version(p)
            for p in (
                "scikit-learn",
                "pandas",
                "mlflow",
                "fastapi",
                "uvicorn",
                "pydantic",
                "orjson",
            )
        },
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def pick(http: list[dict[str, Any]], server: str, rows: int, connections: Any) -> dict[str, Any]:
    return next(
        r
        for r in http
        if r["server"] == server and r["rows"] == rows and r["connections"] == connections
    )


def headline(http: list[dict[str, Any]], batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ours, theirs = pick(http, "ours", 1, 1), pick(http, "mlflow", 1, 1)
    ours4, theirs4 = pick(http, "ours", 1, 4), pick(http, "mlflow", 1, 4)
    open_loop = pick(http, "ours", 1, "open 50 rps")
    raw = next(b for b in batch if b["mode"] == "raw")
    lines = [
        {
            "measure": "single-row throughput, 1 connection: ours / mlflow serve",
            "result": f"{ours['throughput_rps']} / {theirs['throughput_rps']} req/s = {ours['throughput_rps'] / theirs['throughput_rps']:.2f}x",
            "target": ">= 2x",
            "met": ours["throughput_rps"] >= 2 * theirs["throughput_rps"],
        },
        {
            "measure": "single-row throughput, 4 connections: ours / mlflow serve",
            "result": f"{ours4['throughput_rps']} / {theirs4['throughput_rps']} req/s = {ours4['throughput_rps'] / theirs4['throughput_rps']:.2f}x",
            "target": "-",
            "met": None,
        },
        {
            "measure": "p99 latency at 50 req/s open loop (ours)",
            "result": f"{open_loop['p99_ms']} ms (p50 {open_loop['p50_ms']} ms)",
            "target": "<= 20 ms",
            "met": open_loop["p99_ms"] <= 20,
        },
    ]
    for entry in batch:
        if entry["mode"] == "raw":
            continue
        ratio = entry["rows_per_s"] / raw["rows_per_s"]
        lines.append(
            {
                "measure": f"batch {entry['label']} (end to end) / raw predict",
                "result": f"{entry['rows_per_s']:,.0f} / {raw['rows_per_s']:,.0f} rows/s = {ratio:.2f}x; peak RSS {entry['peak_rss_mib']:.0f} vs {raw['peak_rss_mib']:.0f} MiB",
                "target": ">= 0.8x",
                "met": ratio >= 0.8,
            }
        )
    return lines


def print_tables(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=150)
    table = Table(title="Serving: closed loop (bounded count/time) and open loop at 50 req/s")
    for column in (
        "server",
        "rows/request",
        "connections",
        "requests",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
    ):
        table.add_column(column, justify="right" if column != "server" else "left")
    for r in report["http"] + report["in_process"]:
        table.add_row(
            r["server"],
            str(r["rows"]),
            str(r["connections"]),
            str(r["requests"]),
            f"{r['throughput_rps']}",
            f"{r['p50_ms']}",
            f"{r['p99_ms']}",
            str(r["errors"]),
        )
    console.print(table)
    batch = Table(title=f"Batch scoring, {report['batch_rows']:,} rows")
    for column in ("run", "rows/s", "peak RSS MiB"):
        batch.add_column(column)
    for b in report["batch"]:
        batch.add_row(b["label"], f"{b['rows_per_s']:,.0f}", f"{b['peak_rss_mib']:.0f}")
    console.print(batch)
    heads = Table(title="Headline")
    for column in ("measure", "result", "target", "met"):
        heads.add_column(column)
    for h in report["headline"]:
        heads.add_row(
            h["measure"], h["result"], h["target"], {True: "yes", False: "NO", None: "-"}[h["met"]]
        )
    console.print(heads)


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Serving benchmark results",
        "",
        f"Generated by `python benchmarks/bench_serving.py{' --quick' if report['quick'] else ''}`.",
        "",
        f"**Machine:** {m['cores']} cores, {m['memory_gib']} GiB RAM, {m['platform']}, Python {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items())
        + f"; {m['date']}. Load average at start: {', '.join(map(str, m['load_average_at_start']))} "
        "(other jobs share the machine; the load generator shares its 2 cores with the server).",
        "",
        "**Model:** random forest (100 trees, depth 10) in the project's Pipeline (ColumnTransformer:"
        " median impute + scale, mode impute + one-hot), trained on the 5,000-row sample; the same"
        " registered version behind both servers. MLflow gets `dataframe_split` bodies, ours `records`.",
        "",
        "## Headline",
        "",
        "| measure | result | target | met |",
        "|:---|:---|:---|:---|",
        *(
            f"| {h['measure']} | {h['result']} | {h['target']} | {({True: 'yes', False: '**no**', None: '-'})[h['met']]} |"
            for h in report["headline"]
        ),
        "",
        "## Requests",
        "",
        f"Measured {report['http_measured_at']}.",
        "",
        "| server | rows/request | connections | requests | req/s | p50 ms | p90 ms | p99 ms | errors |",
        "|:---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *(
            f"| {r['server']} | {r['rows']} | {r['connections']} | {r['requests']} | {r['throughput_rps']} | {r['p50_ms']} | {r['p90_ms']} | {r['p99_ms']} | {r['errors']} |"
            for r in report["http"] + report["in_process"]
        ),
        "",
        f"Server start-up to ready: ours {report['startup_s']['ours']:.1f} s, mlflow {report['startup_s']['mlflow']:.1f} s.",
        "",
        f"## Batch scoring ({report['batch_rows']:,} rows, 100,000-row chunks)",
        "",
        "| run | rows/s | peak RSS MiB |",
        "|:---|---:|---:|",
        *(
            f"| {b['label']} | {b['rows_per_s']:,.0f} | {b['peak_rss_mib']:.0f} |"
            for b in report["batch"]
        ),
        "",
        "Raw = `model.predict` on the whole table already in memory (reading time excluded);"
        " `score_file` = read chunk, validate, predict labels + probabilities, write, end to end.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, 200k batch rows")
    parser.add_argument(
        "--only-batch",
        action="store_true",
        help="re-run only the batch part; keep the request results of serving_results.json",
    )
    parser.add_argument("--loadgen", help=argparse.SUPPRESS)
    parser.add_argument("--batch-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        spec = json.loads(args.loadgen)
        print(json.dumps(run_open_loop(spec) if spec["kind"] == "open" else run_closed_loop(spec)))
        return
    if args.batch_child:
        print(json.dumps(batch_child(json.loads(args.batch_child))))
        return
    budget = (
        Budget(requests=400, seconds=6, open_loop_seconds=6, batch_rows=200_000)
        if args.quick
        else Budget(requests=3000, seconds=20, open_loop_seconds=20, batch_rows=1_000_000)
    )
    info = machine()
    print("preparing the model and the MLflow store ...", file=sys.stderr)
    model, features, model_file = prepare()
    if args.only_batch:
        previous = json.loads(RESULTS_JSON.read_text(encoding="utf-8"))
        startup, http, in_process = previous["startup_s"], previous["http"], previous["in_process"]
        http_date = previous.get("http_measured_at") or previous["machine"]["date"]
    else:
        print("starting servers ...", file=sys.stderr)
        with servers() as running:
            startup = {name: round(server.startup_s, 1) for name, server in running.items()}
            http = measure_http(running, features, budget)
        print("in-process ...", file=sys.stderr)
        in_process = measure_in_process(model, features, budget)
        http_date = info["date"]
    print("batch ...", file=sys.stderr)
    batch = measure_batch(model_file, features, budget)
    report = {
        "quick": args.quick,
        "machine": info,
        "budget": budget.__dict__,
        "startup_s": startup,
        "http_measured_at": http_date,
        "http": http,
        "in_process": in_process,
        "batch_rows": budget.batch_rows,
        "batch": batch,
        "headline": headline(http, batch),
    }
    RESULTS_JSON.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    RESULTS_MD.write_text(markdown(report), encoding="utf-8")
    print_tables(report)
    print(
        f"wrote {RESULTS_JSON.relative_to(ROOT)} and {RESULTS_MD.relative_to(ROOT)}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
