//! A W3C WebDriver client for the browser suites: Debian's chromedriver
//! driving headless Chromium (installed by `scripts/test.sh`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// How long a page may take to show what a test waits for, and how often
/// it looks.
const WAIT: Duration = Duration::from_secs(15);
const POLL: Duration = Duration::from_millis(100);

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
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

/// A program on the PATH.
pub fn find(bin: &str) -> Option<std::path::PathBuf> {
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
    pub async fn start(driver: &std::path::Path, browser: &std::path::Path) -> Driver {
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
                "args": ["--headless=new", "--window-size=1280,1100", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
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

    pub async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        match self.try_call(method, path, body).await {
            Ok(v) => v,
            Err(v) => panic!("{method} {path}: {v}"),
        }
    }

    /// A WebDriver command: its value, or the error it answered.
    async fn try_call(&self, method: &str, path: &str, body: Value) -> Result<Value, Value> {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let r = req.send().await.unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(v["value"].clone())
        }
    }

    /// An element command that a page still loading can make stale (a
    /// click's form submission replaces the page): found again until it
    /// answers, for up to [`WAIT`].
    async fn on_element(&self, css: &str, method: &str, rest: &str, body: Value) -> Value {
        let started = std::time::Instant::now();
        loop {
            let e = self.element(css).await;
            let path = self.s(&format!("/element/{e}{rest}"));
            match self.try_call(method, &path, body.clone()).await {
                Ok(v) => return v,
                Err(err)
                    if err["error"] == "stale element reference" && started.elapsed() < WAIT =>
                {
                    tokio::time::sleep(POLL).await;
                }
                Err(err) => panic!("{method} {css}{rest}: {err}"),
            }
        }
    }

    /// Wait (up to [`WAIT`]) until `css`'s text is `expected`: the page a
    /// click loads may not be there yet.
    pub async fn wait_text(&self, css: &str, expected: &str) {
        let started = std::time::Instant::now();
        loop {
            let now = self.text(css).await;
            if now == expected {
                return;
            }
            assert!(
                started.elapsed() < WAIT,
                "{css}: {now:?}, expected {expected:?}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    pub fn s(&self, rest: &str) -> String {
        format!("/session/{}{rest}", self.session)
    }

    pub async fn goto(&self, url: &str) {
        self.call("POST", &self.s("/url"), json!({ "url": url }))
            .await;
    }

    pub async fn element(&self, css: &str) -> String {
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

    pub async fn click(&self, css: &str) {
        self.on_element(css, "POST", "/click", json!({})).await;
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "POST", "/value", json!({ "text": text }))
            .await;
    }

    pub async fn text(&self, css: &str) -> String {
        let v = self.on_element(css, "GET", "/text", json!({})).await;
        v.as_str().unwrap().to_owned()
    }

    pub async fn quit(&self) {
        self.call("DELETE", &self.s(""), json!({})).await;
    }
}

impl Driver {
    /// Run `script` in the page (synchronously); its return value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.s("/execute/sync"),
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Run `script` in the page; it calls `arguments[arguments.length - 1]`
    /// with its result.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            &self.s("/execute/async"),
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Save a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine as _;
        let v = self.call("GET", &self.s("/screenshot"), json!({})).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// The current page's URL.
    pub async fn url(&self) -> String {
        let v = self.call("GET", &self.s("/url"), json!({})).await;
        v.as_str().unwrap().to_owned()
    }

    /// How many elements match `css` now (no implicit wait for none).
    pub async fn count(&self, css: &str) -> usize {
        let v = self
            .execute(
                "return document.querySelectorAll(arguments[0]).length;",
                json!([css]),
            )
            .await;
        v.as_u64().unwrap() as usize
    }
}

/// Chromium and chromedriver, or `None` after printing why the test is
/// skipped (a failure under the test command, which installs them).
pub fn browser_or_skip(test: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    match (find("chromedriver"), find("chromium")) {
        (Some(d), Some(b)) => Some((d, b)),
        _ => {
            assert!(
                std::env::var_os("PAYLOOP_REQUIRE_BROWSER").is_none(),
                "{test}: chromium/chromedriver missing but scripts/test.sh requires them"
            );
            println!("SKIPPED {test}: chromium and chromedriver are not installed (scripts/test.sh installs Debian's chromium + chromium-driver)");
            None
        }
    }
}

/// Where browser tests save their screenshots (`target/screenshots/`).
pub fn screenshots() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots")
}

/// axe-core's source (installed by scripts/axe.sh; the test command sets
/// PAYLOOP_AXE_JS), or `None` with the reason printed.
pub fn axe_source() -> Option<String> {
    let path = std::env::var("PAYLOOP_AXE_JS").ok().or_else(|| {
        let local = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../.axe/node_modules/axe-core/axe.min.js");
        local.is_file().then(|| local.display().to_string())
    });
    match path {
        Some(p) => Some(std::fs::read_to_string(p).unwrap()),
        None => {
            assert!(
                std::env::var_os("PAYLOOP_REQUIRE_BROWSER").is_none(),
                "axe-core missing but scripts/test.sh requires it (scripts/axe.sh installs it)"
            );
            println!(
                "SKIPPED the accessibility pass: axe-core is not installed (run scripts/axe.sh)"
            );
            None
        }
    }
}

/// Run axe in the current page: how many violations, and the serious and
/// critical ones described.
pub async fn axe(d: &Driver, source: &str, page: &str) -> (usize, Vec<String>) {
    d.execute(source, json!([])).await;
    let result = d
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))));",
            json!([]),
        )
        .await;
    let all = result.as_array().unwrap();
    for v in all {
        println!(
            "axe {page}: {} ({}, {} nodes)",
            v["id"], v["impact"], v["nodes"]
        );
    }
    let bad: Vec<String> = all
        .iter()
        .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
        .map(|v| {
            format!(
                "{page}: {} ({}, {} nodes)",
                v["id"], v["impact"], v["nodes"]
            )
        })
        .collect();
    (all.len(), bad)
}
