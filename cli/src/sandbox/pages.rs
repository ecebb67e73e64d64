//! The hosted checkout's HTML: payment page, 3DS challenge, result.

use super::book::Charge;

/// The one-time code the sandbox's 3DS challenge accepts.
pub const OTP: &str = "1234";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(psp: &str, title: &str, body: &str) -> String {
    format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{title} · {psp}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:sans-serif;max-width:30em;margin:3em auto;padding:0 1em}}button{{font-size:1.05em;margin:.3em .3em .3em 0;padding:.4em 1.2em}}.err{{color:#b00}}</style></head>
<body><p><small>Sandbox PSP <strong id="psp">{psp}</strong></small></p>{body}</body></html>"#,
        psp = escape(psp),
        title = escape(title),
    )
}

fn summary(c: &Charge) -> String {
    format!(
        r#"<p>Payment <code id="payment">{}</code> (reference <code id="reference">{}</code>)</p>
<p>Amount: <strong id="amount">{}</strong> · method {}</p>"#,
        escape(&c.payment_id),
        escape(&c.reference),
        escape(&c.amount.to_string()),
        escape(&c.method),
    )
}

pub fn checkout(psp: &str, c: &Charge) -> String {
    let r = escape(&c.reference);
    page(
        psp,
        "Checkout",
        &format!(
            r#"<h1>Checkout</h1>{}
<form method="get" action="/checkout/{r}/3ds"><button id="pay" type="submit">Pay</button></form>
<form method="post" action="/checkout/{r}/abandon"><button id="abandon" type="submit">Abandon</button></form>"#,
            summary(c)
        ),
    )
}

pub fn challenge(psp: &str, c: &Charge, error: Option<&str>) -> String {
    let r = escape(&c.reference);
    let err = error
        .map(|e| format!(r#"<p class="err" id="error">{}</p>"#, escape(e)))
        .unwrap_or_default();
    page(
        psp,
        "3-D Secure",
        &format!(
            r#"<h1>3-D Secure check</h1>{}{err}
<p>Enter the code sent to your phone (sandbox: <code>{OTP}</code>).</p>
<form method="post" action="/checkout/{r}/approve"><label>Code <input id="otp" name="otp" autocomplete="one-time-code" inputmode="numeric" maxlength="8"></label>
<button id="approve" type="submit">Approve</button></form>
<form method="post" action="/checkout/{r}/decline"><button id="decline" type="submit">Decline</button></form>
<form method="post" action="/checkout/{r}/abandon"><button id="abandon" type="submit">Abandon</button></form>"#,
            summary(c)
        ),
    )
}

pub fn result(psp: &str, c: &Charge) -> String {
    page(
        psp,
        "Payment result",
        &format!(
            r#"<h1 id="result">Payment {}</h1>{}
<p><a id="return" href="{}">Return to the merchant</a></p>"#,
            escape(c.status.as_str()),
            summary(c),
            escape(&c.return_url)
        ),
    )
}

pub fn message(psp: &str, title: &str, text: &str) -> String {
    page(
        psp,
        title,
        &format!(
            r#"<h1>{}</h1><p id="message">{}</p>"#,
            escape(title),
            escape(text)
        ),
    )
}
