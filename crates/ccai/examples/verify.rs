//! Verifies one saved delivery and says what it is.
//!
//! ```text
//! cargo run -p ccai --example verify -- BODY_FILE SIGNATURE CLIENT_ID SECRET
//! ```
//!
//! Exit code 0 when the signature verifies, 1 when it does not, 2 on a usage or file error.

use std::process::ExitCode;

use ccai::webhook::{EventData, Verifier};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [body_file, signature, client_id, secret] = args.as_slice() else {
        eprintln!("usage: verify BODY_FILE SIGNATURE CLIENT_ID SECRET");
        eprintln!("  BODY_FILE  the raw request body, exactly as received");
        eprintln!("  SIGNATURE  the X-CCAI-Signature header value");
        return ExitCode::from(2);
    };
    let body = match std::fs::read(body_file) {
        Ok(body) => body,
        Err(e) => {
            eprintln!("error: cannot read {body_file}: {e}");
            return ExitCode::from(2);
        }
    };
    let verifier = match Verifier::new(client_id.as_str(), secret) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let event = match verifier.verify_event(Some(signature), &body) {
        Ok(event) => event,
        Err(e) => {
            println!("NOT verified: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "verified: {} (eventHash {})",
        event.event_type, event.event_hash
    );
    match event.typed_data() {
        Ok(EventData::Sent(m)) => println!(
            "  sent to {} ({} segment(s), price {})",
            shown(m.to),
            shown(m.segments),
            shown(m.total_price)
        ),
        Ok(EventData::Incoming(m)) => println!("  from {}: {}", shown(m.from), shown(m.message)),
        Ok(EventData::Excluded(m)) => {
            println!("  excluded {}: {}", shown(m.to), shown(m.excluded_reason))
        }
        Ok(EventData::ErrorCarrier(m) | EventData::ErrorCloudcontact(m)) => println!(
            "  failed to {}: {} {}",
            shown(m.to),
            shown(m.error_code),
            shown(m.error_message)
        ),
        Ok(EventData::Unknown { data, .. }) => {
            println!("  unknown type, {} data field(s)", data.len())
        }
        Ok(_) => println!("  (a newer event type)"),
        Err(e) => println!("  data is unusual: {e}"),
    }
    ExitCode::SUCCESS
}

/// A field the delivery left out is shown as `?`, not as a zero or an empty string that reads
/// like a value (`0 segment(s)`).
fn shown<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "?".to_owned(), |v| v.to_string())
}
