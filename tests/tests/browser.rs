//! The sandbox checkout clicked through in a real headless Chromium (Debian's
//! `chromium` + `chromium-driver`, installed by `scripts/test.sh`), spoken to
//! over the W3C WebDriver protocol, to a credited wallet.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use payloop_tests::TestStack;
use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

struct Driver {
    child: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Driver {
    async fn start(driver: &std::path::Path, browser: &std::path::Path) -> Driver {
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = payloop::psp::https::local_client().unwrap();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--disable-background-networking", "--disable-extensions", "--no-first-run",
                         format!("--user-data-dir={}", profile.path().display())]
            }
        }}});
        let mut d = Driver {
            child,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let v = d.call("POST", "/session", caps).await;
        d.session = v["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        // Finding an element waits (up to 15 s) for the page that has it: a
        // click's form submission may still be loading under CI load.
        d.call("POST", &d.s("/timeouts"), json!({"implicit": 15_000}))
            .await;
        d
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {v}");
        v["value"].clone()
    }

    fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    async fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({ "url": url }))
            .await;
    }

    async fn element(&self, css: &str) -> String {
        let v = self
            .call(
                "POST",
                &self.s("/element"),
                json!({"using": "css selector", "value": css}),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.call("POST", &self.s(&format!("/element/{e}/click")), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.call(
            "POST",
            &self.s(&format!("/element/{e}/value")),
            json!({ "text": text }),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let e = self.element(css).await;
        let v = self
            .call("GET", &self.s(&format!("/element/{e}/text")), json!({}))
            .await;
        v.as_str().unwrap().to_owned()
    }

    async fn quit(&self) {
        self.call("DELETE", &self.s(""), json!({})).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_player_pays_through_the_sandbox_checkout_in_headless_chromium() {
    let (Some(driver), Some(browser)) = (find("chromedriver"), find("chromium")) else {
        assert!(
            std::env::var_os("PAYLOOP_REQUIRE_BROWSER").is_none(),
            "chromium/chromedriver missing but scripts/test.sh requires them"
        );
        println!("SKIPPED: chromium and chromedriver are not installed (scripts/test.sh installs Debian's chromium + chromium-driver)");
        return;
    };
    let t = TestStack::start().await;
    let id = t.deposit("bea", "25.00").await;
    let checkout = t.payment(&id).await["redirect_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let d = Driver::start(&driver, &browser).await;
    d.goto(&checkout).await;
    assert_eq!(d.text("#amount").await, "25.00 EUR");
    d.click("#pay").await;
    // 3-D Secure: a wrong code first, then the right one.
    d.type_into("#otp", "0000").await;
    d.click("#approve").await;
    assert!(d.text("#error").await.contains("Wrong code"));
    d.type_into("#otp", "1234").await;
    d.click("#approve").await;
    assert_eq!(d.text("#result").await, "Payment captured");
    d.quit().await;
    t.wait_status(&id, "captured").await;
    assert_eq!(t.balance_minor("bea").await, 2500);
    t.assert_ledger_invariant().await;
    t.shutdown().await;
}
