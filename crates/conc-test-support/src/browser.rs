//! A real headless Chromium per test, driven over WebDriver: `chromedriver` on
//! a free loopback port, one session, both ended on drop.
//!
//! The client speaks the W3C WebDriver protocol as JSON over the crate's small
//! HTTP client ([`crate::http`]): a test needs a dozen commands (open a URL,
//! find by CSS selector, click, read text, run a script, take a screenshot),
//! which fit in one file, keep the harness synchronous like the Redis one, and
//! add no HTTP or TLS stack to the test builds.
//!
//! Binaries: `$CONC_CHROMEDRIVER` or `chromedriver` on `PATH`; the browser is
//! `$CONC_CHROMIUM` or the first of `chromium`, `chromium-browser`,
//! `google-chrome` on `PATH` (Debian: packages `chromium` and
//! `chromium-driver`). [`require_browser`] skips a test with a printed reason
//! when one is missing, unless `CONC_REQUIRE_SERVICES=1`.
//!
//! Tests poll for the state they expect with [`Browser::wait_for`] and a
//! generous deadline, never sleep for it.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//!
//! let Some(browser) = conc_test_support::require_browser() else { return Ok(()) };
//! browser.goto("http://127.0.0.1:9090/")?;
//! let title = browser.wait_for("the heading", Duration::from_secs(10), |b| b.text("h1"))?;
//! assert_eq!(title, "Overview");
//! browser.screenshot(std::path::Path::new("target/overview.png"))?;
//! # Ok::<(), conc_test_support::HarnessError>(())
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::HarnessError;
use crate::http;

/// The environment variable naming the chromedriver binary.
pub const CHROMEDRIVER_ENV: &str = "CONC_CHROMEDRIVER";
/// The environment variable naming the Chromium binary.
pub const CHROMIUM_ENV: &str = "CONC_CHROMIUM";

const BROWSERS: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const POLL: Duration = Duration::from_millis(25);

/// `name` as an executable: a path, or looked up on `PATH`.
fn find(name: &str) -> Option<PathBuf> {
    let candidate = Path::new(name);
    if candidate.components().count() > 1 {
        return candidate.is_file().then(|| candidate.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(name)).find(|p| p.is_file())
}

fn binary(env: &str, names: &[&str], service: &'static str) -> Result<PathBuf, HarnessError> {
    binary_in(std::env::var_os(env), env, names, service)
}

/// [`binary`] with the environment variable's value passed in, so it can be
/// tested without touching the process-global environment.
fn binary_in(
    value: Option<std::ffi::OsString>,
    env: &str,
    names: &[&str],
    service: &'static str,
) -> Result<PathBuf, HarnessError> {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        let path = PathBuf::from(&value);
        return find(&value.to_string_lossy()).ok_or(HarnessError::BinaryNotFound {
            service,
            binary: path,
            searched: format!("from {env}"),
        });
    }
    names.iter().find_map(|name| find(name)).ok_or_else(|| HarnessError::BinaryNotFound {
        service,
        binary: PathBuf::from(names[0]),
        searched: format!("on PATH; install it (Debian: chromium, chromium-driver) or set {env}"),
    })
}

/// A headless Chromium session behind its own chromedriver; both end on drop.
#[derive(Debug)]
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    dir: tempfile::TempDir,
}

/// Starts a [`Browser`], or returns `None` after printing why when chromedriver
/// or Chromium is missing, so the test can skip.
///
/// # Panics
///
/// When a binary is missing and `CONC_REQUIRE_SERVICES=1`, or when both are
/// there but the browser fails to start (a real failure).
#[track_caller]
pub fn require_browser() -> Option<Browser> {
    match Browser::start() {
        Ok(browser) => Some(browser),
        Err(error @ HarnessError::BinaryNotFound { .. }) => {
            crate::skip_unavailable("a headless Chromium", error);
            None
        }
        Err(error) => panic!("the headless browser did not start: {error}"),
    }
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a headless
    /// session (1280×900).
    ///
    /// # Errors
    ///
    /// [`HarnessError::BinaryNotFound`] for a missing binary; the driver's
    /// log in [`HarnessError::NotReady`] when it does not come up;
    /// [`HarnessError::WebDriver`] when the session is refused.
    pub fn start() -> Result<Self, HarnessError> {
        let driver_binary = binary(CHROMEDRIVER_ENV, &["chromedriver"], "chromedriver")?;
        let browser_binary = binary(CHROMIUM_ENV, &BROWSERS, "chromium")?;
        let dir = tempfile::tempdir().map_err(|source| HarnessError::TempDir { source })?;
        let port = crate::redis::free_port()?;
        let log = dir.path().join("chromedriver.log");
        let mut command = Command::new(&driver_binary);
        // Its own process group, with the browsers it starts: dropping the
        // harness kills the whole group, so no Chromium outlives a test whose
        // session could not be closed.
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        command
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let driver = crate::sys::spawn_tied(command)
            .map_err(|source| HarnessError::Spawn { binary: driver_binary.clone(), source })?;
        let mut browser =
            Self { driver, base: format!("http://127.0.0.1:{port}"), session: String::new(), dir };
        browser.wait_ready(port, &log)?;
        let profile = browser.dir.path().join("profile");
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": browser_binary,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--window-size=1280,900", "--no-first-run", "--disable-extensions",
                    format!("--user-data-dir={}", profile.display()),
                ],
            },
        }}});
        let value = browser.command("POST", "/session", Some(&capabilities))?;
        let session = value["sessionId"]
            .as_str()
            .ok_or_else(|| webdriver("new session", "no sessionId in the answer", &value))?;
        session.clone_into(&mut browser.session);
        Ok(browser)
    }

    fn wait_ready(&mut self, port: u16, log: &Path) -> Result<(), HarnessError> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/status", self.base);
        loop {
            let exit = self.driver.try_wait().ok().flatten();
            if exit.is_none()
                && let Ok(response) = http::get(&url, Duration::from_secs(2))
                && serde_json::from_str::<Value>(&response.body)
                    .is_ok_and(|v| v["value"]["ready"] == json!(true))
            {
                return Ok(());
            }
            if exit.is_some() || Instant::now() >= deadline {
                return Err(HarnessError::NotReady {
                    addr: ([127, 0, 0, 1], port).into(),
                    limit: READY_TIMEOUT,
                    exit,
                    log: fs::read_to_string(log).unwrap_or_default(),
                });
            }
            thread::sleep(POLL);
        }
    }

    /// One WebDriver command; its `value`.
    fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HarnessError> {
        let url = format!("{}{path}", self.base);
        let body = body.map(Value::to_string);
        let response = http::request(method, &url, body.as_deref(), COMMAND_TIMEOUT)?;
        let value: Value = serde_json::from_str(&response.body)
            .map_err(|e| webdriver(path, &format!("not JSON ({e})"), &json!(response.body)))?;
        let value = value.get("value").cloned().unwrap_or(Value::Null);
        if response.status >= 400 || value.get("error").is_some() {
            return Err(webdriver(path, value["error"].as_str().unwrap_or("error"), &value));
        }
        Ok(value)
    }

    fn session_command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, HarnessError> {
        self.command(method, &format!("/session/{}{path}", self.session), body)
    }

    /// Opens `url` and waits for it to load.
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`] when the browser cannot open it.
    pub fn goto(&self, url: &str) -> Result<(), HarnessError> {
        self.session_command("POST", "/url", Some(&json!({ "url": url }))).map(drop)
    }

    /// The URL of the page shown.
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`].
    pub fn current_url(&self) -> Result<String, HarnessError> {
        Ok(self.session_command("GET", "/url", None)?.as_str().unwrap_or_default().to_owned())
    }

    fn element(&self, css: &str) -> Result<Option<String>, HarnessError> {
        let body = json!({ "using": "css selector", "value": css });
        match self.session_command("POST", "/element", Some(&body)) {
            Ok(value) => Ok(value[ELEMENT_KEY].as_str().map(str::to_owned)),
            Err(HarnessError::WebDriver { error, .. }) if error == "no such element" => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// The text of the first element matching `css`, or `None` when there is
    /// none (or it went away while it was read).
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`] for a bad selector or a browser failure.
    pub fn text(&self, css: &str) -> Result<Option<String>, HarnessError> {
        let Some(id) = self.element(css)? else { return Ok(None) };
        match self.session_command("GET", &format!("/element/{id}/text"), None) {
            Ok(value) => Ok(value.as_str().map(str::to_owned)),
            Err(error) if is_stale(&error) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Clicks the first element matching `css`; `false` when there is none
    /// (or it went away before the click), so a poll can try again.
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`] for a bad selector or a browser failure.
    pub fn click(&self, css: &str) -> Result<bool, HarnessError> {
        let Some(id) = self.element(css)? else { return Ok(false) };
        match self.session_command("POST", &format!("/element/{id}/click"), Some(&json!({}))) {
            Ok(_) => Ok(true),
            Err(error) if is_stale(&error) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page;
    /// what it returns.
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`] when the script throws.
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, HarnessError> {
        self.session_command(
            "POST",
            "/execute/sync",
            Some(&json!({ "script": script, "args": args })),
        )
    }

    /// Writes a PNG of the viewport to `path` (creating its directory).
    ///
    /// # Errors
    ///
    /// [`HarnessError::WebDriver`] or [`HarnessError::Http`] for a file that
    /// cannot be written (named).
    pub fn screenshot(&self, path: &Path) -> Result<(), HarnessError> {
        let value = self.session_command("GET", "/screenshot", None)?;
        let png = decode_base64(value.as_str().unwrap_or_default())
            .ok_or_else(|| webdriver("/screenshot", "not base64", &Value::Null))?;
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)?;
            }
            fs::write(path, png)
        };
        write().map_err(|source| HarnessError::Write { path: path.to_path_buf(), source })
    }

    /// Polls `check` until it returns `Some`, for at most `limit`; `what`
    /// names the awaited state in the timeout error.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Timeout`] with `what` and the last page's URL, or the
    /// first error `check` returns.
    pub fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut check: impl FnMut(&Self) -> Result<Option<T>, HarnessError>,
    ) -> Result<T, HarnessError> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(value) = check(self)? {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                let url = self.current_url().unwrap_or_default();
                return Err(HarnessError::Timeout { what: format!("{what} (page {url})"), limit });
            }
            thread::sleep(POLL);
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", &format!("/session/{}", self.session), None);
        }
        if crate::sys::kill_group(self.driver.id()).is_err() {
            let _ = self.driver.kill();
        }
        let _ = self.driver.wait();
    }
}

/// Whether `error` says the element went away between finding it and using
/// it: WebDriver's "stale element reference", or the "unknown error" chromedriver
/// answers with instead when a page replaces the node in the middle of the
/// command ("Node with given id does not belong to the document").
fn is_stale(error: &HarnessError) -> bool {
    match error {
        HarnessError::WebDriver { error, message, .. } => {
            error == "stale element reference"
                || (error == "unknown error" && message.contains("does not belong to the document"))
        }
        _ => false,
    }
}

fn webdriver(command: &str, error: &str, value: &Value) -> HarnessError {
    HarnessError::WebDriver {
        command: command.to_owned(),
        error: error.to_owned(),
        message: value["message"].as_str().map_or_else(|| value.to_string(), str::to_owned),
    }
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let digit = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace() && *c != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0_u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= u32::from(digit(*c)?) << (18 - 6 * i);
        }
        let [_, a, b, c] = acc.to_be_bytes();
        out.extend_from_slice(&[a, b, c][..chunk.len().saturating_sub(1)]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{CHROMEDRIVER_ENV, binary_in, decode_base64, is_stale, webdriver};
    use crate::HarnessError;

    /// Both ways an element can go away mid-command count as stale; other
    /// unknown errors do not.
    #[test]
    fn a_detached_node_is_a_stale_element() {
        let stale = |error: &str, message: &str| {
            is_stale(&webdriver("GET /text", error, &serde_json::json!({ "message": message })))
        };
        assert!(stale("stale element reference", "element is not attached"));
        assert!(stale(
            "unknown error",
            "unknown error: unhandled inspector error: {\"code\":-32000,\"message\":\"Node with given id does not belong to the document\"}"
        ));
        assert!(!stale("unknown error", "session deleted because of page crash"));
        assert!(!stale("no such element", "no such element"));
    }

    /// The processes whose process group is `group` (Linux: from `/proc`).
    #[cfg(target_os = "linux")]
    fn in_group(group: u32) -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
        entries
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // Field 5 of /proc/<pid>/stat, after the parenthesised name.
                std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().is_some_and(|stat| {
                    stat.rsplit_once(')')
                        .and_then(|(_, rest)| rest.split_whitespace().nth(2)?.parse::<u32>().ok())
                        == Some(group)
                })
            })
            .collect()
    }

    /// A browser whose session cannot be closed (it hung, say) still goes
    /// away with the harness: chromedriver and every Chromium process it
    /// started are killed as one group.
    #[cfg(target_os = "linux")]
    #[test]
    fn dropping_the_harness_kills_the_browser_too() {
        let Some(mut browser) = super::require_browser() else { return };
        browser.goto("about:blank").unwrap();
        let group = browser.driver.id();
        assert!(in_group(group).len() > 1, "chromedriver and its browser share a group");
        browser.session = "no-such-session".to_owned();
        drop(browser);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            // Killed processes may linger as zombies until their parent reaps them;
            // count only the living.
            let living: Vec<u32> = in_group(group)
                .into_iter()
                .filter(|pid| {
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok().and_then(|stat| {
                        stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z'))
                    }) == Some(false)
                })
                .collect();
            if living.is_empty() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "still running: {living:?}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    #[test]
    fn a_missing_binary_is_named_with_where_it_was_looked_for() {
        let missing = binary_in(
            Some("/no/such/chromedriver".into()),
            CHROMEDRIVER_ENV,
            &["x"],
            "chromedriver",
        );
        match missing.unwrap_err() {
            HarnessError::BinaryNotFound { service, binary, searched } => {
                assert_eq!(service, "chromedriver");
                assert_eq!(binary, std::path::Path::new("/no/such/chromedriver"));
                assert!(searched.contains(CHROMEDRIVER_ENV), "{searched}");
            }
            other => panic!("expected BinaryNotFound, got {other}"),
        }
        let error = binary_in(None, CHROMEDRIVER_ENV, &["no-such-browser-binary"], "chromium")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("no-such-browser-binary") && error.contains("chromium-driver"),
            "{error}"
        );
    }

    #[test]
    fn decodes_base64_with_and_without_padding() {
        assert_eq!(decode_base64("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert_eq!(decode_base64("YWJj").unwrap(), b"abc");
        assert!(decode_base64("a*b").is_none());
    }
}
