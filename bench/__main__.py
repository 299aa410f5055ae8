"""``python -m bench``: measure, then write bench/results/latest.{md,json,png}.

    python -m bench            # the full run (12 min on 2 cores, ~20 more for the flavors)
    python -m bench --quick    # few runs, README model and one flavor, for a smoke test
    python -m bench --only flavors   # the flavor table alone, into the existing latest.json

Phases, in this order: log the models into a store under ``--workdir``, build their bundles,
cold start, warm latency (and memory), concurrent load (README model: 16 clients for 30 s,
``bench/load.py``), size, build time, then each flavor's model (``bench/flavors.py``).
``--skip`` leaves phases out; ``--only`` measures the phases named and keeps the others'
results from the ``latest.json`` already in ``--out``.
Benchmarks are not tests: nothing here asserts on a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import buildtime, coldstart, flavors, load, sizes, warm
from bench.bundles import Bundle, build_bundle, remove_task_root, task_root
from bench.chart import draw
from bench.models import BenchModel, ensure_model
from bench.report import render
from bench.summary import build_by_arch, summarize_results

ROOT = Path(__file__).resolve().parent.parent
PHASES = ("cold", "warm", "load", "size", "build", "flavors")


@dataclass(frozen=True)
class Plan:
    """How many runs of each measurement."""

    cold_runs: int  # rounds of every cold path, per model
    warmup: bool  # one untimed cold round first (page cache)
    counts: dict[int, int]  # warm requests per side, by rows per request
    budget_s: float  # warm seconds per side and size, at most
    build_cold: int
    build_warm: int
    load_s: float  # counted seconds of the concurrent load, per server
    flavor_runs: int = 5  # cold rounds per flavor model (bench/flavors.py)
    flavor_warm: int = 100  # warm requests per flavor model, per side


FULL = Plan(7, True, {1: 300, 2: 300, 100: 200, 1000: 100, 10_000: 150}, 20.0, 2, 3, 30.0)
QUICK = Plan(2, False, {1: 20, 2: 20, 100: 10, 1000: 10, 10_000: 5}, 1.5, 0, 1, 5.0, 1, 10)


METHOD_NOTES = (
    "Cold starts run with the bundle and model files in the page cache (as after a first "
    "start); a real Lambda cold start also fetches and unpacks the code, not measured here.",
    "`ours` cold start and `mlflow-lambda serve` run the bundle on the bundle's Python with the "
    "bundle's packages only; the in-process handler and every MLflow path run on the host "
    "venv (its Python and packages).",
    "`mlflow-lambda serve` adds a local-only hop (HTTP -> HTTP API event -> Lambda emulator -> "
    "awslambdaric); on AWS, API Gateway and the Lambda service take its place.",
    f"Warm sides alternate in blocks of {warm.BLOCK} requests; cold paths alternate their order "
    "per round, after one untimed round (full run).",
    "The package index here is a local mirror, so a cold build downloads faster than over the "
    "internet.",
)


def say(line: str) -> None:
    print(line, flush=True)


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS and the current load average."""
    cpu = "unknown CPU"
    ram_gb = 0.0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {"cpu": cpu, "nproc": os.cpu_count(), "ram_gb": ram_gb,
            "os": platform.platform(terse=True), "load_before": _load()}  # fmt: skip


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def wait_quiet(max_load: float, minutes: float) -> None:
    """Wait up to ``minutes`` for the 1-minute load average to fall below ``max_load``."""
    end = time.monotonic() + minutes * 60
    while os.getloadavg()[0] >= max_load and time.monotonic() < end:
        say(f"load average {_load()}: waiting for < {max_load} ...")
        time.sleep(30)


def _versions() -> dict[str, str]:
    out = {}
    for name in ("mlflow", "scikit-learn", "pandas", "numpy", "awslambdaric", "fastapi"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def default_workdir() -> Path:
    """``~/.cache/mlflow-lambda/bench`` (``$XDG_CACHE_HOME`` if set)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mlflow-lambda" / "bench"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="few runs, for a smoke test")
    p.add_argument("--out", type=Path, help="where latest.{md,json,png} go [default: "
                   "bench/results; --quick: <workdir>/quick, so a smoke test never replaces "
                   "the committed results]")  # fmt: skip
    # Not under build/: `mlflow-lambda package -o build/` replaces that directory whole.
    p.add_argument("--workdir", type=Path, default=default_workdir(),
                   help="MLflow store, bundles and logs (kept between runs)")  # fmt: skip
    p.add_argument("--models", help="comma-separated: readme,large,seed [default: all; "
                   "--quick: readme]")  # fmt: skip
    p.add_argument("--skip", default="", help=f"comma-separated phases to skip: {PHASES}")
    p.add_argument("--only", default="", help="comma-separated phases to measure; the others' "
                   "results are kept from <out>/latest.json")  # fmt: skip
    p.add_argument("--flavors", help=f"comma-separated flavor models: {','.join(flavors.SPECS)} "
                   f"[default: all; --quick: {','.join(flavors.QUICK_FLAVORS)}]")  # fmt: skip
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="MINUTES",
                   help="first wait up to MINUTES for a load average below --max-load")  # fmt: skip
    p.add_argument("--max-load", type=float, default=1.5)
    p.add_argument("--render", type=Path, metavar="JSON",
                   help="measure nothing: render the report again from a latest.json")  # fmt: skip
    args = p.parse_args(argv)
    if args.out is None:
        args.out = args.workdir / "quick" if args.quick else ROOT / "bench" / "results"
    return args


def _bundles(models: dict[str, BenchModel], work: Path) -> dict[str, Bundle]:
    out = {}
    for key, model in models.items():
        say(f"building the {key} bundle (x86_64) ...")
        out[key] = build_bundle(model.uri, work / "bundles" / f"{key}-x86_64")
        say(f"  {out[key].manifest['sizes']['unzipped_bytes'] / 2**20:.1f} MB unzipped, "
            f"bytecode {out[key].bytecode_mode}, {out[key].build_s:.1f} s")  # fmt: skip
    return out


def measure(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Run every phase not skipped, filling ``results`` as it goes."""
    cfg = QUICK if args.quick else FULL
    skip = {s for s in args.skip.split(",") if s}
    if args.only:
        skip |= set(PHASES) - set(args.only.split(","))
    work = args.workdir.resolve()
    (work / "logs").mkdir(parents=True, exist_ok=True)
    if set(PHASES[:-1]) - skip:
        _measure_models(args, cfg, skip, work, results)
    if "flavors" not in skip:
        keys = args.flavors or ",".join(flavors.QUICK_FLAVORS if args.quick else flavors.SPECS)
        now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        results["flavors_meta"] = {"date": now, "load_before": _load()}
        try:
            measured = flavors.run(
                keys.split(","), work, runs=cfg.flavor_runs, warm=cfg.flavor_warm, say=say
            )
            for entry in measured.values():
                entry["date"] = now
            # with --only and --flavors, the flavors not named keep their earlier results
            results["flavors"] = {**results.get("flavors", {}), **measured}
        finally:
            results["flavors_meta"]["load_after"] = _load()


def _measure_models(
    args: argparse.Namespace, cfg: Plan, skip: set[str], work: Path, results: dict[str, Any]
) -> None:
    """The README, large and seed models' phases (all but ``flavors``)."""
    keys = args.models or ("readme" if args.quick else "readme,large,seed")
    models = {k: ensure_model(k, work / "store") for k in keys.split(",") if k}
    bundles = _bundles(models, work)
    notes = results["meta"]["notes"]
    for key, model in models.items():
        b = bundles[key]
        results["models"][key] = {
            "title": model.title, "uri": model.uri, "bytecode_mode": b.bytecode_mode,
            "memory_size_in_template_mb": b.memory_mb, "runtime": b.manifest["runtime"],
            "unzipped_bytes": b.manifest["sizes"]["unzipped_bytes"],
            "zipped_bytes": b.manifest["sizes"]["zipped_bytes"],
        }  # fmt: skip
        results["meta"]["bundle_python"] = b.manifest["python_version"]
        if b.note:
            notes.append(f"{key}: {b.note}; measured with bytecode mode {b.bytecode_mode!r}")
    for key, model in models.items():
        if "cold" not in skip:
            root, skops_root = work / "task" / key, work / "task" / f"{key}-skops"
            remove_task_root(root)
            task_root(bundles[key], root)
            skops = None
            if key == "seed":  # issue 11: the build's pickle vs skops, in the same run
                say("building the seed bundle that keeps skops ...")
                kept = build_bundle(model.uri, work / "bundles" / "seed-skops", preload=False)
                remove_task_root(skops_root)
                skops = (task_root(kept, skops_root), kept)
                results["models"][key]["skops_unzipped_bytes"] = kept.manifest["sizes"][
                    "unzipped_bytes"
                ]
                results["models"][key]["skops_zipped_bytes"] = kept.manifest["sizes"][
                    "zipped_bytes"
                ]
            try:
                say(f"cold start, {key} ...")
                results["cold"][key] = coldstart.run(
                    model, root, bundles[key], runs=cfg.cold_runs, warmup=cfg.warmup, say=say,
                    skops=skops,
                )  # fmt: skip
            finally:
                remove_task_root(root)
                remove_task_root(skops_root)
        if "warm" not in skip:
            say(f"warm latency, {key} ...")
            inproc = warm.in_process(model, bundles[key], cfg.counts, cfg.budget_s, say)
            http = warm.over_http(model, bundles[key], cfg.counts, cfg.budget_s, work / "logs", say)
            results["warm"][key] = {"in_process": inproc, "http": http}
        if "load" not in skip and key == "readme":
            say(f"concurrent load, {key} ({load.CLIENTS} clients, {cfg.load_s:.0f} s each) ...")
            results["load"][key] = load.run(model, bundles[key], work / "logs", say, cfg.load_s)
    readme = models.get("readme") or next(iter(models.values()))
    arches = {"x86_64": bundles[readme.key]}
    if not args.quick and not {"size", "build"} <= skip:
        say("building the arm64 bundle ...")
        arches["arm64"] = build_bundle(readme.uri, work / "bundles" / f"{readme.key}-arm64",
                                       arch="arm64")  # fmt: skip
    if "size" not in skip:
        for arch, bundle in arches.items():
            results["size"][arch] = _sizes(readme, bundle, work, naive=not args.quick)
    if "build" not in skip:
        say("build time, x86_64 ...")
        results["build"]["x86_64"] = {"model": readme.key, **buildtime.run(
            readme.uri, arches["x86_64"], cold_runs=cfg.build_cold, warm_runs=cfg.build_warm,
            say=say,
        )}  # fmt: skip
        if "arm64" in arches:
            say("build time, arm64 (warm rebuilds) ...")
            results["build"]["arm64"] = {"model": readme.key, **buildtime.warm_only(
                readme.uri, arches["arm64"], runs=cfg.build_warm, say=say
            )}  # fmt: skip


def _sizes(model: BenchModel, bundle: Bundle, work: Path, *, naive: bool) -> dict[str, Any]:
    """Sizes of the default ``bundle``, of a ``--trim --strip`` build and of a naive tree."""
    arch = bundle.arch
    say(f"building the {arch} bundle with --trim --strip ...")
    slim = build_bundle(model.uri, work / "bundles" / f"{model.key}-{arch}-slim", arch=arch,
                        trim=True, strip=True)  # fmt: skip
    say(f"  {slim.manifest['sizes']['unzipped_bytes'] / 2**20:.1f} MB unzipped, "
        f"bytecode {slim.bytecode_mode}, {slim.build_s:.1f} s")  # fmt: skip
    say(f"sizes, {arch} ...")
    entry: dict[str, Any] = {"model": model.key}
    for name, b in (("bundle", bundle), ("slim", slim)):
        entry[name] = {**sizes.bundle_sizes(b), "flags": b.flags,
                       "bytecode_mode": b.bytecode_mode, "build_s": b.build_s}  # fmt: skip
    if naive:
        entry["naive"] = sizes.naive_sizes(bundle)
    return entry


def _in_order(results: dict[str, Any]) -> dict[str, Any]:
    """README model before the large one, x86_64 before arm64 (JSON keys come back sorted)."""

    def rank(order: tuple[str, ...]) -> Any:
        return lambda key: (order.index(key) if key in order else len(order), key)

    models = sorted(results.get("models", {}), key=rank(("readme", "large", "seed")))
    arches = sorted(results.get("size", {}), key=rank(("x86_64", "arm64")))
    build = build_by_arch(results.get("build", {}))
    return {
        **results,
        "models": {k: results["models"][k] for k in models},
        "size": {k: results["size"][k] for k in arches},
        "build": {k: build[k] for k in sorted(build, key=rank(("x86_64", "arm64")))},
    }


def write(results: dict[str, Any], out: Path) -> None:
    """latest.json (raw samples and summary), latest.md and latest.png, each replaced whole."""
    out.mkdir(parents=True, exist_ok=True)
    results = _in_order(results)
    summary = summarize_results(results)
    chart = None
    if results["models"] and any(summary["models"][k]["cold"] for k in summary["models"]):
        draw(results, summary, out / "latest.png.tmp")
        os.replace(out / "latest.png.tmp", out / "latest.png")
        chart = "latest.png"
    doc = {"results": results, "summary": summary}
    (out / "latest.json.tmp").write_text(json.dumps(doc, indent=1) + "\n")
    os.replace(out / "latest.json.tmp", out / "latest.json")
    (out / "latest.md.tmp").write_text(render(results, summary, chart))
    os.replace(out / "latest.md.tmp", out / "latest.md")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.render:
        write(json.loads(args.render.read_text())["results"], args.out)
        say(f"wrote {args.out / 'latest.md'}")
        return 0
    if args.wait_quiet:
        wait_quiet(args.max_load, args.wait_quiet)
    started = time.monotonic()
    results: dict[str, Any] = {
        "meta": {
            "command": " ".join(["python -m bench", *(sys.argv[1:] if argv is None else argv)]),
            "quick": args.quick, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(), "python": platform.python_version(), "versions": _versions(),
            "notes": list(METHOD_NOTES),
        },
        "models": {}, "cold": {}, "warm": {}, "load": {}, "size": {}, "build": {},
    }  # fmt: skip
    only = [p for p in args.only.split(",") if p]
    # which run measured each phase, shown at the top of latest.md (--only keeps the others')
    measured = {"command": results["meta"]["command"], "date": results["meta"]["date"],
                "load_before": results["meta"]["machine"]["load_before"]}  # fmt: skip
    phases = {p: measured for p in only or PHASES}
    kept_earlier = only and (args.out / "latest.json").is_file()
    if kept_earlier:  # keep the phases not measured now
        kept = json.loads((args.out / "latest.json").read_text())["results"]
        fresh = {p: {} for p in only if p != "flavors" or not args.flavors}
        results = {**kept, **fresh}
        results["meta"]["notes"] = [
            n for n in kept["meta"].get("notes", []) if not n.startswith("`--only`")
        ]
        phases = {**kept["meta"].get("phases", {}), **phases}
    results["meta"]["phases"] = phases
    try:
        measure(args, results)
    finally:  # keep what was measured, even when a later phase failed
        if not kept_earlier:  # this run is the whole record: its duration and load count
            results["meta"]["duration_s"] = time.monotonic() - started
            results["meta"]["machine"]["load_after"] = _load()
        raw = args.workdir / "last-results.json"
        raw.write_text(json.dumps({"results": results}, indent=1) + "\n")
        say(f"raw results in {raw}")
    write(results, args.out)
    say(f"wrote {args.out / 'latest.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
