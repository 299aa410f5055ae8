"""The size and build-time sections of ``latest.md``."""

from __future__ import annotations

from typing import Any

from bench.sizes import MB, top_rows
from bench.stats import fmt_spread
from bench.summary import build_by_arch


def _size(value: int | None) -> str:
    return "n/a" if value is None else f"{value / MB:.1f} MB"


def short_command(command: str) -> str:
    """Collapse a run of ``--platform TAG`` flags into the first and last tag and a count."""
    words = command.split()
    out: list[str] = []
    tags: list[str] = []
    for i, word in enumerate(words):
        if word == "--platform" and i + 1 < len(words):
            continue
        if i > 0 and words[i - 1] == "--platform":
            tags.append(word)
            continue
        if tags:
            out.append(f"--platform {tags[0]} ... {tags[-1]} ({len(tags)} tags)")
            tags = []
        out.append(word)
    if tags:
        out.append(f"--platform {tags[0]} ... {tags[-1]} ({len(tags)} tags)")
    return " ".join(out)


def _pair(sizes: dict[str, Any] | None) -> str:
    if not sizes:
        return ""
    return f"{_size(sizes['unzipped_bytes'])} / {_size(sizes['zipped_bytes'])}"


def size_section(results: dict[str, Any]) -> list[str]:
    size = results.get("size", {})
    if not size:
        return []
    out = [
        "## 4. Size",
        "",
        "Bundle of the README example, built with the default options and with the opt-in "
        "`--trim --strip`, vs a naive `pip install -t` of the default build's distributions "
        "(pip's defaults, zipped with the same deflate level 9). MB = 2^20 bytes.",
        "",
        "| arch | build | ours unzipped | ours zipped | naive unzipped | naive zipped |",
        "|---|---|---|---|---|---|",
    ]
    for arch, entry in size.items():
        for variant, flags in (("bundle", "default"), ("slim", "`--trim --strip`")):
            b = entry.get(variant)
            if b is None:
                continue
            n = entry.get("naive", {}) if variant == "bundle" else {}
            naive = (
                f"{_size(n.get('unzipped_bytes'))} | {_size(n.get('zipped_bytes'))}" if n else " | "
            )
            out.append(
                f"| {arch} | {flags} | {_size(b.get('unzipped_bytes'))} "
                f"| {_size(b.get('zipped_bytes'))} | {naive} |"
            )
    for arch, entry in size.items():
        if "bundle" not in entry:
            continue
        naive = entry.get("naive", {}).get("packages", {})
        slim = entry.get("slim", {}).get("packages", {})
        out += [
            "",
            f"Per package, {arch} (unzipped / zipped):",
            "",
            "| package | ours | ours, `--trim --strip` | naive |",
            "|---|---|---|---|",
        ]
        shown: list[str] = []
        for name, unzipped, zipped in top_rows(entry["bundle"], n=10):
            theirs, trimmed = naive.get(name), slim.get(name)
            if name.startswith("other ("):
                theirs, trimmed = _rest(naive, shown), _rest(slim, shown)
            shown.append(name)
            out.append(
                f"| {name} | {_size(unzipped)} / {_size(zipped)} | {_pair(trimmed)} "
                f"| {_pair(theirs)} |"
            )
        if entry.get("naive", {}).get("command"):
            out += [
                "",
                f"Naive command: `{short_command(entry['naive']['command'])}` (the "
                "naive tree holds no model or handler).",
            ]
    out.append("")
    return out


def _rest(packages: dict[str, Any], shown: list[str]) -> dict[str, int] | None:
    """The packages not ``shown`` as one row, or None when there are no packages at all."""
    if not packages:
        return None
    rest = [r for n, r in packages.items() if n not in shown]
    return {k: sum(r[k] for r in rest) for k in ("unzipped_bytes", "zipped_bytes")}


_BUILD_LABELS = {
    "cold": "cold (every cache empty)",
    "wheels_cached": "wheels cached, deps rebuilt",
    "warm": "warm (prepared-deps cache hit)",
    "warm_import_check": "of which the import check (the floor of a warm rebuild)",
}


def build_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    build = {arch: s for arch, s in summary.get("build", {}).items() if s}
    if not build:
        return []
    raw = build_by_arch(results["build"])
    arches = list(build)
    out = [
        "## 5. Build time",
        "",
        "README example, each build a fresh process with caches of its own; "
        + "; ".join(f"{arch}: `{raw[arch]['command']}`" for arch in arches)
        + ".",
        "",
        "| build | " + " | ".join(f"{arch}: median (min-max, n)" for arch in arches) + " |",
        "|---" * (len(arches) + 1) + "|",
    ]
    for name, label in _BUILD_LABELS.items():
        cells = []
        for arch in arches:
            s = build[arch].get(name)
            d = {k: v * 1000 if isinstance(v, float) else v for k, v in (s or {}).items()}
            if s:
                cells.append(fmt_spread(d))
            elif name == "warm_import_check" and build[arch].get("warm"):
                cells.append("none: the bundle cannot run on this host")  # another arch
            else:
                cells.append("not measured")
        if any(build[arch].get(name) for arch in arches):
            out.append(f"| {label} | " + " | ".join(cells) + " |")
    out.append("")
    return out
