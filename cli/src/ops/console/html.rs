//! The console's HTML: one layout, tables, forms (every POST form carries
//! the CSRF token), times. Semantic elements, labelled inputs, no script.

use payloop::clock::Day;
use serde_json::Value;

pub use crate::sandbox::pages::escape;

/// The sections, in the navigation's order: (path, label).
const NAV: [(&str, &str); 6] = [
    ("/ops", "Overview"),
    ("/ops/payments", "Payments"),
    ("/ops/dlq", "Dead letters"),
    ("/ops/recon", "Reconciliation"),
    ("/ops/routing", "Routing"),
    ("/ops/risk", "Risk"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;line-height:1.45}\
header{background:#12355b;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center;flex-wrap:wrap}\
header a{color:#fff}header a[aria-current]{font-weight:bold;text-decoration-thickness:3px}\
nav ul{list-style:none;display:flex;gap:1.1em;margin:0;padding:0;flex-wrap:wrap}\
main{padding:1em 1.2em;max-width:75em}table{border-collapse:collapse;margin:.5em 0 1.2em}\
th,td{border:1px solid #999;padding:.25em .5em;text-align:left;vertical-align:top}th{background:#e8edf3}\
.ok{color:#0b6b2e}.bad{color:#a4000f}.flash{background:#e6f4ea;border:1px solid #0b6b2e;padding:.5em}\
.error{background:#fdecea;border:1px solid #a4000f;padding:.5em}\
button,input,select{font-size:1em;padding:.3em .6em}:focus-visible{outline:3px solid #c25e00;outline-offset:2px}\
form.inline{display:inline}.charts{display:flex;flex-wrap:wrap;gap:2em}figure{margin:0}\
pre{background:#f4f4f4;padding:.5em;overflow:auto;max-width:60em}";

/// A whole page: header with the operator and the sign-out form, the
/// navigation (the current section marked), then `body`.
pub fn page(title: &str, current: &str, operator: Option<(&str, &str)>, body: &str) -> String {
    let nav: String = match operator {
        Some(_) => NAV
            .iter()
            .map(|(href, label)| {
                let here = if *href == current {
                    r#" aria-current="page""#
                } else {
                    ""
                };
                format!(r#"<li><a href="{href}"{here}>{label}</a></li>"#)
            })
            .collect(),
        None => String::new(),
    };
    let who = match operator {
        Some((name, csrf)) => format!(
            r#"<span>Signed in as <strong id="operator">{}</strong></span>{}"#,
            escape(name),
            post_form("/ops/logout", csrf, "", "Sign out", "logout")
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · payloop operator console</title><style>{STYLE}</style></head>
<body><header><strong>payloop operator console</strong><nav aria-label="Sections"><ul>{nav}</ul></nav>{who}</header>
<main><h1>{title}</h1>{body}</main></body></html>"#,
        title = escape(title),
    )
}

/// A POST form of hidden `fields` (already escaped HTML) and one button.
pub fn post_form(action: &str, csrf: &str, fields: &str, label: &str, id: &str) -> String {
    format!(
        r#"<form class="inline" method="post" action="{action}"><input type="hidden" name="csrf" value="{csrf}">{fields}<button type="submit" id="{id}">{label}</button></form>"#,
        action = escape(action),
        csrf = escape(csrf),
        id = escape(id),
    )
}

/// A table with a caption; cells are already-escaped HTML.
pub fn table(caption: &str, head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("<p>{}: none.</p>", escape(caption));
    }
    let th: String = head
        .iter()
        .map(|h| format!(r#"<th scope="col">{}</th>"#, escape(h)))
        .collect();
    let body: String = rows
        .iter()
        .map(|r| {
            format!(
                "<tr>{}</tr>",
                r.iter()
                    .map(|c| format!("<td>{c}</td>"))
                    .collect::<String>()
            )
        })
        .collect();
    format!(
        "<table><caption>{}</caption><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>",
        escape(caption)
    )
}

/// A flash message from a redirect (`?done=` / `?error=`), escaped.
pub fn flash(done: Option<&str>, error: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(d) = done {
        out.push_str(&format!(
            r#"<p class="flash" role="status" id="flash">{}</p>"#,
            escape(d)
        ));
    }
    if let Some(e) = error {
        out.push_str(&format!(
            r#"<p class="error" role="alert" id="flash-error">{}</p>"#,
            escape(e)
        ));
    }
    out
}

/// `2026-12-02 14:05:09 UTC` from epoch ms.
pub fn time(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let day = Day::of_ms(ms);
    let s = (ms - day.start_ms()) / 1000;
    format!("{day} {:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

/// A JSON value as text for a cell (strings unquoted), escaped.
pub fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => escape(s),
        other => escape(&other.to_string()),
    }
}

/// A JSON document, pretty and escaped, in a `<pre>`.
pub fn pre(v: &Value) -> String {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    format!("<pre>{}</pre>", escape(&text))
}
