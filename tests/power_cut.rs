//! Power cuts (SPEC §4: "once a client has read the answer, a crash or power cut does not undo
//! it"; ids never reused). SIGKILL keeps the page cache, so it cannot reveal a missing or
//! misplaced fsync; this test runs the real dispatcher and storage on a disk in memory
//! ([`PowerCut`]) that records what was written and what was synced, and at the cut keeps only
//! what was synced (the torn variant: plus a random half of the pages written since).
//!
//! Each round: 8 concurrent clients create, rename and remove their own groups through
//! [`Service`] until the power goes, at a seeded point (an operation count), then the disk is
//! powered up again and opened, and:
//! - it opens (verified page by page) without a repair error;
//! - every acknowledged create, rename and remove is there, with its exact id, name and
//!   external id; the call in flight when the power went happened wholly or not at all (a
//!   rename changes the name and the external id together);
//! - nothing else is there, and the next create gets an id above every id ever acknowledged.
//!
//! `GROUPD_POWER_CUT_SEED=N` replays a run's cut points and calls (not its thread timing).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use groupd::dispatch::Service;
use groupd::limits::Limits;
use groupd::storage::embedded::{PowerCut, Store};
use serde_json::Value;

use common::{InFlight, Rng};

const CLIENTS: u64 = 8;
/// Rounds with clean cuts, and with torn ones.
const ROUNDS: u64 = 150;
/// The cut comes after up to this many disk operations (a commit is a handful).
const MAX_OPS_BEFORE_CUT: u64 = 600;
/// Calls one client makes at most in a round; the power is cut after them if it is still on
/// (it always is off by then unless commits stopped reaching the disk).
const MAX_CALLS: u64 = 400;

/// What one client was told.
#[derive(Debug, Default)]
struct Client {
    /// Its groups as its acknowledged calls left them: id → name.
    groups: BTreeMap<u64, String>,
    /// Every id its acknowledged creates were given.
    ids: Vec<u64>,
    in_flight: Option<InFlight>,
}

async fn call(service: &Service, request: String) -> Value {
    let mut out = Vec::new();
    service.handle_line(request.as_bytes(), &mut out).await;
    serde_json::from_slice(&out).expect("one JSON answer")
}

fn request(method: &str, params: Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn external_id(name: &str) -> String {
    format!("x-{name}")
}

/// Calls until the first error (the power went): what the client was told.
async fn client(service: Arc<Service>, number: u64, mut rng: Rng) -> Client {
    let mut me = Client::default();
    for n in 0..MAX_CALLS {
        let pick = rng.next() % 10;
        let mine: Vec<(u64, String)> = me.groups.iter().map(|(i, s)| (*i, s.clone())).collect();
        let (flight, method, params) = match (pick, mine.is_empty()) {
            (0..=5, _) | (_, true) => {
                let name = format!("c{number} n{n}");
                let params = serde_json::json!([name, external_id(&name)]);
                (InFlight::Create { name }, "createGroup", params)
            }
            (6..=8, false) => {
                let (id, from) = mine[(rng.next() % mine.len() as u64) as usize].clone();
                let to = format!("c{number} r{n}");
                let params = serde_json::json!([id, to, external_id(&to)]);
                (InFlight::Rename { id, from, to }, "updateGroup", params)
            }
            _ => {
                let (id, name) = mine[(rng.next() % mine.len() as u64) as usize].clone();
                (
                    InFlight::Remove { id, name },
                    "removeGroup",
                    serde_json::json!([id]),
                )
            }
        };
        me.in_flight = Some(flight.clone());
        let answer = call(&service, request(method, params)).await;
        let Some(result) = answer.get("result") else {
            assert_eq!(answer["error"]["code"], -32603, "{answer}");
            return me;
        };
        match flight {
            InFlight::Create { name } => {
                let id = result.as_u64().unwrap_or_else(|| panic!("{answer}"));
                me.groups.insert(id, name);
                me.ids.push(id);
            }
            InFlight::Rename { id, to, .. } => {
                assert_eq!(result, true, "{answer}");
                me.groups.insert(id, to);
            }
            InFlight::Remove { id, .. } => {
                assert_eq!(result, true, "{answer}");
                me.groups.remove(&id);
            }
        }
        me.in_flight = None;
    }
    me
}

/// What the file holds after the cut: id → name, every external id checked against its name.
async fn read_back(disk: &PowerCut, label: &str) -> (Service, BTreeMap<u64, String>) {
    let store = Store::open_on_power_cut(disk)
        .unwrap_or_else(|e| panic!("{label}: the file does not open after the cut: {e}"));
    let service = Service::new(store, Limits::default());
    let all = call(
        &service,
        r#"{"jsonrpc":"2.0","id":1,"method":"getAllGroups"}"#.into(),
    )
    .await;
    let mut found = BTreeMap::new();
    for group in all["result"].as_array().expect("a list") {
        let id: u64 = group["id"].as_str().and_then(|s| s.parse().ok()).unwrap();
        let name = group["name"].as_str().unwrap().to_owned();
        assert_eq!(
            group["external_id"].as_str(),
            Some(external_id(&name).as_str()),
            "{label}: half a write: {group}"
        );
        found.insert(id, name);
    }
    (service, found)
}

async fn round(seed: u64, torn: bool) -> u64 {
    let label = format!("seed {seed:#x} torn {torn}");
    let mut rng = Rng(seed | 1);
    let disk = PowerCut::new();
    let store = Store::open_on_power_cut(&disk).expect("a fresh disk opens");
    let service = Arc::new(Service::new(store, Limits::default()));
    let cut_after = 1 + rng.next() % MAX_OPS_BEFORE_CUT;
    disk.cut_at(disk.ops() + cut_after, torn.then(|| rng.next()));
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|c| tokio::spawn(client(Arc::clone(&service), c, Rng(rng.next() | 1))))
        .collect();
    let mut clients = Vec::new();
    for task in tasks {
        clients.push(task.await.expect("client task"));
    }
    disk.cut_now();
    drop(service);
    let after = disk.survivor().expect("the power is off");
    let (service, mut found) = read_back(&after, &label).await;

    let mut highest = 0;
    for (c, client) in clients.iter().enumerate() {
        highest = highest.max(client.ids.iter().copied().max().unwrap_or(0));
        let mut expected = client.groups.clone();
        // The call in flight happened wholly or not at all.
        match &client.in_flight {
            Some(InFlight::Create { name }) => {
                if let Some((&id, _)) = found.iter().find(|(_, n)| *n == name) {
                    expected.insert(id, name.clone());
                }
            }
            Some(InFlight::Rename { id, from, to }) => {
                if found.get(id) == Some(to) {
                    expected.insert(*id, to.clone());
                } else {
                    assert_eq!(found.get(id), Some(from), "{label}: client {c}");
                }
            }
            Some(InFlight::Remove { id, name }) => {
                if !found.contains_key(id) {
                    expected.remove(id);
                } else {
                    assert_eq!(found.get(id), Some(name), "{label}: client {c}");
                }
            }
            None => {}
        }
        for (id, name) in &expected {
            assert_eq!(
                found.remove(id).as_ref(),
                Some(name),
                "{label}: client {c}'s acknowledged group {id} {name:?}"
            );
        }
    }
    assert!(
        found.is_empty(),
        "{label}: groups nobody created: {found:?}"
    );
    let next = call(
        &service,
        request("createGroup", serde_json::json!(["after"])),
    )
    .await;
    let next = next["result"]
        .as_u64()
        .unwrap_or_else(|| panic!("{label}: {next}"));
    assert!(
        next > highest,
        "{label}: id {next} handed out again (highest {highest})"
    );
    clients.iter().map(|c| c.ids.len() as u64).sum()
}

async fn rounds(torn: bool) {
    let seed = std::env::var("GROUPD_POWER_CUT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0904_3c07_u64);
    let mut rng = Rng(seed | 1);
    let mut created = 0;
    for _ in 0..ROUNDS {
        created += round(rng.next(), torn).await;
    }
    eprintln!("seed {seed:#x}, torn {torn}: {ROUNDS} cuts, {created} acknowledged creates");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_power_cut() {
    rounds(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_power_cut_with_torn_writes() {
    rounds(true).await;
}
