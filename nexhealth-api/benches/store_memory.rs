//! `MemoryStore`: memory per handled identity (live bytes through a counting
//! allocator) and the time of one claim + commit, at several sizes.
//!
//! `cargo bench -p nexhealth-api --bench store_memory`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use nexhealth_api::webhooks::store::{BYTES_PER_ENTRY, Claim};
use nexhealth_api::webhooks::{EventIdentity, HandledStore, MemoryStore};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counter
// only adds and subtracts the sizes asked for.
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

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    println!("BYTES_PER_ENTRY (documented bound): {BYTES_PER_ENTRY}");
    println!("| identities | bytes per identity | claim + commit (median of 5 runs, ns) |");
    println!("|---:|---:|---:|");
    for n in [
        10_000u32,
        100_000,
        200_000,
        MemoryStore::DEFAULT_CAPACITY as u32,
    ] {
        let identities: Vec<EventIdentity> = (0..n)
            .map(|i| EventIdentity::of(&serde_json::json!({"event_name": "e", "n": i})))
            .collect();
        let mut bytes = 0.0;
        let mut times = Vec::new();
        for _ in 0..5 {
            let store = MemoryStore::with_capacity(u64::from(n));
            let before = LIVE.load(Ordering::Relaxed);
            let started = Instant::now();
            runtime.block_on(async {
                for identity in &identities {
                    let Ok(Claim::Claimed(lease)) =
                        store.claim(identity, Duration::from_secs(60)).await
                    else {
                        panic!("claimed")
                    };
                    store
                        .commit(identity, &lease, Duration::from_secs(3_600))
                        .await
                        .unwrap();
                }
            });
            times.push(started.elapsed().as_nanos() as f64 / f64::from(n));
            bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / f64::from(n);
            assert_eq!(store.len(), n as usize);
        }
        times.sort_by(f64::total_cmp);
        println!("| {n} | {bytes:.0} | {:.0} |", times[2]);
    }
}
