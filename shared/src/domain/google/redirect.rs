//! The redirect methods Google calls: generateRedirectPaymentUrl opens a
//! payloop deposit routed to a PSP and answers its hosted page's URL;
//! getRedirectPaymentStatus answers that payment's outcome by the
//! requestId that opened it; asynchronousRefund refunds it.
//!
//! The money lands in one wallet per integrator account (`gsp-<account>`):
//! Google's users are not payloop players; remittance settles that wallet
//! with Google.

use serde_json::{json, Value};

use crate::domain::deposits::{self, InitRequest, Shown};
use crate::domain::request::Body;
use crate::domain::Ctx;
use crate::error::Error;
use crate::ids::PaymentId;
use crate::schema::keys;
use crate::schema::status::PaymentStatus;
use crate::store::{item, Attr, ItemExt};

use super::wire::{self, GspCode, GspError, RequestHeader};
use super::Refusal;

/// The wallet a Google account's payments are credited to.
pub fn account_player(account: &str) -> String {
    format!("gsp-{}", account.replace(':', "-"))
}

/// How the user will pay, from `formOfPayment` (a union of one member).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormOfPayment {
    /// The user chooses at the PSP's hosted page.
    NoneChosen,
    /// A bank picked in Google's UI: pay-by-bank at that bank.
    Issuer(String),
}

impl FormOfPayment {
    pub fn parse(v: Option<&Value>) -> Result<FormOfPayment, GspError> {
        let Some(obj) = v.and_then(Value::as_object) else {
            return Err(GspError::new(
                GspCode::MissingRequiredField,
                "formOfPayment is required",
            ));
        };
        if obj.len() != 1 {
            return Err(GspError::new(
                GspCode::InvalidFieldValue,
                "formOfPayment must have exactly one member",
            ));
        }
        match obj.iter().next().map(|(k, v)| (k.as_str(), v)) {
            Some(("noneChosen" | "noFopChosen", _)) => Ok(FormOfPayment::NoneChosen),
            Some(("issuerId", v)) => v
                .get("value")
                .and_then(Value::as_str)
                .filter(|s| wire::is_request_id(s) && s.len() <= 64)
                .map(|s| FormOfPayment::Issuer(s.to_owned()))
                .ok_or_else(|| {
                    GspError::new(
                        GspCode::InvalidFieldValue,
                        "formOfPayment.issuerId.value must be 1 to 64 characters [a-zA-Z0-9:_-]",
                    )
                }),
            Some(("card", _)) => Err(GspError::new(
                GspCode::InvalidFieldValue,
                "formOfPayment.card is not accepted: this integrator never takes card numbers",
            )),
            Some((other, _)) => Err(GspError::new(
                GspCode::InvalidFieldValue,
                format!("formOfPayment.{other} is not a known form of payment"),
            )),
            None => Err(GspError::new(
                GspCode::MissingRequiredField,
                "formOfPayment is required",
            )),
        }
    }

    fn to_json(&self) -> Value {
        match self {
            FormOfPayment::NoneChosen => json!({"noneChosen": {}}),
            FormOfPayment::Issuer(id) => json!({"issuerId": {"value": id}}),
        }
    }

    fn method(&self) -> &'static str {
        match self {
            FormOfPayment::NoneChosen => "card",
            FormOfPayment::Issuer(_) => "pay_by_bank",
        }
    }
}

const MAX_DESCRIPTION: usize = 1000;

fn text<'a>(body: &'a Value, name: &str, max: usize) -> Result<&'a str, GspError> {
    let v = body.get(name).filter(|v| !v.is_null()).ok_or_else(|| {
        GspError::new(GspCode::MissingRequiredField, format!("{name} is required"))
    })?;
    v.as_str()
        .filter(|s| !s.is_empty() && s.len() <= max)
        .ok_or_else(|| {
            GspError::new(
                GspCode::InvalidFieldValue,
                format!("{name} must be a string of 1 to {max} bytes"),
            )
        })
}

/// A domain refusal in Google's terms: a field names its field; what a
/// retry may fix (an outage) is a 503 never stored.
fn refusal(e: Error) -> Refusal {
    match &e {
        Error::Validation { field, .. } => Refusal::Gsp(GspError::new(
            GspCode::InvalidFieldValue,
            format!(
                "{} is not acceptable: {}",
                google_field(field),
                e.public_message()
            ),
        )),
        _ if e.row().retryable => Refusal::Unavailable(e),
        _ if e.row().status < 500 => Refusal::Gsp(GspError::new(
            GspCode::PreconditionViolation,
            e.public_message(),
        )),
        _ => Refusal::Unavailable(e),
    }
}

/// The Google field a payloop field came from.
fn google_field(payloop: &str) -> &str {
    match payloop {
        "amount" | "amount_micros" | "currency" => "transactionAmount",
        "return_url" => "callbackUrl",
        "meta.bank" => "formOfPayment.issuerId.value",
        "player_id" => "requestHeader.paymentIntegratorAccountId",
        other => other,
    }
}

/// `generateRedirectPaymentUrl`: open the deposit (once per requestId:
/// `reserved` is the id the idempotency claim keeps for it) and answer the
/// PSP page to send the user to.
pub async fn generate(
    ctx: &Ctx,
    h: &RequestHeader,
    body: &Value,
    reserved: &str,
) -> Result<Value, Refusal> {
    let amount = wire::amount(
        body.get("transactionAmount").unwrap_or(&Value::Null),
        "transactionAmount",
    )?;
    text(body, "transactionDescription", MAX_DESCRIPTION)?;
    let callback = text(body, "callbackUrl", 2048)?;
    let fop = FormOfPayment::parse(body.get("formOfPayment"))?;
    let micros = amount
        .micros()
        .map_err(|e| GspError::new(GspCode::InvalidFieldValue, format!("transactionAmount {e}")))?;
    let mut init = json!({
        "amount_micros": micros,
        "currency": amount.currency().code(),
        "method": fop.method(),
        "return_url": callback,
        "player_id": account_player(&h.account_id),
    });
    if let FormOfPayment::Issuer(bank) = &fop {
        init["meta"] = json!({"bank": bank});
    }
    let req = Body::from_json(init.to_string().as_bytes())
        .and_then(|b| InitRequest::parse(&b))
        .map_err(refusal)?;
    let id = PaymentId::from_reserved(reserved).map_err(Refusal::Unavailable)?;
    remember(ctx, h, &id, &fop).await?;
    let view = match deposits::create_intent(ctx, req, id).await {
        Ok(v) => v,
        Err(Error::RiskDeclined { .. }) => return Ok(result(ctx, json!({"riskDeclined": {}}))),
        Err(e) => return Err(refusal(e)),
    };
    if view.held() {
        if view.status == "declined" {
            return Ok(result(ctx, json!({"riskDeclined": {}})));
        }
        // Held for a risk review: not yet; Google asks again (never stored).
        return Err(GspError::new(
            GspCode::UserActionInProgress,
            "the payment waits for a risk review; ask again later",
        )
        .into());
    }
    let url = view.redirect_url.ok_or_else(|| {
        Refusal::Unavailable(Error::Internal("an opened payment lacks its URL".into()))
    })?;
    Ok(result(
        ctx,
        json!({"success": {"redirectDetails": {"getMethod": {"url": url}}}}),
    ))
}

fn result(ctx: &Ctx, result: Value) -> Value {
    json!({"responseHeader": wire::response_header(ctx.now_ms()), "result": result})
}

/// Keep which payment this requestId opened, and the way back from the
/// payment to it (once each; a retry finds them).
async fn remember(
    ctx: &Ctx,
    h: &RequestHeader,
    id: &PaymentId,
    fop: &FormOfPayment,
) -> Result<(), Refusal> {
    let it = item(
        &keys::gsp_redirect(&h.account_id, &h.request_id),
        [
            ("payment_id", Attr::from(id.as_str())),
            ("form_of_payment", Attr::from(fop.to_json().to_string())),
        ],
    );
    super::keep_once(ctx, it).await?;
    // The way back, for the completion notification.
    let origin =
        crate::domain::google_jobs::origin_item(id, &h.account_id, &h.request_id, &fop.to_json());
    super::keep_once(ctx, origin).await.map(|_| ())
}

/// `getRedirectPaymentStatus`: the outcome of the payment the request
/// `redirectRequestId` opened, as a `RedirectPaymentResult`.
pub async fn status(ctx: &Ctx, h: &RequestHeader, body: &Value) -> Result<Value, Refusal> {
    let redirect = text(body, "redirectRequestId", 100)?;
    let (id, found) = redirect_record(ctx, &h.account_id, redirect, "redirectRequestId").await?;
    let fop: Value = found
        .str_attr("form_of_payment")
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or(json!({"noneChosen": {}}));
    let outcome = match deposits::show(ctx, &id).await {
        Ok(Shown::Payment(p)) => payment_result(p.status),
        Ok(Shown::Held(held)) if held.status == "declined" => json!({"riskDeclined": {}}),
        Ok(Shown::Held(_)) => json!({"pending": {}}),
        // Asked for, never opened (every attempt failed): nothing to report.
        Err(Error::NotFound { .. }) => {
            return Err(GspError::new(
                GspCode::InvalidIdentifier,
                "redirectRequestId opened no payment",
            )
            .into())
        }
        Err(e) => return Err(refusal(e)),
    };
    let mut answer = result(ctx, outcome);
    answer["formOfPayment"] = fop;
    Ok(answer)
}

/// The payment the redirect request `request_id` opened, and its record.
async fn redirect_record(
    ctx: &Ctx,
    account: &str,
    request_id: &str,
    field: &str,
) -> Result<(PaymentId, crate::store::Item), Refusal> {
    let found = ctx
        .store
        .get(&keys::gsp_redirect(account, request_id))
        .await
        .map_err(|e| Refusal::Unavailable(e.into()))?
        .ok_or_else(|| {
            GspError::new(
                GspCode::InvalidIdentifier,
                format!("{field} opened no payment"),
            )
        })?;
    let id = found
        .str_attr("payment_id")
        .and_then(|p| PaymentId::parse(p).ok())
        .ok_or_else(|| {
            Refusal::Unavailable(Error::Internal(
                "a redirect record lacks its payment".into(),
            ))
        })?;
    Ok((id, found))
}

/// `asynchronousRefund`: refund part or all of the payment the request
/// `captureRequestId` opened, through payloop's refunds (once per requestId:
/// `reserved` names the refund). Acknowledged now; the PSP's outcome follows.
/// A refund above what remains, or of a payment not captured, is
/// `PRECONDITION_VIOLATION`.
pub async fn refund(
    ctx: &Ctx,
    h: &RequestHeader,
    body: &Value,
    reserved: &str,
) -> Result<Value, Refusal> {
    let capture = text(body, "captureRequestId", 100)?;
    let amount = wire::amount(
        body.get("refundAmount").unwrap_or(&Value::Null),
        "refundAmount",
    )?;
    let (payment, _) = redirect_record(ctx, &h.account_id, capture, "captureRequestId").await?;
    let req = json!({
        "amount": amount.to_decimal(),
        // Not the requestId: its digits could look like a card number to the
        // PAN guard (the refund's origin record keeps the request).
        "reason": "Google asynchronousRefund",
    });
    let req = Body::from_json(req.to_string().as_bytes())
        .and_then(|b| crate::domain::refunds::RefundRequest::parse(&b))
        .map_err(refusal)?;
    let refund_id = format!("rf_{reserved}");
    let origin = crate::domain::google_jobs::refund_origin_item(
        &payment,
        &refund_id,
        &h.account_id,
        &h.request_id,
    );
    super::keep_once(ctx, origin).await?;
    match crate::domain::refunds::request(ctx, &payment, &req, refund_id).await {
        Ok(_) => Ok(result(ctx, json!({"acknowledged": {}}))),
        Err(Error::Validation { field, .. }) if field == "amount" => Err(GspError::new(
            GspCode::PreconditionViolation,
            "refundAmount is more than what remains to refund, or not in the payment's currency",
        )
        .into()),
        Err(e) => Err(refusal(e)),
    }
}

/// A payment's status as Google's `RedirectPaymentResult`.
pub fn payment_result(s: PaymentStatus) -> Value {
    match s {
        PaymentStatus::Captured | PaymentStatus::ChargedBack => json!({"success": {}}),
        PaymentStatus::Canceled => json!({"userExitedPaymentFlow": {}}),
        PaymentStatus::Failed => json!({"rawResult": {"scope": "PSP", "rawCode": "DECLINED"}}),
        PaymentStatus::Pending | PaymentStatus::Authorized => json!({"pending": {}}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_of_payment_are_a_union_and_a_card_is_refused() {
        let fop = |v: Value| FormOfPayment::parse(Some(&v));
        assert_eq!(
            fop(json!({"noneChosen": {}})),
            Ok(FormOfPayment::NoneChosen)
        );
        assert_eq!(
            fop(json!({"noFopChosen": {}})),
            Ok(FormOfPayment::NoneChosen)
        );
        assert_eq!(
            fop(json!({"issuerId": {"value": "nordea-fi"}})),
            Ok(FormOfPayment::Issuer("nordea-fi".into()))
        );
        let card = fop(json!({"card": {"pan": "4111111111111111"}})).unwrap_err();
        assert!(card.description.contains("never takes card numbers"));
        assert!(!card.description.contains("4111"));
        assert_eq!(
            fop(json!({"noneChosen": {}, "issuerId": {}}))
                .unwrap_err()
                .code,
            GspCode::InvalidFieldValue
        );
        assert_eq!(
            FormOfPayment::parse(None).unwrap_err().code,
            GspCode::MissingRequiredField
        );
        assert_eq!(account_player("acct:1"), "gsp-acct-1");
        assert_eq!(
            payment_result(PaymentStatus::Captured),
            json!({"success": {}})
        );
        assert_eq!(
            payment_result(PaymentStatus::Authorized),
            json!({"pending": {}})
        );
    }
}
