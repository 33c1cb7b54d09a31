//! `MemoryStore`'s memory per identity stays under `BYTES_PER_ENTRY`, the
//! figure its default capacity is sized by. Measured with a counting
//! allocator (live bytes: allocations minus frees); this binary holds this
//! one test, so nothing else allocates while it measures.

use std::time::Duration;

use nexhealth_api::webhooks::store::{BYTES_PER_ENTRY, Claim};
use nexhealth_api::webhooks::{EventIdentity, HandledStore, MemoryStore};
use nexhealth_contract_tests::Counting;

#[global_allocator]
static COUNTING: Counting = Counting::new();

#[tokio::test(flavor = "current_thread")]
async fn memory_per_identity_is_under_the_documented_bound() {
    const N: u32 = 100_000;
    let identities: Vec<EventIdentity> = (0..N)
        .map(|n| EventIdentity::of(&serde_json::json!({"event_name": "e", "n": n})))
        .collect();
    let store = MemoryStore::with_capacity(u64::from(N));
    let before = COUNTING.live();
    for identity in &identities {
        let Ok(Claim::Claimed(lease)) = store.claim(identity, Duration::from_secs(60)).await else {
            panic!("claimed");
        };
        store
            .commit(identity, &lease, Duration::from_secs(3_600))
            .await
            .unwrap();
    }
    let used = (COUNTING.live() - before) as f64 / f64::from(N);
    println!("MemoryStore: {used:.0} bytes per handled identity at {N}");
    assert_eq!(store.len(), N as usize);
    assert!(
        used <= BYTES_PER_ENTRY as f64,
        "{used:.0} bytes per identity, over the documented {BYTES_PER_ENTRY}"
    );
    assert!(
        used > 64.0,
        "an identity is 32 bytes and its index at least as much: {used}"
    );
}
