//! The directory an integrator needs: each institution (name, subdomain), its
//! syncs (EMR, read and write status, how old, stale or red flagged with `!`)
//! and its locations (id, name, whether writes can work now, the flags).
//!
//! With `NEXHEALTH_API_KEY` set it talks to `NEXHEALTH_BASE_URL` (default the
//! real API). Without it, it starts an in-process stand-in server that answers
//! with the spec's examples. Set `RUST_LOG=nexhealth_api=debug` to see the
//! SDK's tracing (operation, status, attempt, timing; never bodies or keys).

use nexhealth_api::directory::Entry;
use nexhealth_api::mock::StandIn;
use nexhealth_api::sync_health::{Side, State, SyncReport, WriteReadiness};
use nexhealth_api::{Client, Error, LocationDirectory};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let _stand_in;
    let client = match std::env::var(nexhealth_api::API_KEY_VAR) {
        Ok(_) => {
            let client = Client::from_env()?;
            println!("Using NexHealth at {}", client.base_url());
            client
        }
        Err(_) => {
            let server = StandIn::start().await;
            println!(
                "Using an embedded stand-in server at {} (NEXHEALTH_API_KEY is not set); it answers with the spec's examples",
                server.base_url()
            );
            let client = Client::builder("stand-in-key")
                .base_url(server.base_url())
                .build()?;
            _stand_in = server;
            client
        }
    };

    let institutions = client.get_institutions().await?;
    // One GET /locations for every institution, kept for later lookups.
    let directory = LocationDirectory::new(client.clone());
    let snapshot = directory.snapshot().await?;
    println!(
        "{} institution(s), {} location(s)",
        institutions.len(),
        snapshot.entries().len()
    );
    for institution in institutions.iter() {
        let name = institution.name.as_deref().unwrap_or("(unnamed)");
        let subdomain = institution.subdomain.as_str();
        println!(
            "\nInstitution {name}  subdomain={subdomain}  id={}",
            institution.id
        );
        let report = match client.sync_health(Some(subdomain)).await {
            Ok(report) => {
                print_syncs(&report);
                Some(report)
            }
            Err(e) => {
                println!("  syncs: unavailable ({})", summary(&e));
                None
            }
        };
        let locations: Vec<&Entry> = snapshot.in_subdomain(subdomain).collect();
        print_locations(&locations, report.as_ref());
    }
    Ok(())
}

fn summary(e: &Error) -> String {
    if e.is_forbidden() {
        "this API key cannot reach that subdomain".into()
    } else {
        e.to_string()
    }
}

fn age(side: &Side) -> String {
    match side.age {
        Some(age) if age.as_secs() >= 86_400 => format!("{}d ago", age.as_secs() / 86_400),
        Some(age) if age.as_secs() >= 3_600 => format!("{}h ago", age.as_secs() / 3_600),
        Some(age) => format!("{}m ago", age.as_secs() / 60),
        None => "never".into(),
    }
}

fn state(side: &Side) -> String {
    let state = match &side.state {
        State::Green => "green".to_string(),
        State::Red => "RED".to_string(),
        State::Other(other) => other.clone(),
        State::Unknown => "?".to_string(),
    };
    if side.stale {
        format!("{state} (STALE)")
    } else {
        state
    }
}

fn print_syncs(report: &SyncReport) {
    println!("  Syncs ({}):", report.syncs.len());
    for health in &report.syncs {
        let sync = &health.sync;
        let emr = sync.emr.as_ref();
        let emr_name = emr
            .and_then(|e| e.display_name.as_deref().or(e.name.as_deref()))
            .unwrap_or("unknown EMR");
        let emr_kind = emr.and_then(|e| e.type_.as_deref()).unwrap_or("?");
        let locations: Vec<String> = health.location_ids().map(|id| id.to_string()).collect();
        println!(
            "    {} {:<18} {emr_name} ({emr_kind})  read={} last {}  write={} last {}  locations=[{}]",
            if health.is_healthy() { " " } else { "!" },
            sync.sync_source_name.as_deref().unwrap_or("(unnamed sync)"),
            state(&health.read),
            age(&health.read),
            state(&health.write),
            age(&health.write),
            locations.join(", "),
        );
    }
}

fn flag(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    }
}

fn print_locations(locations: &[&Entry], report: Option<&SyncReport>) {
    println!("  Locations ({}):", locations.len());
    for entry in locations {
        let l = &entry.location;
        let writes = match report.map(|r| r.write_readiness(l.id)) {
            Some(WriteReadiness::Ready) => "writes ok",
            Some(WriteReadiness::Stale) => "writes at risk (stale)",
            Some(WriteReadiness::Down) => "WRITES FAIL (write status red)",
            Some(WriteReadiness::NoSync) => "no sync",
            None => "writes unknown",
        };
        println!(
            "    {:>6}  {:<16} {:<8}  {writes:<30} map_by_operatory={}  insert_appt_client={}  appt_types_map_by_operatory={}  set_availability_by_operatory={}",
            l.id,
            l.name.as_deref().unwrap_or("(unnamed)"),
            if entry.is_inactive() {
                "inactive"
            } else {
                "active"
            },
            flag(l.map_by_operatory),
            flag(l.insert_appt_client),
            flag(l.appt_types_map_by_operatory),
            flag(l.set_availability_by_operatory),
        );
    }
}
