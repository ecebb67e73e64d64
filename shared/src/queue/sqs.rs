//! The SQS adapter: translates the port to aws-sdk-sqs calls. Durations are
//! rounded up to whole seconds (SQS's unit) and clamped to SQS's limits.
//! Dead-lettering is SQS's own (a RedrivePolicy on the events queue).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, QueueAttributeName,
};
use aws_sdk_sqs::Client;

use super::{Message, Queue, QueueError, QueueName, MAX_MESSAGE_BYTES, MAX_RECEIVE_BATCH};

/// SQS's longest visibility timeout (12 hours).
const MAX_VISIBILITY_SECS: u64 = 43_200;
/// SQS's longest long-poll wait.
const MAX_WAIT_SECS: u64 = 20;

/// Error codes that mean the request itself is wrong.
const INVALID_CODES: &[&str] = &[
    "InvalidParameterValue",
    "InvalidParameterValueException",
    "InvalidAttributeName",
    "InvalidAttributeValue",
    "InvalidMessageContents",
    "MissingParameter",
    "InvalidBatchEntryId",
];

pub struct SqsQueue {
    client: Client,
    urls: HashMap<QueueName, String>,
}

impl SqsQueue {
    /// For Lambda: the queue URLs come from the environment.
    pub fn from_urls(client: Client, events_url: String, dlq_url: String) -> Self {
        let urls = HashMap::from([
            (QueueName::Events, events_url),
            (QueueName::EventsDlq, dlq_url),
        ]);
        Self { client, urls }
    }

    /// Where player notifications go.
    pub fn with_notifications(mut self, url: String) -> Self {
        self.urls.insert(QueueName::Notifications, url);
        self
    }

    /// Where reconciliation shards go.
    pub fn with_recon(mut self, url: String) -> Self {
        self.urls.insert(QueueName::Recon, url);
        self
    }

    /// Where calls to Google wait, and their dead letters.
    pub fn with_google(mut self, url: String, dlq_url: String) -> Self {
        self.urls.insert(QueueName::Google, url);
        self.urls.insert(QueueName::GoogleDlq, dlq_url);
        self
    }

    pub fn url(&self, queue: QueueName) -> Result<&str, QueueError> {
        self.urls
            .get(&queue)
            .map(String::as_str)
            .ok_or_else(|| QueueError::Invalid(format!("no URL for queue {}", queue.as_str())))
    }
}

/// Get or create `{prefix}-events-dlq`, `{prefix}-events` (with a
/// RedrivePolicy to the DLQ after [`DEFAULT_MAX_RECEIVES`] receives) and
/// `{prefix}-notifications`, `{prefix}-recon`, and `{prefix}-google` with
/// its `{prefix}-google-dlq`, and return the adapter. Idempotent.
pub async fn ensure_queues(client: Client, prefix: &str) -> Result<SqsQueue, QueueError> {
    let (events_url, dlq_url) = with_dead_letters(&client, prefix, QueueName::Events).await?;
    let (google_url, google_dlq_url) =
        with_dead_letters(&client, prefix, QueueName::Google).await?;
    let notifications_name = format!("{prefix}-{}", QueueName::Notifications.as_str());
    let notifications_url = get_or_create(&client, &notifications_name).await?;
    let recon_url =
        get_or_create(&client, &format!("{prefix}-{}", QueueName::Recon.as_str())).await?;
    Ok(SqsQueue::from_urls(client, events_url, dlq_url)
        .with_notifications(notifications_url)
        .with_recon(recon_url)
        .with_google(google_url, google_dlq_url))
}

/// Get or create `{prefix}-<queue>` and its dead-letter queue, with the
/// RedrivePolicy after the queue's receive limit; their URLs.
async fn with_dead_letters(
    client: &Client,
    prefix: &str,
    queue: QueueName,
) -> Result<(String, String), QueueError> {
    let (dlq, max_receives) = queue
        .dead_letter()
        .ok_or_else(|| QueueError::Invalid(format!("{} has no DLQ", queue.as_str())))?;
    let dlq_url = get_or_create(client, &format!("{prefix}-{}", dlq.as_str())).await?;
    let dlq_arn = queue_arn(client, &dlq_url).await?;
    let url = get_or_create(client, &format!("{prefix}-{}", queue.as_str())).await?;
    let policy = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": max_receives,
    });
    client
        .set_queue_attributes()
        .queue_url(&url)
        .attributes(QueueAttributeName::RedrivePolicy, policy.to_string())
        .send()
        .await
        .map_err(|e| sdk_err("SetQueueAttributes", e))?;
    Ok((url, dlq_url))
}

async fn get_or_create(client: &Client, name: &str) -> Result<String, QueueError> {
    match client.get_queue_url().queue_name(name).send().await {
        Ok(out) => return required(out.queue_url(), "QueueUrl"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_queue_does_not_exist()) => {}
        Err(e) => return Err(sdk_err("GetQueueUrl", e)),
    }
    let out = client
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| sdk_err("CreateQueue", e))?;
    tracing::info!(queue = name, "created SQS queue");
    required(out.queue_url(), "QueueUrl")
}

async fn queue_arn(client: &Client, url: &str) -> Result<String, QueueError> {
    let out = client
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| sdk_err("GetQueueAttributes", e))?;
    let arn = out
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn));
    required(arn.map(String::as_str), "QueueArn")
}

fn required(v: Option<&str>, what: &str) -> Result<String, QueueError> {
    v.map(str::to_owned)
        .ok_or_else(|| QueueError::Unavailable(format!("SQS response lacks {what}")))
}

/// Whole seconds, rounded up, at most `max`.
fn secs(d: Duration, max: u64) -> i32 {
    let s = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(s.min(max)).unwrap_or(i32::MAX)
}

fn to_message(m: &aws_sdk_sqs::types::Message) -> Result<Message, QueueError> {
    let count = m
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse::<u32>().ok());
    let id = required(m.message_id(), "MessageId")?;
    let receive_count = count.unwrap_or_else(|| {
        tracing::warn!(message_id = %id, "SQS message without ApproximateReceiveCount");
        1
    });
    Ok(Message {
        receipt: required(m.receipt_handle(), "ReceiptHandle")?,
        body: m.body().unwrap_or_default().to_owned(),
        id,
        receive_count,
    })
}

/// A stale receipt handle: the message is gone or was received again.
const STALE_RECEIPT: &str = "ReceiptHandleIsInvalid";

impl SqsQueue {
    /// DeleteMessageBatch: entry ids are the receipts' indexes; each failed
    /// entry becomes that receipt's error (a stale one is not an error).
    async fn delete_batch_once(
        &self,
        queue: QueueName,
        receipts: &[String],
    ) -> Result<Vec<Result<(), QueueError>>, QueueError> {
        if receipts.is_empty() {
            return Ok(Vec::new());
        }
        if receipts.len() > MAX_RECEIVE_BATCH {
            return Err(QueueError::Invalid(format!(
                "at most {MAX_RECEIVE_BATCH} deletes in a batch"
            )));
        }
        let mut req = self
            .client
            .delete_message_batch()
            .queue_url(self.url(queue)?);
        for (i, r) in receipts.iter().enumerate() {
            let entry = DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(r)
                .build()
                .map_err(|e| QueueError::Invalid(format!("DeleteMessageBatch entry: {e}")))?;
            req = req.entries(entry);
        }
        let out = req
            .send()
            .await
            .map_err(|e| sdk_err("DeleteMessageBatch", e))?;
        let mut outcomes: Vec<Result<(), QueueError>> = vec![Ok(()); receipts.len()];
        for failed in out.failed() {
            let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| outcomes.get_mut(i))
            else {
                continue;
            };
            if failed.code() == STALE_RECEIPT {
                tracing::warn!(
                    queue = queue.as_str(),
                    "delete with a stale receipt handle ignored"
                );
                continue;
            }
            *slot = Err(QueueError::Unavailable(format!(
                "DeleteMessageBatch: {}",
                failed.code()
            )));
        }
        Ok(outcomes)
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn depth(&self, queue: QueueName) -> Result<u64, QueueError> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(self.url(queue)?)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(|e| sdk_err("GetQueueAttributes", e))?;
        let attrs = out.attributes();
        let n = |name: QueueAttributeName| {
            attrs
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(n(QueueAttributeName::ApproximateNumberOfMessages)
            .saturating_add(n(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)))
    }
    async fn send(&self, queue: QueueName, body: &str) -> Result<String, QueueError> {
        if body.len() > MAX_MESSAGE_BYTES {
            return Err(QueueError::Invalid("message larger than 256 KB".into()));
        }
        let out = self
            .client
            .send_message()
            .queue_url(self.url(queue)?)
            .message_body(body)
            .send()
            .await
            .map_err(|e| sdk_err("SendMessage", e))?;
        required(out.message_id(), "MessageId")
    }

    async fn receive(
        &self,
        queue: QueueName,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Message>, QueueError> {
        let max = max.clamp(1, MAX_RECEIVE_BATCH);
        let out = self
            .client
            .receive_message()
            .queue_url(self.url(queue)?)
            .max_number_of_messages(i32::try_from(max).unwrap_or(1))
            .visibility_timeout(secs(visibility, MAX_VISIBILITY_SECS))
            .wait_time_seconds(secs(wait, MAX_WAIT_SECS))
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| sdk_err("ReceiveMessage", e))?;
        out.messages().iter().map(to_message).collect()
    }

    async fn delete(&self, queue: QueueName, receipt: &str) -> Result<(), QueueError> {
        let res = self
            .client
            .delete_message()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_receipt_handle_is_invalid() || s.is_invalid_id_format()
                }) =>
            {
                tracing::warn!(
                    queue = queue.as_str(),
                    "delete with a stale receipt handle ignored"
                );
                Ok(())
            }
            Err(e) => Err(sdk_err("DeleteMessage", e)),
        }
    }

    async fn delete_batch(
        &self,
        queue: QueueName,
        receipts: &[String],
    ) -> Vec<Result<(), QueueError>> {
        match self.delete_batch_once(queue, receipts).await {
            Ok(outcomes) => outcomes,
            Err(e) => vec![Err(e); receipts.len()],
        }
    }

    async fn change_visibility(
        &self,
        queue: QueueName,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let res = self
            .client
            .change_message_visibility()
            .queue_url(self.url(queue)?)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility, MAX_VISIBILITY_SECS))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.is_receipt_handle_is_invalid() || s.is_message_not_inflight()
                }) =>
            {
                tracing::warn!(
                    queue = queue.as_str(),
                    "visibility change with a stale receipt handle ignored"
                );
                Ok(())
            }
            Err(e) => Err(sdk_err("ChangeMessageVisibility", e)),
        }
    }
}

/// Map an SDK error; only the error code and AWS's message are kept.
fn sdk_err<E: ProvideErrorMetadata + std::error::Error + 'static>(
    op: &str,
    e: SdkError<E>,
) -> QueueError {
    match e {
        SdkError::ServiceError(se) => {
            let err = se.err();
            let code = err.code().unwrap_or("Unknown");
            let msg = format!("{op}: {code}: {}", err.message().unwrap_or(""));
            if INVALID_CODES.contains(&code) {
                QueueError::Invalid(msg)
            } else {
                QueueError::Unavailable(msg)
            }
        }
        SdkError::ConstructionFailure(_) => {
            QueueError::Invalid(format!("{op}: request could not be built"))
        }
        SdkError::TimeoutError(_) => QueueError::Unavailable(format!("{op}: timed out")),
        other => QueueError::Unavailable(format!(
            "{op}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(&other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_up_to_whole_seconds_within_limits() {
        assert_eq!(secs(Duration::ZERO, MAX_WAIT_SECS), 0);
        assert_eq!(secs(Duration::from_millis(200), MAX_WAIT_SECS), 1);
        assert_eq!(secs(Duration::from_secs(2), MAX_WAIT_SECS), 2);
        assert_eq!(secs(Duration::from_secs(60), MAX_WAIT_SECS), 20);
        assert_eq!(
            secs(Duration::from_secs(u64::MAX), MAX_VISIBILITY_SECS),
            43_200
        );
    }
}
