//! The sandbox PSP's API: sessions, payment and operation status, payouts,
//! refunds, the settlement report.

use super::*;

pub(super) async fn create_session(
    State(st): St,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    api_gate(&st, &headers).await?;
    let body: SessionBody = parse_body(&raw)?;
    let payment_id = PaymentId::parse(&body.payment_id).map_err(|e| invalid("payment_id", e))?;
    let amount = parse_money(&body.amount, &body.currency)?;
    if !(body.return_url.starts_with("http://") || body.return_url.starts_with("https://")) {
        return Err(invalid("return_url", "must be an http(s) URL"));
    }
    // One session per payment id: a retried call gets the same session.
    let tail = payment_id
        .as_str()
        .trim_start_matches("pay_")
        .to_ascii_lowercase();
    let reference = format!("{}_{tail}", st.opts.name);
    let same_amount = st.with_book(|b| {
        if let Some(c) = b.charges.get(&reference) {
            return Ok(c.amount == amount);
        }
        if b.full() {
            return Err(full());
        }
        let charge = Charge {
            reference: reference.clone(),
            payment_id: payment_id.to_string(),
            amount,
            method: body.method.clone(),
            return_url: body.return_url.clone(),
            status: ChargeStatus::Created,
            refunded_minor: 0,
        };
        b.charges.insert(reference.clone(), charge);
        Ok(true)
    })??;
    if !same_amount {
        return Err(api_error(
            StatusCode::CONFLICT,
            "conflict",
            "this payment id has a session with another amount",
        ));
    }
    let reply = SessionReply {
        redirect_url: format!("{}/checkout/{reference}", st.base_url),
        reference,
    };
    Ok(Json(reply).into_response())
}

pub(super) async fn payment_status(
    State(st): St,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Answer {
    api_gate(&st, &headers).await?;
    let c = st
        .with_book(|b| b.charges.get(&reference).cloned())?
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "not_found", "no such payment"))?;
    let reply = StatusReply {
        reference: c.reference,
        payment_id: c.payment_id,
        status: c.status.as_str().to_owned(),
        amount: c.amount.to_decimal(),
        currency: c.amount.currency().code().to_owned(),
    };
    Ok(Json(reply).into_response())
}

pub(super) async fn operation_status(
    State(st): St,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Answer {
    api_gate(&st, &headers).await?;
    let op = st
        .with_book(|b| b.operations.get(&reference).cloned())?
        .ok_or_else(|| api_error(StatusCode::NOT_FOUND, "not_found", "no such operation"))?;
    Ok(Json(OperationReply {
        reference: op.reference,
        status: op.status.to_owned(),
    })
    .into_response())
}

/// Record a payout once per client id; a retry gets the first. `true`: new.
pub(super) fn record_operation(
    st: &SandboxState,
    op: Operation,
) -> Result<(Operation, bool), Fail> {
    st.with_book(|b| {
        if let Some(existing) = b
            .by_client_id
            .get(&op.client_id)
            .and_then(|r| b.operations.get(r))
        {
            return Ok((existing.clone(), false));
        }
        if b.full() {
            return Err(full());
        }
        b.by_client_id
            .insert(op.client_id.clone(), op.reference.clone());
        b.operations.insert(op.reference.clone(), op.clone());
        Ok((op, true))
    })?
}

pub(super) async fn create_payout(
    State(st): St,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    api_gate(&st, &headers).await?;
    let body: PayoutBody = parse_body(&raw)?;
    client_id("payout_id", &body.payout_id)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let op = Operation {
        reference: new_ulid("po").to_ascii_lowercase(),
        client_id: body.payout_id.clone(),
        amount,
        status: "pending",
        payment_reference: None,
    };
    let (op, new) = record_operation(&st, op)?;
    if new {
        let outcome = if body.destination_token.as_deref() == Some(FAILING_DESTINATION) {
            "failed"
        } else {
            "succeeded"
        };
        let (st2, op2) = (Arc::clone(&st), op.clone());
        tokio::spawn(async move {
            tokio::time::sleep(st2.opts.payout_delay).await;
            complete_payout(&st2, &op2, outcome);
        });
    }
    Ok(accepted(&op))
}

pub(super) fn complete_payout(st: &Arc<SandboxState>, op: &Operation, status: &'static str) {
    let today = Day::today();
    let fee = st.opts.fixed_fee_minor;
    let _ = st.with_book(|b| {
        if let Some(o) = b.operations.get_mut(&op.reference) {
            o.status = status;
        }
        if status == "succeeded" {
            // Money paid out is on the day's settlement, our payout id in `payment_id`.
            let line = SettlementLine {
                reference: op.reference.clone(),
                payment_id: op.client_id.clone(),
                kind: "payout",
                gross_minor: -op.amount.minor(),
                fee_minor: fee,
                currency: op.amount.currency(),
                settled_date: today.to_string(),
            };
            b.settle(line, today);
        }
    });
    let body = json!({
        "event_id": new_ulid("evt"),
        "type": "payout",
        "payout_id": op.client_id,
        "reference": op.reference,
        "status": status,
        "amount": op.amount.to_decimal(),
        "currency": op.amount.currency().code(),
        "timestamp": now_s(),
    });
    send_events(st, "payout", vec![(status.to_owned(), body)]);
}

/// Book a refund: checked, booked and settled in one critical section, so
/// two refunds racing can never exceed the captured amount. Returns the
/// refund and, when new, the refunded payment's id.
pub(super) fn book_refund(
    b: &mut Book,
    body: &RefundBody,
    amount: Money,
    today: Day,
) -> Result<(Operation, Option<String>), Fail> {
    if let Some(existing) = b
        .by_client_id
        .get(&body.refund_id)
        .and_then(|r| b.operations.get(r))
    {
        return Ok((existing.clone(), None));
    }
    let refundable = b
        .refundable(&body.payment_reference, amount.currency())
        .ok_or_else(|| {
            invalid(
                "payment_reference",
                "no captured payment with this reference and currency",
            )
        })?;
    if amount.minor() > refundable {
        return Err(invalid(
            "amount",
            "more than the payment's refundable amount",
        ));
    }
    if b.full() {
        return Err(full());
    }
    let charge = b
        .charges
        .get_mut(&body.payment_reference)
        .ok_or_else(|| invalid("payment_reference", "unknown"))?;
    charge.refunded_minor += amount.minor();
    let payment_id = charge.payment_id.clone();
    let reference = new_ulid("rf").to_ascii_lowercase();
    let op = Operation {
        reference: reference.clone(),
        client_id: body.refund_id.clone(),
        amount,
        status: "succeeded",
        payment_reference: Some(body.payment_reference.clone()),
    };
    b.by_client_id
        .insert(op.client_id.clone(), reference.clone());
    b.operations.insert(reference.clone(), op.clone());
    let line = SettlementLine {
        reference,
        payment_id: payment_id.clone(),
        kind: "refund",
        gross_minor: -amount.minor(),
        fee_minor: 0,
        currency: amount.currency(),
        settled_date: today.to_string(),
    };
    b.settle(line, today);
    Ok((op, Some(payment_id)))
}

pub(super) async fn create_refund(
    State(st): St,
    headers: HeaderMap,
    raw: axum::body::Bytes,
) -> Answer {
    api_gate(&st, &headers).await?;
    let body: RefundBody = parse_body(&raw)?;
    client_id("refund_id", &body.refund_id)?;
    let amount = parse_money(&body.amount, &body.currency)?;
    let (op, payment_id) = st.with_book(|b| book_refund(b, &body, amount, Day::today()))??;
    if let Some(payment_id) = payment_id {
        let event = json!({
            "event_id": new_ulid("evt"),
            "type": "refund",
            "refund_id": op.client_id,
            "reference": op.reference,
            "payment_id": payment_id,
            "payment_reference": op.payment_reference,
            "status": "succeeded",
            "amount": op.amount.to_decimal(),
            "currency": op.amount.currency().code(),
            "timestamp": now_s(),
        });
        send_events(&st, "refund", vec![("succeeded".to_owned(), event)]);
    }
    Ok(accepted(&op))
}

pub(super) async fn settlement(
    State(st): St,
    headers: HeaderMap,
    Path(day): Path<String>,
) -> Answer {
    api_gate(&st, &headers).await?;
    let day = Day::parse(&day).ok_or_else(|| invalid("day", "must be YYYY-MM-DD"))?;
    let csv = st.with_book(|b| {
        let mut out = String::from(SETTLEMENT_HEADER);
        out.push('\n');
        for line in b.settlements.get(&day).into_iter().flatten() {
            if let Some(text) = line.to_csv() {
                out.push_str(&text);
                out.push('\n');
            }
        }
        out
    })?;
    Ok(([("content-type", "text/csv; charset=utf-8")], csv).into_response())
}
