use super::directory_share::*;
use super::sync_health_share::*;
use super::*;
use std::collections::VecDeque;
use std::sync::Mutex;

#[test]
fn options_are_bounded_and_the_url_is_never_shown() {
    let share = FleetShare::new("redis://:hunter2@host:1/")
        .lease(Duration::ZERO)
        .expiry(Duration::from_secs(u64::MAX))
        .redis_timeout(Duration::ZERO)
        .prefix("p");
    assert_eq!(share.lease, Duration::from_millis(10));
    assert_eq!(share.expiry, Duration::from_secs(30 * 86_400));
    assert_eq!(share.redis_timeout, Duration::from_millis(1));
    let shown = format!("{share:?}");
    assert!(
        shown.starts_with("FleetShare {") && shown.contains("prefix: \"p\""),
        "{shown}"
    );
    assert!(
        !shown.contains("hunter2") && !shown.contains("host"),
        "{shown}"
    );
    let upper = FleetShare::cluster(["redis://a:1"])
        .lease(Duration::from_secs(u64::MAX))
        .expiry(Duration::ZERO)
        .redis_timeout(Duration::from_secs(u64::MAX));
    assert_eq!(upper.lease, Duration::from_secs(600));
    assert_eq!(upper.expiry, Duration::from_secs(1));
    assert_eq!(upper.redis_timeout, Duration::from_secs(60));
}

#[test]
fn the_defaults_and_bounds_are_pinned() {
    assert_eq!(MAX_SNAPSHOT_BYTES, 33_554_432);
    assert_eq!(MAX_EVENT_BYTES, 65_536);
    assert_eq!(FleetShare::DEFAULT_EXPIRY, Duration::from_secs(86_400));
    assert_eq!(FleetShare::DEFAULT_LEASE, Duration::from_secs(30));
    assert_eq!(
        FleetShare::DEFAULT_REDIS_TIMEOUT,
        Duration::from_millis(250)
    );
    assert_eq!(FleetShare::MAX_EVENTS, 256);
    let share = FleetShare::new("redis://x/");
    assert_eq!(
        (
            share.lease,
            share.expiry,
            share.redis_timeout,
            share.prefix.as_str()
        ),
        (
            FleetShare::DEFAULT_LEASE,
            FleetShare::DEFAULT_EXPIRY,
            FleetShare::DEFAULT_REDIS_TIMEOUT,
            "nexhealth-api:fleet"
        )
    );
}

#[test]
fn a_subdomain_is_named_by_a_digest() {
    let named = digest("acme-dental");
    assert_eq!(named.len(), 24);
    assert!(!named.contains("acme"));
    assert_ne!(named, digest("acme-dentaL"));
    assert_eq!(millis(Duration::ZERO), 1);
    assert_eq!(millis(Duration::from_secs(u64::MAX)), u64::MAX);
}

#[test]
fn trouble_warns_once_when_it_starts_and_notes_once_when_it_ends() {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let trouble = Trouble::default();
    let warnings = || {
        String::from_utf8(lock(&captured.0).clone())
            .unwrap()
            .matches("WARN")
            .count()
    };
    tracing::subscriber::with_default(subscriber, || {
        trouble.cleared("x");
        trouble.seen("x", "Redis cannot be reached");
        assert_eq!(warnings(), 1, "the first sign of trouble warns");
        trouble.seen("x", "Redis cannot be reached");
        assert!(trouble.active());
        trouble.cleared("x");
        trouble.cleared("x");
        assert!(!trouble.active());
    });
    let text = String::from_utf8(lock(&captured.0).clone()).unwrap();
    assert_eq!(text.matches("WARN").count(), 1, "{text}");
    assert_eq!(text.matches("INFO").count(), 1, "{text}");
    assert!(text.find("WARN") < text.find("INFO"), "{text}");
}

#[test]
fn queued_events_are_bounded_newest_first() {
    let queue = Mutex::new(VecDeque::new());
    for n in 0..(FleetShare::MAX_EVENTS + 10) {
        push_bounded(&queue, serde_json::json!(n));
    }
    let queue = lock(&queue);
    assert_eq!(queue.len(), FleetShare::MAX_EVENTS);
    assert_eq!(queue[0], serde_json::json!(FleetShare::MAX_EVENTS + 9));
}
