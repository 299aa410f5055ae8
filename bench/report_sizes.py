"""The size and build-time sections of ``latest.md``."""

from __future__ import annotations

from typing import Any

from bench.sizes import MB, top_rows
from bench.stats import fmt_spread


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


def size_section(results: dict[str, Any]) -> list[str]:
    size = results.get("size", {})
    if not size:
        return []
    out = [
        "## 4. Size",
        "",
        "Bundle of the README example vs a naive `pip install -t` of the same "
        "distributions (pip's defaults, zipped with the same deflate level 9).",
        "",
        "| arch | ours unzipped | ours zipped | naive unzipped | naive zipped |",
        "|---|---|---|---|---|",
    ]
    for arch, entry in size.items():
        b, n = entry.get("bundle", {}), entry.get("naive", {})
        out.append(
            f"| {arch} | {_size(b.get('unzipped_bytes'))} | {_size(b.get('zipped_bytes'))} "
            f"| {_size(n.get('unzipped_bytes'))} | {_size(n.get('zipped_bytes'))} |"
        )
    for arch, entry in size.items():
        if "bundle" not in entry:
            continue
        naive = entry.get("naive", {}).get("packages", {})
        out += [
            "",
            f"Per package, {arch} (ours unzipped / zipped; naive unzipped / zipped):",
            "",
            "| package | ours | naive |",
            "|---|---|---|",
        ]
        shown: list[str] = []
        for name, unzipped, zipped in top_rows(entry["bundle"], n=10):
            other = naive.get(name)
            if name.startswith("other (") and naive:
                rest = [r for n, r in naive.items() if n not in shown]
                other = {k: sum(r[k] for r in rest) for k in ("unzipped_bytes", "zipped_bytes")}
            shown.append(name)
            theirs = (
                f"{_size(other['unzipped_bytes'])} / {_size(other['zipped_bytes'])}"
                if other
                else ""
            )
            out.append(f"| {name} | {_size(unzipped)} / {_size(zipped)} | {theirs} |")
        if entry.get("naive", {}).get("command"):
            out += [
                "",
                f"Naive command: `{short_command(entry['naive']['command'])}` (the "
                "naive tree holds no model or handler).",
            ]
    out.append("")
    return out


def build_section(results: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    build = summary.get("build", {})
    if not build:
        return []
    labels = {
        "cold": "cold (every cache empty)",
        "wheels_cached": "wheels cached, deps rebuilt",
        "warm": "warm (prepared-deps cache hit)",
    }
    out = [
        "## 5. Build time",
        "",
        f"`{results['build']['command']}`, README example, x86_64.",
        "",
        "| build | median (min-max, n) |",
        "|---|---|",
    ]
    for name, s in build.items():
        d = {k: v * 1000 if isinstance(v, float) else v for k, v in s.items()}
        out.append(f"| {labels.get(name, name)} | {fmt_spread(d)} |")
    out.append("")
    return out
