//! Durability of the embedded store: a write acknowledged is a write kept
//! across `kill -9` of `payloop serve`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn serve(dir: &std::path::Path, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_payloop"))
        .args([
            "serve",
            "--data-dir",
            dir.to_str().unwrap(),
            "--port",
            &port.to_string(),
            "--visibility-secs",
            "1",
            "--sandbox-port",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_up(http: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if http.get(format!("{base}/v1/wallet/x")).send().await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("payloop serve did not come up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_money_survives_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = payloop::psp::https::local_client().unwrap();
    let mut child = serve(dir.path(), port);
    wait_up(&http, &base).await;
    let secrets: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dev-secrets.json")).unwrap(),
    )
    .unwrap();
    let (ck, pk) = (
        secrets["client_key"].as_str().unwrap(),
        secrets["platform_key"].as_str().unwrap(),
    );
    let init = json!({"amount": "75.00", "currency": "EUR", "method": "card", "return_url": "https://x.example/r", "player_id": "crash-1"});
    let r = http
        .post(format!("{base}/v1/payments/init"))
        .bearer_auth(ck)
        .header("idempotency-key", "crash-k")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let first: Value = r.json().await.unwrap();
    let id = first["payment_id"].as_str().unwrap().to_owned();
    // The player approves on the sandbox PSP's checkout (its own server).
    let checkout = first["redirect_url"].as_str().unwrap();
    let approve = http
        .post(format!("{checkout}/approve"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("otp=1234")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(approve.contains("Payment captured"), "{approve}");
    let mut credited = false;
    for _ in 0..200 {
        let w: Value = http
            .get(format!("{base}/v1/wallet/crash-1"))
            .bearer_auth(pk)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if w["balances"][0]["available"] == "75.00" {
            credited = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(credited);
    child.kill().unwrap(); // SIGKILL: no shutdown, no flush
    child.wait().unwrap();

    let mut child = serve(dir.path(), port);
    wait_up(&http, &base).await;
    let p: Value = http
        .get(format!("{base}/v1/payments/{id}"))
        .bearer_auth(ck)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(p["status"], "captured");
    let w: Value = http
        .get(format!("{base}/v1/wallet/crash-1"))
        .bearer_auth(pk)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(w["balances"][0]["available"], "75.00");
    assert_eq!(w["entries"].as_array().unwrap().len(), 1);
    // The idempotency record survived too: the retry is a replay.
    let again = http
        .post(format!("{base}/v1/payments/init"))
        .bearer_auth(ck)
        .header("idempotency-key", "crash-k")
        .json(&init)
        .send()
        .await
        .unwrap();
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["payment_id"], first["payment_id"]);
    child.kill().unwrap();
    child.wait().unwrap();
}
