use super::tests::slow_locations;
use super::*;
use crate::domain::fleet::FleetShare;
use crate::mock::{MockServerExt, RedisServer, StandIn, payloads};

fn client(base: &str) -> Client {
    Client::builder("shared-unit-key")
        .base_url(base)
        .retry(crate::transport::policy::RetryPolicy::none())
        .build()
        .unwrap()
}

fn replica(base: &str, share: &FleetShare) -> LocationDirectory {
    LocationDirectory::new(client(base)).shared(share).unwrap()
}

const HOUR: Duration = Duration::from_secs(3_600);

#[tokio::test]
async fn the_fleet_fetches_each_generation_once_and_only_newer_copies_are_read() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::with_moving_locations(1).await;
    let share = FleetShare::new(redis.url()).prefix("gen");
    let (a, b) = (
        replica(&server.base_url(), &share),
        replica(&server.base_url(), &share),
    );
    a.refresh_within(HOUR).await.unwrap();
    let (copy, changes) = b.refresh_within(HOUR).await.unwrap();
    assert_eq!((a.fetches(), b.fetches()), (1, 0));
    assert!(changes.is_empty() && copy.location(9).is_none());
    // A's copy is the stored one: not newer for A, so A fetches the next.
    let (_, changes) = a.refresh_within(HOUR).await.unwrap();
    assert_eq!(a.fetches(), 2);
    assert!(matches!(changes[..], [Change::Added { .. }]), "{changes:?}");
    // B reads it, and sees the change itself.
    let (copy, changes) = b.refresh_within(HOUR).await.unwrap();
    assert_eq!(b.fetches(), 0);
    assert!(copy.location(9).is_some());
    assert!(matches!(changes[..], [Change::Added { .. }]), "{changes:?}");
    // Nothing newer than B's copy: B fetches the next generation.
    b.refresh_within(HOUR).await.unwrap();
    assert_eq!(b.fetches(), 1);
    // A copy older than the interval asked for is not read.
    tokio::time::sleep(Duration::from_millis(30)).await;
    a.refresh_within(Duration::from_millis(10)).await.unwrap();
    assert_eq!(a.fetches(), 3);
    // The TTL path reads any copy younger than the TTL, even one this
    // replica has; a new replica reads the replacements the fleet saw.
    let c = replica(&server.base_url(), &share);
    let (copy, _) = c.refresh_within(HOUR).await.unwrap();
    assert_eq!(c.fetches(), 0);
    assert!(copy.fetched_at.unwrap().elapsed() < Duration::from_secs(5));
    c.snapshot().await.unwrap();
    assert_eq!(c.fetches(), 0);
    // `refresh` fetches whatever the stored copy's age.
    c.refresh().await.unwrap();
    assert_eq!(c.fetches(), 1);
    let replaced = a.refresh_within(HOUR).await.unwrap();
    let d = replica(&server.base_url(), &share);
    let seen = d.snapshot().await.unwrap();
    assert_eq!(seen.replacements(), replaced.0.replacements());
}

#[tokio::test]
async fn a_failed_fetch_gives_the_lease_back() {
    let redis = RedisServer::start().unwrap();
    let server = crate::mock::httpmock::MockServer::start_async().await;
    server.post_authenticates(|_, then| {
        then.created(&payloads::authenticate());
    });
    let failing = server
        .mock_async(|when, then| {
            when.path("/locations");
            then.status(500).body("{}");
        })
        .await;
    let share = FleetShare::new(redis.url()).prefix("fail");
    let a = replica(&server.base_url(), &share);
    assert!(a.snapshot().await.is_err());
    failing.delete_async().await;
    server
        .mock_async(|when, then| {
            when.path("/locations");
            then.status(200)
                .header("content-type", "application/json")
                .body(serde_json::to_string(&payloads::locations()).unwrap());
        })
        .await;
    // Not the 30 s lease: B takes it at once and fetches.
    let b = replica(&server.base_url(), &share);
    let started = Instant::now();
    b.snapshot().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(b.fetches(), 1);
}

#[tokio::test]
async fn replicas_wait_for_the_lease_holder_but_no_longer_than_the_lease() {
    let redis = RedisServer::start().unwrap();
    let server = crate::mock::httpmock::MockServer::start_async().await;
    let slow = slow_locations(&server, Duration::from_millis(300)).await;
    let share = FleetShare::new(redis.url()).prefix("wait");
    let replicas: Vec<_> = (0..3)
        .map(|_| replica(&server.base_url(), &share))
        .collect();
    let answers = futures::future::join_all(replicas.iter().map(|r| r.snapshot())).await;
    assert!(answers.iter().all(Result::is_ok));
    slow.assert_calls_async(1).await;
    // A lease held elsewhere (a replica that died): waited for at most
    // the lease, then fetched alone.
    let short = FleetShare::new(redis.url())
        .prefix("stuck")
        .lease(Duration::from_millis(200))
        .redis_timeout(Duration::from_millis(100));
    let probe = replica(&server.base_url(), &short);
    let keys = redis.command("KEYS stuck:*").unwrap_or_default();
    assert!(keys.trim().is_empty(), "{keys}");
    let key = format!(
        "stuck:{{{}}}:directory:all:lease",
        probe.0.settings.client.session().key_id()
    );
    redis.command(&format!("SET {key} other PX 60000")).unwrap();
    let started = Instant::now();
    probe.snapshot().await.unwrap();
    let waited = started.elapsed();
    // The lease and one round trip's timeout (300 ms), then its own
    // fetch (300 ms on this server).
    assert!(waited >= Duration::from_millis(580), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    assert_eq!(probe.fetches(), 1);
}

/// Redis's clock, in ms.
fn redis_now(redis: &RedisServer) -> i64 {
    let time = redis.command("TIME").unwrap();
    let mut parts = time.lines().map(|l| l.trim().parse::<i64>().unwrap());
    let (secs, micros) = (parts.next().unwrap(), parts.next().unwrap());
    secs * 1_000 + micros / 1_000
}

#[tokio::test]
async fn a_stored_copy_of_garbage_costs_one_fetch_and_the_fleet_heals() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let share = FleetShare::new(redis.url()).prefix("heal");
    let first = replica(&server.base_url(), &share);
    first.snapshot().await.unwrap();
    let key = format!(
        "heal:{{{}}}:directory:all",
        first.0.settings.client.session().key_id()
    );
    let now = redis_now(&redis);
    let locations = serde_json::to_string(&payloads::locations().data).unwrap();
    let stale = serde_json::to_string(&Vec::<InstitutionLocations>::new()).unwrap();
    let poisons = [
        // Generations that are not times: a copy that would never be replaced.
        format!("HSET {key} at inf body {stale}"),
        format!("HSET {key} at 1e400 body {stale}"),
        format!("HSET {key} at nan body {stale}"),
        format!("HSET {key} at 99999999999999 body {stale}"),
        format!("HSET {key} at 0x7fffffffffffffff body {stale}"),
        format!("HSET {key} at -5 body {stale}"),
        // A current generation whose body or replacements do not decode.
        format!("HSET {key} at {now} body nonsense replacements {{}}"),
        format!("HSET {key} at {now} body {locations} replacements [1]"),
        format!("HSET {key} at {now} body null replacements {{}}"),
    ];
    for poison in poisons {
        redis.command(&format!("DEL {key}")).unwrap();
        redis.command(&poison).unwrap();
        let a = replica(&server.base_url(), &share);
        assert!(a.location(7).await.unwrap().is_some(), "{poison}");
        assert_eq!(a.fetches(), 1, "{poison}: one fetch");
        // Healed: the next replica reads what A stored.
        let b = replica(&server.base_url(), &share);
        assert!(b.location(7).await.unwrap().is_some(), "{poison}");
        assert_eq!(b.fetches(), 0, "{poison}: healed");
    }
}

#[tokio::test]
async fn a_longer_lease_than_this_replica_s_is_cut_to_it() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let share = FleetShare::new(redis.url())
        .prefix("cut")
        .lease(Duration::from_millis(300))
        .redis_timeout(Duration::from_millis(100));
    let a = replica(&server.base_url(), &share);
    let key = format!(
        "cut:{{{}}}:directory:all:lease",
        a.0.settings.client.session().key_id()
    );
    redis
        .command(&format!("SET {key} other PX 3600000"))
        .unwrap();
    let started = Instant::now();
    assert!(a.location(7).await.unwrap().is_some());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let left: i64 = redis
        .command(&format!("PTTL {key}"))
        .unwrap()
        .parse()
        .unwrap();
    assert!(left <= 300, "{left}");
}

#[tokio::test]
async fn without_redis_each_replica_fetches_for_itself() {
    let mut redis = RedisServer::start().unwrap();
    let share = FleetShare::new(redis.url()).redis_timeout(Duration::from_millis(100));
    redis.stop();
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let (a, b) = (
        replica(&server.base_url(), &share),
        replica(&server.base_url(), &share),
    );
    assert!(a.location(7).await.unwrap().is_some());
    assert!(b.location(7).await.unwrap().is_some());
    assert_eq!((a.fetches(), b.fetches()), (1, 1));
    assert!(format!("{:?}", a.0.settings.share.as_ref().unwrap()).contains("on_its_own: true"));
    // Redis back: the next refresh shares again.
    redis.restart().unwrap();
    a.refresh().await.unwrap();
    assert!(format!("{:?}", a.0.settings.share.as_ref().unwrap()).contains("on_its_own: false"));
    let c = replica(&server.base_url(), &share);
    assert!(c.location(7).await.unwrap().is_some());
    assert_eq!(c.fetches(), 0, "reads what A stored once Redis was back");
    let bad = FleetShare::new("not a url");
    assert!(matches!(
        LocationDirectory::new(client(&server.base_url())).shared(&bad),
        Err(Error::InvalidRequest { .. })
    ));
}

/// The key of the fleet's stored directory of `replica`, under `prefix`.
fn stored_key(prefix: &str, replica: &LocationDirectory) -> String {
    format!(
        "{prefix}:{{{}}}:directory:all",
        replica.0.settings.client.session().key_id()
    )
}

/// Sets the `replacements` field of the stored directory to `map` (through
/// the redis crate: a large map does not fit a command line).
async fn tamper(redis: &RedisServer, key: &str, map: &str) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("HSET")
        .arg(key)
        .arg("replacements")
        .arg(map)
        .query_async(&mut conn)
        .await
        .unwrap();
}

/// `{"100000":7,"100001":7,…}`: `entries` locations the payloads do not
/// list, each replaced by 7, their active location.
fn flood(entries: usize) -> String {
    let map: std::collections::BTreeMap<i32, i32> = (100_000..100_000 + entries as i32)
        .map(|id| (id, 7))
        .collect();
    serde_json::to_string(&map).unwrap()
}

#[tokio::test]
async fn a_refresh_cancelled_under_the_lease_gives_the_lease_back() {
    let redis = RedisServer::start().unwrap();
    let server = crate::mock::httpmock::MockServer::start_async().await;
    let _slow = slow_locations(&server, Duration::from_secs(1)).await;
    // The default lease: 30 s.
    let share = FleetShare::new(redis.url()).prefix("cancel");
    let (a, b) = (
        replica(&server.base_url(), &share),
        replica(&server.base_url(), &share),
    );
    // A takes the lease and fetches; its caller gives up 200 ms into the
    // fetch, dropping the refresh.
    let mut refresh = Box::pin(a.refresh());
    let into_the_fetch = async {
        while a.fetches() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    tokio::select! {
        _ = &mut refresh => panic!("the fetch takes 1 s"),
        () = into_the_fetch => {}
    }
    drop(refresh);
    assert_eq!(a.fetches(), 1);
    // B does not wait out A's lease: it takes it and fetches.
    let started = Instant::now();
    let found = tokio::time::timeout(Duration::from_secs(5), b.location(7))
        .await
        .expect("well under the 30 s lease")
        .unwrap();
    assert!(found.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(b.fetches(), 1);
    // And A, asked again, reads what B stored.
    assert!(a.location(7).await.unwrap().is_some());
    assert_eq!(a.fetches(), 1);
    let lease = format!("{}:lease", stored_key("cancel", &a));
    let held = redis.command(&format!("EXISTS {lease}")).unwrap();
    assert_eq!(held, "0", "no lease left behind");
}

#[tokio::test]
async fn a_false_replacements_map_in_redis_never_reaches_a_replica_and_the_next_fetch_heals_it() {
    let redis = RedisServer::start().unwrap();
    // Always the spec's example: 7 "Default" active, 8 "Uptown" inactive.
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let share = FleetShare::new(redis.url()).prefix("false");
    let first = replica(&server.base_url(), &share);
    first.snapshot().await.unwrap();
    let key = stored_key("false", &first);
    let cases = [
        // Well-formed ids from the payloads, no successor among them.
        (r#"{"1":2}"#.to_string(), 0),
        // Believable ids with no evidence: 8 is not under 7's name.
        (r#"{"8":7}"#.to_string(), 0),
        // A location come back (7 is active) and a successor that is inactive.
        (r#"{"7":8,"5":8}"#.to_string(), 0),
        // More than the copy's two locations: garbage.
        (r#"{"3":7,"4":7,"5":7}"#.to_string(), 0),
        // More than a directory keeps: garbage, refetched at once.
        (flood(MAX_REPLACEMENTS + 1), 1),
        // A million entries: more than is read back, refetched at once.
        (flood(1_000_000), 1),
    ];
    for (map, fetches) in cases {
        let shown = &map[..map.len().min(40)];
        tamper(&redis, &key, &map).await;
        // A new replica reads the stored copy, not the false map.
        let reader = replica(&server.base_url(), &share);
        let copy = reader.snapshot().await.unwrap();
        assert_eq!(reader.fetches(), fetches, "{shown}");
        assert!(
            copy.replacements().is_empty(),
            "{shown}: {:?}",
            copy.replacements()
        );
        for old in [1, 3, 5, 8, 100_000] {
            assert_eq!(copy.successor(old), None, "{shown}: {old}");
        }
        assert_eq!(copy.successor(7), Some(7), "{shown}");
        // Healed at the next fetch: the fleet stores what it fetched.
        first.refresh().await.unwrap();
        let stored = redis.command(&format!("HGET {key} replacements")).unwrap();
        assert_eq!(stored, "{}", "{shown}");
        let next = replica(&server.base_url(), &share);
        assert!(next.snapshot().await.unwrap().replacements().is_empty());
        assert_eq!(next.fetches(), 0, "{shown}: reads the healed copy");
    }
}

#[tokio::test]
async fn a_false_replacement_read_from_redis_does_not_survive_flushall_and_a_refetch() {
    let redis = RedisServer::start().unwrap();
    let server = StandIn::with_moving_locations(usize::MAX / 2).await;
    let share = FleetShare::new(redis.url()).prefix("flush");
    let first = replica(&server.base_url(), &share);
    first.snapshot().await.unwrap();
    let key = stored_key("flush", &first);
    // A location the copy does not list, to its active one: nothing in the
    // copy tells it from a real replacement, so a reader takes it...
    tamper(&redis, &key, r#"{"12345":7}"#).await;
    let b = replica(&server.base_url(), &share);
    assert_eq!(b.successor(12345).await.unwrap(), Some(7));
    assert_eq!(b.fetches(), 0);
    // ...but cannot justify it: its own fetch drops it, for itself and
    // for the fleet.
    redis.command("FLUSHALL").unwrap();
    let (refetched, _) = b.refresh_changes().await.unwrap();
    assert_eq!(b.fetches(), 1);
    assert!(
        refetched.replacements().is_empty(),
        "{:?}",
        refetched.replacements()
    );
    assert_eq!(b.successor(12345).await.unwrap(), None);
    let stored = redis.command(&format!("HGET {key} replacements")).unwrap();
    assert_eq!(stored, "{}");
    let c = replica(&server.base_url(), &share);
    assert_eq!(c.successor(12345).await.unwrap(), None);
    assert_eq!(c.fetches(), 0, "reads what B stored");
    // The replica that read it first heals at its next read as well.
    first.refresh().await.unwrap();
    assert_eq!(first.successor(12345).await.unwrap(), None);
}

#[tokio::test]
async fn the_fleet_keeps_a_replacement_its_copy_shows_and_drops_it_once_the_location_is_back() {
    let redis = RedisServer::start().unwrap();
    let server = crate::mock::httpmock::MockServer::start_async().await;
    super::tests::serving_in_order(&server, super::tests::migrated_then_reactivated()).await;
    let share = FleetShare::new(redis.url()).prefix("back");
    let a = replica(&server.base_url(), &share);
    a.refresh().await.unwrap();
    a.refresh().await.unwrap();
    assert_eq!(a.successor(7).await.unwrap(), Some(70));
    // A replica that did not see the migration reads it, with its evidence,
    // and keeps it at its own fetch.
    let b = replica(&server.base_url(), &share);
    assert_eq!(b.successor(7).await.unwrap(), Some(70));
    assert_eq!(b.fetches(), 0);
    // B's fetch: 7 is active again.
    let (copy, _) = b.refresh_changes().await.unwrap();
    assert_eq!(b.fetches(), 1);
    assert_eq!(copy.successor(7), Some(7));
    assert!(copy.replacements().is_empty(), "{:?}", copy.replacements());
    // A reads B's copy: 7 is itself there too.
    let (copy, _) = a.refresh_within(HOUR).await.unwrap();
    assert_eq!(a.fetches(), 2);
    assert_eq!(copy.successor(7), Some(7));
    assert!(copy.replacements().is_empty(), "{:?}", copy.replacements());
}
