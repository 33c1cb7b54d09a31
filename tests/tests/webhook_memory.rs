//! A forged 64 MiB delivery costs no memory in proportion to it: the MAC
//! streams over the body (its base64 form a block at a time, on the stack),
//! for the configured scheme and for the alternatives the diagnosis tries.
//! Measured with a counting allocator; this binary holds this one test, so
//! nothing else allocates while it measures.

use nexhealth_api::reqwest::header::HeaderMap;
use nexhealth_api::webhooks::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use nexhealth_api::webhooks::{Receiver, Rejection};
use nexhealth_contract_tests::Counting;

#[global_allocator]
static COUNTING: Counting = Counting::new();

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
    let before = COUNTING.allocated();
    let rejection = generous.receive(&headers, &body).unwrap_err();
    let used = COUNTING.allocated() - before;
    assert_eq!(rejection, Rejection::BadSignature);
    assert!(
        used < 64 * 1024,
        "{used} bytes allocated to refuse a 64 MiB body"
    );

    // The default limit (1 MiB) refuses it before any work.
    let default = Receiver::new("the endpoint's secret").unwrap();
    let before = COUNTING.allocated();
    let rejection = default.receive(&headers, &body).unwrap_err();
    assert!(matches!(rejection, Rejection::TooLarge { .. }));
    assert!(COUNTING.allocated() - before < 1024);
}
