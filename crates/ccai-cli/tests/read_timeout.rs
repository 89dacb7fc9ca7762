//! A SQLite read that runs past the store's read timeout (`SqliteOptions::read_timeout`, 30 s),
//! end to end: `ccai events list` exits 2 with one line, and the view answers 503, then 200 for
//! the next reads.
//!
//! No flag sets the timeout, so the real binary runs on a clock 100 times as fast: libfaketime,
//! preloaded, speeds up `CLOCK_MONOTONIC` too, which the progress handler's `Instant` reads, so
//! the 30 s pass in 0.3 s. The slow search is the crafted one the timeout is for: a long run of
//! `a` then a `b`, against bodies of `a`s (over a second of real time over these 100 MB). Skipped,
//! saying why, where libfaketime is not installed.

mod common;
mod ui_support;

use std::path::Path;
use std::process::{Command, Stdio};

use ccai::inbox::{SqliteOptions, SqliteStore};
use common::{exits, stderr, stdout, Sandbox, LIBFAKETIME};
use serde_json::{json, Value};
use ui_support::{
    add, announced, chromium_available, fill_slow, get, inbox_path, set_events_readable,
    signature_of, slow_search, Driver, Session, Ui,
};

/// Events whose bodies are a long run of `a`, and that run's length: 100 MB in all (the
/// receiver's largest body is 256 KiB).
const EVENTS: usize = 400;
const TEXT: usize = 250 * 1024;
/// How much faster than real time the faked clock runs. Not more: the process's other timers
/// run as fast (the server's 10 s for a request's head takes 0.1 s).
const SPEED: u32 = 100;

/// Held by each test for its whole run: the tests run one at a time. Each one's slow searches keep
/// a core busy, and on a 2-core machine two at once starved the ordinary reads, which the fast
/// clock then stopped too (its 30 s are 0.3 s of real time).
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What every answer to the stopped read says.
const STOPPED: &str = "the read took longer than 30 s and was stopped: narrow the filter";

/// `cmd` with its clocks (wall and monotonic) [`SPEED`] times as fast from its start; `None`,
/// after saying why, where libfaketime is not installed.
fn on_fast_clock(mut cmd: Command) -> Option<Command> {
    if !Path::new(LIBFAKETIME).exists() {
        println!("skipped: {LIBFAKETIME} not installed (apt-get install faketime)");
        return None;
    }
    cmd.env("LD_PRELOAD", LIBFAKETIME)
        .env("FAKETIME", format!("+0 x{SPEED}"))
        .env_remove("FAKETIME_DONT_FAKE_MONOTONIC");
    Some(cmd)
}

/// That `error` is the one line of a read stopped at its deadline, with neither the search text
/// nor a signature in it.
fn assert_stopped(error: &str) {
    assert!(error.contains(STOPPED), "{error:?}");
    assert!(!error.trim_end().contains('\n'), "one line: {error:?}");
    assert!(!error.contains("panicked"), "{error:?}");
    assert!(
        !error.contains(&"a".repeat(64)),
        "the search text: {error:?}"
    );
    assert!(
        !error.contains(&signature_of("h0")),
        "a signature: {error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn events_list_a_search_past_the_read_timeout_exits_2_saying_to_narrow_it() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let Some(mut cmd) = on_fast_clock(sandbox.ccai()) else {
        return;
    };
    let path = sandbox.path().join("inbox.db");
    fill_slow(&path, EVENTS, TEXT).await;

    cmd.args(["events", "list", "--store"])
        .arg(&path)
        .args(["--contains", &slow_search()]);
    let out = exits(cmd).await;
    let error = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{error}");
    assert!(
        error.starts_with("error: the inbox store stopped a read: "),
        "{error:?}"
    );
    assert_stopped(&error);
    assert_eq!(stdout(&out), "", "nothing listed");
}

#[tokio::test(flavor = "multi_thread")]
async fn ui_api_a_search_past_the_read_timeout_is_answered_503_then_reads_go_on() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let Some(ui) = slow_ui(&sandbox, &path).await else {
        return;
    };

    let (status, answer) = get(&ui, &format!("/api/events?q={}", slow_search())).await;
    assert_eq!(status, 503, "{answer}");
    let error = answer["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the store failed: the inbox store stopped a read: "),
        "{answer}"
    );
    assert_stopped(error);
    // Said so, for the page not to repeat it by itself.
    assert_eq!(answer["stopped"], Value::Bool(true), "{answer}");

    // The next reads are answered, from the same store and reader connections.
    let (status, page) = get(&ui, "/api/events").await;
    assert_eq!(status, 200, "{page}");
    let newest = page["events"][0]["eventHash"].clone();
    assert_eq!(newest, Value::from(format!("h{}", EVENTS - 1)), "{page}");
    let (status, stats) = get(&ui, "/api/stats").await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["received"], Value::from(EVENTS), "{stats}");
    let (status, detail) = get(&ui, "/api/events/h7").await;
    assert_eq!(status, 200, "{detail}");
    assert_eq!(detail["eventHash"], Value::from("h7"), "{detail}");
}

/// `ccai ui` on the store at `path` (filled with [`fill_slow`]), on the fast clock; `None`,
/// after saying why, where libfaketime is not installed.
async fn slow_ui(sandbox: &Sandbox, path: &Path) -> Option<Ui> {
    let mut cmd = sandbox.ccai();
    cmd.arg("ui")
        .arg("--store")
        .arg(path)
        .args(["--port", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut cmd = on_fast_clock(cmd)?;
    fill_slow(path, EVENTS, TEXT).await;
    Some(announced(cmd.spawn().expect("spawn ccai ui")))
}

/// [`slow_ui`] and a page of it in real Chromium, loaded and live; `None`, after saying why,
/// without Chromium or libfaketime. The driver and the profile folder live as long as the page.
async fn slow_page(
    sandbox: &Sandbox,
    path: &Path,
) -> Option<(Ui, Driver, Session, tempfile::TempDir)> {
    if !chromium_available() {
        return None;
    }
    let ui = slow_ui(sandbox, path).await?;
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile");
    let browser = driver.session(profile.path(), 1280, 800).await;
    browser.goto(&ui.url).await;
    browser
        .wait_js(
            "the first page",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    browser.wait_live().await;
    Some((ui, driver, browser, profile))
}

/// How many times the page asked for the list with a search text.
const SEARCHES: &str = "return performance.getEntriesByType('resource')
    .filter((e) => e.name.includes('/api/events?') && e.name.includes('q=')).length";

/// In real Chromium: a search the store stopped says so where the rows would be, and the page
/// does not run it again by itself, neither for a change in the store nor with the retry after
/// a failed refresh (each would hold a read of the store for the whole time limit again), until
/// filters are applied anew.
#[tokio::test(flavor = "multi_thread")]
async fn ui_browser_a_search_the_store_stopped_is_not_run_again_by_itself() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let Some((_ui, _driver, browser, _profile)) = slow_page(&sandbox, &path).await else {
        return;
    };
    browser
        .js(
            "performance.setResourceTimingBufferSize(100000);
             document.getElementById('f-q').value = arguments[0];
             document.getElementById('f-type').value = 'message.incoming';
             document.getElementById('filters').requestSubmit();
             return 1",
            json!([slow_search()]),
        )
        .await;
    let said = browser
        .wait_js(
            "the stopped search, said where the rows would be",
            "const empty = document.getElementById('empty');
             return !empty.hidden && empty.textContent.includes('was stopped') && empty.textContent",
        )
        .await;
    assert!(
        said.as_str().unwrap_or_default().contains(STOPPED),
        "{said}"
    );
    assert_eq!(browser.js(SEARCHES, json!([])).await, json!(1));
    // The bulk replay's question does not count the rows a stopped list does not show.
    browser.click("#bulk-replay").await;
    let question = browser
        .js(
            "return document.getElementById('bulk-question').textContent",
            json!([]),
        )
        .await;
    let question = question.as_str().unwrap_or_default();
    assert!(
        question.contains("How many match is not known"),
        "{question}"
    );
    assert!(!question.contains("The list shows"), "{question}");
    browser.click("#bulk-cancel").await;

    // A new event: the page hears of the change and refreshes the counters, not the list.
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    add(&store, "h-after", "message.sent").await;
    browser
        .wait_js(
            "the counters after the change",
            &format!(
                "return document.getElementById('c-received').textContent === '{}'",
                EVENTS + 1
            ),
        )
        .await;
    // Past the 5 s after which a failed refresh is tried again.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let page = browser
        .js(
            "return [document.querySelectorAll('#events tbody tr').length,
                     document.getElementById('empty').hidden]",
            json!([]),
        )
        .await;
    assert_eq!(page, json!([0, false]), "the message stays");
    assert_eq!(
        browser.js(SEARCHES, json!([])).await,
        json!(1),
        "the stopped search was run again"
    );

    // Filters applied anew read the list again: here none, so every event shows.
    browser.click("#clear").await;
    browser
        .wait_js(
            "the whole list",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'h-after'",
        )
        .await;
    let empty = browser
        .js(
            "const empty = document.getElementById('empty');
             return [empty.hidden, empty.textContent]",
            json!([]),
        )
        .await;
    assert_eq!(empty, json!([true, "No events match."]));
    browser.quit().await;
    store.close().await;
}

/// In real Chromium: the message of a stopped search stands for the filters it was run with.
/// Filters applied after it whose first load fails (the store unreadable for a moment, a 500)
/// are read by the next live refresh; when that finds nothing, the page says that nothing
/// matches, not that the earlier search was stopped.
#[tokio::test(flavor = "multi_thread")]
async fn ui_browser_a_stopped_search_s_message_goes_once_other_filters_are_read() {
    let _one_at_a_time = ONE_AT_A_TIME.lock().await;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    let Some((_ui, _driver, browser, _profile)) = slow_page(&sandbox, &path).await else {
        return;
    };
    let apply = "document.getElementById('f-q').value = arguments[0];
        document.getElementById('f-type').value = arguments[1];
        document.getElementById('filters').requestSubmit();
        return 1";
    browser.js(apply, json!([slow_search(), ""])).await;
    browser
        .wait_js(
            "the stopped search, said where the rows would be",
            "const empty = document.getElementById('empty');
             return !empty.hidden && empty.textContent.includes('was stopped')",
        )
        .await;

    // Other filters, applied while the store cannot be read: their first load fails.
    set_events_readable(&path, false);
    browser.js(apply, json!(["", "message.none"])).await;
    browser
        .wait_js(
            "the failed load",
            "const live = document.getElementById('live');
             return live.className.includes('off') && live.textContent.includes('the store failed')",
        )
        .await;

    // Readable again; a new event (of another type) makes the page refresh: the list of these
    // filters is read, and holds nothing.
    set_events_readable(&path, true);
    let store = SqliteStore::open(&path, SqliteOptions::default()).expect("open");
    add(&store, "h-after", "message.sent").await;
    browser
        .wait_js(
            "the refresh after the change",
            &format!(
                "return document.getElementById('c-received').textContent === '{}'
                    && document.getElementById('live').textContent === 'live'",
                EVENTS + 1
            ),
        )
        .await;
    let empty = browser
        .js(
            "const empty = document.getElementById('empty');
             return [document.querySelectorAll('#events tbody tr').length, empty.hidden,
                     empty.textContent]",
            json!([]),
        )
        .await;
    assert_eq!(empty, json!([0, false, "No events match."]));
    browser.quit().await;
    store.close().await;
}
