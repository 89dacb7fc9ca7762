//! With `max_connections` reached, the server accepts nothing more: the process holds exactly one
//! descriptor per client socket plus one per accepted connection, up to the cap. Alone in its
//! test binary, since it counts the whole process's descriptors.

mod serve_support;

use std::time::Duration;

use ccai::server::Server;
use serve_support::{handler_options, read_response, send, signed_request, start};
use tokio::net::TcpStream;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

#[tokio::test]
async fn connections_beyond_the_cap_are_not_accepted() {
    if !std::path::Path::new("/proc/self/fd").exists() {
        return; // not Linux
    }
    const CAP: usize = 4;
    const CLIENTS: usize = 20;
    let server = Server::new()
        .max_connections(CAP)
        .header_read_timeout(Duration::from_secs(30))
        .keep_alive_timeout(Some(Duration::from_secs(30)));
    let addr = start(server, handler_options()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = open_fds();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(TcpStream::connect(addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = open_fds();
    // Our CLIENTS sockets, and the server's side of the first CAP only.
    assert_eq!(
        during - before,
        CLIENTS + CAP,
        "before {before}, during {during}"
    );

    // The last client (in the backlog) is served once the first ones go away.
    let mut last = clients.pop().expect("a client");
    send(&mut last, &signed_request("fd-cap", true)).await;
    clients.clear();
    let status = tokio::time::timeout(Duration::from_secs(5), read_response(&mut last))
        .await
        .expect("served");
    assert_eq!(status, 200);
}
