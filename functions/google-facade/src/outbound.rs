//! payloop's calls to Google: the HTTP adapter of the `GoogleApi` port and
//! the consumer of the `google` queue (the Lambda's SQS batches, and the
//! local stack's poller), which retries a failed call with backoff by
//! pushing its message's visibility out.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::http::header;
use payloop::domain::google::codec::{Codec, MAX_BODY};
use payloop::domain::google::outbound::{self, backoff, CallError, GoogleApi, Hosted};
use payloop::domain::Ctx;
use payloop::psp::https::{failure_kind, Transport};
use payloop::queue::{QueueName, MAX_RECEIVE_BATCH};
use serde_json::Value;
use tokio::sync::watch;

/// How long one call to Google may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// The backoff's first wait in production (then doubling, at most an hour).
pub const DEFAULT_BACKOFF: Duration = Duration::from_secs(30);

/// Google's hosted methods over HTTPS: `POST <base>/redirect-fop-v1/<method>/<account>`,
/// each message sealed and each answer opened by the codec.
pub struct HttpGoogle {
    base: String,
    codec: Arc<dyn Codec>,
    http: reqwest::Client,
}

impl HttpGoogle {
    /// `base` is Google's `…/gsp` URL (the sandbox's in the local stack).
    pub fn new(
        base: &str,
        codec: Arc<dyn Codec>,
        transport: &Transport,
    ) -> Result<HttpGoogle, String> {
        transport.check_endpoint(base).map_err(|e| e.to_string())?;
        let http = transport.client(CALL_TIMEOUT).map_err(|e| e.to_string())?;
        Ok(HttpGoogle {
            base: base.trim_end_matches('/').to_owned(),
            codec,
            http,
        })
    }
}

#[async_trait]
impl GoogleApi for HttpGoogle {
    async fn call(
        &self,
        method: Hosted,
        account: &str,
        request: &Value,
    ) -> Result<Value, CallError> {
        let account_part: String =
            percent_encoding::utf8_percent_encode(account, percent_encoding::NON_ALPHANUMERIC)
                .to_string();
        let url = format!(
            "{}/redirect-fop-v1/{}/{account_part}",
            self.base,
            method.name()
        );
        let (status, answer) = post_sealed(&self.http, self.codec.as_ref(), &url, request).await?;
        match (status, answer) {
            (200, Some(v)) => Ok(v),
            (200, None) => Err(CallError::Unreadable(
                "the answer could not be opened".into(),
            )),
            // Google's code when its error body could be opened; never its text.
            (status, answer) => Err(CallError::Refused {
                status,
                code: answer.and_then(|v| {
                    v.get("errorResponseCode")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                }),
            }),
        }
    }
}

/// POST `json` sealed by `codec` to `url`: the status and the answer
/// opened by the codec (`None` when it cannot be). Both ends of the Google
/// channel use it (payloop's calls to Google, the sandbox's to payloop).
pub async fn post_sealed(
    http: &reqwest::Client,
    codec: &dyn Codec,
    url: &str,
    json: &Value,
) -> Result<(u16, Option<Value>), CallError> {
    let (content_type, body) = codec
        .seal(json)
        .map_err(|e| CallError::Unreadable(e.description))?;
    let unreachable = |e: reqwest::Error| CallError::Unreachable(failure_kind(&e).to_owned());
    let reply = http
        .post(url)
        .header(header::CONTENT_TYPE, content_type)
        .body(body)
        .send()
        .await
        .map_err(unreachable)?;
    let status = reply.status().as_u16();
    let reply_type = reply
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    // Read at most what a codec opens (64 KiB), however the reply is framed.
    let mut reply = reply;
    let mut bytes = Vec::new();
    while let Some(chunk) = reply.chunk().await.map_err(unreachable)? {
        if bytes.len() + chunk.len() > MAX_BODY {
            return Err(CallError::Unreadable(
                "the answer is larger than 64 KiB".into(),
            ));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, codec.open(reply_type.as_deref(), &bytes).ok()))
}

/// One received message: make its call; on failure push its next attempt
/// out by the backoff. `true`: done (delete it).
pub async fn attempt(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    base: Duration,
    receipt: &str,
    receive_count: u32,
    body: &str,
) -> bool {
    match outbound::process(ctx, api, body).await {
        Ok(()) => true,
        Err(retryable) => {
            // What no retry can change waits the longest before the next of
            // its attempts (it still reaches the DLQ for an operator).
            let attempts = if retryable { receive_count } else { u32::MAX };
            let wait = backoff(base, attempts);
            if let Err(e) = ctx
                .queue
                .change_visibility(QueueName::Google, receipt, wait)
                .await
            {
                tracing::warn!(error = %e, "could not delay a Google call's retry");
            }
            false
        }
    }
}

/// The Lambda's SQS batch (ReportBatchItemFailures): the failed messages
/// come back after their backoff and reach the DLQ after the receive limit.
pub async fn handle_sqs(
    ctx: &Ctx,
    api: &dyn GoogleApi,
    event: aws_lambda_events::event::sqs::SqsEvent,
) -> aws_lambda_events::event::sqs::SqsBatchResponse {
    let mut response = aws_lambda_events::event::sqs::SqsBatchResponse::default();
    for r in event.records {
        let Some(id) = r.message_id else {
            tracing::error!("SQS record without a message id");
            continue;
        };
        let count = r
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|c| c.parse().ok())
            .unwrap_or(1);
        let done = match (r.receipt_handle.as_deref(), r.body.as_deref()) {
            (Some(receipt), Some(body)) => {
                attempt(ctx, api, DEFAULT_BACKOFF, receipt, count, body).await
            }
            _ => false,
        };
        if !done {
            response.add_failure(id);
        }
    }
    response
}

/// The local stack's consumer of the `google` queue: polls until `stop`.
pub fn spawn_poller(
    ctx: Ctx,
    api: Arc<dyn GoogleApi>,
    base: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let visibility = Duration::from_secs(60);
        let wait = Duration::from_millis(500);
        loop {
            if *stop.borrow() {
                return;
            }
            let got = tokio::select! {
                got = ctx.queue.receive(QueueName::Google, MAX_RECEIVE_BATCH, visibility, wait) => got,
                _ = stop.changed() => return,
            };
            let batch = match got {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "google queue unavailable");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            for m in batch {
                let done = attempt(
                    &ctx,
                    api.as_ref(),
                    base,
                    &m.receipt,
                    m.receive_count,
                    &m.body,
                )
                .await;
                if done {
                    if let Err(e) = ctx.queue.delete(QueueName::Google, &m.receipt).await {
                        tracing::warn!(error = %e, "could not delete a Google call made");
                    }
                }
            }
        }
    })
}
