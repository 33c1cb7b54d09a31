//! Property tests over response decoding, through the whole client: arbitrary
//! bytes and mutated real payloads never panic, always end in `Ok` or a typed
//! error, and never quote the payload in an error.
//!
//! Inputs per run: `ARBITRARY_CASES` + `MUTATED_CASES` (printed at the end).

use std::sync::{Arc, Mutex};

use nexhealth_api::operations::OperationId;
use nexhealth_api::operations::{EXAMPLES, OPERATIONS};
use nexhealth_api::{Client, Error, RetryPolicy};
use nexhealth_contract_tests::faults::{FaultServer, Reply};
use nexhealth_contract_tests::{API_KEY, auth_body, call, token};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const ARBITRARY_CASES: u32 = 2_000;
const MUTATED_CASES: u32 = 3_000;
const PLANTED: &str = "planted-zz9";

/// What the server answers: status, body, and whether the token exchange
/// gets that answer too (when the token exchange is under test).
type Answer = (u16, Vec<u8>, bool);

struct Rig {
    runtime: tokio::runtime::Runtime,
    body: Arc<Mutex<Answer>>,
    client: Client,
    server: FaultServer,
    http: reqwest::Client,
}

impl Rig {
    fn new() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let body = Arc::new(Mutex::new((200, Vec::new(), false)));
        let shared = body.clone();
        let server = runtime.block_on(FaultServer::start(move |seen, _| {
            let (status, body, auth_too) = shared.lock().unwrap().clone();
            if seen.path == "/authenticates" && !auth_too {
                return Reply::json(201, auth_body(&token("fuzz", 3600)));
            }
            Reply::raw(status, "application/json", body)
        }));
        nexhealth_api::ensure_crypto_provider();
        let http = reqwest::Client::new();
        let client = fresh_client(&server, &http);
        Self {
            runtime,
            body,
            client,
            server,
            http,
        }
    }

    /// Serves `body` to `operation`. For the token exchange, also makes a
    /// fresh client authenticate against it, as a first call would.
    fn answer(&self, operation: &str, status: u16, body: Vec<u8>) -> Result<(), Error> {
        let auth = operation == "postAuthenticates";
        *self.body.lock().unwrap() = (status, body, auth);
        let direct = self.runtime.block_on(call(
            &self.client,
            OperationId::from_id(operation).expect("a spec operation"),
        ));
        if auth {
            let fresh = fresh_client(&self.server, &self.http);
            let first_call = self.runtime.block_on(std::future::IntoFuture::into_future(
                fresh.get_institutions(),
            ));
            if let Err(e) = first_call {
                return direct.and(Err(e));
            }
        }
        direct
    }
}

/// `Ok`, or a typed error. On a success status nothing of the payload may
/// appear in the error; on an error status NexHealth's own messages may.
/// A client with its own token cache, sharing the connection pool.
fn fresh_client(server: &FaultServer, http: &reqwest::Client) -> Client {
    Client::builder(API_KEY)
        .base_url(server.base_url())
        .reqwest_client(http.clone())
        .retry(RetryPolicy::none())
        // Thousands of decodes a second: the limiter is not what is tested here.
        .no_rate_limit()
        .build()
        .unwrap()
}

fn acceptable(status: u16, result: &Result<(), Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(()) => Ok(()),
        Err(e) => {
            let text = format!("{e} {e:?}");
            if status < 300 {
                prop_assert!(
                    !text.contains(PLANTED),
                    "the payload leaked into an error: {text}"
                );
            }
            prop_assert!(
                e.is_invalid_response() || e.status().is_some(),
                "unexpected error class: {text}"
            );
            Ok(())
        }
    }
}

#[test]
fn arbitrary_bytes_never_panic() {
    let rig = Rig::new();
    let mut runner = TestRunner::new(Config {
        cases: ARBITRARY_CASES,
        ..Config::default()
    });
    let strategy = (
        0..OPERATIONS.len(),
        prop::collection::vec(any::<u8>(), 0..512),
        prop::sample::select(vec![200u16, 201, 400, 404, 500]),
    );
    runner
        .run(&strategy, |(op, bytes, status)| {
            acceptable(status, &rig.answer(OPERATIONS[op].id, status, bytes))
        })
        .unwrap();
    eprintln!("arbitrary_bytes_never_panic: ran {ARBITRARY_CASES} inputs");
}

/// A JSON value that replaces a node of a real payload.
fn replacement() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(Value::from(PLANTED)),
        Just(serde_json::json!([PLANTED, 1, null])),
        Just(serde_json::json!({"unexpected": PLANTED})),
    ]
}

/// Every node of `value` as a JSON pointer.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match value {
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| pointers(v, format!("{at}/{k}"), out)),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| pointers(v, format!("{at}/{i}"), out)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Replace(usize, Value),
    Remove(usize),
    Truncate(usize),
    FlipByte(usize, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), replacement()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::FlipByte(i, b)),
    ]
}

fn apply(example: &str, mutation: &Mutation) -> Vec<u8> {
    let mut value: Value = serde_json::from_str(example).unwrap();
    let mut nodes = Vec::new();
    pointers(&value, String::new(), &mut nodes);
    match mutation {
        Mutation::Replace(i, new) => {
            let at = &nodes[i % nodes.len()];
            if let Some(node) = value.pointer_mut(at) {
                *node = new.clone();
            }
            serde_json::to_vec(&value).unwrap()
        }
        Mutation::Remove(i) => {
            let at = &nodes[i % nodes.len()];
            if let Some((parent, key)) = at.rsplit_once('/')
                && let Some(Value::Object(map)) = value.pointer_mut(parent)
            {
                map.remove(key);
            }
            serde_json::to_vec(&value).unwrap()
        }
        Mutation::Truncate(i) => {
            let bytes = example.as_bytes();
            bytes[..i % bytes.len().max(1)].to_vec()
        }
        Mutation::FlipByte(i, b) => {
            let mut bytes = example.as_bytes().to_vec();
            let i = i % bytes.len();
            bytes[i] = *b;
            bytes
        }
    }
}

#[test]
fn mutated_real_payloads_never_panic() {
    let rig = Rig::new();
    let examples: Vec<(&str, u16, &str)> = EXAMPLES
        .iter()
        .copied()
        .filter(|(_, status, _)| *status != 0)
        .collect();
    let mut runner = TestRunner::new(Config {
        cases: MUTATED_CASES,
        ..Config::default()
    });
    runner
        .run(&(0..examples.len(), mutation()), |(i, m)| {
            let (op, status, example) = examples[i];
            acceptable(status, &rig.answer(op, status, apply(example, &m)))
        })
        .unwrap();
    // Unmutated, every example decodes.
    for (op, status, example) in &examples {
        let result = rig.answer(op, *status, example.as_bytes().to_vec());
        let decoded_ok = match &result {
            Ok(()) => true,
            // A first call after a good token exchange answers with the
            // token body, which is not an institution list.
            Err(e) => *op == "postAuthenticates" && *status < 300 && e.is_invalid_response(),
        };
        assert_eq!(decoded_ok, *status < 300, "{op} {status}: {result:?}");
    }
    eprintln!("mutated_real_payloads_never_panic: ran {MUTATED_CASES} inputs");
}
