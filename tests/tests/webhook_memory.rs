//! A forged 64 MiB delivery costs no memory in proportion to it: the MAC
//! streams over the body (its base64 form a block at a time, on the stack),
//! for the configured scheme and for the alternatives the diagnosis tries.
//! Measured with a counting allocator; this binary holds this one test, so
//! nothing else allocates while it measures.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use nexhealth_api::reqwest::header::HeaderMap;
use nexhealth_api::webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use nexhealth_api::webhooks::{Receiver, Rejection};

struct Counting;

static ALLOCATED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the
// counter only adds the sizes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATED.fetch_add(new_size, Ordering::Relaxed);
        // SAFETY: as in `alloc` and `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static COUNTING: Counting = Counting;

#[test]
fn a_64_mib_forged_body_is_refused_without_memory_in_proportion() {
    const MIB: usize = 1024 * 1024;
    let body = vec![b'{'; 64 * MIB];
    let timestamp = "2026-11-30T10:00:00Z";
    let mut headers = HeaderMap::new();
    headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign("the forger's key", timestamp, b"{}").parse().unwrap(),
    );
    // A receiver that accepts bodies this large: the whole MAC is computed.
    let generous = Receiver::new("the endpoint's secret")
        .unwrap()
        .max_body_bytes(128 * MIB);
    let before = ALLOCATED.load(Ordering::Relaxed);
    let rejection = generous.receive(&headers, &body).unwrap_err();
    let used = ALLOCATED.load(Ordering::Relaxed) - before;
    assert_eq!(rejection, Rejection::BadSignature);
    assert!(
        used < 64 * 1024,
        "{used} bytes allocated to refuse a 64 MiB body"
    );

    // The default limit (1 MiB) refuses it before any work.
    let default = Receiver::new("the endpoint's secret").unwrap();
    let before = ALLOCATED.load(Ordering::Relaxed);
    let rejection = default.receive(&headers, &body).unwrap_err();
    assert!(matches!(rejection, Rejection::TooLarge { .. }));
    assert!(ALLOCATED.load(Ordering::Relaxed) - before < 1024);
}
