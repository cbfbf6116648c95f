"""What ``stgan inspect`` reports about a prepared data spec, as data and as a table."""

from __future__ import annotations

from stgan.data.prepared import PreparedData

MAX_GAPS_SHOWN = 5


def summarize(data: PreparedData) -> dict:
    """A JSON-able summary: dims, time axis, gaps, train statistics, windows and sizes."""
    spec, src, layout = data.spec, data.source, data.layout
    height, width = src.grid if spec.patch is None else (spec.patch, spec.patch)
    channels = len(spec.variables)
    window_bytes = spec.window.length * channels * height * width * 4  # float32 values
    mask_bytes = spec.window.length * channels * height * width  # bool mask
    time = src.time
    return {
        "name": spec.name,
        "files": [str(f) for f in src.files],
        "dims": {
            "time": {"name": src.dims.time, "size": len(time)},
            "y": {"name": src.dims.y, "size": src.ys.stop - src.ys.start},
            "x": {"name": src.dims.x, "size": src.xs.stop - src.xs.start},
        },
        "grid": {"height": src.grid[0], "width": src.grid[1], "coarsen": spec.coarsen},
        "time": {
            "start": str(time[0]),
            "end": str(time[-1]),
            "step": _duration(layout.step),
            "calendar": src.calendar,
            "gaps": [{"after": str(time[i]), "delta": _duration(d)} for i, d in layout.gaps],
        },
        "variables": {
            name: {
                "units": src.attrs[name].get("units", ""),
                "transform": spec.variables[name].transform,
                **{k: data.stats[name][k] for k in ("mean", "std", "min", "max", "nan_fraction")},
            }
            for name in spec.variables
        },
        "splits": {
            name: {
                "start": str(time[a]),
                "end": str(time[b - 1]),
                "steps": b - a,
                "windows": int(layout.windows[name].size),
            }
            for name, (a, b) in layout.splits.items()
        },
        "window": {"length": spec.window.length, "stride": spec.window.stride, "patch": spec.patch},
        "bytes_per_window": window_bytes + mask_bytes,
        "bytes_per_epoch": (window_bytes + mask_bytes) * int(layout.windows["train"].size),
    }


def format_summary(s: dict) -> str:
    """The summary as a readable plain-text report."""
    dims = s["dims"]
    t = s["time"]
    lines = [
        f"data set   {s['name']}  ({len(s['files'])} file{'s' if len(s['files']) != 1 else ''})",
        *(f"  file     {f}" for f in s["files"]),
        "dims       " + "  ".join(f"{k}={v['name']}[{v['size']}]" for k, v in dims.items()),
        f"grid       {s['grid']['height']} x {s['grid']['width']} (coarsen {s['grid']['coarsen']})",
        f"time       {t['start']} .. {t['end']}  step {t['step']}  calendar {t['calendar']}",
        f"gaps       {len(t['gaps'])}"
        + "".join(f"\n  after {g['after']}: {g['delta']}" for g in t["gaps"][:MAX_GAPS_SHOWN])
        + (
            f"\n  ... {len(t['gaps']) - MAX_GAPS_SHOWN} more"
            if len(t["gaps"]) > MAX_GAPS_SHOWN
            else ""
        ),
        "",
        "train statistics (physical units)",
        _table(
            ["variable", "units", "transform", "mean", "std", "min", "max", "NaN %"],
            [
                [
                    name,
                    v["units"],
                    v["transform"],
                    *(f"{v[k]:.4g}" for k in ("mean", "std", "min", "max")),
                    f"{100 * v['nan_fraction']:.2f}",
                ]
                for name, v in s["variables"].items()
            ],
        ),
        "",
        f"windows    length {s['window']['length']}, stride {s['window']['stride']}"
        + (f", patch {s['window']['patch']}" if s["window"]["patch"] else ""),
        _table(
            ["split", "start", "end", "steps", "windows"],
            [
                [name, v["start"], v["end"], str(v["steps"]), str(v["windows"])]
                for name, v in s["splits"].items()
            ],
        ),
        "",
        f"bytes per window  {_size(s['bytes_per_window'])} (float32 data + bool mask)",
        f"bytes per epoch   {_size(s['bytes_per_epoch'])} (train windows)",
    ]
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda row: "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(header), fmt(["-" * w for w in widths]), *map(fmt, rows)])


def _size(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB")
    power = 0
    while n >= 1024 and power < len(units) - 1:
        n, power = n / 1024, power + 1
    return f"{n:.1f} {units[power]}" if power else f"{n:.0f} B"


def _duration(delta) -> str:
    """``1h``, ``30min``, ``1d 6h``: a time step as people write it."""
    seconds = int(delta.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return " ".join(parts) or "0s"
