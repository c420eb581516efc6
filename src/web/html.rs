//! HTML building blocks: escaping, the page frame, and how numbers read (bytes, rates, shares).
//! Every piece of text that reaches a page goes through [`esc`].

use std::fmt::Write;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// How the page keeps itself current.
pub enum Refresh {
    /// A meta refresh every so many seconds.
    Meta(u32),
    /// This script (allowed by its hash in the Content-Security-Policy).
    Script(&'static str),
    None,
}

/// The pages' one inline style sheet (allowed by its hash in the Content-Security-Policy).
pub fn style() -> &'static str {
    STYLE
}

const STYLE: &str = ":root{color-scheme:light dark;--fg:#222;--bg:#fff;--muted:#6b6b6b;\
--line:#ccc;--grid:#e4e4e4;--up:#1f6fc5;--down:#2e9e5b;--limit:#d33;--open:#bfe3c8;\
--closed:#eceff3;--fill:#1f6fc5;--over:#e69500;--stopped:#e69500;--failed:#c62828;\
--running:#06c;--paused:#a60;--banner-bg:#fee;--banner-fg:#700}\
@media(prefers-color-scheme:dark){:root{--fg:#e2e2e2;--bg:#15171b;--muted:#9a9a9a;--line:#444;\
--grid:#2c2f35;--up:#5aa9ff;--down:#4fd18b;--limit:#ff6b6b;--open:#23583a;--closed:#24272d;\
--fill:#5aa9ff;--over:#ffb74d;--stopped:#ffb74d;--failed:#ff6b6b;--running:#5aa9ff;\
--paused:#ffb74d;--banner-bg:#3a1416;--banner-fg:#ffb3b3}}\
body{font-family:system-ui,sans-serif;margin:1.5em;color:var(--fg);background:var(--bg);max-width:72em}\
a{color:var(--running)}h1{font-size:1.5em}\
h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid var(--line)}\
h3{font-size:1em;margin:1em 0 .3em}h1,h2,h3,p,li,figcaption{overflow-wrap:anywhere}\
td.id{overflow-wrap:anywhere;min-width:7em}\
table{border-collapse:collapse;margin:.5em 0;display:block;overflow-x:auto;max-width:100%}\
td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}\
th{font-weight:600}.muted{color:var(--muted)}.state{font-weight:600}\
.running{color:var(--running)}.failed{color:var(--failed)}.paused{color:var(--paused)}\
.live{color:var(--paused);font-weight:600}\
form{display:inline-block;margin:.2em .6em .2em 0}input[type=text]{width:14em;max-width:100%}\
.warn{font-family:monospace;font-size:.9em;overflow-wrap:anywhere}\
.banner{border:2px solid var(--failed);background:var(--banner-bg);color:var(--banner-fg);padding:.4em 1em;margin:1em 0}\
.banner ul{margin:.3em 0;padding-left:1.2em}.banner a{color:var(--banner-fg)}\
.badge{background:var(--failed);color:#fff;font-size:.75em;font-weight:600;padding:.1em .4em;border-radius:.3em}\
figure{margin:.6em 0}figcaption{font-size:.85em;color:var(--muted)}\
svg{display:block;width:100%;height:auto}svg text{fill:var(--muted);font-size:11px}\
.bars{display:grid;grid-template-columns:auto minmax(8em,22em) 1fr;gap:.35em .7em;align-items:center;margin:.5em 0}\
.progress{display:contents}.plabel{font-weight:600}.progress svg.bar{height:.9em}\
.pcount{font-variant-numeric:tabular-nums}\
.bar-bg{fill:var(--closed)}.bar-fill{fill:var(--fill)}.bar-fill.over{fill:var(--over)}\
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(26em,100%),1fr));gap:0 1.5em}\
.chart{min-width:0;margin:.4em 0}\
.grid{stroke:var(--grid);stroke-width:1}\
.up{fill:none;stroke:var(--up);stroke-width:1.8;stroke-linejoin:round}\
.down{fill:none;stroke:var(--down);stroke-width:1.8;stroke-linejoin:round}\
.up-area{fill:var(--up);opacity:.15}.down-area{fill:var(--down);opacity:.15}\
.limit{fill:none;stroke-width:1.5;stroke-dasharray:5 4}.up-limit{stroke:var(--limit)}\
.down-limit{stroke:var(--limit);opacity:.55}\
.up-key{fill:var(--up)}.down-key{fill:var(--down)}\
.limit-key{stroke:var(--limit);stroke-width:2;stroke-dasharray:4 3}\
svg text.empty{font-size:14px}\
.week{max-width:56em}.open{fill:var(--open)}.closed{fill:var(--closed)}.day{stroke:var(--bg);stroke-width:2}\
.mark line{stroke-width:2}.mark.now line{stroke:var(--fg)}.mark.now path{fill:var(--fg)}\
.mark.due line{stroke:var(--stopped)}.mark.due path{fill:var(--stopped)}\
.mark.eta line{stroke:var(--up)}.mark.eta path{fill:var(--up)}\
.runs{max-width:48em}.run.completed{fill:var(--down)}.run.stopped{fill:var(--stopped)}.run.failed{fill:var(--failed)}\
.key{display:inline-block;width:.8em;height:.8em;margin:0 .3em 0 .6em;vertical-align:-.05em;border-radius:.15em}\
.key.open-key{background:var(--open)}.key.completed{background:var(--down)}\
.key.stopped{background:var(--stopped)}.key.failed-key{background:var(--failed)}\
.mark-key{width:.25em}.mark-key.now{background:var(--fg)}.mark-key.due{background:var(--stopped)}\
.mark-key.eta{background:var(--up)}\
.history td{font-variant-numeric:tabular-nums;white-space:nowrap}\
@media(max-width:40em){body{margin:.7em}td,th{padding:.15em .5em .15em 0}\
svg text{font-size:14px}svg.week text{font-size:20px}input[type=text]{width:10em}\
.bars{grid-template-columns:auto 1fr}.pcount{grid-column:1/-1;margin-top:-.2em}}";

/// A whole page around `body`.
pub fn page(title: &str, refresh: Refresh, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style>",
        esc(title)
    );
    match refresh {
        Refresh::Meta(secs) => {
            let _ = write!(out, "<meta http-equiv=\"refresh\" content=\"{secs}\">");
        }
        Refresh::Script(script) => {
            let _ = write!(out, "<script>{script}</script>");
        }
        Refresh::None => {}
    }
    let _ = writeln!(out, "</head><body>{body}</body></html>");
    out
}

/// A table row of a heading cell and a value cell (the value is already HTML).
pub fn row(label: &str, value_html: &str) -> String {
    format!("<tr><th>{}</th><td>{value_html}</td></tr>", esc(label))
}

/// Bytes as a person reads them: `512 B`, `1.5 KiB`, `3.2 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A byte rate: `1.5 MiB/s`.
pub fn rate(bytes_per_second: f64) -> String {
    format!("{}/s", bytes(bytes_per_second.max(0.0).round() as u64))
}

/// A limit: a rate, or `off`.
pub fn limit(bytes_per_second: Option<u64>) -> String {
    bytes_per_second.map_or("off".into(), |b| format!("{}/s", bytes(b)))
}

/// A share of one core: `25%`, or `off`.
pub fn share(fraction: Option<f64>) -> String {
    fraction.map_or("off".into(), |f| format!("{}%", (f * 100.0).round()))
}

/// Seconds as a short duration.
pub fn seconds(s: f64) -> String {
    super::eta::short_duration(std::time::Duration::from_secs_f64(s.max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(rate(1_572_864.0), "1.5 MiB/s");
        assert_eq!(limit(None), "off");
        assert_eq!(limit(Some(16 * 1024)), "16.0 KiB/s");
        assert_eq!(share(Some(0.25)), "25%");
        assert_eq!(seconds(125.0), "2 min");
    }

    #[test]
    fn the_title_is_escaped() {
        let p = page("<b>", Refresh::Meta(5), "");
        assert!(p.contains("<title>&lt;b&gt;</title>"));
        assert!(p.contains("http-equiv=\"refresh\" content=\"5\""));
    }
}
