//! Errors, retries and timeouts: what fails, what is retried, and what the messages say.

use std::time::Duration;

use ccai::api::{Method, RetryPolicy};
use ccai::webhook::{DeliveryMethod, WebhookConfig};
use ccai::{Client, ClientError, Config};
use serde_json::json;

use crate::fake_api::{closed_port_url, FakeApi, Reply};
use crate::{client_for, fast_retry, API_KEY, CLIENT_ID, INTEGRATIONS};

/// Neither the message nor the `Debug` output of `err` contains the API key.
fn assert_no_key(err: &ClientError) {
    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(err));
    assert!(!shown.contains(API_KEY), "the API key leaked: {shown}");
}

#[tokio::test]
async fn unauthorized_says_to_check_the_api_key_and_is_not_retried() {
    let api = FakeApi::start(vec![Reply::json(
        401,
        json!({"error": "Unauthorized", "message": "Invalid token"}),
    )])
    .await;

    let err = client_for(&api).webhook().list().await.unwrap_err();

    assert_eq!(err.status(), Some(401));
    let ClientError::Api(api_error) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api_error.method, Method::GET);
    assert_eq!(api_error.path, "/v1/client/1231/integration");
    assert!(api_error.body.contains("Invalid token"), "{api_error:?}");
    let message = err.to_string();
    assert!(
        message.starts_with("the API rejected the API key (401 Unauthorized)"),
        "{message}"
    );
    assert!(message.contains("check CCAI_API_KEY"), "{message}");
    assert!(message.contains("Invalid token"), "{message}");
    assert!(!message.contains('\n'));
    assert_no_key(&err);
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn an_api_that_echoes_the_key_does_not_leak_it() {
    let api = FakeApi::start(vec![Reply::text(
        403,
        &format!("token {API_KEY} is not allowed for this account"),
    )])
    .await;
    let err = client_for(&api).webhook().get("7").await.unwrap_err();
    assert_eq!(err.status(), Some(403));
    assert!(err.to_string().contains("[REDACTED]"), "{err}");
    assert_no_key(&err);
}

#[tokio::test]
async fn not_found_names_the_request() {
    let api = FakeApi::start(vec![Reply::json(404, json!({"message": "Not Found"}))]).await;
    let err = client_for(&api).webhook().get("999").await.unwrap_err();
    assert_eq!(err.status(), Some(404));
    let message = err.to_string();
    assert!(
        message.contains("GET /v1/client/1231/integration/999"),
        "{message}"
    );
    assert!(message.contains("check the webhook id"), "{message}");
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn a_get_is_retried_after_a_500() {
    let api = FakeApi::start(vec![
        Reply::text(500, "boom"),
        Reply::json(200, json!([{"id": 1, "url": "https://example.com/h"}])),
    ])
    .await;

    let hooks = client_for(&api).webhook().list().await.unwrap();

    assert_eq!(hooks.len(), 1);
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests
        .iter()
        .all(|r| r.method == "GET" && r.path == INTEGRATIONS));
}

#[tokio::test]
async fn a_post_is_not_retried_after_a_500() {
    let api = FakeApi::start(vec![
        Reply::text(500, "boom"),
        Reply::json(200, json!([{"id": 1}])),
    ])
    .await;

    let err = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/h"))
        .await
        .unwrap_err();

    assert_eq!(err.status(), Some(500));
    assert!(err.to_string().contains("(500)"), "{err}");
    assert!(err.to_string().contains("boom"), "{err}");
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn gateway_errors_are_retried_until_the_limit() {
    let api = FakeApi::start(vec![Reply::text(502, "bad gateway")]).await;
    let err = client_for(&api).webhook().delete("5").await.unwrap_err();
    assert_eq!(err.status(), Some(502));
    // The first attempt and two retries.
    assert_eq!(api.requests().len(), 3);
}

#[tokio::test]
async fn a_retry_after_on_a_500_does_not_end_the_retries() {
    // `Retry-After` is honoured on 429 and 503 only. A 500 asking for longer than the policy's
    // `max_retry_after` is retried on the backoff, not given up on at once.
    let api = FakeApi::start(vec![
        Reply::text(500, "boom").with_header("retry-after", "120"),
        Reply::text(500, "boom").with_header("retry-after", "120"),
        Reply::json(200, json!([{"id": 1, "url": "https://example.com/h"}])),
    ])
    .await;
    let hooks = client_for(&api).webhook().list().await.unwrap();
    assert_eq!(hooks.len(), 1);
    // The first attempt and both retries of the default policy.
    assert_eq!(api.requests().len(), 3);

    // Persisting, it fails after the policy's retries, and the error does not carry the ask.
    let api = FakeApi::start(vec![
        Reply::text(500, "boom").with_header("retry-after", "120")
    ])
    .await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert_eq!(api.requests().len(), 3);
    let ClientError::Api(api_error) = &err else {
        panic!("expected an API error, got {err:?}")
    };
    assert_eq!(api_error.status, 500);
    assert_eq!(api_error.retry_after, None);
    assert!(!err.to_string().contains("120 s"), "{err}");
}

#[tokio::test]
async fn a_retry_after_on_a_502_is_not_waited_for() {
    // The policy would wait an hour for a `Retry-After` on a 429 or 503; on a 502 the backoff of
    // a few milliseconds applies. The bound only catches an hour's wait, so it cannot flake.
    let api = FakeApi::start(vec![
        Reply::text(502, "bad gateway").with_header("retry-after", "3600")
    ])
    .await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .retry(fast_retry().max_retry_after(Duration::from_secs(7200))),
    )
    .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(60), client.webhook().delete("5"))
        .await
        .expect("the client waited for a 502's Retry-After")
        .unwrap_err();
    assert_eq!(err.status(), Some(502));
    assert_eq!(api.requests().len(), 3);
}

#[tokio::test]
async fn retries_can_be_switched_off() {
    let api = FakeApi::start(vec![Reply::text(503, "busy")]).await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .retry(RetryPolicy::none()),
    )
    .unwrap();
    let err = client.webhook().list().await.unwrap_err();
    assert_eq!(err.status(), Some(503));
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn a_post_is_retried_after_429_honouring_retry_after() {
    let api = FakeApi::start(vec![
        Reply::json(429, json!({"message": "slow down"})).with_header("retry-after", "1"),
        Reply::json(200, json!([{"id": 8, "url": "https://example.com/h"}])),
    ])
    .await;

    let started = std::time::Instant::now();
    let hook = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/h"))
        .await
        .unwrap();

    // The test policy's own backoff is a few milliseconds: only `Retry-After` explains a wait of a
    // second (a lower bound, so a slow machine cannot make this fail).
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was not honoured ({:?})",
        started.elapsed()
    );
    assert_eq!(hook.id.as_i64(), Some(8));
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0].body, requests[1].body,
        "the retry sends the same body"
    );
}

#[tokio::test]
async fn a_post_is_retried_after_503() {
    let api = FakeApi::start(vec![
        Reply::text(503, "maintenance"),
        Reply::json(200, json!([{"id": 9}])),
    ])
    .await;
    let hook = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/h").method(DeliveryMethod::Post))
        .await
        .unwrap();
    assert_eq!(hook.id.as_i64(), Some(9));
    let requests = api.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests.iter().all(|request| request.method == "POST"));
}

#[tokio::test]
async fn rate_limiting_that_persists_is_reported() {
    let api = FakeApi::start(vec![
        Reply::json(429, json!({"message": "slow down"})).with_header("retry-after", "0")
    ])
    .await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert!(err.to_string().contains("try again"), "{err}");
    assert_eq!(api.requests().len(), 3);
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let api = FakeApi::start(vec![Reply::Hang]).await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .timeout(Duration::from_millis(200))
            .retry(fast_retry().max_retries(1)),
    )
    .unwrap();

    let err = client.webhook().get("3").await.unwrap_err();

    assert!(
        matches!(&err, ClientError::Timeout { method: Method::GET, path }
            if path == "/v1/client/1231/integration/3"),
        "{err:?}"
    );
    assert!(err.to_string().contains("timed out"), "{err}");
    assert!(err.to_string().contains("Config::timeout"), "{err}");
    assert_no_key(&err);
    // A GET is safe to repeat: it was retried once after the first timeout.
    assert_eq!(api.requests().len(), 2);
}

#[tokio::test]
async fn a_closed_port_is_a_connect_error() {
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(closed_port_url())
            .retry(fast_retry()),
    )
    .unwrap();

    let err = client.webhook().list().await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Connect {
                method: Method::GET,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("could not connect"), "{err}");
    assert!(err.to_string().contains("CCAI_BASE_URL"), "{err}");
    assert!(std::error::Error::source(&err).is_some());
    assert_no_key(&err);

    // Nothing was sent, so a POST may be retried and fails the same way.
    let err = client
        .webhook()
        .register(WebhookConfig::new("https://example.com/h"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::Connect {
                method: Method::POST,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_2xx_answer_that_is_not_json_is_a_not_json_error() {
    let api = FakeApi::start(vec![Reply::text(200, "<html>hello</html>")]).await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert!(
        matches!(
            &err,
            ClientError::NotJson {
                method: Method::GET,
                status: 200,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("GET /v1/client/1231/integration"),
        "{err}"
    );
    // A successful answer is not retried.
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn an_empty_register_answer_is_a_decode_error() {
    let api = FakeApi::start(vec![Reply::json(200, json!([]))]).await;
    let err = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/h"))
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("empty array"), "{err}");
}

#[test]
fn configuration_errors_are_clear() {
    let no_id = Client::new(Config::new(" ", API_KEY)).unwrap_err();
    assert!(matches!(no_id, ClientError::MissingClientId));
    assert!(no_id.to_string().contains("CCAI_CLIENT_ID"));

    let no_key = Client::new(Config::new(CLIENT_ID, "")).unwrap_err();
    assert!(matches!(no_key, ClientError::MissingApiKey));
    assert!(no_key.to_string().contains("CCAI_API_KEY"));

    let bad_url =
        Client::new(Config::new(CLIENT_ID, API_KEY).base_url("core.example.com/api")).unwrap_err();
    assert!(
        matches!(bad_url, ClientError::InvalidBaseUrl { .. }),
        "{bad_url:?}"
    );
    assert!(bad_url.to_string().contains("core.example.com/api"));
    assert_no_key(&bad_url);

    // reqwest would send a user name and password as a second `Authorization` header.
    let with_password = Client::new(
        Config::new(CLIENT_ID, API_KEY).base_url("https://user:hunter2@core.example.com/api"),
    )
    .unwrap_err();
    assert!(
        matches!(with_password, ClientError::InvalidBaseUrl { .. }),
        "{with_password:?}"
    );
    assert!(!format!("{with_password} {with_password:?}").contains("hunter2"));

    // `.` and `..` would be normalised out of the path, and the request (with the API key)
    // would go to another endpoint.
    for id in [".", ".."] {
        let err = Client::new(Config::new(id, API_KEY)).unwrap_err();
        assert!(matches!(err, ClientError::InvalidClientId(_)), "{err:?}");
        assert!(err.to_string().contains("CCAI_CLIENT_ID"), "{err}");
    }
}

/// A server answering `status` with a chunked body of up to `total` bytes of `fill`, counting
/// how many it managed to send before the client stopped reading.
async fn endless_body(
    status: u16,
    total: usize,
    fill: u8,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sent = std::sync::Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = std::sync::Arc::clone(&sent);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                    break;
                }
                head.push(byte[0]);
            }
            let answer = format!(
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            );
            if socket.write_all(answer.as_bytes()).await.is_err() {
                continue;
            }
            let chunk = vec![fill; 1 << 20];
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            let mut left = total;
            while left > 0 {
                if socket.write_all(&framed).await.is_err() {
                    break;
                }
                counter.fetch_add(1 << 20, Ordering::SeqCst);
                left = left.saturating_sub(1 << 20);
            }
            let _ = socket.write_all(b"0\r\n\r\n").await;
        }
    });
    (format!("http://{addr}/api"), sent)
}

/// Answers are read up to a cap, not whole: an error body only as far as it is shown, a 2xx
/// body up to 4 MiB (past it, a decode error). A server must not make the client buffer
/// without bound.
#[tokio::test]
async fn a_huge_answer_is_not_read_whole() {
    use std::sync::atomic::Ordering;
    const TOTAL: usize = 256 << 20;
    for (status, fill) in [(500, b'x'), (200, b' ')] {
        let (base, sent) = endless_body(status, TOTAL, fill).await;
        let client = Client::new(
            Config::new(CLIENT_ID, API_KEY)
                .base_url(&base)
                .retry(RetryPolicy::none()),
        )
        .unwrap();
        let err = client.webhook().list().await.unwrap_err();
        match status {
            500 => assert_eq!(err.status(), Some(500), "{err:?}"),
            _ => assert!(
                matches!(err, ClientError::Decode { .. })
                    && err.to_string().contains("larger than"),
                "{err:?}"
            ),
        }
        // Socket buffers hold a few MiB beyond what the client read.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let sent = sent.load(Ordering::SeqCst);
        assert!(
            sent <= 32 << 20,
            "{status}: the client read {} MiB",
            sent >> 20
        );
    }
}

#[test]
fn debug_never_shows_the_api_key() {
    let config = Config::new(CLIENT_ID, API_KEY).base_url("http://127.0.0.1:1/api");
    let shown = format!("{config:?} {config:#?}");
    assert!(shown.contains("1231"), "{shown}");
    assert!(!shown.contains(API_KEY), "{shown}");

    let client = Client::new(config).unwrap();
    let shown = format!("{client:?} {client:#?} {:?}", client.webhook());
    assert!(shown.contains("http://127.0.0.1:1/api"), "{shown}");
    assert!(!shown.contains(API_KEY), "{shown}");

    let legacy = ccai::webhook::Client::new("http://127.0.0.1:1/api", API_KEY).unwrap();
    let shown = format!("{legacy:?}");
    assert!(!shown.contains(API_KEY), "{shown}");
}

#[tokio::test]
async fn a_redirect_is_an_error_not_a_silent_get() {
    // Following a 302 would turn the POST into a GET of the list and report its first element.
    let api = FakeApi::start(vec![
        Reply::empty(302).with_header("location", crate::INTEGRATIONS),
        Reply::json(
            200,
            json!([{"id": 1, "url": "https://someone-else.example/old"}]),
        ),
    ])
    .await;
    let err = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/new").secret("s"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(302));
    assert_eq!(api.requests().len(), 1);
}

#[tokio::test]
async fn an_echoed_webhook_secret_is_not_in_the_error() {
    let secret = "whsec-very/secret\"value";
    let echoed =
        serde_json::to_string(&json!({"error": "bad url", "request": [{"secretKey": secret}]}))
            .unwrap();
    let api = FakeApi::start(vec![Reply::text(400, &echoed)]).await;
    let err = client_for(&api)
        .webhook()
        .register(WebhookConfig::new("https://example.com/x").secret(secret))
        .await
        .unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(
        !shown.contains("whsec-very"),
        "webhook secret leaked: {shown}"
    );
    assert!(shown.contains("[REDACTED]"), "{shown}");
}

#[tokio::test]
async fn a_retry_after_longer_than_the_policy_allows_ends_the_retries() {
    // The server asks for an hour; the policy waits at most 50 ms for a `Retry-After`. Retrying
    // sooner than asked only meets another 429 (and hammers the rate limiter): give up at once,
    // and say how long the API asked to wait.
    let api = FakeApi::start(vec![
        Reply::json(429, json!({"message": "slow down"})).with_header("retry-after", "3600"),
        Reply::json(200, json!([{"id": 8, "url": "https://example.com/h"}])),
    ])
    .await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .retry(fast_retry().max_retry_after(Duration::from_millis(50))),
    )
    .unwrap();
    let err = client.webhook().list().await.unwrap_err();
    assert_eq!(err.status(), Some(429));
    assert_eq!(api.requests().len(), 1, "retried before Retry-After: 3600");
    let message = err.to_string();
    assert!(message.contains("3600 s"), "{message}");
    assert_no_key(&err);

    // An ask within the policy is still honoured and retried.
    let api = FakeApi::start(vec![
        Reply::json(503, json!({"message": "busy"})).with_header("retry-after", "0"),
        Reply::json(200, json!([{"id": 8, "url": "https://example.com/h"}])),
    ])
    .await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .retry(fast_retry().max_retry_after(Duration::from_millis(50))),
    )
    .unwrap();
    assert_eq!(client.webhook().list().await.unwrap().len(), 1);
    assert_eq!(api.requests().len(), 2);
}

#[tokio::test]
async fn a_2xx_answer_that_is_not_json_points_at_the_base_url() {
    // The usual cause: a base URL that is the web site, not the API (`/api` left out).
    let api = FakeApi::start(vec![Reply::text(200, "<!doctype html><html>app</html>")]).await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    let message = err.to_string();
    assert!(message.contains("not JSON"), "{message}");
    assert!(
        message.contains("base URL") && message.contains("CCAI_BASE_URL"),
        "no next step in: {message}"
    );
    assert!(!message.contains('\n'), "{message}");
}

/// A register (a POST) whose outcome is unknown, a timeout, a connection lost after sending or a
/// 5xx, is not retried because it may have taken effect; the error must not advise a plain
/// "retry" either, which registers a second integration: it says to look first.
#[tokio::test]
async fn a_post_with_an_unknown_outcome_says_to_check_before_trying_again() {
    let register = |client: Client| async move {
        client
            .webhook()
            .register(WebhookConfig::new("https://example.com/h"))
            .await
            .unwrap_err()
    };
    let assert_look_first = |err: &ClientError| {
        let message = err.to_string();
        assert!(
            message.contains("may have taken effect") && message.contains("list"),
            "advises a blind retry: {message}"
        );
        assert!(!message.contains('\n'), "{message}");
        assert_no_key(err);
    };

    // No answer in time.
    let api = FakeApi::start(vec![Reply::Hang]).await;
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(&api.base_url)
            .timeout(Duration::from_millis(200))
            .retry(fast_retry()),
    )
    .unwrap();
    let err = register(client).await;
    assert!(matches!(err, ClientError::Timeout { .. }), "{err:?}");
    assert_look_first(&err);
    assert_eq!(api.requests().len(), 1);

    // A 500.
    let api = FakeApi::start(vec![Reply::text(500, "oops")]).await;
    let err = register(client_for(&api)).await;
    assert_eq!(err.status(), Some(500));
    assert_look_first(&err);

    // The connection closed once the request was read, before any answer.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = vec![0u8; 64 * 1024];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    let client = Client::new(
        Config::new(CLIENT_ID, API_KEY)
            .base_url(format!("http://{address}/api"))
            .retry(fast_retry()),
    )
    .unwrap();
    let err = register(client).await;
    assert!(matches!(err, ClientError::Transport { .. }), "{err:?}");
    assert_look_first(&err);

    // A GET is retried, and its advice stays as it was.
    let api = FakeApi::start(vec![Reply::text(500, "oops")]).await;
    let err = client_for(&api).webhook().list().await.unwrap_err();
    assert!(!err.to_string().contains("may have taken effect"), "{err}");
}

/// A base URL can carry credentials or a token (`https://user:password@host/api?token=…`): the
/// client refuses it, and its errors and `Debug` hide them; `Config`'s `Debug` showed it whole.
#[test]
fn config_debug_hides_what_a_base_url_may_carry() {
    let config = Config::new(CLIENT_ID, API_KEY)
        .base_url("https://user:hunter2@core.example.com/api?token=tok-s3cr3t#frag");
    let shown = format!("{config:?} {config:#?}");
    assert!(shown.contains("core.example.com/api"), "{shown}");
    assert!(shown.contains("1231"), "{shown}");
    for hidden in ["hunter2", "tok-s3cr3t", API_KEY] {
        assert!(!shown.contains(hidden), "{hidden} in {shown}");
    }
}
