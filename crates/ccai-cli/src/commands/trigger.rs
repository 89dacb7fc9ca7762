//! `ccai trigger`: build, sign and send a realistic delivery.

use crate::stdout::{errln, outln};
use std::process::ExitCode;

use anyhow::{bail, Result};
use ccai::event::{DeliveryMethod, WebhookEventType};
use ccai::signature::{SignedDelivery, SIGNATURE_HEADER};
use reqwest::Url;
use serde_json::Value;

use crate::cli::{AccountArgs, TriggerArgs};
use crate::dev_credentials::{self, DevCredentials, DEFAULT_LISTEN_URL};
use crate::duration_flag::quoted;
use crate::listen_url::Unusable;
use crate::output::shorten;
use crate::{http, sample_events, settings, EXIT_ERROR};

pub(crate) async fn run(account: &AccountArgs, args: TriggerArgs) -> Result<ExitCode> {
    let event_type = WebhookEventType::from(args.event_type.as_str());
    if !event_type.is_known() {
        return Err(sample_events::unknown_type(&event_type));
    }
    let method = http::method_flag(&args.method)?;
    // Before the data: `--data-file -` at a terminal waits for typing, which a missing secret
    // or a bad `--to` must not let someone do in vain.
    let (signing, _) = settings::signing(account, &args.secret, false)?;
    let (url, origin) = match &args.to {
        Some(to) => (
            http::url_flag("--to", to, DEFAULT_LISTEN_URL)?,
            Origin::Flag,
        ),
        None => saved_listen_url(signing.dev.as_ref())?,
    };
    let target = http::shown(&url);
    let mut data = match &args.data_file {
        Some(path) => {
            let bytes = crate::file_flag::read(
                "--data-file",
                path,
                "pass --data-file the path of a JSON file holding the object to send as data, or leave it out to send the event type's sample data",
            )?;
            let Ok(text) = String::from_utf8(bytes) else {
                bail!(
                    "--data-file {}: not valid JSON (not UTF-8 text)",
                    crate::file_flag::name(path)
                );
            };
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(_)) if crate::json_text::has_lossy_integer(&text) => bail!(
                    "--data-file {}: an integer is too large to send exactly (past 64 bits); write it as a string",
                    crate::file_flag::name(path)
                ),
                Ok(Value::Object(map)) => map,
                Ok(_) => bail!("--data-file {}: must hold a JSON object", crate::file_flag::name(path)),
                Err(e) => bail!("--data-file {}: not valid JSON ({e})", crate::file_flag::name(path)),
            }
        }
        None => sample_events::data_for(&event_type)?,
    };
    sample_events::apply_overrides(&mut data, &args.set)?;
    warn_mistyped(&event_type, &data, &args);

    let event_hash = sample_events::random_event_hash()?;
    let delivery = SignedDelivery::builder(event_type.clone(), event_hash)
        .data(data)
        .sign(&signing.client_id, &signing.secret);

    let redactor = ccai::inbox::HttpForward::new(url.as_str()).ok();
    let client = http::client()?;
    let mut all_ok = true;
    // The statuses answered, each told once after the lines (with --repeat, the same delivery),
    // with the last `Retry-After` that came with it.
    let mut answered = std::collections::BTreeMap::new();
    for attempt in 1..=args.repeat {
        let response = client
            .request(http::request_method(method), url.clone())
            .header("Content-Type", "application/json")
            .header(SIGNATURE_HEADER, delivery.signature())
            .body(delivery.body().to_vec())
            .send()
            .await
            .map_err(|e| unreachable_error(&target, origin, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let answer = answer_start(response).await;
        // A target may echo the request (its signature, a token in the URL): redacted as a
        // forward's recorded errors are. Were the URL refused by the forward, nothing is shown.
        let text = redactor
            .as_ref()
            .map(|forward| forward.redact_echoes(&answer, Some(delivery.signature())))
            .unwrap_or_default();
        let text: String = text.trim().chars().take(300).collect();
        // The server's text, not ours: no escape sequence reaches the terminal.
        let text = crate::output::escape(&text);
        let counter = if args.repeat > 1 {
            format!(" [{attempt}/{}]", args.repeat)
        } else {
            String::new()
        };
        // No dangling space after a status that came without text (a bare 404).
        let text = if text.is_empty() {
            text
        } else {
            format!(" {text}")
        };
        outln!(
            "{method} {target} {} {}{counter} -> {}{text}",
            event_type,
            crate::output::short_hash(delivery.event_hash()),
            status.as_u16()
        );
        if status.is_redirection() {
            errln!("note: {}", crate::http::refused(status));
        }
        all_ok &= status.is_success();
        let retry_after = retry_after
            .and_then(|value| shown_retry_after(&value, redactor.as_ref(), delivery.signature()));
        answered.insert(status.as_u16(), retry_after);
    }
    for (status, retry_after) in answered {
        if let Some(note) = note_for(status, method, retry_after.as_deref()) {
            errln!("note: {note}");
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_ERROR)
    })
}

/// How much of an answer is read: the few hundred bytes shown, and well past them, so that the
/// redaction sees whole an echoed secret the excerpt's cut splits (encoded, a URL token may be
/// twelve times its length). Not the whole answer: a target answering without end (or a huge
/// page) would fill memory until the timeout.
const ANSWER_READ: usize = 64 * 1024;

/// The first [`ANSWER_READ`] bytes of `response`'s body, or what arrived before it failed.
async fn answer_start(mut response: reqwest::Response) -> Vec<u8> {
    let mut answer = Vec::new();
    while answer.len() < ANSWER_READ {
        match response.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            _ => break,
        }
    }
    answer
}

/// A warning per field of `data` that the event type defines otherwise (`--set Segments=abc`):
/// sent as given, since a mistyped field may be what is being tried, but not silently.
fn warn_mistyped(
    event_type: &WebhookEventType,
    data: &serde_json::Map<String, Value>,
    args: &TriggerArgs,
) {
    for problem in sample_events::mistyped_fields(event_type, data) {
        let field = problem.field;
        // The last `--set` of the field wins, so it is the one named.
        let set = args.set.iter().rev().find(|item| {
            item.split_once('=')
                .is_some_and(|(key, _)| key.trim() == field)
        });
        let source = match (set, &args.data_file) {
            (Some(item), _) => format!("--set {}", quoted(item)),
            (None, Some(path)) => format!("--data-file {}", crate::file_flag::name(path)),
            (None, None) => "data".to_owned(),
        };
        let sent = match data.get(field) {
            Some(Value::String(text)) => quoted(text),
            Some(other) => crate::output::escape(&shorten(&other.to_string(), 40)),
            None => "nothing".to_owned(),
        };
        errln!(
            "warning: {source}: {problem}; sending it anyway ({sent}), which a receiver that types {event_type} data refuses"
        );
    }
}

/// What to do about an answer that says only what is wrong (or nothing: `ccai listen` answers a
/// path it does not serve with a bare 404, so as not to tell a stranger its path).
fn note_for(status: u16, method: DeliveryMethod, retry_after: Option<&str>) -> Option<String> {
    match status {
        // Most often `ccai listen` was started with other credentials (flags this terminal does
        // not have) than the ones signing here.
        401 => Some(
            "a 401 means the receiver does not accept the signature: sign with the client id and secret it verifies with (--client-id and --secret, or CCAI_CLIENT_ID and CCAI_WEBHOOK_SECRET)".to_owned(),
        ),
        404 => Some(
            "a 404 means nothing receives deliveries at this path: check it (for `ccai listen`, the URL it printed after Listening on, path included, with no slash added)".to_owned(),
        ),
        405 if method == DeliveryMethod::Put => Some(
            "a 405 to a PUT: `ccai listen` takes PUT deliveries only when started with --accept-put".to_owned(),
        ),
        // The answer's text is terse by design (`{"error":"event callback failed"}`): why is in
        // the receiver's output (`ccai listen` answers 503 when its store cannot take the
        // delivery, 500 when a --no-store forward fails, and prints a line saying why).
        503 => {
            let when = retry_after
                .map(|value| format!(" (Retry-After: {value})"))
                .unwrap_or_default();
            Some(format!(
                "a 503 means the receiver received the delivery but cannot process or store it now, and asks to retry later{when}: look at the receiver's output for why"
            ))
        }
        // A proxy's or gateway's answer (nginx, a load balancer, a tunnel): the receiver behind
        // it may not have got the delivery at all.
        502 => Some(
            "a 502 comes from a proxy or gateway in front of the receiver, which could not reach it or got no valid answer from it: check that the receiver runs and that the proxy forwards to it, and look at the proxy's output and the receiver's".to_owned(),
        ),
        504 => Some(
            "a 504 comes from a proxy or gateway in front of the receiver, which got no answer from it in time: the receiver may have got the delivery or not; look at its output and the proxy's".to_owned(),
        ),
        500..=599 => Some(format!(
            "a {status} means the receiver received the delivery but could not process or store it: look at the receiver's output for why"
        )),
        _ => None,
    }
}

/// The longest `Retry-After` shown: an HTTP date is 29 characters.
const RETRY_AFTER_SHOWN: usize = 40;

/// A `Retry-After` value as the 503 note shows it: seconds or a date, redacted like the answer
/// (a target may echo anything) and escaped; `None` for anything longer than a date.
fn shown_retry_after(
    value: &str,
    redactor: Option<&ccai::inbox::HttpForward>,
    signature: &str,
) -> Option<String> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > RETRY_AFTER_SHOWN {
        return None;
    }
    let value = redactor?.redact_echoes(value.as_bytes(), Some(signature));
    let value = crate::output::escape(&value);
    Some(if value.bytes().all(|b| b.is_ascii_digit()) {
        format!("{value} s")
    } else {
        value
    })
}

/// Where to send without `--to`: the URL the last `ccai listen` saved (its `listen-url` file, else
/// the development credentials), or the default. A saved URL that is not a usable one names its
/// file, not `--to` (which was not given), and is not shown (a URL may carry a token).
fn saved_listen_url(dev: Option<&DevCredentials>) -> Result<(Url, Origin)> {
    let saved = crate::listen_url::read().map_err(|(unusable, file)| match unusable {
        Unusable::Unreadable(e) => anyhow::anyhow!(
            "cannot read the listen URL saved in {} ({e}): pass --to URL, or remove it (the next `ccai listen` saves a new one)",
            file.display()
        ),
        Unusable::MoreThanOneLine => anyhow::anyhow!(
            "the listen URL saved in {} has more than one line: pass --to URL, delete it, or run `ccai listen` again to save a new one",
            file.display()
        ),
        Unusable::SpaceInside => anyhow::anyhow!(
            "the listen URL saved in {} has a space, a tab or another control character inside it: pass --to URL, delete it, or run `ccai listen` again to save a new one",
            file.display()
        ),
    })?;
    let saved = saved.or_else(|| {
        let url = dev?.listen_url.clone()?;
        Some((url, dev_credentials::path().ok()?))
    });
    let Some((saved, file)) = saved else {
        let url = http::url_flag("--to", DEFAULT_LISTEN_URL, DEFAULT_LISTEN_URL)?;
        return Ok((url, Origin::Default));
    };
    let url = http::url_flag("--to", &saved, DEFAULT_LISTEN_URL).map_err(|_| {
        anyhow::anyhow!(
            "the listen URL saved in {} is not an http:// or https:// URL: pass --to URL, or run `ccai listen` again to save a new one",
            file.display()
        )
    })?;
    Ok((url, Origin::Saved))
}

/// Where the URL sent to came from, for a message about it: without `--to`, the user did not
/// name it, and a listener they see running elsewhere may not be the one it names.
#[derive(Clone, Copy)]
enum Origin {
    Flag,
    /// The one a `ccai listen` saved: the last started, or the one it replaced if it stopped
    /// cleanly while that one still accepted connections (it may have stopped since).
    Saved,
    Default,
}

fn unreachable_error(target: &str, origin: Origin, e: reqwest::Error) -> anyhow::Error {
    // Before `is_connect`: a failed handshake is a connect error too, but the server is there.
    if let Some(tls) = http::tls_failure(&e) {
        anyhow::anyhow!("cannot send to {target}: {tls}")
    } else if e.is_connect() {
        let which = match origin {
            Origin::Flag => "",
            Origin::Saved => {
                " (the address a `ccai listen` saved for trigger; it may have stopped)"
            }
            Origin::Default => " (the default: no `ccai listen` has announced an address)",
        };
        anyhow::anyhow!("cannot connect to {target}{which}: is `ccai listen` (or your server) running there? Pass --to URL otherwise")
    } else if e.is_timeout() {
        anyhow::anyhow!(
            "{target} did not answer within {} s",
            http::TIMEOUT.as_secs()
        )
    } else {
        // Without the URL: reqwest's text repeats it whole, its query (a token) included.
        anyhow::anyhow!("sending to {target} failed: {}", http::failure(e))
    }
}
