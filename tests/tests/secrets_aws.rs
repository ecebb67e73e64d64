//! The Lambdas' secrets come from Secrets Manager at cold start (moto here,
//! over the AWS wire), never from the environment: the API keys, webhook
//! secrets and a PSP list's secrets by reference all resolve from the
//! secrets' JSON; a missing or malformed secret stops the start with the
//! variable named and no value shown. The fetch's cost is printed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use aws_config::BehaviorVersion;
use aws_sdk_secretsmanager::config::{Credentials, Region};
use payloop::config::Config;
use payloop::runtime::read_secrets;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_configuration_resolves_from_secrets_manager_at_cold_start() {
    let Some(endpoint) = payloop_tests::aws_endpoint("secrets on Secrets Manager") else {
        return;
    };
    let conf = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(
            "testing", "testing", None, None, "secrets",
        ))
        .load()
        .await;
    let client = aws_sdk_secretsmanager::Client::new(&conf);
    let name = payloop::ids::new_ulid("payloop-secrets");
    let secrets = json!({
        "client_keys": "web:ck_0123456789abcdef0123",
        "platform_keys": "ops:pk_0123456789abcdef0123",
        "webhook_secrets": "sandbox:whsec_0123456789abcdef",
        "psp_api_key": "sk_0123456789abcdef",
        "public_url": "https://pay.example",
        "psp_endpoints": "",
    });
    let arn = client
        .create_secret()
        .name(&name)
        .secret_string(secrets.to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let psp_name = format!("{name}-psp");
    let psp_arn = client
        .create_secret()
        .name(&psp_name)
        .secret_string(json!({"adyen_api_key": "AQE-test-key-0123456789"}).to_string())
        .send()
        .await
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();

    // Cold start: a fresh client and both reads, as `secrets_env` does.
    let started = Instant::now();
    let fresh = aws_sdk_secretsmanager::Client::new(&conf);
    let arns = vec![
        ("PAYLOOP_SECRETS_ARN", arn.clone()),
        ("PAYLOOP_PSP_SECRETS_ARN", psp_arn),
    ];
    let env = read_secrets(&fresh, &arns).await.unwrap();
    let took = started.elapsed();
    println!(
        "secrets fetch at cold start (moto on 127.0.0.1): {} ms for 2 secrets",
        took.as_millis()
    );

    assert_eq!(env.secret_count(), 6, "the empty member counts as absent");
    let config = Config::from_lookup(&env).unwrap();
    assert_eq!(
        config.client_keys.authenticate("ck_0123456789abcdef0123"),
        Some("web")
    );
    assert_eq!(
        config.platform_keys.authenticate("pk_0123456789abcdef0123"),
        Some("ops")
    );
    assert_eq!(config.public_url, "https://pay.example");
    assert!(config
        .webhook_secrets
        .for_psp(&config.default_psp)
        .is_some());
    // A PSP list names its secrets by variable; the PSP secret supplies it.
    assert_eq!(
        env.var("PAYLOOP_ADYEN_API_KEY").as_deref(),
        Some("AQE-test-key-0123456789")
    );
    assert!(
        std::env::var("PAYLOOP_ADYEN_API_KEY").is_err(),
        "never in the environment"
    );

    // A secret that is not a JSON object of strings: named, no value shown.
    client
        .put_secret_value()
        .secret_id(&arn)
        .secret_string(
            json!({"client_keys": 42, "platform_keys": "pk_hidden_value_123456"}).to_string(),
        )
        .send()
        .await
        .unwrap();
    let err = read_secrets(&fresh, &arns[..1])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("PAYLOOP_SECRETS_ARN"), "{err}");
    assert!(!err.contains("pk_hidden"), "{err}");
    // A secret that does not exist: the variable and AWS's error code.
    let gone = [("PAYLOOP_SECRETS_ARN", format!("{name}-missing"))];
    let err = read_secrets(&fresh, &gone).await.err().unwrap().to_string();
    assert!(
        err.contains("PAYLOOP_SECRETS_ARN") && err.contains("ResourceNotFound"),
        "{err}"
    );
}
