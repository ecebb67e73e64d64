//! `payloop serve` writes plain text, without ANSI colour codes, when its
//! output is not a terminal (a file here, as under systemd or in CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Command, Stdio};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_logs_to_a_file_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out_path = dir.path().join("serve.out");
    let out = std::fs::File::create(&out_path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_payloop"))
        .args(["serve", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--port", &port.to_string(), "--sandbox-port", "0"])
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .unwrap();
    let http = payloop::psp::https::local_client().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut up = false;
    for _ in 0..200 {
        if http.get(format!("{base}/v1/wallet/x")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(up, "payloop serve did not come up");
    let text = std::fs::read_to_string(&out_path).unwrap();
    assert!(text.contains("payloop is running"), "{text}");
    assert!(text.contains("INFO"), "info lines are logged: {text}");
    assert!(!text.contains('\u{1b}'), "colour codes in a file: {text}");
}
