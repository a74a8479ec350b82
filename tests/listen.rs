//! The listener's accept queue (`exbrief::app::listen`). A test binary of its own: it opens a
//! thousand-odd connections at once, which must not disturb the timing of other tests.

use std::time::Duration;

/// More connections than tokio's default backlog (1,024) arrive at once and none is accepted
/// yet: each handshake completes only if the kernel queues it, and one whose SYN was dropped
/// would wait a second for its retransmission.
#[tokio::test]
async fn a_burst_beyond_tokios_default_backlog_is_queued_by_the_kernel() {
    let listener = exbrief::app::listen(([127, 0, 0, 1], 0).into()).expect("listen");
    let addr = listener.local_addr().expect("address");
    let connects = (0..1200).map(|_| {
        tokio::time::timeout(
            Duration::from_millis(900),
            tokio::net::TcpStream::connect(addr),
        )
    });
    let results = futures::future::join_all(connects).await;
    let queued = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(queued, 1200);
}
