//! HTML building blocks: escaping, the page frame (navigation, style, the
//! refresh script), tables, pagers, action buttons and SVG charts. Every
//! value that comes from a job, a queue or a request goes through [`esc`].

use std::fmt::Write as _;

/// `text` with `&`, `<`, `>`, `"` and `'` escaped: safe in element content and
/// in quoted attribute values.
pub(crate) fn esc(text: &str) -> String {
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

/// `text` for a URL path segment or query value: everything but unreserved
/// characters percent-encoded.
pub(crate) fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What every page shares: where the dashboard is mounted, the token for its
/// forms, the failed count for the navigation, the refresh period.
pub(crate) struct Frame<'a> {
    pub(crate) base: &'a str,
    pub(crate) title: &'a str,
    pub(crate) csrf: &'a str,
    pub(crate) failed_total: Option<u64>,
    pub(crate) refresh_secs: u64,
}

const STYLE: &str = "\
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f5f6f8}\
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.4em;align-items:center}\
header a{color:#cfd6e4;text-decoration:none}header a.on{color:#fff;font-weight:600}\
header .brand{font-weight:700;color:#fff;margin-right:1em}\
main{padding:1.2em;max-width:1200px}\
h1{font-size:1.3em;margin:.2em 0 .8em}h2{font-size:1.05em;margin:1.4em 0 .5em}\
table{border-collapse:collapse;background:#fff;width:100%;margin-bottom:.6em}\
th,td{text-align:left;padding:.35em .6em;border-bottom:1px solid #e3e6eb;vertical-align:top}\
th{background:#eef0f4;font-weight:600}td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
.cards{display:flex;gap:.8em;flex-wrap:wrap}\
.card{background:#fff;padding:.7em 1em;border-radius:6px;min-width:9em;box-shadow:0 1px 2px #0001}\
a.card{color:inherit;text-decoration:none}.card b{display:block;font-size:1.6em}.muted{color:#6b7385}.bad{color:#b3261e}.ok{color:#1e7b34}\
form.inline{display:inline}button{cursor:pointer;border:1px solid #aab;border-radius:4px;background:#fff;padding:.15em .6em}\
button.danger{border-color:#b3261e;color:#b3261e}\
pre{background:#fff;padding:.6em;overflow:auto;border:1px solid #e3e6eb;white-space:pre-wrap}\
.pager{margin:.4em 0}.pager a{margin-right:1em}\
svg.chart{background:#fff;border:1px solid #e3e6eb;margin:.3em .6em .6em 0}\
.legend span{margin-right:1em}.bar{display:inline-block;width:9em;height:.8em;background:#e3e6eb;border-radius:3px;overflow:hidden;vertical-align:middle}.bar span{display:block;height:100%;background:#2f6fdf;transition:width .3s}.prog{white-space:nowrap}.filters a{margin-right:.8em}.filters a.on{font-weight:600}.note{background:#fff8e1;border:1px solid #f0d98a;padding:.5em .8em;border-radius:4px}";

/// Replaces the page's main part and navigation with a fresh copy every
/// `data-refresh` seconds while the page is visible and no form control has
/// the focus; `?refresh=0` turns it off.
const SCRIPT: &str = "\
(function(){var b=document.body,s=+b.dataset.refresh;\
if(!s||/[?&]refresh=0/.test(location.search))return;\
setInterval(function(){\
if(document.hidden)return;var a=document.activeElement;if(a&&a.form)return;\
fetch(location.href,{headers:{Accept:'text/html'},credentials:'same-origin'})\
.then(function(r){return r.ok?r.text():null}).then(function(t){if(!t)return;\
var d=new DOMParser().parseFromString(t,'text/html');\
['main','header'].forEach(function(q){var n=d.querySelector(q),o=document.querySelector(q);\
if(n&&o)o.innerHTML=n.innerHTML;});}).catch(function(){});},s*1000);})();";

const NAV: [(&str, &str); 6] = [
    ("", "Overview"),
    ("queues", "Queues"),
    ("recent", "Recent jobs"),
    ("failed", "Failed"),
    ("batches", "Batches"),
    ("metrics", "Metrics"),
];

/// The whole document around `body`, with `current` (a [`NAV`] path)
/// highlighted.
pub(crate) fn page(frame: &Frame<'_>, current: &str, heading: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 4096);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width\">\
         <title>{} · {}</title><style>{STYLE}</style></head>\
         <body data-refresh={}><header><span class=brand>{}</span>",
        esc(heading),
        esc(frame.title),
        frame.refresh_secs,
        esc(frame.title),
    );
    for (path, label) in NAV {
        let class = if path == current { " class=on" } else { "" };
        // Nested under a prefix, the overview is the prefix itself (no slash).
        let href = match (path, frame.base) {
            ("", "") => "/".to_owned(),
            ("", base) => base.to_owned(),
            (path, base) => format!("{base}/{path}"),
        };
        let _ = write!(out, "<a href=\"{}\"{class}", esc(&href));
        if path == "failed" {
            let _ = write!(
                out,
                " id=nav-failed>{label} (<span id=failed-count>{}</span>)</a>",
                frame.failed_total.map_or_else(|| "?".to_owned(), |n| n.to_string())
            );
        } else {
            let _ = write!(out, ">{label}</a>");
        }
    }
    let _ = write!(
        out,
        "</header><main><h1>{}</h1>{body}</main><script>{SCRIPT}</script></body></html>",
        esc(heading)
    );
    out
}

/// A table with `headers` (a header starting with `#` is numeric: right
/// aligned) and rows of already escaped cells; `row_ids` gives each row an id.
pub(crate) fn table(headers: &[&str], rows: &[(String, Vec<String>)]) -> String {
    let mut out = String::from("<table>");
    let numeric: Vec<bool> = headers.iter().map(|h| h.starts_with('#')).collect();
    let labelled = headers.iter().any(|h| !h.trim_start_matches('#').is_empty());
    if labelled {
        out.push_str("<thead><tr>");
    }
    for header in headers.iter().filter(|_| labelled) {
        match header.strip_prefix('#') {
            Some(header) => {
                let _ = write!(out, "<th class=n>{}</th>", esc(header));
            }
            None => {
                let _ = write!(out, "<th>{}</th>", esc(header));
            }
        }
    }
    if labelled {
        out.push_str("</tr></thead>");
    }
    out.push_str("<tbody>");
    if rows.is_empty() {
        let _ = write!(out, "<tr><td colspan={} class=muted>none</td></tr>", headers.len());
    }
    for (id, cells) in rows {
        if id.is_empty() {
            out.push_str("<tr>");
        } else {
            let _ = write!(out, "<tr id=\"{}\">", esc(id));
        }
        for (index, cell) in cells.iter().enumerate() {
            let class = if numeric.get(index) == Some(&true) { " class=n" } else { "" };
            let _ = write!(out, "<td{class}>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// A POST button: a form to `action` carrying the CSRF token.
pub(crate) fn button(
    frame: &Frame<'_>,
    action: &str,
    id: &str,
    label: &str,
    danger: bool,
) -> String {
    format!(
        "<form class=inline method=post action=\"{}{}\"><input type=hidden name=csrf value=\"{}\">\
         <button id=\"{}\"{}>{}</button></form>",
        esc(frame.base),
        esc(action),
        esc(frame.csrf),
        esc(id),
        if danger { " class=danger" } else { "" },
        esc(label)
    )
}

/// The links to the first and the next page of a list at `path`; `query` is
/// the page's other query parameters, already encoded (`key=value&`).
pub(crate) fn pager(
    base: &str,
    path: &str,
    query: &str,
    key: &str,
    next: Option<&str>,
    shown: usize,
    total: u64,
) -> String {
    let mut out = format!("<div class=pager><span class=muted>{shown} shown of {total}</span> ");
    let _ = write!(out, "<a href=\"{}{path}?{}\">first page</a>", esc(base), esc(query));
    if let Some(next) = next {
        let _ = write!(
            out,
            "<a id=next-page href=\"{}{path}?{}{key}={}\">next page</a>",
            esc(base),
            esc(query),
            esc(&url(next))
        );
    }
    out.push_str("</div>");
    out
}

/// Milliseconds as a short human figure.
pub(crate) fn millis(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{:.2} s", ms / 1000.0)
    }
}

const COLORS: [&str; 6] = ["#2f6fdf", "#b3261e", "#1e7b34", "#a45c00", "#7a3fb0", "#00838f"];

/// A line chart of `series` (name, `(unix ms, value)` points) as inline SVG,
/// with its own scale from 0 to the largest value.
pub(crate) fn chart(id: &str, title: &str, series: &[(String, Vec<(u64, f64)>)]) -> String {
    const W: f64 = 560.0;
    const H: f64 = 160.0;
    const PAD: f64 = 30.0;
    let points = series.iter().flat_map(|(_, points)| points.iter());
    let (mut t0, mut t1, mut top) = (u64::MAX, 0_u64, 0.0_f64);
    for (t, v) in points {
        t0 = t0.min(*t);
        t1 = t1.max(*t);
        top = top.max(*v);
    }
    let mut out = format!("<div><h2>{}</h2>", esc(title));
    if t0 > t1 {
        out.push_str("<p class=muted>no samples yet</p></div>");
        return out;
    }
    let span = (t1 - t0).max(1) as f64;
    let top = if top <= 0.0 { 1.0 } else { top };
    let _ = write!(
        out,
        "<svg class=chart id=\"{}\" width={W} height={H} viewBox=\"0 0 {W} {H}\" role=img>\
         <text x=\"4\" y=\"12\" font-size=\"10\" fill=\"#6b7385\">{}</text>\
         <line x1=\"{PAD}\" y1=\"{}\" x2=\"{W}\" y2=\"{}\" stroke=\"#ccd\"/>",
        esc(id),
        esc(&format_value(top)),
        H - PAD / 2.0,
        H - PAD / 2.0,
    );
    for (index, (_, points)) in series.iter().enumerate() {
        let color = COLORS[index % COLORS.len()];
        let mut path = String::new();
        for (t, v) in points {
            let x = PAD + (W - PAD - 4.0) * ((t - t0) as f64 / span);
            let y = (H - PAD / 2.0) - (H - PAD) * (v / top);
            let _ = write!(path, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            out,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.6\" points=\"{}\"/>",
            path.trim_end()
        );
    }
    out.push_str("</svg><div class=legend>");
    for (index, (name, _)) in series.iter().enumerate() {
        let _ = write!(
            out,
            "<span style=\"color:{}\">■ {}</span>",
            COLORS[index % COLORS.len()],
            esc(name)
        );
    }
    out.push_str("</div></div>");
    out
}

fn format_value(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url("a b/é"), "a%20b%2F%C3%A9");
    }

    #[test]
    fn a_chart_scales_its_points_and_escapes_names() {
        let svg = chart("c", "t", &[("<q>".into(), vec![(0, 0.0), (10, 4.0)])]);
        assert!(svg.contains("points=\"30.0,145.0 556.0,15.0\""), "{svg}");
        assert!(svg.contains("&lt;q&gt;") && !svg.contains("<q>"), "{svg}");
        assert!(chart("c", "t", &[]).contains("no samples yet"));
    }
}
