use super::*;

#[test]
fn target_urls_are_the_api_schemas_uri_subset() {
    for ok in [
        "https://shop.example/spring-tour/buy",
        "http://127.0.0.1:8080/landing?from=queue&x=%2F#top",
        "https://shop.example",
        "https://shop.example?x=1",
    ] {
        assert!(is_target_url(ok), "{ok}");
    }
    for bad in [
        "https://",
        "ftp://shop.example/",
        "https://shop.example/a b",
        "https://b+gJ@G=NmAr@07",
        "https://[::1]/",
        "https://shop.example:/",
        "https://shop.example/%zz",
        "https://shop.example/#a#b",
        "https://sh\u{f6}p.example/",
    ] {
        assert!(!is_target_url(bad), "{bad}");
    }
}

fn waiting(position: u64, measured: i64, aps: u32) -> Place {
    Place {
        ticket: 1,
        status: Status::Waiting,
        position,
        expires_at_ms: 0,
        measured_rate_milli: measured,
        admit_per_second: aps,
        stopped: false,
        opens_at_ms: None,
        epoch: 0,
        method: QueueingMethod::Fifo,
        log_seq: 0,
    }
}

#[test]
fn eta_prefers_the_measured_rate() {
    assert_eq!(waiting(100, -1, 10).eta_seconds(0), 10);
    assert_eq!(waiting(100, 5_000, 10).eta_seconds(0), 20);
    assert_eq!(waiting(1, 3_000, 10).eta_seconds(0), 1);
    assert_eq!(waiting(100, 0, 0).eta_seconds(0), -1);
}

#[test]
fn departures_move_positions() {
    assert_eq!(Departure::Head(3).apply(2), None);
    assert_eq!(Departure::Head(3).apply(10), Some(7));
    assert_eq!(Departure::Rank(4).apply(4), None);
    assert_eq!(Departure::Rank(4).apply(5), Some(4));
    assert_eq!(Departure::Rank(4).apply(3), Some(3));
    assert_eq!(Departure::parse("a12"), Some(Departure::Head(12)));
    assert_eq!(Departure::parse("r1"), Some(Departure::Rank(1)));
    // A priority arrival at 4 moves 4 and everyone behind back one, nobody ahead.
    assert_eq!(Departure::Arrival(4).apply(4), Some(5));
    assert_eq!(Departure::Arrival(4).apply(9), Some(10));
    assert_eq!(Departure::Arrival(4).apply(3), Some(3));
    assert_eq!(Departure::Reset.apply(1), None);
    assert_eq!(Departure::parse("p2"), Some(Departure::Arrival(2)));
    assert_eq!(Departure::parse("x0"), Some(Departure::Reset));
    assert_eq!(Departure::parse("z1"), None);
    assert_eq!(Departure::parse("p"), None);
    assert_eq!(Departure::parse(""), None);
}

#[test]
fn config_defaults_and_ranges() {
    let c: EventConfig = serde_json::from_str(r#"{"admit_per_second":5,"max_active":10}"#).unwrap();
    assert_eq!(c, EventConfig::new(5, 10));
    assert!(c.validate().is_ok());
    let mut bad = c.clone();
    bad.ready_timeout_seconds = 0;
    assert!(bad.validate().is_err());
    assert!(
        serde_json::from_str::<EventConfig>(r#"{"admit_per_second":-1,"max_active":1}"#).is_err()
    );
    let random: EventConfig = serde_json::from_str(
        r#"{"admit_per_second":5,"max_active":10,"queueing_method":"random"}"#,
    )
    .unwrap();
    assert_eq!(random.queueing_method, QueueingMethod::Random);
    for field in ["page", "join_challenge"] {
        let arr = format!(r#"{{"admit_per_second":5,"max_active":10,"{field}":[16]}}"#);
        assert!(
            serde_json::from_str::<EventConfig>(&arr).is_err(),
            "{field}"
        );
        let null = format!(r#"{{"admit_per_second":5,"max_active":10,"{field}":null}}"#);
        assert!(
            serde_json::from_str::<EventConfig>(&null).is_ok(),
            "{field}"
        );
    }
    let with = serde_json::from_str::<EventConfig>(
        r#"{"admit_per_second":5,"max_active":10,"join_challenge":{"difficulty_bits":8},"page":{"title":"t"}}"#,
    )
    .unwrap();
    assert_eq!(with.join_challenge.map(|c| c.difficulty_bits), Some(8));
    assert_eq!(with.page.and_then(|p| p.title).as_deref(), Some("t"));
    assert!(serde_json::from_str::<EventConfig>(
        r#"{"admit_per_second":5,"max_active":10,"queueing_method":"lifo"}"#
    )
    .is_err());
}
