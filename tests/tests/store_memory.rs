//! `MemoryStore`'s memory per identity stays under `BYTES_PER_ENTRY`, the
//! figure its default capacity is sized by. Measured with a counting
//! allocator (live bytes: allocations minus frees); this binary holds this
//! one test, so nothing else allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Duration;

use nexhealth_api::webhooks::store::{BYTES_PER_ENTRY, Claim};
use nexhealth_api::webhooks::{EventIdentity, HandledStore, MemoryStore};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter only adds and subtracts the sizes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as in `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[tokio::test(flavor = "current_thread")]
async fn memory_per_identity_is_under_the_documented_bound() {
    const N: u32 = 100_000;
    let identities: Vec<EventIdentity> = (0..N)
        .map(|n| EventIdentity::of(&serde_json::json!({"event_name": "e", "n": n})))
        .collect();
    let store = MemoryStore::with_capacity(u64::from(N));
    let before = LIVE.load(Ordering::Relaxed);
    for identity in &identities {
        let Ok(Claim::Claimed(lease)) = store.claim(identity, Duration::from_secs(60)).await else {
            panic!("claimed");
        };
        store
            .commit(identity, &lease, Duration::from_secs(3_600))
            .await
            .unwrap();
    }
    let used = (LIVE.load(Ordering::Relaxed) - before) as f64 / f64::from(N);
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
