use super::*;
use queue::clock::ManualClock;

fn breaker(threshold: u32, open_ms: u64) -> (Breaker, ManualClock) {
    let clock = ManualClock::new(1_000_000);
    let b = Breaker::with_clock(
        threshold,
        Duration::from_millis(open_ms),
        Arc::new(clock.clone()),
    );
    (b, clock)
}

#[test]
fn the_breaker_opens_after_consecutive_failures_and_probes_once() {
    let (b, clock) = breaker(3, 30);
    for _ in 0..2 {
        b.admit().unwrap().finish(false);
    }
    b.admit().unwrap().finish(true);
    assert!(!b.is_open(), "a success resets the count");
    for _ in 0..3 {
        b.admit().unwrap().finish(false);
    }
    assert!(b.is_open());
    assert!(b.admit().is_none());
    assert_eq!(b.state_name(), "OPEN");
    clock.advance_ms(29);
    assert!(b.admit().is_none(), "open for the full period");
    clock.advance_ms(1);
    assert_eq!(b.state_name(), "HALF_OPEN");
    let probe = b.admit().expect("one probe after the open period");
    assert!(b.admit().is_none(), "only one probe at a time");
    probe.finish(false);
    assert!(b.admit().is_none(), "a failed probe reopens");
    clock.advance_ms(30);
    b.admit().unwrap().finish(true);
    assert!(!b.is_open());
    assert_eq!(b.state_name(), "CLOSED");
    assert!(b.admit().is_some());
}

#[test]
fn only_the_probe_decides_whether_a_half_open_circuit_closes() {
    let (b, clock) = breaker(1, 1000);
    // Admitted while the circuit was closed, answering late.
    let late_success = b.admit().unwrap();
    let late_failure = b.admit().unwrap();
    b.admit().unwrap().finish(false);
    assert_eq!(b.state_name(), "OPEN");
    clock.advance_ms(1000);
    let probe = b.admit().expect("the probe");
    late_success.finish(true);
    assert_eq!(
        b.state_name(),
        "HALF_OPEN",
        "a late success does not close it"
    );
    assert!(b.admit().is_none(), "still one probe at a time");
    late_failure.finish(false);
    assert!(b.admit().is_none(), "nor does a late failure decide");
    probe.finish(false);
    assert_eq!(b.state_name(), "OPEN", "the probe's failure reopens it");
    clock.advance_ms(1000);
    let probe = b.admit().expect("the next probe");
    probe.finish(true);
    assert_eq!(b.state_name(), "CLOSED", "the probe's success closes it");
}

#[test]
fn a_late_success_does_not_close_an_open_circuit() {
    let (b, clock) = breaker(1, 1000);
    let late = b.admit().unwrap();
    b.admit().unwrap().finish(false);
    late.finish(true);
    assert!(b.admit().is_none(), "refused until the period is over");
    clock.advance_ms(1000);
    assert!(b.admit().is_some());
}

#[test]
fn an_abandoned_probe_lets_the_next_call_probe() {
    let (b, clock) = breaker(1, 1);
    b.admit().unwrap().finish(false);
    clock.advance_ms(5);
    drop(b.admit().unwrap());
    assert!(b.admit().is_some());
}

#[test]
fn tonic_timeouts_count_as_deadlines() {
    assert!(is_deadline(&tonic::Status::cancelled("Timeout expired")));
    assert!(is_deadline(&tonic::Status::deadline_exceeded("x")));
    assert!(!is_deadline(&tonic::Status::cancelled("client went away")));
    assert!(!is_failure(tonic::Code::FailedPrecondition));
    assert!(is_failure(tonic::Code::Unavailable));
}
