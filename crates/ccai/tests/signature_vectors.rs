//! The official SDKs' signature test vectors (copied from the shared fixtures).

use ccai::webhook::{sign, verify_signature, Verifier, VerifyError};
use serde::Deserialize;

#[derive(Deserialize)]
struct Vectors {
    valid: Vec<Vector>,
    invalid: Vec<Vector>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Vector {
    #[serde(alias = "why")]
    source: String,
    secret: String,
    client_id: String,
    event_hash: String,
    signature: String,
}

fn vectors() -> Vectors {
    serde_json::from_str(include_str!("fixtures/signature-vectors.json")).expect("fixture parses")
}

#[test]
fn every_valid_vector_verifies_and_sign_reproduces_it() {
    let v = vectors();
    assert!(v.valid.len() >= 10);
    for case in &v.valid {
        assert_eq!(
            sign(&case.client_id, &case.event_hash, &case.secret),
            case.signature,
            "sign() for {}",
            case.source
        );
        assert!(
            verify_signature(
                &case.signature,
                &case.client_id,
                &case.event_hash,
                &case.secret
            ),
            "verify_signature() for {}",
            case.source
        );
        let verifier = Verifier::new(case.client_id.as_str(), &case.secret).expect("valid config");
        assert_eq!(verifier.verify(&case.signature, &case.event_hash), Ok(()));
    }
}

#[test]
fn every_invalid_vector_is_rejected() {
    let v = vectors();
    assert!(v.invalid.len() >= 14);
    for case in &v.invalid {
        assert!(
            !verify_signature(
                &case.signature,
                &case.client_id,
                &case.event_hash,
                &case.secret
            ),
            "verify_signature() accepted: {}",
            case.source
        );
        // The verifier refuses the same cases, at construction (empty client id or secret) or with
        // a reason.
        match Verifier::new(case.client_id.as_str(), &case.secret) {
            Err(_) => assert!(case.client_id.is_empty() || case.secret.is_empty()),
            Ok(verifier) => assert!(
                verifier.verify(&case.signature, &case.event_hash).is_err(),
                "Verifier accepted: {}",
                case.source
            ),
        }
    }
}

#[test]
fn the_verifier_gives_the_reason() {
    let verifier = Verifier::new("client-123", "test-secret").unwrap();
    let good = "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=";
    assert_eq!(verifier.verify(good, "event-hash-abc123"), Ok(()));
    for malformed in [
        "",
        "bad-signature",
        "Sr3dntb2KPhxWNMyrgFv",
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y",
        "sha256=Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
        " Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Y=",
        "4abddd9ed6f628f87158d332ae016fcf8f1cdb44595799f56abd3a14f2316ba6",
        "Sr3dntb2KPhxWNMyrgFvz48c20RZV5n1ar06FPIxa6Yé",
    ] {
        assert_eq!(
            verifier.verify(malformed, "event-hash-abc123"),
            Err(VerifyError::MalformedSignature),
            "{malformed:?}"
        );
    }
    assert_eq!(
        verifier.verify(good, "event-hash-abc124"),
        Err(VerifyError::Mismatch)
    );
    assert_eq!(verifier.verify(good, ""), Err(VerifyError::EmptyEventHash));
    assert_eq!(
        verifier.verify(b"\xff\xfe", "event-hash-abc123"),
        Err(VerifyError::MalformedSignature)
    );
}

#[test]
fn rotation_accepts_any_configured_secret_and_nothing_else() {
    let verifier =
        Verifier::with_secrets("1231", ["new-secret", "old-secret"]).expect("two secrets");
    assert_eq!(verifier.secret_count(), 2);
    for secret in ["new-secret", "old-secret"] {
        assert_eq!(verifier.verify(sign("1231", "h", secret), "h"), Ok(()));
    }
    assert_eq!(
        verifier.verify(sign("1231", "h", "third-secret"), "h"),
        Err(VerifyError::Mismatch)
    );
    // The same secret for another account does not verify.
    assert_eq!(
        verifier.verify(sign("1232", "h", "new-secret"), "h"),
        Err(VerifyError::Mismatch)
    );
}

#[test]
fn verifier_refuses_to_be_built_open() {
    use ccai::webhook::VerifierConfigError;
    assert_eq!(
        Verifier::new("", "s").unwrap_err(),
        VerifierConfigError::EmptyClientId
    );
    assert_eq!(
        Verifier::new("c", "").unwrap_err(),
        VerifierConfigError::EmptySecret
    );
    assert_eq!(
        Verifier::with_secrets("c", Vec::<String>::new()).unwrap_err(),
        VerifierConfigError::NoSecret
    );
    assert_eq!(
        Verifier::with_secrets("c", ["a", ""]).unwrap_err(),
        VerifierConfigError::EmptySecret
    );
    // A trailing newline read from a file would make every delivery fail: refuse it up front.
    assert_eq!(
        Verifier::new("c", "secret\n").unwrap_err(),
        VerifierConfigError::Whitespace("webhook secret")
    );
    assert_eq!(
        Verifier::new(" 1231", "s").unwrap_err(),
        VerifierConfigError::Whitespace("client id")
    );
}

#[test]
fn debug_output_hides_secrets() {
    let verifier = Verifier::with_secrets("1231", ["s3cr3t-one", "s3cr3t-two"]).unwrap();
    let shown = format!("{verifier:?}");
    assert!(shown.contains("1231"));
    assert!(!shown.contains("s3cr3t"), "{shown}");

    let config = ccai::webhook::WebhookConfig::new("https://example.com/hook").secret("s3cr3t-one");
    assert!(!format!("{config:?}").contains("s3cr3t"));
    let response: ccai::webhook::WebhookResponse = serde_json::from_str(
        r#"{"id":1,"url":"https://example.com/hook","method":"POST","integrationType":"ALL","secretKey":"s3cr3t-one"}"#,
    )
    .unwrap();
    assert!(!format!("{response:?}").contains("s3cr3t"));
    assert_eq!(
        response.secret_key.as_ref().map(|s| s.expose_secret()),
        Some("s3cr3t-one")
    );
}
