//! testkit's own promises, on real processes and sockets: a child's lines arrive and its
//! exit is seen, waits time out, a closed port refuses, and a private mosquitto never
//! claims a port it does not hold.

use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{Mosquitto, Proc};

#[test]
fn a_child_process_lines_exit_and_stop() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo ready >&2; echo out; exec sleep 60"]);
    let mut proc = Proc::spawn(command);
    assert_eq!(proc.wait_stderr("ready", Duration::from_secs(30)), "ready");
    assert_eq!(proc.wait_stdout("out", Duration::from_secs(30)), "out");
    assert!(proc.exited().is_none());
    // `sleep` ends on SIGTERM: a clean stop.
    assert!(proc.stop(Duration::from_secs(30)));

    let mut command = Command::new("sh");
    command.args(["-c", "echo bye >&2; exit 3"]);
    let mut proc = Proc::spawn(command);
    let status = proc.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(3));
    assert_eq!(
        proc.stderr(),
        "bye",
        "every line is in once the exit is seen"
    );
}

#[test]
#[should_panic(expected = "closed its stderr without a line containing")]
fn waiting_for_a_line_ends_when_the_stream_does() {
    let mut command = Command::new("sh");
    command.args(["-c", "echo something else >&2"]);
    let proc = Proc::spawn(command);
    proc.wait_stderr("never printed", Duration::from_secs(60));
}

#[test]
fn waits_give_up_at_their_deadline() {
    let start = Instant::now();
    let found = testkit::wait_for_blocking(Duration::from_millis(200), || None::<()>);
    assert!(found.is_none());
    assert!(start.elapsed() >= Duration::from_millis(200));
    let mut calls = 0;
    let found = testkit::wait_for_blocking(Duration::from_secs(30), || {
        calls += 1;
        (calls == 3).then_some(calls)
    });
    assert_eq!(found, Some(3));
}

#[test]
fn a_closed_port_refuses_connections() {
    let closed = testkit::closed_port();
    let err = TcpStream::connect_timeout(&closed.addr, Duration::from_secs(5))
        .expect_err("nothing listens");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn unique_names_differ_and_suit_sql_and_mqtt() {
    let (a, b) = (testkit::unique("ob_t"), testkit::unique("ob_t"));
    assert_ne!(a, b);
    assert!(
        a.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    );
}

#[test]
fn private_mosquitto_holds_its_port_and_comes_back_on_it() {
    let bin = testkit::require!(testkit::services::mosquitto());
    let mut broker = Mosquitto::start(&bin);
    TcpStream::connect(("127.0.0.1", broker.port())).expect("the broker listens");
    broker.kill();
    TcpStream::connect(("127.0.0.1", broker.port())).expect_err("the broker is down");
    broker.start_again();
    TcpStream::connect(("127.0.0.1", broker.port())).expect("the broker is back");
}

#[test]
fn private_mosquitto_does_not_claim_a_taken_port() {
    let bin = testkit::require!(testkit::services::mosquitto());
    let mut broker = Mosquitto::start(&bin);
    broker.kill();
    // Someone else takes the port while the broker is down: starting again must fail
    // loudly instead of pretending the broker is back.
    let _thief = TcpListener::bind(("127.0.0.1", broker.port())).expect("take the port");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        broker.start_again_within(Duration::from_secs(1))
    }));
    let message = result
        .expect_err("start_again must not succeed on a taken port")
        .downcast::<String>()
        .map(|m| *m)
        .unwrap_or_default();
    assert!(message.contains("the port stays taken"), "{message}");
}
