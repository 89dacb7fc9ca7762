//! The view in real headless Chromium (Debian's `chromium` and `chromedriver`), driven over
//! WebDriver: the real `ccai ui` / `ccai listen --ui` processes, a real SQLite inbox, a real forward
//! target. Without Chromium each test passes without running; it prints "skipped: chromium not
//! installed", which `--nocapture` shows.
//!
//! `CCAI_UI_SCREENSHOT=path` saves a screenshot of the page (the README's docs/ui.png).

mod common;
mod ui_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use ccai::inbox::{DeliveryStatus, Store};
use common::{recorder, Sandbox};
use serde_json::{json, Value};
use tokio::sync::{Mutex, MutexGuard};
use ui_support::{
    add, chromium_available, fill, fill_two_accounts, inbox_path, listen_with_ui,
    set_events_readable, start_ui, start_ui_on, wait_for, Driver, Session, CLIENT, CLIENT_ONLY,
    CUSTOM_NEW, EXCLUDED_DUP, INCOMING_DEAD, OTHER_CLIENT, SENT_OLD, SENT_PENDING, SHARED,
};

/// One browser at a time: the machine has two cores.
static BROWSER: Mutex<()> = Mutex::const_new(());

/// What every test here starts with: `None` (the test is skipped, saying why) without Chromium;
/// else the turn to use it (one browser test at a time), a sandbox, and the inbox's path in it.
async fn setup() -> Option<(MutexGuard<'static, ()>, Sandbox, PathBuf)> {
    if !chromium_available() {
        return None;
    }
    let turn = BROWSER.lock().await;
    let sandbox = Sandbox::new();
    let path = inbox_path(&sandbox);
    Some((turn, sandbox, path))
}

const ROWS: &str =
    "return [...document.querySelectorAll('#events tbody tr')].map(r => r.dataset.hash)";

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The details panel as a person sees it: whether it is shown, the event it holds (`hash`, null
/// when none), its whole text, the bodies, whether Replay and Retry now are on screen, and the
/// message it shows instead of an event.
const DETAIL: &str = "const d = document.getElementById('detail');
    const shown = (id) => document.getElementById(id).getClientRects().length > 0;
    return {
        hidden: d.hidden,
        hash: d.dataset.hash ?? null,
        text: d.innerText,
        raw: document.getElementById('body-raw').textContent,
        pretty: document.getElementById('body-pretty').textContent,
        replay: shown('replay'),
        retry: shown('retry'),
        message: shown('detail-message') ? document.getElementById('detail-message').textContent : null,
        live: document.getElementById('live').className,
    }";

/// A new browser session (its own profile) on `url`, once the page's first load is done.
/// Opens `hash`'s details (of `CLIENT`) with a click on its row's link, and waits until they
/// show it.
async fn open_detail(browser: &Session, hash: &str) {
    browser
        .click(&format!(
            "#events a[href='#/event/{hash}?clientId={CLIENT}']"
        ))
        .await;
    browser
        .wait_js(
            "the detail",
            &format!("return document.getElementById('detail').dataset.hash === '{hash}'"),
        )
        .await;
}

async fn open_page(
    driver: &Driver,
    url: &str,
    width: u32,
    height: u32,
) -> (Session, tempfile::TempDir) {
    let profile = tempfile::tempdir().expect("profile");
    let session = driver.session(profile.path(), width, height).await;
    session.goto(url).await;
    session
        .wait_js(
            "the first page",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    (session, profile)
}

#[tokio::test]
async fn ui_browser_lists_goes_live_filters_and_shows_details() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;

    // The list, newest first.
    assert_eq!(
        strings(&browser.js(ROWS, json!([])).await),
        [
            CUSTOM_NEW,
            SENT_PENDING,
            EXCLUDED_DUP,
            INCOMING_DEAD,
            SENT_OLD
        ]
    );
    let row = browser
        .js(
            "const r = document.querySelector(`#events tr[data-hash='${arguments[0]}']`); return r.innerText",
            json!([EXCLUDED_DUP]),
        )
        .await;
    let row = row.as_str().expect("text");
    for part in [
        "pending",
        "message.excluded",
        "c3c3c3c3c3c3",
        "×2",
        "conflict",
    ] {
        assert!(row.contains(part), "{part} in {row:?}");
    }
    browser.wait_live().await;

    // A new delivery appears on top without a reload.
    browser
        .js("window.notReloaded = true; return 1", json!([]))
        .await;
    add(&store, "f6f6f6f6f6f6f6f6-live", "message.sent").await;
    browser
        .wait_js(
            "the new row",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'f6f6f6f6f6f6f6f6-live'",
        )
        .await;
    assert_eq!(
        browser
            .js("return window.notReloaded === true", json!([]))
            .await,
        true
    );
    browser
        .wait_js(
            "the counter",
            "return document.getElementById('c-received').textContent === '6'",
        )
        .await;
    let bars = browser
        .js(
            "return document.querySelectorAll('#chart span').length",
            json!([]),
        )
        .await;
    assert_eq!(bars, 60, "one bar per minute of the last hour");

    // The detail view, opened from the list with a click: the body exactly as received (its
    // markup as text, not as HTML), typed fields, attempts; keyboard focus moves to it.
    open_detail(&browser, INCOMING_DEAD).await;
    let detail = browser
        .js(
            "return {
                raw: document.getElementById('body-raw').textContent,
                pretty: document.getElementById('body-pretty').textContent,
                typed: document.getElementById('typed').innerText,
                attempts: [...document.querySelectorAll('#attempts tbody tr')].map(r => r.innerText),
                fields: document.getElementById('fields').innerText,
                markup: document.querySelectorAll('#detail b').length,
                focused: document.activeElement.id,
                retry: document.getElementById('retry').disabled,
            }",
            json!([]),
        )
        .await;
    let raw = String::from_utf8(ui_support::body(
        "message.incoming",
        INCOMING_DEAD,
        r#"{"From":"+14155550133","Message":"see you <b>soon</b>"}"#,
    ))
    .expect("utf-8");
    assert_eq!(detail["raw"], raw.as_str());
    assert!(detail["pretty"]
        .as_str()
        .is_some_and(|p| p.contains("\n  \"data\": {")));
    assert!(
        detail["typed"]
            .as_str()
            .is_some_and(|t| t.contains("+14155550133")),
        "{detail}"
    );
    let attempts = strings(&detail["attempts"]);
    assert_eq!(attempts.len(), 1, "{detail}");
    assert!(
        attempts[0].contains("500") && attempts[0].contains("boom"),
        "{attempts:?}"
    );
    let signature = ui_support::signature_of(INCOMING_DEAD);
    let fields = detail["fields"].as_str().expect("fields");
    assert!(
        fields.contains(&format!("{}…", &signature[..6])),
        "{fields}"
    );
    assert!(!fields.contains(&signature));
    assert_eq!(detail["markup"], 0, "the body's <b> is text");
    assert_eq!(detail["focused"], "detail");
    assert_eq!(detail["retry"], false, "a dead event can be retried");

    if let Some(path) = std::env::var_os("CCAI_UI_SCREENSHOT") {
        // Let the "new row" highlight fade first.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        browser
            .js("window.scrollTo(0, 0); return 1", json!([]))
            .await;
        std::fs::write(path, browser.screenshot().await).expect("write the screenshot");
    }

    // Retry now: the dead event is pending again.
    browser.click("#retry").await;
    wait_for("the retry", async || {
        let event = store.get(INCOMING_DEAD).await.ok()??;
        (event.summary.deliveries[0].status == DeliveryStatus::Pending).then_some(())
    })
    .await;
    browser
        .wait_js(
            "the retry's answer",
            "return document.getElementById('action-status').textContent.startsWith('Retrying now')",
        )
        .await;
    // The event is no longer dead: the button it was pressed with is disabled, and keyboard
    // focus stays in the details rather than going back to the top of the page.
    browser
        .wait_js(
            "the button disabled",
            "return document.getElementById('retry').disabled",
        )
        .await;
    let focused = browser
        .js(
            "return document.getElementById('detail').contains(document.activeElement)",
            json!([]),
        )
        .await;
    assert_eq!(focused, true, "keyboard focus left the details");

    // Filters: type, then text; Clear brings everything back.
    browser.click("#close").await;
    browser.type_into("#f-type", "message.sent").await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the type filter",
            "return document.querySelectorAll('#events tbody tr').length === 3",
        )
        .await;
    assert_eq!(
        strings(&browser.js(ROWS, json!([])).await),
        ["f6f6f6f6f6f6f6f6-live", SENT_PENDING, SENT_OLD]
    );
    let download = browser
        .js(
            "return document.getElementById('download').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(download, "/api/events.ndjson?type=message.sent");
    browser.click("#clear").await;
    browser.type_into("#f-q", "opted out").await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the text filter",
            "return document.querySelectorAll('#events tbody tr').length === 1",
        )
        .await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await), [EXCLUDED_DUP]);
    browser.quit().await;

    // Phone width: nothing wider than the screen, the list included; and by keyboard alone,
    // Enter on a row's link opens its details (focused), Escape closes them.
    let (phone, _phone_profile) = open_page(&driver, &ui.url, 360, 800).await;
    let widths = phone
        .js(
            "const list = document.querySelector('.list');
             return [document.documentElement.scrollWidth, window.innerWidth, list.scrollWidth, list.clientWidth]",
            json!([]),
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64() && widths[2].as_u64() <= widths[3].as_u64(),
        "the page scrolls sideways at phone width: {widths}"
    );
    let link = format!("#events a[href='#/event/{SENT_OLD}?clientId={CLIENT}']");
    phone.press(&link, "\u{E007}").await;
    phone
        .wait_js(
            "the details, focused",
            &format!(
                "const d = document.getElementById('detail');
                 return d.dataset.hash === '{SENT_OLD}' && document.activeElement === d"
            ),
        )
        .await;
    phone.press("#detail", "\u{E00C}").await;
    phone
        .wait_js("closed", "return document.getElementById('detail').hidden")
        .await;
    // Keyboard focus goes back to the row the details were opened from, not to the top of the
    // page.
    let focused = phone
        .js(
            "return document.activeElement.getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(focused, format!("#/event/{SENT_OLD}?clientId={CLIENT}"));
    // The same with the Close button.
    phone.press(&link, "\u{E007}").await;
    phone
        .wait_js(
            "the details again",
            "return !document.getElementById('detail').hidden",
        )
        .await;
    phone.press("#close", "\u{E007}").await;
    phone
        .wait_js("closed", "return document.getElementById('detail').hidden")
        .await;
    let focused = phone
        .js(
            "return document.activeElement.getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(focused, format!("#/event/{SENT_OLD}?clientId={CLIENT}"));
    phone.quit().await;
}

#[tokio::test]
async fn ui_browser_replay_button_reaches_the_forward_target() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let forward = format!("{}/hook", target.url);
    let (listening, ui_url) = listen_with_ui(&sandbox, &path, &["--forward-to", &forward]);

    // A signed delivery, forwarded once.
    let hash = "0a0a0a0a0a0a0a0a-replayed";
    let body = ui_support::body("message.sent", hash, r#"{"To":"+14155550100"}"#);
    let response = reqwest::Client::new()
        .post(&listening.url)
        .header("content-type", "application/json")
        .header("x-ccai-signature", ui_support::signature_of(hash))
        .body(body.clone())
        .send()
        .await
        .expect("deliver");
    assert_eq!(response.status().as_u16(), 200);
    let forwarded = async |n: usize| {
        wait_for("the forward", async || {
            (target.requests.lock().expect("lock").len() >= n).then_some(())
        })
        .await
    };
    forwarded(1).await;

    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile");
    let browser = driver.session(profile.path(), 1280, 800).await;
    browser.goto(&ui_url).await;
    browser
        .wait_js(
            "the event",
            &format!("return !!document.querySelector(\"#events tr[data-hash='{hash}']\")"),
        )
        .await;
    browser
        .click(&format!(
            "#events a[href='#/event/{hash}?clientId={CLIENT}']"
        ))
        .await;
    browser
        .wait_js(
            "one attempt, delivered",
            "const d = document.getElementById('detail'); return d.dataset.attempts === '1' && d.innerText.includes('delivered')",
        )
        .await;

    // Replay: a new attempt reaches the target with the exact body, and the open detail view
    // shows it without a reload.
    browser.click("#replay").await;
    forwarded(2).await;
    let requests = target.requests.lock().expect("lock").clone();
    assert_eq!(requests[1].body.as_ref(), body.as_slice());
    assert_eq!(
        requests[1].header("x-ccai-signature"),
        Some(ui_support::signature_of(hash))
    );
    browser
        .wait_js(
            "the second attempt in the view",
            "return document.getElementById('detail').dataset.attempts === '2'",
        )
        .await;
    // The delivery and the list both count the two attempts the view lists (the list counted
    // the replayed schedule's one).
    browser
        .wait_js(
            "both attempts counted",
            &format!(
                "const d = document.querySelector('#deliveries tbody tr');
                 const r = document.querySelector(\"#events tr[data-hash='{hash}'] td[data-label='attempts']\");
                 return !!d && d.innerText.includes('2 (1 since replayed)') && !!r && r.innerText === '2'"
            ),
        )
        .await;
    browser.quit().await;
}

/// An eventHash is whatever the sender signed, `.` and `..` included. As a path segment either
/// is removed by the browser before the request is sent (`/api/events/..` is `/api/`, and
/// `%2E%2E` too), so the details of such an event said "no such page", and Replay could not
/// reach it.
#[tokio::test]
async fn ui_browser_events_hashed_dot_and_dot_dot_open_and_replay() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let target = recorder(|_| (StatusCode::OK, "{}".into())).await;
    let forward = format!("{}/hook", target.url);
    let (listening, ui_url) = listen_with_ui(&sandbox, &path, &["--forward-to", &forward]);
    let hashes = [".", ".."];
    let mut bodies = Vec::new();
    for hash in hashes {
        bodies.push(ui_support::deliver(&listening.url, hash, "message.sent").await);
    }
    let sent = || -> Vec<Vec<u8>> {
        let requests = target.requests.lock().expect("lock");
        requests.iter().map(|r| r.body.to_vec()).collect()
    };
    wait_for("both forwarded", async || (sent().len() >= 2).then_some(())).await;

    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui_url, 1280, 800).await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await), ["..", "."]);
    browser.wait_live().await;
    for (n, (hash, body)) in hashes.iter().zip(&bodies).enumerate() {
        // A click on the row's link: the event's details, its body exactly as received.
        open_detail(&browser, hash).await;
        browser
            .wait_js(
                "one attempt, delivered",
                "const d = document.getElementById('detail'); return d.dataset.attempts === '1' && d.innerText.includes('delivered')",
            )
            .await;
        let detail = browser.js(DETAIL, json!([])).await;
        assert_eq!(detail["message"], Value::Null, "{hash}: {detail}");
        assert_eq!(
            detail["raw"].as_str().map(str::as_bytes),
            Some(body.as_slice()),
            "{hash}: {detail}"
        );
        assert_eq!(detail["replay"], true, "{hash}: {detail}");

        // Replay: the target gets it again, byte for byte, and the details show the attempt.
        browser.click("#replay").await;
        wait_for("the replay", async || (sent().len() >= 3 + n).then_some(())).await;
        assert_eq!(sent()[2 + n], *body, "{hash}");
        browser
            .wait_js(
                "the replay's answer",
                "return document.getElementById('action-status').textContent.startsWith('Replayed: 1 delivery')",
            )
            .await;
        browser
            .wait_js(
                "the second attempt in the view",
                "return document.getElementById('detail').dataset.attempts === '2'",
            )
            .await;
    }
    browser.quit().await;
}

/// Replay all matching: with the list filtered by status dead, one confirmed click makes every
/// dead event due again; the page says how many were, and how many were skipped for their
/// purged body; the forward target then receives them.
#[tokio::test]
async fn ui_browser_replays_every_event_the_filter_matches() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    // The target refuses the events whose hash ends in "-dead" until told otherwise: with one
    // retry 100 ms after the first attempt, each is dead in a moment.
    let refusing = Arc::new(AtomicBool::new(true));
    let refuses = Arc::clone(&refusing);
    let target = recorder(move |request| {
        let dead = String::from_utf8_lossy(&request.body).contains("-dead\"");
        if dead && refuses.load(Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, "{}".into())
        } else {
            (StatusCode::OK, "{}".into())
        }
    })
    .await;
    let forward = format!("{}/hook", target.url);
    let (listening, ui_url) = listen_with_ui(
        &sandbox,
        &path,
        &["--forward-to", &forward, "--retry-schedule", "100ms"],
    );
    let received = |hash: &str| {
        let needle = format!("\"eventHash\":\"{hash}\"");
        let requests = target.requests.lock().expect("lock");
        requests
            .iter()
            .filter(|r| String::from_utf8_lossy(&r.body).contains(&needle))
            .count()
    };
    let dead = async |hashes: &[&str]| {
        let url = format!("{ui_url}api/events?status=dead");
        wait_for("the dead events", async || {
            let page: Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            let listed = strings(&Value::Array(
                page["events"]
                    .as_array()?
                    .iter()
                    .map(|e| e["eventHash"].clone())
                    .collect(),
            ));
            hashes
                .iter()
                .all(|h| listed.iter().any(|l| l == h))
                .then_some(())
        })
        .await
    };

    // One dead event whose body is then purged (it is finished, and over a second old).
    let purged = "0b0b0b0b0b0b0b0b-purged-dead";
    ui_support::deliver(&listening.url, purged, "message.sent").await;
    dead(&[purged]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    purge(&sandbox, &path, "1s", "90d").await;
    // Three dead with their bodies, and one delivered, which the filter leaves out.
    let kept = [
        "1c1c1c1c1c1c1c1c-dead",
        "2d2d2d2d2d2d2d2d-dead",
        "3e3e3e3e3e3e3e3e-dead",
    ];
    for hash in kept {
        ui_support::deliver(&listening.url, hash, "message.sent").await;
    }
    let fine = "4f4f4f4f4f4f4f4f-fine";
    ui_support::deliver(&listening.url, fine, "message.sent").await;
    dead(&kept).await;
    wait_for("the delivered one", async || {
        (received(fine) == 1).then_some(())
    })
    .await;
    for hash in kept {
        assert_eq!(received(hash), 2, "{hash}: two attempts, then dead");
    }

    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui_url, 1280, 800).await;
    browser.wait_live().await;
    // No bulk replay of everything: a status or a type first.
    let button = browser
        .js(
            "const b = document.getElementById('bulk-replay'); return [b.disabled, b.title]",
            json!([]),
        )
        .await;
    assert_eq!(button[0], true, "{button}");
    assert!(
        button[1]
            .as_str()
            .is_some_and(|t| t.contains("status or type")),
        "{button}"
    );
    browser
        .js(
            "document.getElementById('f-status').value = 'dead'; return 1",
            json!([]),
        )
        .await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the dead events listed",
            "return document.querySelectorAll('#events tbody tr').length === 4
                && !document.getElementById('bulk-replay').disabled",
        )
        .await;

    // Asked first; Cancel leaves everything as it was.
    browser.click("#bulk-replay").await;
    let question = browser
        .wait_js(
            "the question",
            "const b = document.getElementById('bulk');
             return b.getClientRects().length > 0 && document.getElementById('bulk-question').textContent",
        )
        .await;
    let question = question.as_str().expect("text");
    assert!(
        question.contains("status dead") && question.contains("The list shows 4 events."),
        "{question}"
    );
    browser.click("#bulk-cancel").await;
    browser
        .wait_js(
            "the question gone",
            "return document.getElementById('bulk').hidden",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        strings(&browser.js(ROWS, json!([])).await).len(),
        4,
        "nothing replayed"
    );

    // Confirmed: the three with a body are due again, the purged one is skipped and said so.
    refusing.store(false, Ordering::SeqCst);
    browser.click("#bulk-replay").await;
    browser.click("#bulk-confirm").await;
    let said = browser
        .wait_js(
            "the outcome",
            "const s = document.getElementById('bulk-status').textContent;
             return s.startsWith('Bulk replay:') && s",
        )
        .await;
    assert_eq!(
        said,
        "Bulk replay: 3 deliveries made due; 1 event skipped: its body was purged, so there is nothing to send."
    );
    assert_eq!(
        browser
            .js("return document.getElementById('bulk').hidden", json!([]))
            .await,
        true
    );
    // The target receives each again, now accepting it; the one delivered is not sent again,
    // and the list of dead events keeps the purged one alone.
    wait_for("the replays", async || {
        kept.iter().all(|h| received(h) == 3).then_some(())
    })
    .await;
    assert_eq!(received(fine), 1, "the delivered event is not replayed");
    assert_eq!(received(purged), 2, "the purged event is not sent");
    browser
        .wait_js(
            "the dead list",
            &format!(
                "const rows = [...document.querySelectorAll('#events tbody tr')];
                 return rows.length === 1 && rows[0].dataset.hash === '{purged}'"
            ),
        )
        .await;
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_keeps_the_token_and_shows_nothing_without_it() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    let chosen = "a-chosen-token-for-the-view";
    let ui = start_ui(&sandbox, &path, &["--token", chosen]);
    // A token the user chose is not printed: the URL shows where it goes.
    assert!(ui.url.ends_with("/?token=TOKEN"), "{}", ui.url);
    let driver = Driver::start().await;

    let with_token = format!("{}/?token={chosen}", ui.base);
    let (browser, _profile) = open_page(&driver, &with_token, 1280, 800).await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await).len(), 5);
    browser.wait_live().await;
    let address = browser.js("return location.href", json!([])).await;
    assert!(
        !address.as_str().unwrap_or_default().contains("token"),
        "the token left the address bar: {address}"
    );
    browser.quit().await;

    let profile = tempfile::tempdir().expect("profile");
    let stranger = driver.session(profile.path(), 1280, 800).await;
    stranger.goto(&format!("{}/", ui.base)).await;
    stranger
        .wait_js(
            "the notice",
            "return !document.getElementById('auth').hidden",
        )
        .await;
    assert_eq!(strings(&stranger.js(ROWS, json!([])).await).len(), 0);
    stranger.quit().await;
}

/// Every attribute of every element whose value holds `arguments[0]`, as `TAG name=value`.
const HOLDING: &str = "const found = [];
    for (const node of document.querySelectorAll('*')) {
        for (const attr of node.attributes) {
            if (attr.value.includes(arguments[0])) found.push(node.tagName + ' ' + attr.name + '=' + attr.value);
        }
    }
    return found";

/// Waits until the browser has saved one download in `dir`, and left none of the files it
/// writes meanwhile (`.org.chromium.Chromium.*`, `*.crdownload`); its file name and bytes.
async fn downloaded(dir: &Path) -> (String, Vec<u8>) {
    let name = wait_for("the download", async || {
        let names: Vec<String> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        match names.as_slice() {
            [name] if !name.starts_with('.') && !name.ends_with(".crdownload") => {
                Some(name.clone())
            }
            _ => None,
        }
    })
    .await;
    let bytes = std::fs::read(dir.join(&name)).expect("read the download");
    (name, bytes)
}

/// The bytes of `GET path` from the view at `base`, with `token` as a bearer token if given.
async fn fetched(base: &str, path: &str, token: Option<&str>) -> Vec<u8> {
    let mut request = reqwest::Client::new().get(format!("{base}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("GET");
    assert_eq!(response.status(), StatusCode::OK, "GET {path}");
    response.bytes().await.expect("body").to_vec()
}

/// Starts recording the page's Content Security Policy violations in `window.violations`.
const RECORD_VIOLATIONS: &str = "window.violations = [];
    document.addEventListener('securitypolicyviolation', (e) =>
        window.violations.push(e.violatedDirective + ' ' + e.blockedURI));
    return 1";

#[tokio::test]
async fn ui_browser_downloads_with_the_token_in_a_header_not_in_an_address() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    let token = "a-token-no-download-address-holds";
    let ui = start_ui(&sandbox, &path, &["--token", token]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile");
    let downloads = tempfile::tempdir().expect("downloads");
    let browser = driver
        .session_downloading_to(profile.path(), downloads.path(), 1280, 800)
        .await;
    browser.goto(&format!("{}/?token={token}", ui.base)).await;
    browser
        .wait_js(
            "the first page",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    browser.wait_live().await;
    browser.js(RECORD_VIOLATIONS, json!([])).await;

    // One event's details open, the list filtered: no link, button or other element holds the
    // token, so it cannot reach the browser's downloads list, its history or a proxy's log.
    browser.type_into("#f-type", "message.incoming").await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the type filter",
            "return document.querySelectorAll('#events tbody tr').length === 1",
        )
        .await;
    open_detail(&browser, INCOMING_DEAD).await;
    assert_eq!(
        strings(&browser.js(HOLDING, json!([token])).await),
        Vec::<String>::new(),
        "elements holding the token"
    );

    // The download: the filtered list exactly as the API serves it, under the server's name.
    browser.click("#download").await;
    let (name, bytes) = downloaded(downloads.path()).await;
    assert_eq!(name, "ccai-events.ndjson");
    let expected = fetched(
        &ui.base,
        "/api/events.ndjson?type=message.incoming",
        Some(token),
    )
    .await;
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected)
    );
    let line: Value = serde_json::from_slice(&bytes).expect("one JSON line");
    assert_eq!(line["eventHash"], INCOMING_DEAD);

    // Asked for with the token in a header: no address the page requested for it names the token.
    let asked = strings(
        &browser
            .js(
                "return performance.getEntriesByType('resource').map((e) => e.name).filter((u) => u.includes('/api/events.ndjson'))",
                json!([]),
            )
            .await,
    );
    assert!(!asked.is_empty(), "the page did not fetch the download");
    for address in &asked {
        assert!(!address.contains(token), "the token in {address}");
    }
    assert_eq!(
        strings(&browser.js(HOLDING, json!([token])).await),
        Vec::<String>::new(),
        "elements holding the token after the download"
    );
    assert_eq!(
        strings(&browser.js("return window.violations", json!([])).await),
        Vec::<String>::new(),
        "Content Security Policy violations"
    );
    browser.quit().await;

    // Without a token (on the loopback) the link downloads as it always did.
    let open_ui = start_ui(&sandbox, &path, &[]);
    let profile = tempfile::tempdir().expect("profile");
    let downloads = tempfile::tempdir().expect("downloads");
    let browser = driver
        .session_downloading_to(profile.path(), downloads.path(), 1280, 800)
        .await;
    browser.goto(&open_ui.url).await;
    browser
        .wait_js(
            "the first page",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    browser.click("#download").await;
    let (name, bytes) = downloaded(downloads.path()).await;
    assert_eq!(name, "ccai-events.ndjson");
    let expected = fetched(&open_ui.base, "/api/events.ndjson", None).await;
    assert_eq!(
        String::from_utf8_lossy(&bytes),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 5);
    browser.quit().await;
}

/// WebDriver's key codes for Control and Shift.
const CONTROL: &str = "\u{E009}";
const SHIFT: &str = "\u{E008}";

/// A middle-click, or a click with Ctrl or Shift held, on "Download NDJSON" in a view with a
/// token downloads it with the token as a plain click does. They followed the link's address
/// without the token (a new tab or window, on a bare 401). A tab given that address (a copied
/// link, the context menu's "open in new tab") shows a text saying to use the view's button.
#[tokio::test]
async fn ui_browser_a_middle_or_modifier_click_downloads_with_the_token_too() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    let token = "a-token-every-click-must-carry";
    let ui = start_ui(&sandbox, &path, &["--token", token]);
    let expected = fetched(&ui.base, "/api/events.ndjson", Some(token)).await;
    let driver = Driver::start().await;
    for (what, button, keys) in [
        ("a middle-click", 1, &[][..]),
        ("a Ctrl+click", 0, &[CONTROL][..]),
        ("a Shift+click", 0, &[SHIFT][..]),
    ] {
        let profile = tempfile::tempdir().expect("profile");
        let downloads = tempfile::tempdir().expect("downloads");
        let browser = driver
            .session_downloading_to(profile.path(), downloads.path(), 1280, 800)
            .await;
        browser.goto(&format!("{}/?token={token}", ui.base)).await;
        browser
            .wait_js(
                "the first page",
                "return document.body.dataset.ready === '1'",
            )
            .await;
        browser.wait_live().await;
        browser.click_as("#download", button, keys).await;
        // The download, or the tab or window that followed the address without the token.
        let outcome = wait_for(what, async || {
            if browser.windows().await > 1 {
                return Some(Err("it opened the link's address in another tab or window"));
            }
            let saved = std::fs::read_dir(downloads.path()).ok()?.any(|entry| {
                entry
                    .ok()
                    .and_then(|e| e.file_name().into_string().ok())
                    .is_some_and(|name| !name.starts_with('.') && !name.ends_with(".crdownload"))
            });
            saved.then_some(Ok(()))
        })
        .await;
        assert_eq!(outcome, Ok(()), "{what}");
        let (name, bytes) = downloaded(downloads.path()).await;
        assert_eq!(name, "ccai-events.ndjson", "{what}");
        assert_eq!(
            String::from_utf8_lossy(&bytes),
            String::from_utf8_lossy(&expected),
            "{what}"
        );
        assert_eq!(browser.windows().await, 1, "{what}");
        browser.quit().await;
    }

    // The address pasted into a tab of the browser that holds the token: the text, not a JSON
    // error a person has to decipher, and not the token.
    let profile = tempfile::tempdir().expect("profile");
    let browser = driver.session(profile.path(), 1280, 800).await;
    browser.goto(&format!("{}/?token={token}", ui.base)).await;
    browser
        .wait_js(
            "the first page",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    browser
        .goto(&format!("{}/api/events.ndjson?type=message.sent", ui.base))
        .await;
    let shown = browser
        .js("return document.body.innerText", json!([]))
        .await;
    let shown = shown.as_str().unwrap_or_default();
    assert!(
        shown.starts_with("401 Unauthorized: this download needs the ccai view's token."),
        "{shown}"
    );
    assert!(
        shown.contains("Use the \"Download NDJSON\" button in the view"),
        "{shown}"
    );
    assert!(!shown.contains(token), "{shown}");
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_older_pages_stay_stable_while_events_arrive() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    // 5 fixtures and 55 more: two pages of 50.
    for n in 0..55 {
        add(&store, &format!("{n:016x}-bulk"), "message.sent").await;
    }
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await).len(), 50);
    browser.click("#older").await;
    browser
        .wait_js(
            "the older page",
            "return document.querySelectorAll('#events tbody tr').length === 60",
        )
        .await;
    assert_eq!(
        browser
            .js("return document.getElementById('older').hidden", json!([]))
            .await,
        true,
        "no third page"
    );
    let before = strings(&browser.js(ROWS, json!([])).await);
    assert_eq!(before.last().map(String::as_str), Some(SENT_OLD));
    // The button is gone with the last page: keyboard focus goes to the first row it loaded,
    // not back to the top of the page.
    let focused = browser
        .js(
            "return document.activeElement.getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(focused, format!("#/event/{}?clientId={CLIENT}", before[50]));

    // A new event goes on top; the rows already shown stay, in their order, once each.
    add(&store, "ffffffffffffffff-latest", "message.sent").await;
    browser
        .wait_js(
            "the new row",
            "return document.querySelectorAll('#events tbody tr').length === 61",
        )
        .await;
    let after = strings(&browser.js(ROWS, json!([])).await);
    assert_eq!(after[0], "ffffffffffffffff-latest");
    assert_eq!(after[1..], before[..]);
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_live_updates_keep_the_applied_filters_not_the_ones_being_typed() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;

    // Text typed in a filter, not applied yet (only INCOMING_DEAD's body holds it): the list
    // still shows every event, so a new one appears on top.
    browser.type_into("#f-q", "+14155550133").await;
    add(&store, "f6f6f6f6f6f6f6f6-typing", "message.sent").await;
    browser
        .wait_js(
            "the new row despite the filter being typed",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'f6f6f6f6f6f6f6f6-typing'",
        )
        .await;
    assert_eq!(
        strings(&browser.js(ROWS, json!([])).await),
        [
            "f6f6f6f6f6f6f6f6-typing",
            CUSTOM_NEW,
            SENT_PENDING,
            EXCLUDED_DUP,
            INCOMING_DEAD,
            SENT_OLD
        ]
    );

    // Applied, it holds for the next live update too.
    browser.click("#apply").await;
    browser
        .wait_js(
            "the text filter",
            "return document.querySelectorAll('#events tbody tr').length === 1",
        )
        .await;
    add(&store, "a7a7a7a7a7a7a7a7-filtered-out", "message.sent").await;
    browser
        .wait_js(
            "the counter",
            "return document.getElementById('c-received').textContent === '7'",
        )
        .await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await), [INCOMING_DEAD]);
    browser.quit().await;
}

/// `ccai events purge --older-than OLDER --keep-hashes-for KEEP` on the inbox at `path`, as
/// another process would run it while the view is open.
async fn purge(sandbox: &Sandbox, path: &Path, older: &str, keep: &str) {
    let mut cmd = sandbox.ccai();
    cmd.args([
        "events",
        "purge",
        "--older-than",
        older,
        "--keep-hashes-for",
        keep,
    ])
    .arg("--store")
    .arg(path);
    let out = common::run(cmd).await;
    assert!(out.status.success(), "{}", common::stderr(&out));
}

#[tokio::test]
async fn ui_browser_an_event_whose_body_was_purged_offers_no_replay() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    // Bodies older than an hour go (SENT_OLD's, 3 hours old, delivered); the rows stay.
    purge(&sandbox, &path, "1h", "90d").await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;
    open_detail(&browser, SENT_OLD).await;
    let detail = browser
        .js(
            "return {
                raw: document.getElementById('body-raw').textContent,
                replay: document.getElementById('replay').disabled,
                retry: document.getElementById('retry').disabled,
                why: document.getElementById('replay').title,
            }",
            json!([]),
        )
        .await;
    assert_eq!(detail["raw"], "(purged)", "{detail}");
    assert_eq!(
        detail["replay"], true,
        "Replay offered for a purged body: {detail}"
    );
    assert_eq!(detail["retry"], true, "{detail}");
    assert!(
        detail["why"].as_str().is_some_and(|t| t.contains("purged")),
        "{detail}"
    );

    // An event whose body is kept still offers Replay.
    open_detail(&browser, INCOMING_DEAD).await;
    let kept = browser
        .js(
            "return [document.getElementById('replay').disabled, document.getElementById('replay').title]",
            json!([]),
        )
        .await;
    assert_eq!(kept, json!([false, ""]), "{kept}");
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_the_open_details_of_a_purged_event_say_it_is_gone() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;

    // The details of a delivered event are open when another process purges it: the refresh
    // that follows finds no such event, and the details say so instead of showing it still.
    open_detail(&browser, SENT_OLD).await;
    purge(&sandbox, &path, "1s", "1s").await;
    browser
        .wait_js(
            "the event gone from the details",
            "return document.getElementById('detail-message').textContent.includes('no event with hash')",
        )
        .await;
    let detail = browser.js(DETAIL, json!([])).await;
    assert_eq!(detail["hidden"], false, "{detail}");
    assert_eq!(detail["hash"], Value::Null, "{detail}");
    assert_eq!(detail["raw"], "", "{detail}");
    assert_eq!(detail["replay"], false, "{detail}");
    assert_eq!(detail["retry"], false, "{detail}");
    // The list and the counters were refreshed: the live updates work.
    assert_eq!(detail["live"], "live on", "{detail}");

    // Closed, the next change still reaches the list.
    browser.click("#close").await;
    add(&store, "f8f8f8f8f8f8f8f8-after", "message.sent").await;
    browser
        .wait_js(
            "the new row",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'f8f8f8f8f8f8f8f8-after'",
        )
        .await;
    browser.wait_live().await;
    let live = browser
        .js(
            "return document.getElementById('live').className",
            json!([]),
        )
        .await;
    assert_eq!(live, "live on");
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_more_new_events_than_a_page_leave_no_gap() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await).len(), 5);

    // The view stops; 60 events arrive, more than a page; it starts again and the page
    // reconnects to it.
    let port = ui.port();
    drop(ui);
    for n in 0..60 {
        add(&store, &format!("{n:016x}-while-away"), "message.sent").await;
    }
    let ui = start_ui_on(&sandbox, &path, port, &[]);
    browser
        .wait_js(
            "the newest event on top",
            &format!(
                "return document.querySelector('#events tbody tr')?.dataset.hash === '{:016x}-while-away'",
                59
            ),
        )
        .await;

    // The list is the newest events with none left out between them, and the older ones are a
    // click away.
    let all: Vec<String> = (0..60)
        .rev()
        .map(|n| format!("{n:016x}-while-away"))
        .chain(
            [
                CUSTOM_NEW,
                SENT_PENDING,
                EXCLUDED_DUP,
                INCOMING_DEAD,
                SENT_OLD,
            ]
            .map(String::from),
        )
        .collect();
    let shown = strings(&browser.js(ROWS, json!([])).await);
    assert_eq!(shown[..], all[..shown.len()], "a gap in the list");
    browser.click("#older").await;
    browser
        .wait_js(
            "every event",
            "return document.querySelectorAll('#events tbody tr').length === 65",
        )
        .await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await), all);
    browser.quit().await;
    drop(ui);
}

#[tokio::test]
async fn ui_browser_right_to_left_overrides_cannot_disguise_a_value() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    // U+202E (right-to-left override) shows "abc\u{202e}gnp.exe" as "abcexe.png".
    let hash = "0c0c0c0c0c0c0c0c-rtl";
    let event_type = "message.incoming\u{202e}gnp.exe";
    let body = ui_support::body(
        event_type,
        hash,
        r#"{"From":"+14155550100","Message":"abc\u202egnp.exe"}"#,
    );
    store
        .insert(ccai::inbox::NewDelivery::new(
            ui_support::CLIENT,
            hash,
            event_type,
            body,
        ))
        .await
        .expect("insert");
    let typed = ui_support::body(
        "message.incoming",
        "0d0d0d0d0d0d0d0d-rtl",
        "{\"From\":\"+14155550100\",\"Message\":\"abc\u{202e}gnp.exe\"}",
    );
    store
        .insert(ccai::inbox::NewDelivery::new(
            ui_support::CLIENT,
            "0d0d0d0d0d0d0d0d-rtl",
            "message.incoming",
            typed,
        ))
        .await
        .expect("insert");
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;

    // The type in the list, the details' title and the typed fields show the override as an
    // escape, as the pretty body and `ccai events show` do.
    let row = browser
        .js(
            "return document.querySelector(`#events tr[data-hash='${arguments[0]}'] td[data-label='type']`).textContent",
            json!([hash]),
        )
        .await;
    assert_eq!(row, "message.incoming\\u{202e}gnp.exe");
    browser
        .goto(&format!("{}#/event/0d0d0d0d0d0d0d0d-rtl", ui.url))
        .await;
    browser
        .wait_js(
            "the detail",
            "return document.getElementById('detail').dataset.hash === '0d0d0d0d0d0d0d0d-rtl'",
        )
        .await;
    let message = browser
        .js(
            "const names = [...document.querySelectorAll('#typed dt')];
             const dt = names.find(d => d.textContent === 'message');
             return dt ? dt.nextElementSibling.textContent : null",
            json!([]),
        )
        .await;
    assert_eq!(message, "abc\\u{202e}gnp.exe");
    let shown = browser
        .js(
            "return ['events', 'detail-title', 'fields', 'typed']
                 .some(id => document.getElementById(id).textContent.includes('\\u202e'))",
            json!([]),
        )
        .await;
    assert_eq!(shown, false, "an override reached the list or the details");

    // The details of the event whose type carries the override: their title shows it escaped
    // too (it was the type as received).
    browser.goto(&format!("{}#/event/{hash}", ui.url)).await;
    browser
        .wait_js(
            "the detail",
            &format!("return document.getElementById('detail').dataset.hash === '{hash}'"),
        )
        .await;
    let title = browser
        .js(
            "return document.getElementById('detail-title').textContent",
            json!([]),
        )
        .await;
    assert!(
        title
            .as_str()
            .is_some_and(|t| t.starts_with("message.incoming\\u{202e}gnp.exe ")),
        "{title}"
    );
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_says_when_the_restarted_view_wants_another_token() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    let first = "the-first-token-for-the-view";
    let ui = start_ui(&sandbox, &path, &["--token", first]);
    let driver = Driver::start().await;
    let (browser, _profile) =
        open_page(&driver, &format!("{}/?token={first}", ui.base), 1280, 800).await;
    browser.wait_live().await;

    // The view starts again with another token (a generated one is new on every run): the
    // stream is refused, which a browser does not retry. The page says the token is needed
    // instead of "reconnecting…" for ever.
    let port = ui.port();
    drop(ui);
    let _ui = start_ui_on(
        &sandbox,
        &path,
        port,
        &["--token", "the-second-token-for-the-view"],
    );
    browser
        .wait_js(
            "the token notice",
            "return !document.getElementById('auth').hidden",
        )
        .await;
    let live = browser
        .js(
            "return document.getElementById('live').textContent",
            json!([]),
        )
        .await;
    assert_ne!(live, "reconnecting…");
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_a_row_that_leaves_the_filter_leaves_the_list() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;

    // The dead events; Retry now makes the one there is pending: the list of dead events no
    // longer shows it (it showed it as dead while its details said pending).
    browser
        .js(
            "document.getElementById('f-status').value = 'dead'; return 1",
            json!([]),
        )
        .await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the status filter",
            "return document.querySelectorAll('#events tbody tr').length === 1",
        )
        .await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await), [INCOMING_DEAD]);
    open_detail(&browser, INCOMING_DEAD).await;
    browser.click("#retry").await;
    wait_for("the retry", async || {
        let event = store.get(INCOMING_DEAD).await.ok()??;
        (event.summary.deliveries[0].status == DeliveryStatus::Pending).then_some(())
    })
    .await;
    browser
        .wait_js(
            "the row gone",
            "return document.querySelectorAll('#events tbody tr').length === 0
                && !document.getElementById('empty').hidden",
        )
        .await;
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_a_long_event_type_does_not_widen_the_list() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    // A type is whatever the body says: here 300 characters without a space.
    let long_type = format!("custom.{}", "t".repeat(300));
    add(&store, "0e0e0e0e0e0e0e0e-long-type", &long_type).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    for (width, height) in [(1280, 800), (360, 800)] {
        let (browser, _profile) = open_page(&driver, &ui.url, width, height).await;
        let widths = browser
            .js(
                "const list = document.querySelector('.list');
                 return [document.documentElement.scrollWidth, window.innerWidth, list.scrollWidth, list.clientWidth]",
                json!([]),
            )
            .await;
        assert!(
            widths[0].as_u64() <= widths[1].as_u64() && widths[2].as_u64() <= widths[3].as_u64(),
            "the list scrolls sideways at width {width}: {widths}"
        );
        let shown = browser
            .js(
                "return document.querySelector(\"#events tr[data-hash='0e0e0e0e0e0e0e0e-long-type'] td[data-label='type']\").textContent",
                json!([]),
            )
            .await;
        assert_eq!(shown, long_type.as_str(), "the whole type is shown");
        browser.quit().await;
    }
}

#[tokio::test]
async fn ui_browser_a_double_click_sends_one_action() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    open_detail(&browser, INCOMING_DEAD).await;

    // Two clicks on Retry now before the first is answered (a double click): one request. The
    // second used to be answered 409 (the event no longer dead) and show "Failed" for a retry
    // that worked.
    let sent = browser
        .js(
            "const sent = [];
             const fetch = window.fetch;
             window.fetch = (url, options) => { sent.push(String(url)); return fetch(url, options); };
             const retry = document.getElementById('retry');
             retry.click();
             retry.click();
             return sent.filter(url => url.includes('/retry?') && url.includes('clientId=1231')).length",
            json!([]),
        )
        .await;
    assert_eq!(sent, 1, "requests sent by a double click");
    browser
        .wait_js(
            "the retry's answer",
            "return document.getElementById('action-status').textContent.startsWith('Retrying now')",
        )
        .await;
    wait_for("the retry", async || {
        let event = store.get(INCOMING_DEAD).await.ok()??;
        (event.summary.deliveries[0].status == DeliveryStatus::Pending).then_some(())
    })
    .await;
    browser.quit().await;
}

/// A retry that worked, whose refresh after it fails (here the counters answer 503): the
/// outcome says the retry is done, and the refresh's failure is told where every refresh's is.
/// It said "Failed: …", which invites a second retry of an event already due.
#[tokio::test]
async fn ui_browser_an_action_that_worked_is_not_told_failed_for_the_refresh_after_it() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    open_detail(&browser, INCOMING_DEAD).await;
    browser
        .js(
            "const fetch = window.fetch;
             window.fetch = (url, options) => String(url).startsWith('/api/stats')
                 ? Promise.resolve(new Response(JSON.stringify({ error: 'the counters failed here' }),
                     { status: 503, headers: { 'Content-Type': 'application/json' } }))
                 : fetch(url, options);
             document.getElementById('retry').click();
             return 1",
            json!([]),
        )
        .await;
    browser
        .wait_js(
            "the refresh's failure, told",
            "return document.getElementById('live').textContent === 'the counters failed here'",
        )
        .await;
    let outcome = browser
        .js(
            "return document.getElementById('action-status').textContent",
            json!([]),
        )
        .await;
    assert!(
        outcome
            .as_str()
            .is_some_and(|text| text.starts_with("Retrying now: 1 delivery is due now")),
        "{outcome}"
    );
    wait_for("the retry", async || {
        let event = store.get(INCOMING_DEAD).await.ok()??;
        (event.summary.deliveries[0].status == DeliveryStatus::Pending).then_some(())
    })
    .await;
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_two_accounts_under_one_hash_each_open_their_own_event() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill_two_accounts(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;

    // Both accounts' events under the hash are rows, each with its client id in a column shown
    // because the rows are several accounts'.
    let rows = browser
        .js(
            "return [...document.querySelectorAll('#events tbody tr')].map(r => {
                 const client = r.querySelector('td.client');
                 return [r.dataset.clientId, r.dataset.hash, client.innerText,
                         getComputedStyle(client).display !== 'none'];
             })",
            json!([]),
        )
        .await;
    assert_eq!(
        rows,
        json!([
            [OTHER_CLIENT, SHARED, OTHER_CLIENT, true],
            [CLIENT, SHARED, CLIENT, true],
            [CLIENT, CLIENT_ONLY, CLIENT, true]
        ])
    );
    browser.wait_live().await;

    // A click on each row opens that account's own event: its body, its client id, its status.
    for (client, status) in [(CLIENT, "delivered"), (OTHER_CLIENT, "dead")] {
        browser
            .click(&format!(
                "#events a[href='#/event/{SHARED}?clientId={client}']"
            ))
            .await;
        browser
            .wait_js(
                "the account's details",
                &format!(
                    "const d = document.getElementById('detail');
                     return !d.hidden && d.dataset.hash === '{SHARED}' && d.dataset.clientId === '{client}'"
                ),
            )
            .await;
        let detail = browser
            .js(
                "return {
                    raw: document.getElementById('body-raw').textContent,
                    fields: document.getElementById('fields').innerText,
                    client: [...document.querySelectorAll('#fields dt')]
                        .find(d => d.textContent === 'Client id').nextElementSibling.textContent,
                    retry: document.getElementById('retry').disabled,
                    selected: [...document.querySelectorAll('#events tr.selected')].map(r => r.dataset.clientId),
                }",
                json!([]),
            )
            .await;
        let body = String::from_utf8(ui_support::shared_body(client)).expect("UTF-8");
        assert_eq!(detail["raw"], body.as_str(), "{client}'s body");
        assert_eq!(detail["client"], client);
        let fields = detail["fields"].as_str().expect("fields");
        assert!(fields.contains(status), "{client}: {fields}");
        assert_eq!(
            detail["retry"],
            client == CLIENT,
            "dead only for {OTHER_CLIENT}"
        );
        assert_eq!(detail["selected"], json!([client]), "one row selected");
    }

    // Retry now, from the second account's details: its event alone is pending again.
    browser.click("#retry").await;
    wait_for("the retry", async || {
        let event = store.get_for(OTHER_CLIENT, SHARED).await.ok()??;
        (event.summary.deliveries[0].status == DeliveryStatus::Pending).then_some(())
    })
    .await;
    browser
        .wait_js(
            "the retry's answer",
            "return document.getElementById('action-status').textContent.startsWith('Retrying now')",
        )
        .await;
    let first = store
        .get_for(CLIENT, SHARED)
        .await
        .expect("get")
        .expect("stored");
    assert_eq!(
        first.summary.deliveries[0].status,
        DeliveryStatus::Delivered,
        "the other account's event was left alone"
    );

    // A link without the account (from before accounts were told apart) to a hash two hold
    // (409): the details say which client ids hold it, with a link to each account's event,
    // instead of showing either (the one open until then included).
    browser.goto(&format!("{}#/event/{SHARED}", ui.url)).await;
    browser
        .wait_js(
            "the ambiguity",
            "return document.getElementById('detail-message').textContent.includes('more than one account')",
        )
        .await;
    let detail = browser.js(DETAIL, json!([])).await;
    let said = detail["message"].as_str().expect("a message");
    assert!(
        said.contains(CLIENT) && said.contains(OTHER_CLIENT),
        "{said}"
    );
    assert_eq!(detail["hash"], Value::Null, "{detail}");
    assert_eq!(detail["raw"], "", "{detail}");
    assert_eq!(detail["replay"], false, "{detail}");
    assert_eq!(detail["retry"], false, "{detail}");
    let links = browser
        .js(
            "return [...document.querySelectorAll('#detail-holders a')].map(a => a.getAttribute('href'))",
            json!([]),
        )
        .await;
    assert_eq!(
        links,
        json!([
            format!("#/event/{SHARED}?clientId={CLIENT}"),
            format!("#/event/{SHARED}?clientId={OTHER_CLIENT}")
        ])
    );
    browser
        .click(&format!(
            "#detail-holders a[href='#/event/{SHARED}?clientId={CLIENT}']"
        ))
        .await;
    browser
        .wait_js(
            "the chosen account's details",
            &format!(
                "const d = document.getElementById('detail');
                 return d.dataset.hash === '{SHARED}' && d.dataset.clientId === '{CLIENT}'
                     && document.getElementById('detail-status').hidden"
            ),
        )
        .await;

    // One account's rows alone: no client id column (the details still say whose).
    browser.type_into("#f-q", "+14155550303").await;
    browser.click("#apply").await;
    browser
        .wait_js(
            "the filtered list",
            "return document.querySelectorAll('#events tbody tr').length === 1",
        )
        .await;
    let shown = browser
        .js(
            "return getComputedStyle(document.querySelector('#events td.client')).display !== 'none'
                 || getComputedStyle(document.querySelector('#events th.client')).display !== 'none'",
            json!([]),
        )
        .await;
    assert_eq!(shown, false, "a client id column for one account's rows");
    browser.quit().await;

    // `ccai ui --client-id`: that account's rows only, and the page says whose view it is and
    // that the counters are every account's.
    let narrowed = start_ui(&sandbox, &path, &["--client-id", OTHER_CLIENT]);
    let (browser, _narrowed_profile) = open_page(&driver, &narrowed.url, 1280, 800).await;
    let page = browser
        .js(
            "return {
                rows: [...document.querySelectorAll('#events tbody tr')].map(r => [r.dataset.clientId, r.dataset.hash]),
                account: document.getElementById('account').hidden ? null : document.getElementById('account').textContent,
                scope: !document.getElementById('overview-scope').hidden,
                received: document.getElementById('c-received').textContent,
            }",
            json!([]),
        )
        .await;
    assert_eq!(
        page,
        json!({
            "rows": [[OTHER_CLIENT, SHARED]],
            "account": "Client id 4567's events",
            "scope": true,
            "received": "3",
        })
    );
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_a_link_that_fails_shows_the_error_not_the_event_open_before() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;
    let dead = format!("#events a[href='#/event/{INCOMING_DEAD}?clientId={CLIENT}']");
    browser.click(&dead).await;
    browser
        .wait_js(
            "the dead event's details",
            &format!("return document.getElementById('detail').dataset.hash === '{INCOMING_DEAD}'"),
        )
        .await;
    let before = browser.js(DETAIL, json!([])).await;
    assert!(
        before["raw"]
            .as_str()
            .is_some_and(|raw| raw.contains("+14155550133")),
        "{before}"
    );
    assert_eq!(before["retry"], true, "{before}");

    // A link to a hash no event has (404): the details say so, and nothing of the dead event
    // is left in them to be taken for the linked one's, nor its actions.
    browser
        .js(
            &format!(
                "location.hash = '#/event/0f0f0f0f0f0f0f0f-unknown?clientId={CLIENT}'; return 1"
            ),
            json!([]),
        )
        .await;
    browser
        .wait_js(
            "the error in the details",
            "return document.getElementById('detail-message').textContent.includes('no event with hash')",
        )
        .await;
    let after = browser.js(DETAIL, json!([])).await;
    assert_eq!(after["hidden"], false, "{after}");
    assert_eq!(after["hash"], Value::Null, "{after}");
    let text = after["text"].as_str().expect("text");
    for gone in [
        INCOMING_DEAD,
        &INCOMING_DEAD[..12],
        "+14155550133",
        "message.incoming",
        "boom",
    ] {
        assert!(
            !text.contains(gone),
            "{gone} still in the details: {text:?}"
        );
    }
    assert!(
        text.contains("0f0f0f0f0f0f"),
        "the hash asked for: {text:?}"
    );
    assert_eq!(after["raw"], "", "{after}");
    assert_eq!(after["pretty"], "", "{after}");
    assert_eq!(after["replay"], false, "Replay offered: {after}");
    assert_eq!(after["retry"], false, "Retry now offered: {after}");
    // The list and the live updates are fine: the indicator does not say otherwise.
    assert_eq!(after["live"], "live on", "{after}");
    // No row is selected: none is the event asked for.
    let selected = browser
        .js(
            "return document.querySelectorAll('#events tr.selected').length",
            json!([]),
        )
        .await;
    assert_eq!(selected, 0);
    // The next change refreshes the details: the error stays, no event comes back.
    add(&store, "f7f7f7f7f7f7f7f7-next", "message.sent").await;
    browser
        .wait_js(
            "the new row",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'f7f7f7f7f7f7f7f7-next'",
        )
        .await;
    let refreshed = browser.js(DETAIL, json!([])).await;
    assert_eq!(refreshed["hash"], Value::Null, "{refreshed}");
    assert_eq!(refreshed["message"], after["message"], "{refreshed}");

    // The dead event's link again: its details, and its actions, are back.
    browser.click(&dead).await;
    browser
        .wait_js(
            "the dead event's details again",
            &format!("return document.getElementById('detail').dataset.hash === '{INCOMING_DEAD}'"),
        )
        .await;
    let again = browser.js(DETAIL, json!([])).await;
    assert_eq!(again["message"], Value::Null, "{again}");
    assert_eq!(again["raw"], before["raw"], "{again}");
    assert_eq!(again["retry"], true, "{again}");
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_a_first_load_that_failed_is_tried_again() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let _store = fill(&path).await;
    // The view starts on a store it cannot read: the page's first load fails.
    set_events_readable(&path, false);
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let profile = tempfile::tempdir().expect("profile");
    let browser = driver.session(profile.path(), 1280, 800).await;
    browser.goto(&ui.url).await;
    browser
        .wait_js(
            "the failed first load",
            "return document.getElementById('live').textContent.includes('the store failed')",
        )
        .await;
    let page = browser
        .js(
            "return [document.body.dataset.ready ?? null, document.querySelectorAll('#events tbody tr').length]",
            json!([]),
        )
        .await;
    assert_eq!(page, json!([null, 0]));

    // The store is readable again: the page loads by itself, without a reload, and goes live.
    set_events_readable(&path, true);
    browser
        .js("window.notReloaded = true; return 1", json!([]))
        .await;
    browser
        .wait_js(
            "the first load tried again",
            "return document.body.dataset.ready === '1'",
        )
        .await;
    assert_eq!(strings(&browser.js(ROWS, json!([])).await).len(), 5);
    browser.wait_live().await;
    assert_eq!(
        browser
            .js("return window.notReloaded === true", json!([]))
            .await,
        true
    );
    browser.quit().await;
}

#[tokio::test]
async fn ui_browser_live_updates_recover_by_themselves_after_the_store_was_unreadable() {
    let Some((_one, sandbox, path)) = setup().await else {
        return;
    };
    let store = fill(&path).await;
    let ui = start_ui(&sandbox, &path, &[]);
    let driver = Driver::start().await;
    let (browser, _profile) = open_page(&driver, &ui.url, 1280, 800).await;
    browser.wait_live().await;
    open_detail(&browser, INCOMING_DEAD).await;
    browser
        .js("window.notReloaded = true; return 1", json!([]))
        .await;

    // The view stops; an event is stored; the store becomes unreadable; the view starts again
    // on it. The page reconnects and its refresh fails (500): the indicator says why, and the
    // details show the error instead of the event.
    let port = ui.port();
    drop(ui);
    add(&store, "f9f9f9f9f9f9f9f9-meanwhile", "message.sent").await;
    set_events_readable(&path, false);
    let ui = start_ui_on(&sandbox, &path, port, &[]);
    browser
        .wait_js(
            "the failed refresh",
            "const live = document.getElementById('live');
             return live.className.includes('off') && live.textContent.includes('the store failed')",
        )
        .await;
    browser
        .wait_js(
            "the failure in the details",
            "return document.getElementById('detail-message').textContent.includes('the store failed')",
        )
        .await;
    let detail = browser.js(DETAIL, json!([])).await;
    assert_eq!(detail["hash"], Value::Null, "{detail}");
    assert_eq!(detail["raw"], "", "{detail}");
    assert_eq!(detail["retry"], false, "{detail}");

    // Readable again. The view's first look at the store was the failed one, so the store as
    // it is now, the event stored meanwhile included, is what it compares later looks with: no
    // change is announced. The page tries again by itself and shows it, without a reload.
    set_events_readable(&path, true);
    browser
        .wait_js(
            "the event stored meanwhile",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'f9f9f9f9f9f9f9f9-meanwhile'",
        )
        .await;
    browser
        .wait_js(
            "the details again",
            &format!(
                "return document.getElementById('detail').dataset.hash === '{INCOMING_DEAD}'
                    && document.getElementById('detail-status').hidden"
            ),
        )
        .await;
    browser.wait_live().await;
    assert_eq!(
        browser
            .js("return window.notReloaded === true", json!([]))
            .await,
        true
    );
    // And the live updates go on: the next event appears too.
    add(&store, "fafafafafafafafa-after", "message.sent").await;
    browser
        .wait_js(
            "the next event",
            "return document.querySelector('#events tbody tr')?.dataset.hash === 'fafafafafafafafa-after'",
        )
        .await;
    browser.quit().await;
    drop(ui);
}
