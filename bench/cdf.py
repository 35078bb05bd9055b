#!/usr/bin/env python3
"""Draw the restart-latency CDFs of bench/restart.sh as one SVG file.

  cdf.py SAMPLES.csv OUT.svg [TITLE]
      SAMPLES.csv: `tool,case,latency_ms`, one line per restart (the header
      line first), as bench/restart.sh writes it. One panel per case
      (crash loop, after 1.2 s), one line per tool: x = latency in ms on a
      log axis, y = the fraction of restarts at most that slow.

No dependency but the Python standard library: the SVG is written by hand,
with its own fonts and colours, so that it reads the same on GitHub's light
and dark pages (a white background of its own).
"""
import csv
import math
import sys
from xml.sax.saxutils import escape

# One colour and dash per tool, in the order they come in the samples.
STYLES = [
    ("#1f77b4", ""),         # blue, solid: the supervisor (first)
    ("#d62728", "6,3"),      # red, dashed
    ("#2ca02c", "2,3"),      # green, dotted
    ("#9467bd", "8,3,2,3"),  # purple
    ("#ff7f0e", "4,2"),      # orange
    ("#8c564b", "1,2"),      # brown
]
CASE_TITLES = {"crash": "crash loop (back-off 0)", "after1.2s": "after 1.2 s of running"}
CASE_SHORT = {"crash": "crash", "after1.2s": "after 1.2 s"}
TOOL_NAMES = {
    "supervisor": "supervisor run (a container)",
    "bash": "bash while-loop (no isolation)",
    "runit": "runit (runsv)",
    "s6": "s6 (s6-supervise)",
    "supervisord": "supervisord",
}

PANEL_W, PANEL_H = 420, 260  # the plot area of one panel
MARGIN_L, MARGIN_R, MARGIN_T, MARGIN_B = 60, 20, 50, 50
GAP = 40
LEGEND_H = 24


class SamplesError(Exception):
    pass


def read_samples(path):
    """{case: {tool: [ms, ...]}} and the tools and cases in file order."""
    samples, tools, cases = {}, [], []
    with open(path, newline="") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header != ["tool", "case", "latency_ms"]:
            raise SamplesError("%s: header %r, expected tool,case,latency_ms" % (path, header))
        for number, row in enumerate(rows, start=2):
            if len(row) != 3:
                raise SamplesError("%s:%d: %d fields, expected 3" % (path, number, len(row)))
            tool, case, value = row
            try:
                ms = float(value)
            except ValueError:
                raise SamplesError("%s:%d: latency %r is no number" % (path, number, value))
            if not ms > 0:
                raise SamplesError("%s:%d: latency %r is not positive" % (path, number, value))
            if tool not in tools:
                tools.append(tool)
            if case not in cases:
                cases.append(case)
            samples.setdefault(case, {}).setdefault(tool, []).append(ms)
    if not samples:
        raise SamplesError("%s: no samples" % path)
    return samples, tools, cases


def decades(lo, hi):
    """The powers of ten around [lo, hi]."""
    first = math.floor(math.log10(lo))
    last = math.ceil(math.log10(hi))
    if last == first:
        last += 1
    return first, last


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def panel(out, x0, y0, title, by_tool, tools, first, last):
    def x_of(ms):
        return x0 + (math.log10(ms) - first) / (last - first) * PANEL_W

    def y_of(fraction):
        return y0 + PANEL_H - fraction * PANEL_H

    out.append('<text x="%.1f" y="%.1f" class="title">%s</text>'
               % (x0 + PANEL_W / 2, y0 - 12, escape(title)))
    # Grid and ticks: every decade labelled, 2..9 as light lines.
    for exponent in range(first, last + 1):
        for step in range(1, 10):
            ms = step * 10.0 ** exponent
            if exponent == last and step > 1:
                break
            x = x_of(ms)
            major = step == 1
            out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="%s"/>'
                       % (x, y0, x, y0 + PANEL_H, "grid" if major else "minor"))
            if major:
                label = ("%g" % ms) if ms >= 1 else ("%g" % ms)
                out.append('<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>'
                           % (x, y0 + PANEL_H + 16, label))
    for tenth in range(0, 11, 2):
        y = y_of(tenth / 10)
        out.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" class="grid"/>'
                   % (x0, y, x0 + PANEL_W, y))
        out.append('<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%.1f</text>'
                   % (x0 - 6, y + 4, tenth / 10))
    out.append('<rect x="%.1f" y="%.1f" width="%d" height="%d" class="frame"/>'
               % (x0, y0, PANEL_W, PANEL_H))
    out.append('<text x="%.1f" y="%.1f" class="axis" text-anchor="middle">'
               'restart latency, exit to next start (ms, log scale)</text>'
               % (x0 + PANEL_W / 2, y0 + PANEL_H + 36))
    out.append('<text transform="translate(%.1f,%.1f) rotate(-90)" class="axis" '
               'text-anchor="middle">fraction of restarts</text>'
               % (x0 - 42, y0 + PANEL_H / 2))
    # One step line per tool: the empirical CDF.
    for index, tool in enumerate(tools):
        values = sorted(by_tool.get(tool, []))
        if not values:
            continue
        colour, dash = STYLES[index % len(STYLES)]
        n = len(values)
        points = ["%.1f,%.1f" % (x_of(values[0]), y_of(0))]
        for i, ms in enumerate(values):
            x = x_of(ms)
            points.append("%.1f,%.1f" % (x, y_of(i / n)))
            points.append("%.1f,%.1f" % (x, y_of((i + 1) / n)))
        dash_attr = ' stroke-dasharray="%s"' % dash if dash else ""
        out.append('<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>'
                   % (" ".join(points), colour, dash_attr))
        # The median, marked (its value is in the legend).
        m = median(values)
        out.append('<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>' % (x_of(m), y_of(0.5), colour))


def legend(tool, cases, samples):
    """The tool's name and, per case, its median and p99 with n."""
    parts = []
    for case in cases:
        values = sorted(samples[case].get(tool, []))
        if values:
            p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
            parts.append("%s: median %s ms, p99 %s ms (n=%d)" % (
                CASE_SHORT.get(case, case), fmt_ms(median(values)), fmt_ms(p99), len(values)))
    return "%s \u2014 %s" % (TOOL_NAMES.get(tool, tool), "; ".join(parts))


def fmt_ms(ms):
    if ms >= 100:
        return "%.0f" % ms
    if ms >= 10:
        return "%.1f" % ms
    return "%.2f" % ms


def render(samples, tools, cases, title):
    every = [v for by_tool in samples.values() for values in by_tool.values() for v in values]
    first, last = decades(min(every), max(every))
    width = MARGIN_L + len(cases) * PANEL_W + (len(cases) - 1) * (GAP + MARGIN_L) + MARGIN_R
    height = MARGIN_T + 24 + PANEL_H + MARGIN_B + LEGEND_H * len(tools) + 10
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d">'
           % (width, height, width, height),
           "<style>"
           "text{font-family:Helvetica,Arial,sans-serif;fill:#222}"
           ".title{font-size:15px;font-weight:bold;text-anchor:middle}"
           ".head{font-size:16px;font-weight:bold}"
           ".tick{font-size:12px}.axis{font-size:13px}.legend{font-size:13px}"
           ".note{font-size:11px}"
           ".grid{stroke:#bbb;stroke-width:1}.minor{stroke:#e6e6e6;stroke-width:1}"
           ".frame{fill:none;stroke:#444;stroke-width:1}"
           "</style>",
           '<rect width="100%" height="100%" fill="#fff"/>',
           '<text x="%d" y="22" class="head">%s</text>' % (MARGIN_L, escape(title))]
    for index, case in enumerate(cases):
        x0 = MARGIN_L + index * (PANEL_W + GAP + MARGIN_L)
        panel(out, x0, MARGIN_T + 24, CASE_TITLES.get(case, case), samples[case], tools,
              first, last)
    legend_y = MARGIN_T + 24 + PANEL_H + MARGIN_B + 8
    for index, tool in enumerate(tools):
        colour, dash = STYLES[index % len(STYLES)]
        x = MARGIN_L
        y = legend_y + LEGEND_H * index
        dash_attr = ' stroke-dasharray="%s"' % dash if dash else ""
        out.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2.5"%s/>'
                   % (x, y, x + 36, y, colour, dash_attr))
        out.append('<text x="%d" y="%d" class="legend">%s</text>'
                   % (x + 44, y + 4, escape(legend(tool, cases, samples))))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    title = argv[3] if len(argv) == 4 else "Restart latency (CDF)"
    try:
        samples, tools, cases = read_samples(argv[1])
    except (OSError, SamplesError) as error:
        sys.stderr.write("cdf.py: %s\n" % error)
        return 1
    with open(argv[2], "w") as f:
        f.write(render(samples, tools, cases, title))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
