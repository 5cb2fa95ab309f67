//! HTML rendering: escaping, the page frame, and small helpers. Pages are plain
//! server-rendered HTML with one inline style sheet and, on the dashboard only, a few lines of
//! inline script; nothing is loaded from elsewhere, so the console works without internet.

use std::fmt::Write as _;

use smdpp_store::EpochMillis;

use crate::auth::Viewer;

/// Escapes text for HTML element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
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

/// Percent-encodes a query-string value.
pub fn url_arg(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of epoch milliseconds.
pub fn when(ms: EpochMillis) -> String {
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return ms.to_string();
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2430}\
header{background:#1d3557;color:#fff;padding:.6em 1em;display:flex;gap:1.2em;align-items:center}\
header a{color:#fff;text-decoration:none}header .who{margin-left:auto;font-size:.9em}\
main{padding:1em 1.5em}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccd;padding:.25em .6em;text-align:left;font-size:.92em}\
th{background:#eef}.error{color:#a00;font-weight:600;margin:.5em 0}\
.ok{color:#060;font-weight:600}form.inline{display:inline}\
fieldset{margin:.6em 0;border:1px solid #ccd}code{font-size:.95em}";

/// A full page: header with navigation (when logged in), title, body.
pub fn page(title: &str, viewer: Option<&Viewer>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(v) = viewer {
        let _ = write!(
            nav,
            "<header><strong>smdpp console</strong><a href=\"/\">Dashboard</a>\
             <a href=\"/profiles\">Inventory</a><a href=\"/orders\">Orders</a>\
             <a href=\"/outbox\">Outbox</a><a href=\"/types\">Profile types</a>\
             <a href=\"/keys\">Keys</a><span class=\"who\">{} ({}{})</span>\
             <form id=\"logout\" class=\"inline\" method=\"post\" action=\"/logout\">{}\
             <button type=\"submit\">Log out</button></form></header>",
            esc(&v.username),
            v.role.as_str(),
            v.operator_id
                .as_deref()
                .map(|o| format!(", operator {}", esc(o)))
                .unwrap_or_default(),
            csrf_field(v)
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · smdpp</title><style>{STYLE}</style></head><body>{nav}<main><h1>{}</h1>{body}\
         </main></body></html>",
        esc(title),
        esc(title)
    )
}

/// The hidden CSRF input of a form.
pub fn csrf_field(v: &Viewer) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(&v.csrf)
    )
}

/// A table with a header row; `rows` are already-rendered `<tr>` elements.
pub fn table(id: &str, headers: &[&str], rows: &str) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for h in headers {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    out.push_str(rows);
    out.push_str("</tbody></table>");
    out
}

/// `<option>`s of a select, `selected` marked.
pub fn options(values: &[&str], selected: &str) -> String {
    let mut out = String::new();
    for v in values {
        let sel = if *v == selected { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{sel}>{}</option>", esc(v), esc(v));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_markup_in_text() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        assert_eq!(url_arg("a b&c"), "a%20b%26c");
        assert_eq!(when(0), "1970-01-01 00:00:00");
    }
}
