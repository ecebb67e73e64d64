//! Helpers of the Google facade's tests: what a redirect request opened,
//! whether a call to Google was taken, and a polling barrier.

use std::time::Duration;

use payloop::ids::PaymentId;
use payloop::schema::keys;
use payloop::store::ItemExt;

use crate::{TestStack, WAIT};

/// The payment Google's redirect request `request_id` opened.
pub async fn redirect_payment(t: &TestStack, account: &str, request_id: &str) -> PaymentId {
    let found = t
        .stack
        .ctx
        .store
        .get(&keys::gsp_redirect(account, request_id))
        .await
        .unwrap()
        .expect("the redirect request opened a payment");
    PaymentId::parse(found.str_attr("payment_id").unwrap()).unwrap()
}

/// Google answered 200 to payloop's call `request_id` (marked sent).
pub async fn sent(t: &TestStack, account: &str, request_id: &str) -> bool {
    let key = keys::gsp_outbound(account, request_id);
    let it = t.stack.ctx.store.get(&key).await.unwrap();
    it.is_some_and(|i| i.int_attr("sent_ms").is_some())
}

/// Poll until `done` holds; panics naming `what` after [`WAIT`].
pub async fn until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !done().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
