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

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:72em}\
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.5em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0}td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}\
th{font-weight:600}.muted{color:#777}.state{font-weight:600}\
.running{color:#06c}.failed{color:#b00}.paused{color:#a60}.live{color:#a60;font-weight:600}\
form{display:inline-block;margin:.2em .6em .2em 0}input[type=text]{width:14em}\
.warn{font-family:monospace;font-size:.9em}\
.banner{border:2px solid #b00;background:#fee;color:#700;padding:.4em 1em;margin:1em 0}\
.banner ul{margin:.3em 0;padding-left:1.2em}.banner a{color:#700}\
.badge{background:#b00;color:#fff;font-size:.75em;font-weight:600;padding:.1em .4em;border-radius:.3em}";

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
