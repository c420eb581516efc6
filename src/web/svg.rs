//! The pictures on the pages, drawn as inline SVG by pure functions from plain numbers and
//! labels to SVG text: a progress bar, a rate graph, a week strip and a bar chart of past runs.
//!
//! No script and no inline `style` attribute (the Content-Security-Policy allows neither): every
//! shape carries a class that the pages' one style sheet colours, for light and dark mode alike.
//! Every label goes through [`esc`]; every coordinate is a finite number inside the picture,
//! whatever the data (empty, zero, huge, NaN).

use std::fmt::Write;

use super::html::esc;

/// A coordinate with one decimal, never NaN or infinite.
fn n(v: f64) -> String {
    let v = if v.is_finite() { v } else { 0.0 };
    let s = format!("{v:.1}");
    s.strip_suffix(".0").map(str::to_string).unwrap_or(s)
}

/// `part` of `whole` as a fraction in `0..=1` (0 for an empty whole).
fn fraction(part: f64, whole: f64) -> f64 {
    if whole > 0.0 && part.is_finite() && whole.is_finite() {
        (part / whole).clamp(0.0, 1.0)
    } else {
        0.0
    }
}

fn open_svg(out: &mut String, class: &str, w: f64, h: f64, label: &str) {
    let _ = write!(
        out,
        "<svg class=\"{}\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        esc(class),
        n(w),
        n(h),
        esc(label),
        esc(label)
    );
}

/// A horizontal bar, `done` of `total` filled; past the total it is full and marked `over`.
/// Stretches to its box (no text inside, so nothing is distorted).
pub fn progress_bar(done: u64, total: u64, label: &str) -> String {
    let (w, h) = (100.0, 10.0);
    let filled = fraction(done as f64, total as f64) * w;
    let over = total > 0 && done > total;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg class=\"bar\" viewBox=\"0 0 {} {}\" preserveAspectRatio=\"none\" role=\"img\" \
         aria-label=\"{}\" xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>",
        n(w),
        n(h),
        esc(label),
        esc(label)
    );
    let _ = write!(
        out,
        "<rect class=\"bar-bg\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/>\
         <rect class=\"bar-fill{}\" x=\"0\" y=\"0\" width=\"{}\" height=\"{}\"/></svg>",
        n(w),
        n(h),
        if over { " over" } else { "" },
        n(filled),
        n(h)
    );
    out
}

/// One point of a rate graph: seconds since the graph's start, a rate, the limit then.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RatePoint {
    pub x: f64,
    pub rate: f64,
    pub limit: Option<f64>,
}

/// What a rate graph shows.
pub struct RateGraph<'a> {
    /// What the graph is of, for its title: "backup.b1, last hour".
    pub label: &'a str,
    /// The span in seconds (the right edge is now).
    pub span: f64,
    /// The samples' step in seconds: points further apart than that leave a gap.
    pub step: f64,
    pub upload: &'a [RatePoint],
    pub download: &'a [RatePoint],
    /// Labels under the x axis at fractions of the span: `(0.0, "-1 h")`, `(1.0, "now")`.
    pub x_labels: &'a [(f64, String)],
    /// How a rate reads: `48.8 KiB/s`.
    pub format: &'a dyn Fn(f64) -> String,
    /// What to say when there is nothing to draw.
    pub empty: &'a str,
}

const GW: f64 = 440.0;
const GH: f64 = 170.0;
const LEFT: f64 = 84.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 22.0;
const BOTTOM: f64 = 20.0;

/// A round top for the y axis at or above `max`: 1, 2 or 5 times a power of ten, or of 1024
/// for byte rates that read in KiB/s and MiB/s.
fn nice_top(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let base = if max >= 1024.0 {
        1024f64.powi((max.log(1024.0)).floor() as i32)
    } else {
        1.0
    };
    let scaled = max / base;
    let mag = 10f64.powi(scaled.log10().floor() as i32);
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if scaled <= m * mag * 1.0000001 {
            return m * mag * base;
        }
    }
    10.0 * mag * base
}

/// Upload and download rates over time, each with its limit as a dashed step line.
pub fn rate_graph(g: &RateGraph<'_>) -> String {
    let plot_w = GW - LEFT - RIGHT;
    let plot_h = GH - TOP - BOTTOM;
    let peak = g
        .upload
        .iter()
        .chain(g.download)
        .flat_map(|p| [p.rate, p.limit.unwrap_or(0.0)])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let top = nice_top(peak * 1.05);
    let x = |secs: f64| LEFT + fraction(secs, g.span) * plot_w;
    let y = |rate: f64| TOP + plot_h - fraction(rate, top) * plot_h;
    let mut out = String::new();
    open_svg(&mut out, "graph", GW, GH, g.label);
    // Grid and y labels: 0, half, top.
    for (i, v) in [0.0, top / 2.0, top].into_iter().enumerate() {
        let yy = y(v);
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            n(LEFT),
            n(yy),
            n(GW - RIGHT),
            n(yy),
            n(LEFT - 6.0),
            n(yy + if i == 0 { 0.0 } else { 4.0 }),
            esc(&(g.format)(v))
        );
    }
    for (at, label) in g.x_labels {
        let xx = LEFT + at.clamp(0.0, 1.0) * plot_w;
        let anchor = if *at <= 0.0 {
            "start"
        } else if *at >= 1.0 {
            "end"
        } else {
            "middle"
        };
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"{anchor}\">{}</text>",
            n(xx),
            n(GH - 5.0),
            esc(label)
        );
    }
    // Legend, top right.
    let _ = write!(
        out,
        "<g class=\"legend\"><rect class=\"up-key\" x=\"{}\" y=\"6\" width=\"10\" height=\"10\"/>\
         <text x=\"{}\" y=\"15\">upload</text>\
         <rect class=\"down-key\" x=\"{}\" y=\"6\" width=\"10\" height=\"10\"/>\
         <text x=\"{}\" y=\"15\">download</text>\
         <line class=\"limit-key\" x1=\"{}\" y1=\"11\" x2=\"{}\" y2=\"11\"/>\
         <text x=\"{}\" y=\"15\">limit</text></g>",
        n(GW - 262.0),
        n(GW - 248.0),
        n(GW - 182.0),
        n(GW - 168.0),
        n(GW - 90.0),
        n(GW - 70.0),
        n(GW - 64.0)
    );
    if g.upload.is_empty() && g.download.is_empty() {
        let _ = write!(
            out,
            "<text class=\"empty\" x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
            n(LEFT + plot_w / 2.0),
            n(TOP + plot_h / 2.0),
            esc(g.empty)
        );
        return out;
    }
    for (class, points) in [("down", g.download), ("up", g.upload)] {
        for run in runs(points, g.step) {
            // The area under the line, then the line.
            let mut line = String::new();
            for p in run {
                let _ = write!(line, "{},{} ", n(x(p.x)), n(y(p.rate)));
            }
            let (first, last) = (run[0], run[run.len() - 1]);
            let base = n(y(0.0));
            let _ = write!(
                out,
                "<polygon class=\"{class}-area\" points=\"{},{base} {}{},{base}\"/>\
                 <polyline class=\"{class}\" points=\"{}\"/>",
                n(x(first.x)),
                line,
                n(x(last.x)),
                line.trim_end()
            );
        }
        // The limit as a step line, from each point to the next.
        let mut path = String::new();
        for run in runs(points, g.step) {
            let mut pen = false;
            for (i, p) in run.iter().enumerate() {
                let end = run.get(i + 1).map_or(p.x + g.step, |q| q.x).min(g.span);
                match p.limit {
                    Some(l) => {
                        let cmd = if pen { 'L' } else { 'M' };
                        let _ = write!(path, "{cmd}{} {}H{}", n(x(p.x)), n(y(l)), n(x(end)));
                        pen = true;
                    }
                    None => pen = false,
                }
            }
        }
        if !path.is_empty() {
            let _ = write!(out, "<path class=\"limit {class}-limit\" d=\"{path}\"/>");
        }
    }
    out.push_str("</svg>");
    out
}

/// Consecutive points no further apart than one and a half steps.
fn runs(points: &[RatePoint], step: f64) -> Vec<&[RatePoint]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=points.len() {
        if i == points.len() || points[i].x - points[i - 1].x > step * 1.5 {
            if i > start {
                out.push(&points[start..i]);
            }
            start = i;
        }
    }
    out
}

/// A marker on the week strip.
pub struct Marker<'a> {
    /// Seconds from the strip's start.
    pub x: f64,
    /// `now`, `due` or `eta`.
    pub class: &'a str,
    pub label: &'a str,
}

/// What a week strip shows: seconds from its start for everything.
pub struct WeekStrip<'a> {
    pub label: &'a str,
    pub span: f64,
    /// Open windows: `(start, end)`.
    pub open: &'a [(f64, f64)],
    /// Day boundaries and their labels: `(start, "Thu 8")`.
    pub days: &'a [(f64, String)],
    pub markers: &'a [Marker<'a>],
}

const SW: f64 = 700.0;
const SH: f64 = 64.0;
const STRIP_TOP: f64 = 24.0;
const STRIP_H: f64 = 24.0;

/// Seven days as a strip: open windows as bands, day labels above, markers for now, the next
/// due time and the projected finish.
pub fn week_strip(s: &WeekStrip<'_>) -> String {
    let x = |secs: f64| fraction(secs, s.span) * SW;
    let mut out = String::new();
    open_svg(&mut out, "week", SW, SH, s.label);
    let _ = write!(
        out,
        "<rect class=\"closed\" x=\"0\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
        n(STRIP_TOP),
        n(SW),
        n(STRIP_H)
    );
    for &(a, b) in s.open {
        let (xa, xb) = (x(a), x(b));
        if xb > xa {
            let _ = write!(
                out,
                "<rect class=\"open\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"/>",
                n(xa),
                n(STRIP_TOP),
                n(xb - xa),
                n(STRIP_H)
            );
        }
    }
    let day_w = s
        .days
        .first()
        .map_or(SW, |_| SW / s.days.len().max(1) as f64);
    for (start, label) in s.days {
        let xx = x(*start);
        let _ = write!(
            out,
            "<line class=\"day\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
             <text class=\"axis\" x=\"{}\" y=\"18\" text-anchor=\"middle\">{}</text>",
            n(xx),
            n(STRIP_TOP - 4.0),
            n(xx),
            n(STRIP_TOP + STRIP_H),
            n((xx + day_w / 2.0).min(SW - 1.0)),
            esc(label)
        );
    }
    for m in s.markers {
        if !(m.x.is_finite() && (0.0..=s.span).contains(&m.x)) {
            continue;
        }
        let xx = x(m.x).clamp(1.5, SW - 1.5);
        let bottom = STRIP_TOP + STRIP_H;
        let _ = write!(
            out,
            "<g class=\"mark {}\"><title>{}</title><line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\
             <path d=\"M{} {}l-5 9h10z\"/></g>",
            esc(m.class),
            esc(m.label),
            n(xx),
            n(STRIP_TOP - 2.0),
            n(xx),
            n(bottom),
            n(xx),
            n(bottom + 2.0)
        );
    }
    out.push_str("</svg>");
    out
}

/// A bar of the history chart: its height's value, its outcome (the class) and its tooltip.
pub struct Bar<'a> {
    pub value: f64,
    pub class: &'a str,
    pub label: String,
}

const HW: f64 = 600.0;
const HH: f64 = 110.0;
const HISTORY_SLOTS: usize = 50;

/// Past runs as bars, oldest on the left, newest on the right; at most 50 slots.
pub fn history_bars(label: &str, bars: &[Bar<'_>], axis: &str) -> String {
    let mut out = String::new();
    open_svg(&mut out, "runs", HW, HH, label);
    let bars = &bars[bars.len().saturating_sub(HISTORY_SLOTS)..];
    let top = bars
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    let (plot_top, plot_h) = (if axis.is_empty() { 4.0 } else { 14.0 }, HH - 18.0);
    let slot = HW / HISTORY_SLOTS as f64;
    let _ = write!(
        out,
        "<line class=\"grid\" x1=\"0\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>",
        n(plot_top + plot_h),
        n(HW),
        n(plot_top + plot_h),
    );
    if !axis.is_empty() {
        let _ = write!(
            out,
            "<text class=\"axis\" x=\"0\" y=\"10\">{}</text>",
            esc(axis)
        );
    }
    let first_slot = HISTORY_SLOTS - bars.len();
    for (i, b) in bars.iter().enumerate() {
        // Even a zero (a run that failed at once) shows as a sliver.
        let h = (fraction(b.value, top) * plot_h).max(2.0);
        let xx = (first_slot + i) as f64 * slot + 1.0;
        let _ = write!(
            out,
            "<rect class=\"run {}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\">\
             <title>{}</title></rect>",
            esc(b.class),
            n(xx),
            n(plot_top + plot_h - h),
            n(slot - 2.0),
            n(h),
            esc(&b.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every number in the SVG's attributes, for bounds checks.
    fn numbers_in(svg: &str, attr: &str) -> Vec<f64> {
        let key = format!(" {attr}=\"");
        svg.match_indices(&key)
            .map(|(i, _)| {
                let rest = &svg[i + key.len()..];
                rest[..rest.find('"').unwrap()].parse::<f64>().unwrap()
            })
            .collect()
    }

    fn fmt(v: f64) -> String {
        format!("{v:.0} B/s")
    }

    fn graph<'a>(up: &'a [RatePoint], down: &'a [RatePoint], label: &'a str) -> RateGraph<'a> {
        RateGraph {
            label,
            span: 3600.0,
            step: 10.0,
            upload: up,
            download: down,
            x_labels: &[],
            format: &fmt,
            empty: "no transfers <yet>",
        }
    }

    #[test]
    fn the_bar_fills_its_share_and_stops_at_full() {
        let half = progress_bar(50, 100, "files");
        assert!(
            half.contains("class=\"bar-fill\" x=\"0\" y=\"0\" width=\"50\""),
            "{half}"
        );
        let over = progress_bar(150, 100, "files");
        assert!(over.contains("class=\"bar-fill over\" x=\"0\" y=\"0\" width=\"100\""));
        let none = progress_bar(5, 0, "files");
        assert!(none.contains("class=\"bar-fill\" x=\"0\" y=\"0\" width=\"0\""));
        assert!(!none.contains("NaN") && !none.contains("inf"));
    }

    #[test]
    fn labels_are_escaped() {
        let bad = "<script>\"&'";
        for svg in [
            progress_bar(1, 2, bad),
            rate_graph(&graph(&[], &[], bad)),
            week_strip(&WeekStrip {
                label: bad,
                span: 10.0,
                open: &[],
                days: &[(0.0, bad.to_string())],
                markers: &[Marker {
                    x: 1.0,
                    class: "now\"><script>",
                    label: bad,
                }],
            }),
            history_bars(
                bad,
                &[Bar {
                    value: 1.0,
                    class: "completed",
                    label: bad.into(),
                }],
                bad,
            ),
        ] {
            assert!(!svg.contains("<script>"), "{svg}");
            assert!(svg.contains("&lt;script&gt;&quot;&amp;&#39;"), "{svg}");
        }
        let empty = rate_graph(&graph(&[], &[], "x"));
        assert!(empty.contains("no transfers &lt;yet&gt;"));
    }

    #[test]
    fn a_graph_with_no_data_says_so_and_draws_no_line() {
        let svg = rate_graph(&graph(&[], &[], "empty"));
        assert!(svg.contains("class=\"empty\""));
        assert!(!svg.contains("<polyline"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn lines_and_limits_stay_inside_the_plot_whatever_the_data() {
        let up: Vec<RatePoint> = (0..360)
            .map(|i| RatePoint {
                x: i as f64 * 10.0,
                rate: if i == 100 {
                    f64::NAN
                } else {
                    (i * 1000) as f64
                },
                limit: Some(65536.0),
            })
            .collect();
        let down = [RatePoint {
            x: 5000.0, // beyond the span
            rate: 1e300,
            limit: None,
        }];
        let svg = rate_graph(&graph(&up, &down, "g"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        for poly in svg.split("points=\"").skip(1) {
            for pair in poly[..poly.find('"').unwrap()].split_whitespace() {
                let (x, y) = pair.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!((LEFT..=GW - RIGHT).contains(&x), "x {x}");
                assert!((TOP..=GH - BOTTOM).contains(&y), "y {y}");
            }
        }
        assert!(svg.contains("class=\"limit up-limit\""));
        assert!(!svg.contains("down-limit"), "no limit, no line");
    }

    #[test]
    fn a_gap_in_the_samples_breaks_the_line() {
        let p = |x: f64| RatePoint {
            x,
            rate: 5.0,
            limit: None,
        };
        let up = [p(0.0), p(10.0), p(20.0), p(600.0), p(610.0)];
        let svg = rate_graph(&graph(&up, &[], "g"));
        assert_eq!(svg.matches("<polyline class=\"up\"").count(), 2);
    }

    #[test]
    fn the_axis_top_is_round_and_above_the_data() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(f64::NAN), 1.0);
        assert_eq!(nice_top(7.0), 10.0);
        assert_eq!(nice_top(65536.0), 100.0 * 1024.0);
        assert_eq!(nice_top(2048.0), 2048.0);
        assert_eq!(nice_top(70_000.0), 100.0 * 1024.0);
        assert!(nice_top(3.3e6) >= 3.3e6);
    }

    #[test]
    fn the_week_strip_draws_bands_days_and_markers_in_bounds() {
        let day = 86_400.0;
        let days: Vec<(f64, String)> = (0..7).map(|d| (d as f64 * day, format!("D{d}"))).collect();
        let svg = week_strip(&WeekStrip {
            label: "week",
            span: 7.0 * day,
            open: &[(0.0, 4.0 * 3600.0), (22.0 * 3600.0, 28.0 * 3600.0)],
            days: &days,
            markers: &[
                Marker {
                    x: 23.0 * 3600.0,
                    class: "now",
                    label: "now",
                },
                Marker {
                    x: 8.0 * day, // beyond the week: not drawn
                    class: "due",
                    label: "due",
                },
            ],
        });
        assert_eq!(svg.matches("class=\"open\"").count(), 2);
        assert_eq!(svg.matches("class=\"day\"").count(), 7);
        assert!(svg.contains("class=\"mark now\"") && !svg.contains("mark due"));
        for v in numbers_in(&svg, "x")
            .into_iter()
            .chain(numbers_in(&svg, "width"))
        {
            assert!((0.0..=SW).contains(&v), "{v}");
        }
        let empty = week_strip(&WeekStrip {
            label: "never",
            span: 7.0 * day,
            open: &[],
            days: &[],
            markers: &[],
        });
        assert!(!empty.contains("class=\"open\""));
    }

    #[test]
    fn history_bars_keep_the_last_fifty_and_show_zero_runs() {
        let bars: Vec<Bar> = (0..60)
            .map(|i| Bar {
                value: i as f64,
                class: if i % 2 == 0 { "completed" } else { "failed" },
                label: format!("run {i}"),
            })
            .collect();
        let svg = history_bars("runs", &bars, "duration");
        assert_eq!(svg.matches("<rect class=\"run ").count(), 50);
        assert!(!svg.contains("run 9<") && svg.contains("run 10<") && svg.contains("run 59<"));
        let heights = numbers_in(&svg, "height");
        assert!(
            heights.iter().all(|h| (2.0..=HH).contains(h)),
            "{heights:?}"
        );
        let none = history_bars("runs", &[], "duration");
        assert!(!none.contains("class=\"run "));
        let zero = history_bars(
            "runs",
            &[Bar {
                value: 0.0,
                class: "failed",
                label: "x".into(),
            }],
            "d",
        );
        assert!(zero.contains("height=\"2\""));
    }
}
