//! The real `seing` binary run by a test: a free loopback port to give it, and the child
//! process killed when the test ends, whether it passed or panicked.

use std::net::TcpListener;
use std::process::Child;

/// A child process, killed and reaped when dropped.
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A loopback port that is free when asked.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
