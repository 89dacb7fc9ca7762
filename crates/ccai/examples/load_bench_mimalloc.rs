//! The load benchmark (`load_bench`) with mimalloc as the global allocator: parsing a delivery
//! allocates a map and about twenty strings, so the allocator is a large part of the handler's
//! cost. Same targets, same generator, same report.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "load_bench/bench.rs"]
mod bench;

fn main() {
    bench::main();
}
