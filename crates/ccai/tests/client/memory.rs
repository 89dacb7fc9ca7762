//! How much memory reading the largest answer the client takes costs: a delete's 2xx body (up to
//! 4 MiB) is scrubbed of the API key, and a scrub that held sets for every position of the body
//! at once took about 200 MB for it (1.3 GB with a key of 2,000 characters).

use crate::client_for;
use crate::fake_api::{FakeApi, Reply};

/// Set in the child process that runs the delete alone, so that its peak is the delete's.
const CHILD: &str = "CCAI_TEST_MEMORY_CHILD";

/// The child's peak resident memory, as the kernel counts it, printed with this prefix.
const PEAK: &str = "peak resident KiB: ";

/// The most the whole child may reach: the test binary itself (about 10 MiB), the fake API's
/// copies of the answer and the client's, each 4 MiB, and the scrub's windows.
const MAX_PEAK_KIB: u64 = 96 * 1024;

#[cfg(target_os = "linux")]
#[test]
fn a_4_mib_delete_answer_is_scrubbed_in_bounded_memory() {
    if std::env::var_os(CHILD).is_some() {
        delete_with_a_4_mib_answer();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = std::process::Command::new(exe)
        .args([
            "--exact",
            "memory::a_4_mib_delete_answer_is_scrubbed_in_bounded_memory",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let peak: u64 = stdout
        .lines()
        // The test harness prints the test's name on the same line.
        .find_map(|line| line.split_once(PEAK).map(|(_, kib)| kib))
        .and_then(|kib| kib.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in the child's output: {stdout}"));
    assert!(
        peak < MAX_PEAK_KIB,
        "the delete took {peak} KiB at its peak"
    );
}

/// A delete answered 200 with 4 MiB of text that resembles what the scrub reads (JSON escapes,
/// percent-encoding, HTML references) and starts with the key cut short (the message shows the
/// answer's start).
fn delete_with_a_4_mib_answer() {
    let piece = r#"{"message":"deleted \u0041 %41 &amp; ok"} "#;
    let shown = &crate::API_KEY[..12];
    let mut body = format!("key {shown}… ");
    body.push_str(&piece.repeat((4 << 20) / piece.len() - 1));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let deleted = runtime.block_on(async {
        let api = FakeApi::start(vec![Reply::text(200, &body)]).await;
        client_for(&api)
            .webhook()
            .delete("42")
            .await
            .expect("a 2xx is a delete done")
    });
    assert!(deleted.success);
    assert!(
        deleted.message.starts_with("key [REDACTED]… {"),
        "{}",
        deleted.message
    );
    assert!(!deleted.message.contains(shown), "{}", deleted.message);
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let peak = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc/self/status");
    println!("{PEAK}{peak}");
}
