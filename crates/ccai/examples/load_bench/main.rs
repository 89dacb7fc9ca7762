//! Load benchmark of the webhook handler against a bare axum route (the system allocator).
//! See `bench.rs` for what it measures.

mod bench;

fn main() {
    bench::main();
}
