//! Lambda entry point of the nightly reconciliation (EventBridge schedule).

use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    payloop::runtime::init_tracing();
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        let req = reconciliation::parse_request(&event.payload["detail"]);
        Ok::<_, std::convert::Infallible>(reconciliation::run(&req))
    }))
    .await
}
