//! The hosted checkout the player's browser sees: Pay, 3-D Secure, then
//! Approve / Decline / Abandon, decided once.

use super::*;

pub(super) fn page_fail(st: &SandboxState, status: StatusCode, title: &str, text: &str) -> Fail {
    Fail::Page(status, pages::message(st.opts.name.as_str(), title, text))
}

pub(super) fn page(body: String) -> Answer {
    Ok(Html(body).into_response())
}

/// The charge behind a checkout page, or the page to show instead.
pub(super) fn charge_for_page(st: &SandboxState, reference: &str) -> Result<Charge, Fail> {
    if st.chaos().outage {
        let why = "This PSP is down. Try again later.";
        return Err(page_fail(
            st,
            StatusCode::SERVICE_UNAVAILABLE,
            "Unavailable",
            why,
        ));
    }
    st.with_book(|b| b.charges.get(reference).cloned())?
        .ok_or_else(|| {
            page_fail(
                st,
                StatusCode::NOT_FOUND,
                "Unknown payment",
                "No payment has this reference.",
            )
        })
}

pub(super) async fn checkout_page(State(st): St, Path(reference): Path<String>) -> Answer {
    let c = charge_for_page(&st, &reference)?;
    let name = st.opts.name.as_str();
    if c.status.is_open() {
        page(pages::checkout(name, &c))
    } else {
        page(pages::result(name, &c))
    }
}

pub(super) async fn challenge_page(State(st): St, Path(reference): Path<String>) -> Answer {
    let c = charge_for_page(&st, &reference)?;
    let name = st.opts.name.as_str();
    if !c.status.is_open() {
        return page(pages::result(name, &c));
    }
    st.with_book(|b| {
        if let Some(ch) = b.charges.get_mut(&reference) {
            if ch.status == ChargeStatus::Created {
                ch.status = ChargeStatus::Challenged;
            }
        }
    })?;
    page(pages::challenge(name, &c, None))
}

/// `otp=<code>` from a urlencoded form body.
pub(super) fn form_otp(raw: &[u8]) -> Option<String> {
    std::str::from_utf8(raw)
        .ok()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("otp="))
        .map(|v| v.chars().filter(char::is_ascii_digit).collect())
}

/// Decide a checkout once: a second click (or a second tab) sees the first
/// outcome. A capture adds its settlement line. `true`: decided now.
pub(super) fn decide(
    st: &SandboxState,
    b: &mut Book,
    reference: &str,
    target: ChargeStatus,
) -> Option<(Charge, bool)> {
    let ch = b.charges.get_mut(reference)?;
    if !ch.status.is_open() {
        return Some((ch.clone(), false));
    }
    ch.status = target;
    let ch = ch.clone();
    if target == ChargeStatus::Captured {
        let today = Day::today();
        let fee =
            fee_minor(ch.amount.minor(), st.opts.fee_bps, st.opts.fixed_fee_minor).unwrap_or(0);
        let line = SettlementLine {
            reference: ch.reference.clone(),
            payment_id: ch.payment_id.clone(),
            kind: "payment",
            gross_minor: ch.amount.minor(),
            fee_minor: fee,
            currency: ch.amount.currency(),
            settled_date: today.to_string(),
        };
        b.settle(line, today);
    }
    Some((ch, true))
}

pub(super) async fn checkout_action(
    State(st): St,
    Path((reference, action)): Path<(String, String)>,
    raw: axum::body::Bytes,
) -> Answer {
    let name = st.opts.name.as_str();
    let c = charge_for_page(&st, &reference)?;
    let target = match action.as_str() {
        "approve" if form_otp(&raw).as_deref() != Some(pages::OTP) => {
            let why = "Wrong code: the payment is not approved.";
            return page(pages::challenge(name, &c, Some(why)));
        }
        "approve" => ChargeStatus::Captured,
        "decline" => ChargeStatus::Failed,
        "abandon" => ChargeStatus::Canceled,
        _ => return Err(page_fail(&st, StatusCode::NOT_FOUND, "Unknown action", "")),
    };
    let (charge, changed) = st
        .with_book(|b| decide(&st, b, &reference, target))?
        .ok_or_else(|| page_fail(&st, StatusCode::NOT_FOUND, "Unknown payment", ""))?;
    if changed {
        let statuses: &[&str] = match target {
            ChargeStatus::Captured => &["authorized", "captured"],
            ChargeStatus::Failed => &["failed"],
            _ => &["canceled"],
        };
        let events = statuses
            .iter()
            .map(|s| ((*s).to_owned(), payment_event(&charge, s)))
            .collect();
        send_events(&st, "payment", events);
    }
    page(pages::result(name, &charge))
}
