use super::*;

fn identity(n: u32) -> EventIdentity {
    EventIdentity::of(&serde_json::json!({"event_name": "e", "n": n}))
}

const HOUR: Duration = Duration::from_secs(3_600);

async fn handle(
    store: &impl HandledStore,
    n: u32,
    keep: Duration,
) -> Result<Claim, StoreUnavailable> {
    let claim = store.claim(&identity(n), Duration::from_secs(60)).await?;
    if let Claim::Claimed(lease) = &claim {
        store.commit(&identity(n), lease, keep).await?;
    }
    Ok(claim)
}

#[tokio::test(start_paused = true)]
async fn claim_commit_release_in_memory() {
    let store = MemoryStore::default();
    let lease = Duration::from_secs(30);
    let Claim::Claimed(first) = store.claim(&identity(1), lease).await.unwrap() else {
        panic!("the first claim wins");
    };
    assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Busy));
    // Released: claimable again; a stale lease commits nothing.
    store.release(&identity(1), &first).await.unwrap();
    let Claim::Claimed(second) = store.claim(&identity(1), lease).await.unwrap() else {
        panic!("claimable after a release");
    };
    store.commit(&identity(1), &first, lease).await.unwrap();
    assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Busy));
    store.release(&identity(1), &first).await.unwrap();
    assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Busy));
    store.commit(&identity(1), &second, lease).await.unwrap();
    assert_eq!(store.claim(&identity(1), lease).await, Ok(Claim::Handled));
    assert!(matches!(
        store.claim(&identity(2), lease).await,
        Ok(Claim::Claimed(_))
    ));
    assert!(format!("{store:?}").starts_with("MemoryStore { entries: 2"));
}

#[tokio::test(start_paused = true)]
async fn a_lease_and_a_keep_run_out_exactly_on_time() {
    let store = MemoryStore::default();
    let Ok(Claim::Claimed(stale)) = store.claim(&identity(1), Duration::from_millis(100)).await
    else {
        panic!("claimed");
    };
    tokio::time::advance(Duration::from_millis(99)).await;
    assert_eq!(
        store.claim(&identity(1), HOUR).await,
        Ok(Claim::Busy),
        "the lease still holds"
    );
    tokio::time::advance(Duration::from_millis(2)).await;
    let Ok(Claim::Claimed(current)) = store.claim(&identity(1), HOUR).await else {
        panic!("claimable once the lease ran out");
    };
    store.release(&identity(1), &stale).await.unwrap();
    assert_eq!(store.claim(&identity(1), HOUR).await, Ok(Claim::Busy));
    store
        .commit(&identity(1), &current, Duration::from_secs(50))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(49)).await;
    assert_eq!(store.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(matches!(
        store.claim(&identity(1), HOUR).await,
        Ok(Claim::Claimed(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn at_its_deadline_an_identity_is_gone_and_makes_room() {
    let store = MemoryStore::with_capacity(1);
    handle(&store, 1, Duration::from_secs(10)).await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    // Exactly at the deadline: forgotten, and its room is free.
    assert!(matches!(
        handle(&store, 2, HOUR).await,
        Ok(Claim::Claimed(_))
    ));
    let store = MemoryStore::with_capacity(2);
    handle(&store, 1, Duration::from_secs(10)).await.unwrap();
    tokio::time::advance(Duration::from_secs(10)).await;
    assert!(matches!(
        handle(&store, 1, HOUR).await,
        Ok(Claim::Claimed(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_full_store_forgets_nothing_alive_and_says_so() {
    let store = MemoryStore::with_capacity(1_000);
    let mut full = 0;
    for n in 0..5_000 {
        match handle(&store, n, HOUR).await {
            Ok(Claim::Claimed(_)) => assert!(n < 1_000, "event {n} claimed past the capacity"),
            Err(unavailable) => {
                assert_eq!(unavailable.reason, StoreUnavailable::FULL);
                assert_eq!(unavailable.kind(), "full");
                full += 1;
            }
            other => panic!("event {n}: {other:?}"),
        }
    }
    assert_eq!(full, 4_000);
    assert_eq!(store.len(), 1_000);
    // Every identity it took is still remembered, oldest and newest alike.
    for n in (0..100).chain(900..1_000) {
        assert_eq!(handle(&store, n, HOUR).await, Ok(Claim::Handled), "{n}");
    }
    // Running leases are never dropped either.
    let leases = MemoryStore::with_capacity(100);
    for n in 0..50 {
        assert!(matches!(
            leases.claim(&identity(n), HOUR).await,
            Ok(Claim::Claimed(_))
        ));
    }
    for n in 50..3_050 {
        let _ = handle(&leases, n, Duration::from_secs(1)).await;
        if n % 100 == 0 {
            tokio::time::advance(Duration::from_secs(2)).await;
        }
    }
    for n in 0..50 {
        assert_eq!(
            leases.claim(&identity(n), HOUR).await,
            Ok(Claim::Busy),
            "{n}"
        );
    }
    // Room frees up as keeps run out.
    tokio::time::advance(HOUR).await;
    assert!(matches!(
        handle(&store, 4_999, HOUR).await,
        Ok(Claim::Claimed(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn extend_keeps_a_handled_identity_longer_and_nothing_else() {
    let store = MemoryStore::default();
    handle(&store, 1, Duration::from_secs(10)).await.unwrap();
    store
        .extend(&identity(1), Duration::from_secs(100))
        .await
        .unwrap();
    // Extending never shortens.
    store
        .extend(&identity(1), Duration::from_secs(1))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(99)).await;
    assert_eq!(handle(&store, 1, HOUR).await, Ok(Claim::Handled));
    // An identity that is not handled is not made handled.
    store.extend(&identity(2), HOUR).await.unwrap();
    assert!(matches!(
        handle(&store, 2, HOUR).await,
        Ok(Claim::Claimed(_))
    ));
    // A commit over a handled identity extends too.
    let store = MemoryStore::default();
    let Ok(Claim::Claimed(lease)) = store.claim(&identity(3), HOUR).await else {
        panic!()
    };
    store
        .commit(&identity(3), &lease, Duration::from_secs(10))
        .await
        .unwrap();
    store
        .commit(&identity(3), &lease, Duration::from_secs(100))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(handle(&store, 3, HOUR).await, Ok(Claim::Handled));
    // Absurd durations neither panic nor expire at once.
    store.extend(&identity(3), Duration::MAX).await.unwrap();
    tokio::time::advance(Duration::from_secs(86_400)).await;
    assert_eq!(handle(&store, 3, HOUR).await, Ok(Claim::Handled));
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_claim_is_released_or_committed() {
    let store = MemoryStore::default();
    let Ok(Claim::Claimed(lease)) = store.claim(&identity(1), HOUR).await else {
        panic!()
    };
    store.abandon(&identity(1), &lease, Abandoned::Unfinished);
    let Ok(Claim::Claimed(lease)) = store.claim(&identity(1), HOUR).await else {
        panic!("released")
    };
    store.abandon(&identity(1), &lease, Abandoned::Handled { keep: HOUR });
    assert_eq!(store.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
}

#[test]
fn durations_are_cut_to_ten_years() {
    assert_eq!(slots::LONGEST, Duration::from_secs(315_360_000));
    let now = tokio::time::Instant::now();
    assert_eq!(slots::deadline(now, Duration::MAX) - now, slots::LONGEST);
    assert_eq!(slots::deadline(now, HOUR) - now, HOUR);
}

#[test]
fn reasons_have_stable_kinds() {
    for (reason, kind) in [
        (StoreUnavailable::FULL, "full"),
        (StoreUnavailable::UNEXPECTED_ANSWER, "unexpected_answer"),
        (StoreUnavailable::RESTORING, "restoring"),
        ("Redis timed out", "unavailable"),
    ] {
        assert_eq!(StoreUnavailable { reason }.kind(), kind);
    }
    assert_eq!(MemoryStore::DEFAULT_CAPACITY, 209_715);
    assert_eq!(
        MemoryStore::with_memory(1024 * BYTES_PER_ENTRY).capacity(),
        1024
    );
    assert_eq!(MemoryStore::with_capacity(0).capacity(), 1);
}

#[cfg(all(feature = "mock", feature = "redis"))]
mod on_redis {
    use super::*;
    use crate::mock::RedisServer;

    fn store(redis: &RedisServer) -> RedisStore {
        RedisStore::new(&redis.url()).unwrap()
    }

    #[tokio::test]
    async fn only_the_lease_holder_commits_or_releases() {
        let redis = RedisServer::start().unwrap();
        let (a, b) = (store(&redis), store(&redis));
        let Ok(Claim::Claimed(stale)) = a.claim(&identity(1), Duration::from_millis(100)).await
        else {
            panic!("claimed")
        };
        assert_eq!(a.claim(&identity(1), HOUR).await, Ok(Claim::Busy));
        tokio::time::sleep(Duration::from_millis(300)).await;
        let Ok(Claim::Claimed(current)) = b.claim(&identity(1), HOUR).await else {
            panic!("claimable once the 100 ms lease ran out")
        };
        // The stale holder neither commits nor releases the new claim.
        a.commit(&identity(1), &stale, HOUR).await.unwrap();
        assert_eq!(b.claim(&identity(1), HOUR).await, Ok(Claim::Busy));
        a.release(&identity(1), &stale).await.unwrap();
        assert_eq!(b.claim(&identity(1), HOUR).await, Ok(Claim::Busy));
        b.commit(&identity(1), &current, HOUR).await.unwrap();
        // Nor does a stale release undo a commit.
        a.release(&identity(1), &stale).await.unwrap();
        let fresh = store(&redis);
        assert_eq!(fresh.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
        // An absurd keep is clamped to what Redis accepts, not refused.
        let Ok(Claim::Claimed(lease)) = fresh.claim(&identity(2), HOUR).await else {
            panic!()
        };
        fresh
            .commit(&identity(2), &lease, Duration::MAX)
            .await
            .unwrap();
        assert_eq!(
            store(&redis).claim(&identity(2), HOUR).await,
            Ok(Claim::Handled)
        );
        fresh.extend(&identity(2), Duration::MAX).await.unwrap();
    }

    fn key(n: u32) -> String {
        format!(
            "{{{}}}:{}",
            RedisStore::DEFAULT_PREFIX,
            identity(n).to_hex()
        )
    }

    #[tokio::test]
    async fn each_replica_s_record_answers_for_what_it_handled() {
        let redis = RedisServer::start().unwrap();
        let replica = store(&redis).record_capacity(2);
        assert_eq!(replica.recorded(), 0);
        handle(&replica, 1, Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(replica.recorded(), 1);
        // A duplicate pushes the record's keep time on, as Redis's.
        replica
            .extend(&identity(1), Duration::from_secs(30))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(600)).await;
        // Redis lost the key (evicted, say) but kept its epoch: the record answers.
        redis.command(&format!("DEL {}", key(1))).unwrap();
        assert_eq!(replica.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
        // Bounded: the entries that run out soonest leave first.
        for n in 2..6 {
            handle(&replica, n, HOUR * n).await.unwrap();
        }
        assert_eq!(replica.recorded(), 2);
        let shown = format!("{replica:?}");
        assert!(
            shown.contains("prefix: \"nexhealth-api:webhook\"") && shown.contains("recorded: 2"),
            "{shown}"
        );
        assert!(!shown.contains("127.0.0.1"), "{shown}");
    }

    #[tokio::test]
    async fn a_replica_that_saw_the_data_restores_even_with_nothing_to_hand_back() {
        let redis = RedisServer::start().unwrap();
        let (a, b) = (store(&redis), store(&redis));
        handle(&a, 1, HOUR).await.unwrap();
        // B saw this Redis's epoch, and handled nothing.
        let Ok(Claim::Claimed(lease)) = b.claim(&identity(2), HOUR).await else {
            panic!()
        };
        b.release(&identity(2), &lease).await.unwrap();
        assert_eq!(b.recorded(), 0);
        redis.command("FLUSHALL").unwrap();
        // B is first to see the data gone: it opens the restoring window.
        assert_eq!(
            b.claim(&identity(1), HOUR).await,
            Err(StoreUnavailable {
                reason: StoreUnavailable::RESTORING
            })
        );
        tokio::time::sleep(RedisStore::RESTORING_WINDOW + Duration::from_millis(600)).await;
        assert_eq!(b.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
        // A fresh Redis that no replica knew opens no window.
        let fresh = RedisServer::start().unwrap();
        assert!(matches!(
            store(&fresh).claim(&identity(1), HOUR).await,
            Ok(Claim::Claimed(_))
        ));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_replica_with_no_traffic_hands_back_on_its_heartbeat() {
        let redis = RedisServer::start().unwrap();
        let (quiet, busy) = (store(&redis), store(&redis));
        handle(&quiet, 1, HOUR).await.unwrap();
        handle(&busy, 2, HOUR).await.unwrap();
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        // Many claims start one heartbeat per store, not one each.
        for n in 10..30 {
            handle(&busy, n, HOUR).await.unwrap();
        }
        let now_alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        assert!(now_alive <= alive, "{alive} tasks, then {now_alive}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        redis.command("FLUSHALL").unwrap();
        // Only `busy` is asked; `quiet` hands back on its own.
        let _ = busy.claim(&identity(3), HOUR).await;
        tokio::time::sleep(RedisStore::RESTORING_WINDOW + Duration::from_millis(800)).await;
        assert_eq!(busy.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
        // A released claim is claimable again.
        let Ok(Claim::Claimed(lease)) = busy.claim(&identity(4), HOUR).await else {
            panic!()
        };
        busy.release(&identity(4), &lease).await.unwrap();
        assert!(matches!(
            busy.claim(&identity(4), HOUR).await,
            Ok(Claim::Claimed(_))
        ));
    }

    #[tokio::test]
    async fn answers_outside_the_vocabulary_are_unavailable() {
        let redis = RedisServer::start().unwrap();
        let s = store(&redis);
        let key = format!(
            "{{{}}}:{}",
            RedisStore::DEFAULT_PREFIX,
            identity(1).to_hex()
        );
        redis.command(&format!("SET {key} something-else")).unwrap();
        assert_eq!(
            s.claim(&identity(1), HOUR).await,
            Err(StoreUnavailable {
                reason: StoreUnavailable::UNEXPECTED_ANSWER
            })
        );
        let epoch = format!("{{{}}}:epoch", RedisStore::DEFAULT_PREFIX);
        redis.command(&format!("SET {epoch} not-an-epoch")).unwrap();
        assert_eq!(
            s.claim(&identity(2), HOUR).await,
            Err(StoreUnavailable {
                reason: StoreUnavailable::UNEXPECTED_ANSWER
            })
        );
    }

    #[tokio::test]
    async fn redis_restarted_empty_gets_every_replica_s_record_back() {
        let mut redis = RedisServer::start().unwrap();
        let replicas = [store(&redis), store(&redis), store(&redis)];
        for (i, replica) in replicas.iter().enumerate() {
            for n in 0..4 {
                let n = (i * 4 + n) as u32;
                assert!(matches!(
                    handle(replica, n, HOUR).await,
                    Ok(Claim::Claimed(_))
                ));
            }
        }
        // Let every heartbeat see this Redis's epoch.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        redis.stop();
        redis.restart().unwrap();
        // Right after the restart: never handled again (restoring, or a duplicate).
        for n in 0..12 {
            let other = &replicas[(n as usize / 4 + 1) % 3];
            match other.claim(&identity(n), HOUR).await {
                Ok(Claim::Handled) | Err(_) => {}
                claim => panic!("event {n} right after the restart: {claim:?}"),
            }
        }
        tokio::time::sleep(RedisStore::RESTORING_WINDOW + Duration::from_millis(500)).await;
        for n in 0..12u32 {
            // A replica that never handled it, and a new one.
            let other = &replicas[(n as usize / 4 + 1) % 3];
            assert_eq!(
                other.claim(&identity(n), HOUR).await,
                Ok(Claim::Handled),
                "{n}"
            );
            assert_eq!(
                store(&redis).claim(&identity(n), HOUR).await,
                Ok(Claim::Handled),
                "{n}"
            );
        }
        // And new events are claimed as before.
        assert!(matches!(
            handle(&replicas[0], 99, HOUR).await,
            Ok(Claim::Claimed(_))
        ));
    }

    #[tokio::test]
    async fn a_claim_answered_after_its_timeout_is_withdrawn() {
        let redis = RedisServer::start().unwrap();
        let impatient =
            RedisStore::with_options(&redis.url(), None, Duration::from_millis(50)).unwrap();
        // Warm the connection and the scripts (a busy machine may need tries).
        let warm = std::time::Instant::now();
        while handle(&impatient, 0, HOUR).await.is_err() {
            assert!(
                warm.elapsed() < Duration::from_secs(10),
                "Redis never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // The server is busy for 400 ms: the claim's wait ends first, and
        // the server runs the claim after that.
        let port = redis.port();
        let busy = std::thread::spawn(move || {
            std::process::Command::new("redis-cli")
                .args(["-p", &port.to_string(), "DEBUG", "SLEEP", "0.4"])
                .output()
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(impatient.claim(&identity(1), HOUR).await.is_err());
        busy.join().unwrap().unwrap();
        // Withdrawn within seconds, not held for the hour.
        let other = store(&redis);
        let waiting = std::time::Instant::now();
        loop {
            match other.claim(&identity(1), HOUR).await {
                Ok(Claim::Claimed(_)) => break,
                Ok(Claim::Busy) => {
                    assert!(
                        waiting.elapsed() < Duration::from_secs(10),
                        "the late claim still holds the event"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[tokio::test]
    async fn an_abandoned_claim_is_released_on_redis() {
        let redis = RedisServer::start().unwrap();
        let s = store(&redis);
        let Ok(Claim::Claimed(lease)) = s.claim(&identity(1), HOUR).await else {
            panic!()
        };
        s.abandon(&identity(1), &lease, Abandoned::Unfinished);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(matches!(
            store(&redis).claim(&identity(1), HOUR).await,
            Ok(Claim::Claimed(_))
        ));
    }
}

#[tokio::test(start_paused = true)]
async fn a_commit_never_shortens_a_handled_identity_s_keep() {
    let store = MemoryStore::default();
    assert!(store.is_empty());
    let Ok(Claim::Claimed(lease)) = store.claim(&identity(1), HOUR).await else {
        panic!()
    };
    assert!(!store.is_empty());
    store
        .commit(&identity(1), &lease, Duration::from_secs(100))
        .await
        .unwrap();
    store
        .commit(&identity(1), &lease, Duration::from_secs(10))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(50)).await;
    assert_eq!(store.claim(&identity(1), HOUR).await, Ok(Claim::Handled));
    assert_eq!(store.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_full_store_warns_once_per_full_spell() {
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
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
    let _default = tracing::subscriber::set_default(subscriber);
    let warnings = || {
        String::from_utf8(captured.0.lock().unwrap().clone())
            .unwrap()
            .matches("WARN")
            .count()
    };
    let store = MemoryStore::with_capacity(1);
    handle(&store, 1, Duration::from_secs(10)).await.unwrap();
    assert_eq!(warnings(), 0, "not full until a claim finds no room");
    for n in 2..5 {
        assert!(handle(&store, n, HOUR).await.is_err());
    }
    assert_eq!(warnings(), 1, "one warning for the spell");
    tokio::time::advance(Duration::from_secs(11)).await;
    assert!(matches!(
        handle(&store, 5, Duration::from_secs(10)).await,
        Ok(Claim::Claimed(_))
    ));
    assert!(handle(&store, 6, HOUR).await.is_err());
    assert_eq!(warnings(), 2, "a new spell warns again");
}
