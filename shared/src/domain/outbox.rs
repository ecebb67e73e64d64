//! The outbox: a message that must leave because of a state change (a
//! player notification) is written in the SAME transaction as that change,
//! sent right after the commit, then deleted. Whatever a crash leaves
//! behind, the sweep sends. At least once: consumers dedupe on the message's
//! own id.
//!
//! | item    | pk       | sk                                 |
//! |---------|----------|------------------------------------|
//! | message | `OUTBOX` | `<due ms, 15 digits>#<message id>` |

use crate::error::Error;
use crate::queue::QueueName;
use crate::store::{item, Attr, ItemExt, Key, Query, Write};

use crate::domain::Ctx;
use crate::schema::keys;

/// Messages sent per sweep run.
pub const SWEEP_BATCH: usize = 100;

/// A message for `queue`, due to be sent by the sweep at `due_ms` unless
/// the committing request sends it first.
#[derive(Debug, Clone)]
pub struct Outgoing {
    key: Key,
    queue: QueueName,
    body: String,
}

impl Outgoing {
    pub fn new(due_ms: i64, id: &str, queue: QueueName, body: String) -> Outgoing {
        Outgoing {
            key: keys::outbox(due_ms, id),
            queue,
            body,
        }
    }

    /// The write that goes into the state change's transaction.
    pub fn write(&self) -> Write {
        Write::Put {
            item: item(
                &self.key,
                [
                    ("queue", Attr::from(self.queue.as_str())),
                    ("body", Attr::from(self.body.as_str())),
                ],
            ),
            cond: None,
        }
    }

    /// After the commit: send, then forget. A failure leaves it to the sweep.
    pub async fn send(&self, ctx: &Ctx) -> Result<(), Error> {
        ctx.queue.send(self.queue, &self.body).await?;
        ctx.store
            .write(Write::Delete {
                key: self.key.clone(),
                cond: None,
            })
            .await?;
        Ok(())
    }
}

/// The sweep's share: every message whose sender did not get to send it.
pub async fn sweep(ctx: &Ctx, now: i64) -> Result<usize, Error> {
    let q = Query::new(keys::OUTBOX_PK, keys::due_until(now), SWEEP_BATCH);
    let due = ctx.store.query(&q).await?.items;
    for it in &due {
        let (Some(key), Some(queue), Some(body)) = (
            Key::of(it),
            it.str_attr("queue").and_then(QueueName::parse),
            it.str_attr("body"),
        ) else {
            continue;
        };
        let out = Outgoing {
            key,
            queue,
            body: body.to_owned(),
        };
        out.send(ctx).await?;
    }
    Ok(due.len())
}
