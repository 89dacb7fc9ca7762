#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = ccai_fuzz::redact(data);
});
