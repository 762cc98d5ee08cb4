"""Offline reports: a training run folder or an experiment folder -> index.html + report.md.

    build_report(path, out=None) -> Path of index.html

The page is one self-contained HTML file (inline CSS, no JavaScript, no external
resources); every plot and copied sample grid is a PNG beside it in the report
folder (default ``<path>/report/``) and linked relatively, so the folder can be
zipped, moved or opened offline. ``report.md`` is a Markdown twin with the same
sections and the same images.

A *run folder* is recognised by ``config.yaml``, ``stats.jsonl`` or ``metrics.jsonl``;
an *experiment folder* by ``spec.yaml`` or ``results.csv`` (checked first). Every
input file is optional: a missing or empty one turns its section into "no data yet".

Conventions:
- log ratios are natural logs; the per-epoch ratio is log(mean L_G / mean L_D) over
  the iterations of the epoch (``floor(epoch)``) that have both losses; epochs whose
  mean losses are not both positive have no ratio (see :func:`epoch_log_ratio`).
- moving averages are centred, window ``max(1, n // 50)``, ignoring missing values.
- metric plots are split by ``backbone`` (values from different feature extractors are
  never drawn on one axis) and every metric axis names backbone, sample counts and
  resolution.
- experiment curves: each run's loss curve is smoothed first, then the mean over seeds
  is drawn with a min-max band over seeds.
"""

from __future__ import annotations

import csv
import html
import json
import math
import re
import shutil
import sys
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from . import runs as runs_mod  # noqa: E402
from .analysis import table as metric_table  # noqa: E402
from .runs import RUN_MARKERS, load_jsonl, natural_key  # noqa: E402,F401  (re-exported: older callers)

__all__ = ["build_report", "load_jsonl", "epoch_log_ratio", "moving_average"]

EXPERIMENT_MARKERS = ("spec.yaml", "results.csv")

# stats keys that have their own plot (or are bookkeeping); any other numeric key is an "other signal"
KNOWN_STATS_KEYS = {
    "step", "epoch", "loss_d", "loss_g", "log_ratio", "d_real", "d_fake", "grad_norm_d", "grad_norm_g",
    "lr_g", "lr_d", "img_per_s", "time", "warnings",
}
NON_METRIC_COLUMNS = {"run", "variant", "data", "seed", "step"}
MAX_WARNINGS = 200
MAX_OTHER_SIGNALS = 16
N_GRIDS = 6

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;
 background:#fff;margin:0;line-height:1.45}
main{max-width:1100px;margin:0 auto;padding:1.5em 1.2em 4em}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:2em}
h3{margin-top:1.5em}
.meta{color:#666;font-size:.9em}
nav.toc{font-size:.9em;background:#f6f8fa;border:1px solid #e1e4e8;padding:.5em 1em;border-radius:4px}
nav.toc a{margin-right:1em}
table{border-collapse:collapse;margin:.8em 0;font-size:.9em}
th,td{border:1px solid #bbb;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.num{text-align:right;font-variant-numeric:tabular-nums}
pre{background:#f6f8fa;border:1px solid #e1e4e8;padding:.8em;overflow:auto;font-size:.85em}
figure{margin:1em 0}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{color:#555;font-size:.85em;margin-top:.3em}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));gap:1em}
.gallery figure{margin:0}
.gallery img{width:100%;image-rendering:pixelated}
.nodata{color:#888;font-style:italic}
ul.warnings li{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em}
"""


# ============================================================================ small helpers


def _style_step_axes(ax, ylabel: str) -> None:
    """The common finish of a curve-against-step plot: labels, legend, light grid."""
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)


def _num(v: Any) -> float | None:
    """A finite float, or None for anything else (None, NaN, strings, bools, lists)."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def epoch_log_ratio(stats: list[dict]) -> list[tuple[int, float]]:
    """Per-epoch log(L_G / L_D): for each epoch e = floor(record["epoch"]),
    r_e = ln(mean loss_g / mean loss_d), the means taken over that epoch's records that
    have finite loss_g, loss_d and epoch. Epochs whose mean losses are not both > 0 (log
    undefined, e.g. hinge/WGAN-style losses) are left out. Sorted by epoch."""
    acc: dict[int, list[float]] = {}
    for rec in stats:
        e, g, d = _num(rec.get("epoch")), _num(rec.get("loss_g")), _num(rec.get("loss_d"))
        if e is None or g is None or d is None:
            continue
        a = acc.setdefault(int(math.floor(e)), [0.0, 0.0, 0])
        a[0] += g
        a[1] += d
        a[2] += 1
    out = []
    for ep in sorted(acc):
        sg, sd, n = acc[ep]
        mg, md = sg / n, sd / n
        if mg > 0 and md > 0:
            out.append((ep, math.log(mg / md)))
    return out


def _epoch_points(stats: list[dict]) -> list[tuple[int, float, float]]:
    """(epoch, last step of the epoch, r_e) for plotting the per-epoch ratio against step."""
    end: dict[int, float] = {}
    for i, rec in enumerate(stats):
        e = _num(rec.get("epoch"))
        if e is None:
            continue
        s = _num(rec.get("step"))
        s = float(i + 1) if s is None else s
        ep = int(math.floor(e))
        end[ep] = max(end.get(ep, -math.inf), s)
    return [(ep, end[ep], r) for ep, r in epoch_log_ratio(stats)]


def moving_average(y: Sequence[float] | np.ndarray, window: int) -> np.ndarray:
    """Centred moving average over `window` points; NaNs are ignored (NaN where a window has none)."""
    y = np.asarray(y, dtype=float)
    n = len(y)
    if n == 0:
        return y
    w = max(1, int(window))
    valid = np.isfinite(y)
    c = np.concatenate([[0.0], np.cumsum(np.where(valid, y, 0.0))])
    k = np.concatenate([[0], np.cumsum(valid)])
    idx = np.arange(n)
    lo = np.maximum(0, idx - (w - 1) // 2)
    hi = np.minimum(n, idx + w // 2 + 1)
    cnt = k[hi] - k[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (c[hi] - c[lo]) / np.maximum(cnt, 1), np.nan)


def _steps(records: list[dict]) -> np.ndarray:
    return np.array([(_num(r.get("step")) if _num(r.get("step")) is not None else float(i + 1))
                     for i, r in enumerate(records)], dtype=float)


def _values(records: list[dict], key: str) -> np.ndarray:
    return np.array([(_num(r.get(key)) if _num(r.get(key)) is not None else np.nan) for r in records], dtype=float)


def _has(y: np.ndarray) -> bool:
    return bool(np.isfinite(y).any())


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
            return f"{v:.3e}"
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return json.dumps(v)
    return str(v)


def _safe(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", str(name)).strip("._")
    return s or "x"


def _read_text(p: Path) -> str | None:
    try:
        return p.read_text(encoding="utf-8", errors="replace") if p.is_file() else None
    except OSError:
        return None


def _read_yaml(p: Path) -> tuple[str | None, Any, str | None]:
    """(raw text, parsed value or None, parse error or None)."""
    text = _read_text(p)
    if text is None:
        return None, None, None
    try:
        return text, yaml.safe_load(text), None
    except yaml.YAMLError as e:
        return text, None, str(e)


def _read_csv(p: Path) -> tuple[list[str], list[dict[str, str]]]:
    text = _read_text(p)
    if not text:
        return [], []
    reader = csv.DictReader(text.splitlines())
    header = list(reader.fieldnames or [])
    rows = [{k: (v if v is not None else "") for k, v in row.items() if k is not None} for row in reader]
    return header, rows


def _cell_float(s: Any) -> float | None:
    if s is None:
        return None
    try:
        f = float(str(s).strip())
    except ValueError:
        return None
    return f if math.isfinite(f) else None


def _get(d: Any, *keys: str) -> Any:
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


# ============================================================================ document builder


@dataclass
class _Link:
    text: str
    html_href: str
    md_href: str


@dataclass
class _Doc:
    """Builds the HTML page and its Markdown twin side by side."""

    title: str
    html: list[str] = field(default_factory=list)
    md: list[str] = field(default_factory=list)
    toc: list[tuple[str, str]] = field(default_factory=list)
    anchors: set[str] = field(default_factory=set)

    # --- text
    def heading(self, text: str, level: int = 2) -> None:
        anchor, base, i = _safe(text).lower(), _safe(text).lower(), 2
        while anchor in self.anchors:
            anchor, i = f"{base}-{i}", i + 1
        self.anchors.add(anchor)
        if level == 2:
            self.toc.append((anchor, text))
        self.html.append(f'<h{level} id="{html.escape(anchor)}">{html.escape(text)}</h{level}>')
        self.md.append(f"{'#' * level} {text}\n")

    def para(self, text: str, cls: str | None = None) -> None:
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<p{c}>{html.escape(text)}</p>")
        self.md.append(f"{_md_escape(text)}\n")

    def nodata(self, what: str = "no data yet") -> None:
        self.html.append(f'<p class="nodata">{html.escape(what)}</p>')
        self.md.append(f"*{_md_escape(what)}*\n")

    def link_para(self, prefix: str, link: _Link) -> None:
        self.html.append(f'<p>{html.escape(prefix)}<a href="{html.escape(link.html_href)}">'
                         f"{html.escape(link.text)}</a></p>")
        self.md.append(f"{_md_escape(prefix)}[{_md_escape(link.text)}]({link.md_href})\n")

    def pre(self, text: str) -> None:
        self.html.append(f"<pre>{html.escape(text.rstrip())}</pre>")
        fence = "````" if "```" in text else "```"
        self.md.append(f"{fence}\n{text.rstrip()}\n{fence}\n")

    def bullets(self, items: Iterable[str], cls: str | None = None) -> None:
        items = list(items)
        c = f' class="{cls}"' if cls else ""
        self.html.append(f"<ul{c}>" + "".join(f"<li>{html.escape(t)}</li>" for t in items) + "</ul>")
        self.md.append("\n".join(f"- {_md_escape(t)}" for t in items) + "\n")

    def raw_md(self, text: str) -> None:
        self.md.append(text.rstrip() + "\n")

    def raw_html(self, text: str) -> None:
        self.html.append(text)

    # --- images
    def figure(self, src: str, caption: str) -> None:
        self.html.append(f'<figure><img src="{html.escape(quote(src))}" alt="{html.escape(caption)}">'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        self.md.append(f"![{_md_alt(caption)}]({quote(src)})\n\n*{_md_escape(caption)}*\n")

    def gallery(self, items: list[tuple[str, str]]) -> None:
        parts = ['<div class="gallery">']
        for src, cap in items:
            parts.append(f'<figure><img src="{html.escape(quote(src))}" alt="{html.escape(cap)}">'
                         f"<figcaption>{html.escape(cap)}</figcaption></figure>")
        parts.append("</div>")
        self.html.append("".join(parts))
        self.md.append("\n".join(f"![{_md_alt(cap)}]({quote(src)})  \n*{_md_escape(cap)}*\n" for src, cap in items))

    # --- tables
    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        h = ["<table><thead><tr>"] + [f"<th>{html.escape(str(c))}</th>" for c in header] + ["</tr></thead><tbody>"]
        for row in rows:
            h.append("<tr>")
            for v in row:
                if isinstance(v, _Link):
                    h.append(f'<td><a href="{html.escape(v.html_href)}">{html.escape(v.text)}</a></td>')
                else:
                    cls = ' class="num"' if _is_number(v) or isinstance(v, _Num) else ""
                    h.append(f"<td{cls}>{html.escape(_fmt(v) if not isinstance(v, str) else v)}</td>")
            h.append("</tr>")
        h.append("</tbody></table>")
        self.html.append("".join(h))
        md = ["| " + " | ".join(_md_cell(str(c)) for c in header) + " |",
              "|" + "|".join("---" for _ in header) + "|"]
        for row in rows:
            cells = []
            for v in row:
                if isinstance(v, _Link):
                    cells.append(f"[{_md_cell(v.text)}]({v.md_href})")
                else:
                    cells.append(_md_cell(_fmt(v) if not isinstance(v, str) else v))
            md.append("| " + " | ".join(cells) + " |")
        self.md.append("\n".join(md) + "\n")

    # --- output
    def render_html(self, subtitle: str, back: _Link | None = None) -> str:
        nav = ""
        if self.toc:
            nav = '<nav class="toc">' + "".join(
                f'<a href="#{html.escape(a)}">{html.escape(t)}</a>' for a, t in self.toc) + "</nav>"
        backp = f'<p><a href="{html.escape(back.html_href)}">{html.escape(back.text)}</a></p>' if back else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
                f"<title>{html.escape(self.title)}</title><style>{CSS}</style></head>\n<body><main>\n"
                f"{backp}<h1>{html.escape(self.title)}</h1>\n<p class=\"meta\">{html.escape(subtitle)}</p>\n"
                f"{nav}\n" + "\n".join(self.html) + "\n</main></body></html>\n")

    def render_md(self, subtitle: str, back: _Link | None = None) -> str:
        head = [f"# {self.title}\n", f"{_md_escape(subtitle)}\n"]
        if back:
            head.insert(0, f"[{_md_escape(back.text)}]({back.md_href})\n")
        return "\n".join(head + self.md)

    def write(self, out: Path, subtitle: str, back: _Link | None = None) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(self.render_md(subtitle, back), encoding="utf-8")
        page = out / "index.html"
        page.write_text(self.render_html(subtitle, back), encoding="utf-8")
        return page


def _md_escape(text: str) -> str:
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", str(text))


def _md_alt(text: str) -> str:
    return re.sub(r"[\[\]\n]", " ", str(text))


def _md_cell(text: str) -> str:
    return str(text).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


class _Files:
    """Hands out unique, filesystem- and URL-safe file names inside one report folder."""

    def __init__(self, out: Path):
        self.out = out
        self.used: set[str] = set()

    def name(self, stem: str, ext: str = ".png") -> str:
        base = _safe(stem)
        cand, i = base + ext, 2
        while cand in self.used:
            cand, i = f"{base}_{i}{ext}", i + 1
        self.used.add(cand)
        return cand

    def save(self, fig, stem: str) -> str:
        name = self.name(stem)
        fig.savefig(self.out / name, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return name

    def copy(self, src: Path, stem: str) -> str:
        name = self.name(stem, src.suffix.lower() or ".png")
        shutil.copyfile(src, self.out / name)
        return name


# ============================================================================ run report


def _is_run(p: Path) -> bool:
    return runs_mod.is_run(p)


def _is_experiment(p: Path) -> bool:
    return any((p / m).is_file() for m in EXPERIMENT_MARKERS)


def _config_summary(cfg: Any) -> str:
    def g(*k):
        v = _get(cfg, *k)
        return "?" if v is None or v == "" else _fmt(v)
    return (f"preset {g('preset')} · data {g('data', 'source')} @ {g('data', 'resolution')}px · "
            f"arch {g('model', 'arch')} · variant {g('train', 'variant')} · loss {g('loss', 'kind')} · "
            f"steps {g('train', 'steps')} · batch {g('train', 'batch_size')} · "
            f"lr_g/lr_d {g('train', 'lr_g')}/{g('train', 'lr_d')} · "
            f"d_steps/g_steps {g('train', 'd_steps')}/{g('train', 'g_steps')}")


def _run_config_section(doc: _Doc, run: Path) -> None:
    doc.heading("Configuration")
    text, cfg, err = _read_yaml(runs_mod.config_path(run))
    if text is None:
        doc.nodata("no data yet (no config.yaml)")
        return
    if err:
        doc.para(f"config.yaml could not be parsed: {err}")
    else:
        doc.para(_config_summary(cfg))
    doc.pre(text)


def _line(ax, x, y, label=None, color=None, faint=False, **kw):
    m = np.isfinite(y)
    if not m.any():
        return None
    if faint:
        return ax.plot(x[m], y[m], color=color, alpha=0.25, linewidth=0.8, **kw)[0]
    return ax.plot(x[m], y[m], label=label, color=color, linewidth=1.5, **kw)[0]


def _raw_and_smooth(ax, x, y, label, color, window):
    _line(ax, x, y, color=color, faint=True)
    _line(ax, x, moving_average(y, window), label=label, color=color)


def _stats_section(doc: _Doc, files: _Files, stats: list[dict]) -> None:
    doc.heading("Training curves")
    if not stats:
        doc.nodata("no data yet (stats.jsonl missing or empty)")
        return
    n = len(stats)
    x = _steps(stats)
    w = max(1, n // 50)
    last = stats[-1]
    ips = _values(stats, "img_per_s")
    summ = f"{n} iterations logged, last step {_fmt(last.get('step'))}, epoch {_fmt(last.get('epoch'))}"
    if _has(ips):
        summ += f", mean throughput {np.nanmean(ips):.1f} img/s"
    doc.para(summ + ".")
    smooth_note = f"faint: per iteration; solid: centred moving average over {w} iteration{'s' if w > 1 else ''}"

    # (1) losses
    ld, lg = _values(stats, "loss_d"), _values(stats, "loss_g")
    if _has(ld) or _has(lg):
        fig, ax = plt.subplots(figsize=(8, 3.6))
        _raw_and_smooth(ax, x, ld, "loss_d (L_D)", "tab:blue", w)
        _raw_and_smooth(ax, x, lg, "loss_g (L_G)", "tab:orange", w)
        _style_step_axes(ax, "loss")
        doc.figure(files.save(fig, "fig_losses"), f"Discriminator and generator losses vs step ({smooth_note}).")
    else:
        doc.nodata("no loss values logged yet")

    # (2) log ratio
    lr_step = _values(stats, "log_ratio")
    if not any("log_ratio" in r for r in stats):  # older logs: derive it where both losses are positive
        with np.errstate(invalid="ignore", divide="ignore"):
            lr_step = np.where((lg > 0) & (ld > 0), np.log(lg / ld), np.nan)
    ep = _epoch_points(stats)
    if _has(lr_step) or ep:
        fig, ax = plt.subplots(figsize=(8, 3.6))
        _line(ax, x, lr_step, color="tab:purple", faint=True)
        if ep:
            ax.plot([p[1] for p in ep], [p[2] for p in ep], "o-", color="tab:purple", markersize=4,
                    label="per epoch: log(mean L_G / mean L_D)")
        ax.axhline(0.0, color="k", linestyle="--", linewidth=1, label="ideal 0 (L_G = L_D)")
        _style_step_axes(ax, "log(L_G / L_D)")
        doc.figure(files.save(fig, "fig_log_ratio"),
                   "Balance of the two players: log(L_G / L_D) per iteration (faint) and per epoch "
                   "(points at each epoch's last step; r_e = log(mean L_G over the epoch / mean L_D over the epoch)). "
                   "0 means equal losses.")
        if ep:
            doc.table(["epoch", "last step", "log(mean L_G / mean L_D)"], [[e, s, r] for e, s, r in ep])
    else:
        doc.nodata("no log ratio available (log_ratio is null and the losses are not both positive)")

    # (3) discriminator outputs
    dr, df = _values(stats, "d_real"), _values(stats, "d_fake")
    if _has(dr) or _has(df):
        fig, ax = plt.subplots(figsize=(8, 3.6))
        _raw_and_smooth(ax, x, dr, "d_real", "tab:green", w)
        _raw_and_smooth(ax, x, df, "d_fake", "tab:red", w)
        _style_step_axes(ax, "D output")
        doc.figure(files.save(fig, "fig_d_outputs"),
                   f"Discriminator outputs on real (d_real) and generated (d_fake) batches ({smooth_note}).")

    # (4) gradient norms
    gd, gg = _values(stats, "grad_norm_d"), _values(stats, "grad_norm_g")
    if _has(gd) or _has(gg):
        fig, ax = plt.subplots(figsize=(8, 3.6))
        use_log = bool((gd > 0).any() or (gg > 0).any())  # non-positive values are dropped on a log axis
        if use_log:
            gd, gg = np.where(gd > 0, gd, np.nan), np.where(gg > 0, gg, np.nan)
        _raw_and_smooth(ax, x, gd, "grad_norm_d", "tab:blue", w)
        _raw_and_smooth(ax, x, gg, "grad_norm_g", "tab:orange", w)
        if use_log:
            ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("gradient norm" + (" (log scale)" if use_log else ""))
        ax.legend(loc="best", fontsize=8)
        ax.grid(alpha=0.3, which="both")
        doc.figure(files.save(fig, "fig_grad_norms"),
                   f"Gradient norms of D and G (log y-scale; {smooth_note}).")

    # (5) learning rates, only if they change
    lrs = {k: _values(stats, k) for k in ("lr_g", "lr_d")}
    changing = [k for k, v in lrs.items() if len(np.unique(v[np.isfinite(v)])) > 1]
    if changing:
        fig, ax = plt.subplots(figsize=(8, 3))
        for k, c in (("lr_g", "tab:orange"), ("lr_d", "tab:blue")):
            _line(ax, x, lrs[k], label=k, color=c)
        _style_step_axes(ax, "learning rate")
        doc.figure(files.save(fig, "fig_lr"), "Learning rates vs step.")
    else:
        const = [f"{k} = {_fmt(float(v[np.isfinite(v)][0]))}" for k, v in lrs.items() if _has(v)]
        if const:
            doc.para("Learning rates are constant: " + ", ".join(const) + ".")

    # (6) other numeric signals
    extra: list[str] = []
    for r in stats:
        for k, v in r.items():
            if k not in KNOWN_STATS_KEYS and k not in extra and _is_number(v):
                extra.append(k)
    if extra:
        doc.heading("Other signals", 3)
        shown = extra[:MAX_OTHER_SIGNALS]
        fig, axes = plt.subplots(len(shown), 1, figsize=(8, 1.9 * len(shown) + 0.6), sharex=True, squeeze=False)
        for ax, k in zip(axes[:, 0], shown):
            _raw_and_smooth(ax, x, _values(stats, k), k, "tab:gray", w)
            ax.set_ylabel(k, fontsize=8)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        doc.figure(files.save(fig, "fig_other_signals"),
                   f"Other logged numeric signals: {', '.join(shown)} ({smooth_note}).")
        if len(extra) > len(shown):
            doc.para(f"Not plotted ({len(extra) - len(shown)} more): {', '.join(extra[len(shown):])}.")

    # last iteration as a table
    doc.heading("Last logged iteration", 3)
    doc.table(["key", "value"], [[k, v] for k, v in last.items() if k != "warnings"])


def _warnings_section(doc: _Doc, stats: list[dict]) -> None:
    doc.heading("Warnings")
    items: list[str] = []
    total = 0
    for i, r in enumerate(stats):
        w = r.get("warnings")
        if isinstance(w, str):
            w = [w]
        if not isinstance(w, list):
            continue
        step = r.get("step", i + 1)
        for msg in w:
            total += 1
            if len(items) < MAX_WARNINGS:
                items.append(f"step {_fmt(step)}: {msg}")
    if not stats:
        doc.nodata("no data yet")
    elif not items:
        doc.para("No warnings were logged.")
    else:
        doc.para(f"{total} warning{'s' if total != 1 else ''} logged"
                 + (f" (first {MAX_WARNINGS} shown)" if total > len(items) else "") + ".")
        doc.bullets(items, cls="warnings")


def warning_summary(stats: list[dict]) -> dict[str, tuple[int, int]]:
    """{signal: (first step it fired, times it fired)} from a run's stats (monitor warnings read
    "<signal> fired at step N: why"; other warnings are counted under their full text)."""
    out: dict[str, tuple[int, int]] = {}
    for i, r in enumerate(stats):
        w = r.get("warnings")
        for msg in ([w] if isinstance(w, str) else w if isinstance(w, list) else []):
            name = str(msg).split(" fired at step")[0]
            step = int(r.get("step", i + 1))
            first, n = out.get(name, (step, 0))
            out[name] = (first, n + 1)
    return out


def _experiment_warnings_section(doc: _Doc, runs: list) -> None:
    """Which monitor signals fired in which run, first when and how often (only for runs that
    ran a monitor or logged warnings)."""
    watched = [r for r in runs if r.stats and (any("warnings" in x for x in r.stats)
                                               or any(k.startswith("mon_") for x in r.stats for k in x))]
    if not watched:
        return
    doc.heading("Monitor warnings")
    body = []
    for r in watched:
        summ = warning_summary(r.stats)
        fired = "; ".join(f"{k} (first at step {first}, {n}×)" for k, (first, n) in summ.items())
        body.append([r.name, r.variant, r.data, r.seed, fired or "none"])
    doc.para("Signals of the online collapse / instability monitor (log.monitors) per run: the first "
             "step each fired and how many times it turned on.")
    doc.table(["run", "variant", "data", "seed", "fired"], body)


# the collapse monitor's sample signals: (stats key, label, threshold field of MonitorConfig, warns when)
_MONITOR_CURVES = (("mon_duplicates", "near-duplicate share of fixed-z samples", "dup_max", "above"),
                   ("mon_diversity", "fixed-z diversity / real", "diversity_min", "below"),
                   ("mon_ndb_k", "NDB/K on the monitor's samples", "ndb_max", "above"))


def _signal_figure(druns: list, colors: dict, panels: list[tuple[str, str, bool, float | None]]):
    """One panel per (stats key, title, smoothed, dashed reference line or None) that any run logged:
    each run's values of that key over steps (smoothed like the losses where asked), mean over
    seeds per variant with the min–max band. Returns the figure, or None when no run logged any."""
    panels = [p for p in panels if any(_has(_values(r.stats, p[0])) for r in druns)]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.4), squeeze=False)
    for ax, (key, title, smooth, ref) in zip(axes[0], panels):
        for v in _ordered(r.variant for r in druns):
            curves = []
            for r in druns:
                recs = [x for x in r.stats if _num(x.get(key)) is not None] if r.variant == v else []
                if recs:
                    y = _values(recs, key)
                    curves.append((_steps(recs), moving_average(y, max(1, len(y) // 50)) if smooth else y))
            _plot_agg(ax, _aggregate(curves), colors[v], v)
        if ref is not None:
            ax.axhline(ref, color="k", linestyle="--", linewidth=1)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def _monitor_figure(doc: _Doc, files, druns: list, d: str, colors: dict) -> None:
    """The collapse monitor's sample signals over training for one data set (runs that logged them),
    with the default warning thresholds dashed."""
    from .config import MonitorConfig

    defaults = MonitorConfig()
    fig = _signal_figure(druns, colors, [(key, f"{label} (warns {when} dashed)", False, getattr(defaults, thr))
                                         for key, label, thr, when in _MONITOR_CURVES])
    if fig is not None:
        doc.figure(files.save(fig, f"fig_monitor_{d}"),
                   f"{d}: the collapse monitor's sample signals at each check (stats.jsonl mon_*); line: mean over "
                   "seeds per variant, shaded: min–max; dashed: the default warning threshold (monitor.dup_max, "
                   "monitor.diversity_min, monitor.ndb_max). No warning fires before monitor.warmup.")


# BEGAN's control signals (variants/began.py): (stats key, title, smoothed, reference line)
_BEGAN_CURVES = (("m_global", "M_global = L(x) + |γ·L(x) − L(G(z))| (convergence, lower is better)", True, None),
                 ("k_t", "k_t (weight of L(G(z)) in D's loss)", False, None),
                 ("balance", "balance γ·L(x) − L(G(z)) (0: equilibrium)", True, 0.0))


def _began_figure(doc: _Doc, files, druns: list, d: str, colors: dict) -> None:
    """BEGAN's convergence measure, k_t and balance over training for one data set (runs that logged
    them; Yin et al.'s M_global figures)."""
    fig = _signal_figure(druns, colors, list(_BEGAN_CURVES))
    if fig is not None:
        doc.figure(files.save(fig, f"fig_began_{d}"),
                   f"{d}: BEGAN's control signals from stats.jsonl (m_global, k_t, balance); M_global and the "
                   "balance smoothed with a moving average per run; line: mean over seeds per variant, shaded: min–max.")


def _span(vals: Iterable[Any]) -> str:
    nums = sorted({v for v in (_num(x) for x in vals) if v is not None})
    if not nums:
        return ""
    f = lambda v: str(int(v)) if float(v).is_integer() else _fmt(v)  # noqa: E731
    return f(nums[0]) if len(nums) == 1 else f"{f(nums[0])}–{f(nums[-1])}"


def _metric_context(recs: list[dict], backbone: str) -> str:
    parts = [backbone]
    ng, nr = _span(r.get("n_gen") for r in recs), _span(r.get("n_real") for r in recs)
    if ng or nr:
        parts.append(f"{ng or '?'} vs {nr or '?'} samples")
    res = _span(r.get("resolution") for r in recs)
    if res:
        parts.append(f"{res}px")
    return ", ".join(parts)


def _by_backbone(metrics: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for r in metrics:
        b = r.get("backbone")
        groups.setdefault(str(b) if b not in (None, "") else "unknown backbone", []).append(r)
    for recs in groups.values():
        recs.sort(key=lambda r: _num(r.get("step")) or 0.0)
    return groups


def _ci(recs: list[dict], key: str) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for r in recs:
        c = r.get(key)
        if isinstance(c, (list, tuple)) and len(c) == 2 and _num(c[0]) is not None and _num(c[1]) is not None:
            lo.append(float(c[0]))
            hi.append(float(c[1]))
        else:
            lo.append(np.nan)
            hi.append(np.nan)
    return np.array(lo), np.array(hi)


def _band(ax, x, lo, hi, color, label=None):
    m = np.isfinite(lo) & np.isfinite(hi)
    if m.any():
        ax.fill_between(x[m], lo[m], hi[m], color=color, alpha=0.2, linewidth=0, label=label)


def _metric_figure(groups, keys_present, draw, height=2.8):
    """One subplot row per backbone group that has data; returns (fig, contexts) or (None, [])."""
    rows = [(b, recs) for b, recs in groups.items() if any(_has(_values(recs, k)) for k in keys_present)]
    if not rows:
        return None, []
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, height * len(rows) + 0.4), squeeze=False)
    ctxs = []
    for ax, (b, recs) in zip(axes[:, 0], rows):
        ctx = _metric_context(recs, b)
        ctxs.append(ctx)
        draw(ax, _steps(recs), recs, ctx)
        ax.grid(alpha=0.3)
        ax.set_xlabel("step")
    fig.tight_layout()
    return fig, ctxs


def _metrics_section(doc: _Doc, files: _Files, metrics: list[dict]) -> None:
    doc.heading("Evaluation metrics")
    if not metrics:
        doc.nodata("no data yet (metrics.jsonl missing or empty)")
        return
    groups = _by_backbone(metrics)
    doc.para(f"{len(metrics)} evaluation{'s' if len(metrics) != 1 else ''}; feature backbone"
             f"{'s' if len(groups) > 1 else ''}: " + "; ".join(_metric_context(r, b) for b, r in groups.items()) + ".")

    def fd(ax, x, recs, ctx):
        y = _values(recs, "fd")
        lo, hi = _ci(recs, "fd_ci")
        _band(ax, x, lo, hi, "tab:blue", "CI (fd_ci)" if _has(lo) else None)
        _line(ax, x, y, label="FD", color="tab:blue", marker="o", markersize=3)
        held, floor = _values(recs, "fd_holdout"), _values(recs, "fd_floor")  # docs/methods.md §21, when evaluated
        if _has(held):
            _line(ax, x, held, label="FD vs held-out", color="tab:purple", marker="s", markersize=3, linestyle="--")
        if _has(floor):
            _line(ax, x, floor, label="real floor (held-out vs train)", color="tab:gray", linestyle=":")
        ax.set_ylabel(f"FD ({ctx})", fontsize=8)
        if _has(lo) or _has(held):
            ax.legend(fontsize=8)

    def kid(ax, x, recs, ctx):
        y, s = _values(recs, "kid"), _values(recs, "kid_std")
        _band(ax, x, y - s, y + s, "tab:green", "± std")
        _line(ax, x, y, label="KID", color="tab:green", marker="o", markersize=3)
        ax.set_ylabel(f"KID ({ctx})", fontsize=8)

    def isc(ax, x, recs, ctx):
        y, s = _values(recs, "is"), _values(recs, "is_std")
        _band(ax, x, y - s, y + s, "tab:orange", "± std")
        _line(ax, x, y, label="IS", color="tab:orange", marker="o", markersize=3)
        ax.set_ylabel(f"IS ({ctx})", fontsize=8)

    def prdc(ax, x, recs, ctx):
        for k, c in (("precision", "tab:blue"), ("recall", "tab:orange"),
                     ("density", "tab:green"), ("coverage", "tab:red")):
            _line(ax, x, _values(recs, k), label=k, color=c, marker="o", markersize=3)
        ax.set_ylabel(f"PRDC ({ctx})", fontsize=8)
        ax.legend(fontsize=8, loc="best")

    def memo(ax, x, recs, ctx):
        _line(ax, x, _values(recs, "near_copy_fraction"), label="near_copy_fraction", color="tab:red",
              marker="o", markersize=3)
        ax.set_ylabel(f"near-copy fraction ({ctx})", fontsize=8)
        nn = _values(recs, "nn_ratio_median")
        if _has(nn):
            ax2 = ax.twinx()
            _line(ax2, x, nn, label="nn_ratio_median", color="tab:gray", marker="s", markersize=3, linestyle="--")
            ax2.set_ylabel(f"nn_ratio_median ({ctx})", fontsize=8)
            h1, l1 = ax.get_legend_handles_labels()
            h2, l2 = ax2.get_legend_handles_labels()
            ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="best")

    plots = [
        (("fd",), fd, "fig_fd", "Fréchet distance (lower is better) vs step; shaded: confidence interval when logged; "
                               "dashed: vs the held-out reals, dotted: their floor, when the run holds images out"),
        (("kid",), kid, "fig_kid", "Kernel inception distance (lower is better) vs step; shaded: ± std over subsets"),
        (("is",), isc, "fig_is", "Inception score on the backbone's classifier (higher is better) vs step; shaded: ± std"),
        (("precision", "recall", "density", "coverage"), prdc, "fig_prdc",
         "Precision, recall, density and coverage vs step"),
        (("near_copy_fraction", "nn_ratio_median"), memo, "fig_near_copy",
         "Memorisation signals vs step: fraction of generated samples that are near copies of a training image "
         "(and the median nearest-neighbour distance ratio, dashed, right axis)"),
    ]
    for keys, draw, stem, caption in plots:
        fig, ctxs = _metric_figure(groups, keys, draw)
        if fig is None:
            continue
        doc.figure(files.save(fig, stem), f"{caption}. Features: {' | '.join(ctxs)}.")

    doc.heading("Last evaluation", 3)
    lasts = {b: recs[-1] for b, recs in groups.items()}
    keys: list[str] = []
    for r in lasts.values():
        keys += [k for k in r if k not in keys]
    doc.table(["metric"] + [_metric_context(groups[b], b) for b in lasts],
              [[k] + [_metric_cell(k, lasts[b].get(k)) for b in lasts] for k in keys])


def _grid_steps(run: Path) -> list[tuple[int, Path]]:
    out = []
    for p in runs_mod.samples_dir(run).glob("step_*.png"):
        m = re.fullmatch(r"step_(\d+)\.png", p.name)
        if m:
            out.append((int(m.group(1)), p))
    return sorted(out)


def _pick_even(items: list, k: int) -> list:
    if len(items) <= k:
        return list(items)
    idx = sorted({int(round(i)) for i in np.linspace(0, len(items) - 1, k)})
    return [items[i] for i in idx]


def _samples_section(doc: _Doc, files: _Files, run: Path, stats: list[dict]) -> None:
    doc.heading("Sample grids over time")
    grids = _grid_steps(run)
    final = runs_mod.samples_dir(run) / "final.png"
    items = []
    for step, p in _pick_even(grids, N_GRIDS):
        items.append((files.copy(p, f"samples_step_{step:08d}"), f"step {step}"))
    if final.is_file():
        last_step = _num(stats[-1].get("step")) if stats else None
        cap = "final" + (f" (step {int(last_step)})" if last_step is not None else "")
        items.append((files.copy(final, "samples_final"), cap))
    if not items:
        doc.nodata("no data yet (no sample grids in samples/)")
        return
    if len(grids) > N_GRIDS:
        doc.para(f"{N_GRIDS} of {len(grids)} intermediate grids, evenly spaced, from the same fixed latents.")
    doc.gallery(items)


def _memorisation_section(doc: _Doc, files: _Files, run: Path) -> None:
    doc.heading("Memorisation: closest generated / training pairs")
    p = runs_mod.eval_dir(run) / "nearest_neighbours.png"
    if not p.is_file():
        doc.nodata("no data yet (no eval/nearest_neighbours.png)")
        return
    doc.figure(files.copy(p, "eval_nearest_neighbours"),
               "Generated samples next to their nearest training images in feature space (closest pairs).")


def _subtitle(p: Path) -> str:
    return f"{p} · generated {datetime.now().strftime('%Y-%m-%d %H:%M')} by fewgan.report"


def build_run_report(run: str | Path, out: str | Path | None = None, back: _Link | None = None,
                     title: str | None = None) -> Path:
    """Write the report of one run folder to `out` (default <run>/report); returns index.html.
    Never fails on missing inputs: each absent file gives a "no data yet" section."""
    run = Path(run).resolve()
    out = (run / "report") if out is None else Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = _Files(out)
    doc = _Doc(title or f"Run report: {run.name}")
    stats = runs_mod.read_stats(run)
    metrics = runs_mod.read_metrics(run)
    _run_config_section(doc, run)
    _stats_section(doc, files, stats)
    _warnings_section(doc, stats)
    _metrics_section(doc, files, metrics)
    _samples_section(doc, files, run, stats)
    _memorisation_section(doc, files, run)
    return doc.write(out, _subtitle(run), back)


# ============================================================================ experiment report


@dataclass
class _RunInfo:
    name: str
    dir: Path
    variant: str
    data: str
    seed: str
    row: dict[str, str] | None
    stats: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)


def _collect_runs(exp: Path, rows: list[dict[str, str]]) -> list[_RunInfo]:
    runs: dict[str, _RunInfo] = {}
    for row in rows:
        name = (row.get("run") or "").strip()
        if not name:
            continue
        runs[name] = _RunInfo(name, exp / runs_mod.RUNS_DIR / name, row.get("variant") or "?", row.get("data") or "?",
                              row.get("seed") or "?", row)
    rdir = exp / runs_mod.RUNS_DIR
    if rdir.is_dir():
        jobs = None  # the spec's jobs, loaded only when an unfinished run needs its labels
        for d in sorted(rdir.iterdir()):
            if d.is_dir() and d.name not in runs and (_is_run(d) or runs_mod.samples_dir(d).is_dir()):
                if jobs is None:
                    jobs = _spec_jobs(exp)
                job = jobs.get(d.name)
                if job is not None:  # unfinished: label it as the spec does, so it joins its data set's figures
                    runs[d.name] = _RunInfo(d.name, d, job.variant, job.data, str(job.seed), None)
                    continue
                _, cfg, _ = _read_yaml(runs_mod.config_path(d))
                v = _get(cfg, "train", "variant") or _get(cfg, "preset") or "?"
                runs[d.name] = _RunInfo(d.name, d, str(v), str(_get(cfg, "data", "source") or "?"),
                                        _fmt(_get(cfg, "train", "seed")), None)
    for r in runs.values():
        r.stats = runs_mod.read_stats(r.dir)
        r.metrics = runs_mod.read_metrics(r.dir)
    return sorted(runs.values(), key=lambda r: natural_key(r.name))


def _spec_jobs(exp: Path) -> dict:
    """run folder name -> Job of the experiment's copied spec.yaml; {} when it is absent or not a
    loadable experiment spec (a report never fails over it: such runs keep their config's labels)."""
    from .config import ConfigError
    from .experiments.spec import load_spec  # lazy: the report does not otherwise need the runner

    try:
        return {j.run: j for j in load_spec(exp / "spec.yaml").jobs()}
    except (ConfigError, OSError, ValueError, TypeError, KeyError):  # only costs the nicer labels
        return {}


def _ordered(values: Iterable[str]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v not in out:
            out.append(v)
    return out


def _aggregate(curves: list[tuple[np.ndarray, np.ndarray]]):
    """Mean, min and max over runs on the union of their x values (runs missing an x are skipped there)."""
    curves = [(x[np.isfinite(y)], y[np.isfinite(y)]) for x, y in curves]
    curves = [(x, y) for x, y in curves if len(x)]
    if not curves:
        return None
    xs = np.unique(np.concatenate([x for x, _ in curves]))
    m = np.full((len(curves), len(xs)), np.nan)
    for i, (x, y) in enumerate(curves):
        m[i, np.searchsorted(xs, x)] = y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return xs, np.nanmean(m, axis=0), np.nanmin(m, axis=0), np.nanmax(m, axis=0), len(curves)


def _variant_colors(variants: list[str]) -> dict[str, Any]:
    cmap = plt.get_cmap("tab10")
    return {v: cmap(i % 10) for i, v in enumerate(variants)}


def _plot_agg(ax, agg, color, label):
    if agg is None:
        return
    xs, mean, lo, hi, n = agg
    if n > 1:
        ax.fill_between(xs, lo, hi, color=color, alpha=0.18, linewidth=0)
    ax.plot(xs, mean, color=color, linewidth=1.5, label=f"{label} (n={n})", marker="o" if len(xs) < 30 else None,
            markersize=3)


def _std(vals: list[float]) -> float:
    return metric_table.mean_std(vals)[1]


class _Num(str):
    """A number already formatted for people (by the metric table): a right-aligned table cell."""


def _metric_cell(key: str, v: Any) -> Any:
    """A value of metric `key` for a table: rounded by the metric table's digits when it knows the
    key and the value is a number (or a CSV cell holding one); anything else as it is."""
    f = _cell_float(v) if isinstance(v, str) else (None if isinstance(v, bool) else _num(v))
    if f is None or metric_table.metric(key) is None or metric_table.metric(key).digits is None:
        return v
    return _Num(metric_table.fmt(key, f))


def _summary_cell(col: str, v: Any) -> Any:
    """A summary.csv cell: <metric>_mean / <metric>_std rounded like the metric."""
    for end in ("_mean", "_std"):
        if col.endswith(end):
            return _metric_cell(col[: -len(end)], v)
    return v


def _computed_summary(rows: list[dict[str, str]], metric_cols: list[str]) -> tuple[list[str], list[list[str]]]:
    groups: dict[tuple[str, str], list[dict[str, str]]] = {}
    for r in rows:
        groups.setdefault((r.get("variant", "?"), r.get("data", "?")), []).append(r)
    header = ["variant", "data", "n"] + metric_cols
    out = []
    for (v, d), rs in groups.items():
        line = [v, d, str(len(rs))]
        for c in metric_cols:
            mean, std = metric_table.mean_std(_cell_float(r.get(c)) for r in rs)
            if mean is None:
                line.append("–")
            elif metric_table.metric(c) is not None and metric_table.metric(c).digits is not None:
                line.append(_Num(metric_table.fmt_pm(c, mean, std)))
            else:
                line.append(f"{_fmt(mean)} ± {_fmt(std)}")
        out.append(line)
    return header, out


def build_experiment_report(exp: str | Path, out: str | Path | None = None) -> Path:
    exp = Path(exp).resolve()
    out = (exp / "report") if out is None else Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    files = _Files(out)
    doc = _Doc(f"Experiment report: {exp.name}")

    # spec
    doc.heading("Spec")
    spec_text, _, spec_err = _read_yaml(exp / "spec.yaml")
    if spec_text is None:
        doc.nodata("no data yet (no spec.yaml)")
    else:
        if spec_err:
            doc.para(f"spec.yaml could not be parsed: {spec_err}")
        doc.pre(spec_text)

    header, rows = _read_csv(exp / "results.csv")
    metric_cols = [c for c in header if c not in NON_METRIC_COLUMNS
                   and any(_cell_float(r.get(c)) is not None for r in rows)
                   and all(_cell_float(r.get(c)) is not None for r in rows if (r.get(c) or "").strip())]
    runs = _collect_runs(exp, rows)

    # comparison table
    doc.heading("Comparison")
    s_header, s_rows = _read_csv(exp / "summary.csv")
    summary_md = _read_text(exp / "summary.md")
    if s_header:
        doc.raw_html("<p>Mean ± std over seeds per variant × data (summary.csv).</p>")
        doc.raw_html(_html_table(s_header, [[_summary_cell(c, r.get(c, "")) for c in s_header] for r in s_rows]))
    elif summary_md:
        doc.raw_html(f"<pre>{html.escape(summary_md.rstrip())}</pre>")
    if summary_md:
        doc.raw_md(summary_md)
    elif s_header:
        doc.raw_md(_md_table(s_header, [[_summary_cell(c, r.get(c, "")) for c in s_header] for r in s_rows]))
    if not s_header and not summary_md:
        if rows and metric_cols:
            doc.para("No summary.csv / summary.md yet; mean ± std over seeds computed from results.csv:")
            h, body = _computed_summary(rows, metric_cols)
            doc.table(h, body)
        else:
            doc.nodata("no data yet (no summary.csv, summary.md or results.csv)")

    # runs table with links to sub-reports
    doc.heading("Runs")
    if not runs:
        doc.nodata("no data yet (no runs in results.csv or runs/)")
    else:
        unlisted = [r.name for r in runs if r.row is None]
        if unlisted:
            doc.para(f"{len(unlisted)} run folder(s) not in results.csv ({', '.join(unlisted)}): "
                     "their variant / data / seed were read from their config.yaml.")
        cols = ["run", "variant", "data", "seed", "step"] + metric_cols
        body = []
        sub_names: set[str] = set()
        for r in runs:
            if r.dir.is_dir():
                sub = _safe(r.name)
                while sub in sub_names:
                    sub += "_"
                sub_names.add(sub)
                build_run_report(r.dir, out / "runs" / sub, title=f"Run report: {r.name}",
                                 back=_Link(f"← experiment report: {exp.name}", "../../index.html",
                                            "../../report.md"))
                cell: Any = _Link(r.name, f"runs/{quote(sub)}/index.html", f"runs/{quote(sub)}/report.md")
            else:
                cell = f"{r.name} (folder missing)"
            row = r.row or {}
            step = row.get("step") or (_fmt(r.stats[-1].get("step")) if r.stats else "–")
            body.append([cell, r.variant, r.data, r.seed, step]
                        + [(_cell_float(row.get(c)) if _cell_float(row.get(c)) is not None else "–")
                           for c in metric_cols])
        doc.table(cols, body)

    _experiment_warnings_section(doc, runs)

    datasets = _ordered(r.data for r in runs)
    variants = _ordered(r.variant for r in runs)
    colors = _variant_colors(variants)

    # curves per data set
    doc.heading("Training curves per data set")
    if not any(r.stats or r.metrics for r in runs):
        doc.nodata("no data yet (no stats.jsonl / metrics.jsonl in the runs)")
    for d in datasets:
        druns = [r for r in runs if r.data == d]
        doc.heading(f"Data: {d}", 3)
        if any(r.stats for r in druns):
            fig, axes = plt.subplots(1, 3, figsize=(14, 3.8))
            for v in _ordered(r.variant for r in druns):
                vr = [r for r in druns if r.variant == v and r.stats]
                for ax, key in zip(axes[:2], ("loss_d", "loss_g")):
                    curves = [(_steps(r.stats), moving_average(_values(r.stats, key), max(1, len(r.stats) // 50)))
                              for r in vr]
                    _plot_agg(ax, _aggregate(curves), colors[v], v)
                ep_curves = []
                for r in vr:
                    pts = _epoch_points(r.stats)
                    if pts:
                        ep_curves.append((np.array([p[0] for p in pts], float), np.array([p[2] for p in pts])))
                agg = _aggregate(ep_curves)
                if agg is not None:
                    # plot each epoch at the mean (over seeds) of its last step
                    ends: dict[int, list[float]] = {}
                    for r in vr:
                        for e, s, _ in _epoch_points(r.stats):
                            ends.setdefault(e, []).append(s)
                    xs = np.array([np.mean(ends[int(e)]) for e in agg[0]])
                    _plot_agg(axes[2], (xs,) + agg[1:], colors[v], v)
            axes[0].set_ylabel("loss_d (smoothed)")
            axes[1].set_ylabel("loss_g (smoothed)")
            axes[2].set_ylabel("per-epoch log(mean L_G / mean L_D)")
            axes[2].axhline(0.0, color="k", linestyle="--", linewidth=1)
            for ax in axes:
                ax.set_xlabel("step")
                ax.grid(alpha=0.3)
            axes[0].legend(fontsize=8, loc="best")
            fig.tight_layout()
            doc.figure(files.save(fig, f"fig_curves_{d}"),
                       f"{d}: loss_d, loss_g (each run smoothed with a moving average) and per-epoch log ratio "
                       "vs step; line: mean over seeds per variant, shaded: min–max over seeds; dashed: ideal 0.")
        else:
            doc.nodata(f"no training stats yet for {d}")
        # FD per backbone
        backbones = _ordered(b for r in druns for b in _by_backbone(r.metrics))
        fd_rows = [b for b in backbones if any(_has(_values(_by_backbone(r.metrics).get(b, []), "fd")) for r in druns)]
        if fd_rows:
            keys = [k for k in ("fd", "is") if k == "fd" or any(
                _has(_values(_by_backbone(r.metrics).get(b, []), k)) for r in druns for b in fd_rows)]
            fig, axes = plt.subplots(len(fd_rows), len(keys), figsize=(7 * len(keys), 3.2 * len(fd_rows) + 0.4),
                                     squeeze=False)
            ctxs = []
            for row, b in zip(axes, fd_rows):
                allrecs = []
                for col, (ax, key) in enumerate(zip(row, keys)):
                    for v in _ordered(r.variant for r in druns):
                        curves = []
                        for r in druns:
                            if r.variant != v:
                                continue
                            recs = _by_backbone(r.metrics).get(b, [])
                            if col == 0:
                                allrecs += recs
                            if recs:
                                curves.append((_steps(recs), _values(recs, key)))
                        _plot_agg(ax, _aggregate(curves), colors[v], v)
                    if col == 0:
                        ctxs.append(_metric_context(allrecs, b))
                    ax.set_ylabel(f"{key.upper()} ({ctxs[-1]})", fontsize=8)
                    ax.set_xlabel("step")
                    ax.grid(alpha=0.3)
                    ax.legend(fontsize=8, loc="best")
            fig.tight_layout()
            doc.figure(files.save(fig, f"fig_fd_{d}"),
                       f"{d}: {' and '.join(k.upper() for k in keys)} vs step from each run's metrics.jsonl; line: "
                       f"mean over seeds per variant, shaded: min–max over seeds. Features: {' | '.join(ctxs)}.")
        else:
            doc.nodata(f"no FD evaluations yet for {d}")
        _monitor_figure(doc, files, druns, d, colors)
        _began_figure(doc, files, druns, d, colors)

    # final FD bar chart
    doc.heading("Final FD per variant")
    _final_fd_section(doc, files, runs, datasets, variants, colors, "fd" in metric_cols)

    # gallery
    doc.heading("Final samples")
    any_grid = False
    for d in datasets:
        druns = [r for r in runs if r.data == d]
        shown_d = False
        for v in _ordered(r.variant for r in druns):
            items = []
            for r in druns:
                if r.variant != v:
                    continue
                final = runs_mod.samples_dir(r.dir) / "final.png"
                cap = f"seed {r.seed} · {r.name}"
                if not final.is_file():
                    grids = _grid_steps(r.dir)
                    if not grids:
                        continue
                    final = grids[-1][1]
                    cap += f" (latest grid, step {grids[-1][0]})"
                items.append((files.copy(final, f"final_{r.name}"), cap))
            if items:
                if not shown_d:
                    doc.heading(f"Data: {d}", 3)
                    shown_d = True
                doc.heading(f"{d} · {v}", 4)
                doc.gallery(items)
                any_grid = True
    if not any_grid:
        doc.nodata("no data yet (no sample grids in the runs)")

    return doc.write(out, _subtitle(exp))


def _final_fd_section(doc, files, runs, datasets, variants, colors, fd_in_results: bool) -> None:
    """Bar chart of final FD per variant (mean ± std over seeds) per data set; values from
    results.csv's fd column, or from each run's last metrics.jsonl evaluation otherwise."""
    per: dict[tuple[str, str], list[float]] = {}
    backbones: list[str] = []
    for r in runs:
        last = r.metrics[-1] if r.metrics else None
        if last is not None and last.get("backbone"):
            backbones.append(str(last.get("backbone")))
        val = _cell_float((r.row or {}).get("fd")) if fd_in_results and r.row is not None else None
        if val is None and last is not None:
            val = _num(last.get("fd"))
        if val is not None:
            per.setdefault((r.data, r.variant), []).append(val)
    if not per:
        doc.nodata("no data yet (no final FD values)")
        return
    ds = [d for d in datasets if any(k[0] == d for k in per)]
    bb = ", ".join(_ordered(backbones)) or "backbone not recorded"
    fig, axes = plt.subplots(1, len(ds), figsize=(max(4.5, 4.2 * len(ds)), 3.8), squeeze=False)
    table = []
    for ax, d in zip(axes[0], ds):
        vs = [v for v in variants if (d, v) in per]
        means = [metric_table.mean_std(per[(d, v)])[0] for v in vs]
        stds = [_std(per[(d, v)]) for v in vs]
        pos = np.arange(len(vs))
        ax.bar(pos, means, yerr=stds, capsize=4, color=[colors[v] for v in vs], alpha=0.8)
        for i, v in enumerate(vs):
            ax.plot(np.full(len(per[(d, v)]), pos[i]), per[(d, v)], "k.", markersize=5)
            table.append([d, v, len(per[(d, v)]), _metric_cell("fd", means[i]), _metric_cell("fd", stds[i])])
        ax.set_xticks(pos)
        ax.set_xticklabels(vs, rotation=20, ha="right", fontsize=8)
        ax.set_title(d, fontsize=9)
        ax.set_ylabel(f"final FD ({bb})", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    doc.figure(files.save(fig, "fig_final_fd"),
               f"Final FD per variant (lower is better; features: {bb}): bar = mean over seeds, "
               "error bar = std over seeds (ddof=1), dots = individual seeds.")
    doc.table(["data", "variant", "n seeds", f"final FD mean ({bb})", "std"], table)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    d = _Doc("")
    d.table(header, rows)
    return d.html[0]


def _md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    d = _Doc("")
    d.table(header, rows)
    return d.md[0]


# ============================================================================ entry point


def build_report(path: str | Path, out: str | Path | None = None) -> Path:
    """Write an offline report for a run folder or an experiment folder.

    `out` defaults to <path>/report/; index.html, report.md and the PNGs go there.
    Returns the path of index.html. Raises ValueError if `path` is neither kind of folder."""
    p = Path(path)
    if not p.is_dir():
        raise ValueError(f"{p}: not a directory; expected a run folder ({', '.join(RUN_MARKERS)}) "
                         f"or an experiment folder ({', '.join(EXPERIMENT_MARKERS)})")
    if _is_experiment(p):
        return build_experiment_report(p, out)
    if _is_run(p):
        return build_run_report(p, out)
    raise ValueError(f"{p}: neither a run folder (needs one of {', '.join(RUN_MARKERS)}) "
                     f"nor an experiment folder (needs one of {', '.join(EXPERIMENT_MARKERS)})")


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m fewgan.report", description=__doc__.splitlines()[0])
    ap.add_argument("path", help="run folder or experiment folder")
    ap.add_argument("--out", "-o", default=None, help="report folder (default: PATH/report)")
    a = ap.parse_args(argv)
    try:
        page = build_report(a.path, a.out)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(page)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
