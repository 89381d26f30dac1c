//! A real headless Chromium driven through `WebDriver` (Debian's `chromium` and `chromium-driver`):
//! chromedriver started on a free port, a fresh profile per browser, and the flags this
//! machine's closed network needs.
//!
//! Without Chromium the tests that need it print why and pass as skipped, unless
//! `STIGMER_TEST_REQUIRE_BROWSER` is set (CI sets it): then they fail.

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

/// Set to make a missing browser a failure rather than a skip.
pub const REQUIRE: &str = "STIGMER_TEST_REQUIRE_BROWSER";

/// Set to write the screenshots in `docs/` again.
pub const UPDATE_SCREENSHOTS: &str = "STIGMER_UPDATE_SCREENSHOTS";

fn find(env: &str, candidates: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(env) {
        return Some(PathBuf::from(path));
    }
    candidates.iter().map(PathBuf::from).find(|path| path.is_file())
}

/// A browser; its driver and the Chromium the driver started are killed when dropped.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads a process group of its own, which its Chromium processes join:
        // killing only the driver left every test's browser running after the suite.
        let group = format!("-{}", self.driver.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A browser, or `None` (with the reason printed) when this machine has none.
pub async fn start() -> Option<Browser> {
    let chromium =
        find("STIGMER_TEST_CHROMIUM", &["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]);
    let driver = find("STIGMER_TEST_CHROMEDRIVER", &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        let why = "no chromium and chromedriver (apt-get install chromium chromium-driver)";
        assert!(std::env::var_os(REQUIRE).is_none(), "a browser is required ({REQUIRE} is set) but: {why}");
        eprintln!("skipped: no browser for this test: {why}");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let driver = Command::new(driver)
        .arg(format!("--port={port}"))
        .process_group(0)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let profile = tempfile::tempdir().unwrap();
    let capabilities = json!({
        "goog:chromeOptions": {
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--window-size=1280,900", "--hide-scrollbars",
                "--disable-crash-reporter", "--disable-breakpad",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        }
    });
    let capabilities = capabilities.as_object().unwrap().clone();
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
        builder.capabilities(capabilities.clone());
        match builder.connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(client) => break client,
            Err(error) => {
                assert!(Instant::now() < deadline, "chromedriver did not start: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Some(Browser { client, driver, _profile: profile })
}

impl Browser {
    /// The text of the first element `css` selects.
    pub async fn text(&self, css: &str) -> String {
        self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("no {css}: {e}")).text().await.unwrap()
    }

    /// Whether anything matches `css`.
    pub async fn has(&self, css: &str) -> bool {
        !self.client.find_all(Locator::Css(css)).await.unwrap().is_empty()
    }

    /// Waits up to `within` for `check` (a JavaScript expression) to be true.
    pub async fn wait_for(&self, check: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let value = self.client.execute(&format!("return !!({check});"), vec![]).await.unwrap();
            if value == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "never true: {check}\n{}", self.client.source().await.unwrap());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Logs in at `base` with `token` through the login form.
    pub async fn log_in(&self, base: &str, token: &str) {
        self.client.goto(&format!("{base}/login")).await.unwrap();
        self.client.find(Locator::Id("token")).await.unwrap().send_keys(token).await.unwrap();
        self.client.find(Locator::Id("log-in")).await.unwrap().click().await.unwrap();
        self.wait_for("document.querySelector('#log-out')", Duration::from_secs(10)).await;
    }

    /// The session cookie's value.
    pub async fn session_cookie(&self) -> String {
        self.client.get_named_cookie("stigmer_session").await.unwrap().value().to_owned()
    }

    /// Writes a screenshot of the page to `docs/NAME.png` when [`UPDATE_SCREENSHOTS`] is set.
    pub async fn screenshot(&self, name: &str) {
        if std::env::var_os(UPDATE_SCREENSHOTS).is_none() {
            return;
        }
        // Taller than the test window, so a page's main parts fit in one picture.
        self.client.set_window_size(1280, 1150).await.unwrap();
        let png = self.client.screenshot().await.unwrap();
        self.client.set_window_size(1280, 900).await.unwrap();
        let path = super::root().join("docs").join(format!("{name}.png"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}
