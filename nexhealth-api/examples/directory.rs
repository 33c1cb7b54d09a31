//! The directory an integrator needs: each institution (name, subdomain), its
//! syncs (EMR, read and write status) and its locations (id, name, flags).
//!
//! With `NEXHEALTH_API_KEY` set it talks to `NEXHEALTH_BASE_URL` (default the
//! real API). Without it, it starts an in-process stand-in server that answers
//! with the spec's examples. Set `RUST_LOG=nexhealth_api=debug` to see the
//! SDK's tracing (operation, status, attempt, timing; never bodies or keys).

use nexhealth_api::mock::StandIn;
use nexhealth_api::types::{InstitutionLocations, Location, SyncStatus};
use nexhealth_api::{Client, Error};

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
    println!("{} institution(s)", institutions.len());
    for institution in institutions.iter() {
        let name = institution.name.as_deref().unwrap_or("(unnamed)");
        println!(
            "\nInstitution {name}  subdomain={}  id={}",
            institution.subdomain, institution.id
        );
        match client
            .get_sync_status()
            .subdomain(institution.subdomain.as_str())
            .await
        {
            Ok(syncs) => print_syncs(&syncs),
            Err(e) => println!("  syncs: unavailable ({})", summary(&e)),
        }
        match client
            .get_locations()
            .subdomain(institution.subdomain.as_str())
            .await
        {
            Ok(groups) => print_locations(&groups),
            Err(e) => println!("  locations: unavailable ({})", summary(&e)),
        }
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

fn print_syncs(syncs: &[SyncStatus]) {
    println!("  Syncs ({}):", syncs.len());
    for sync in syncs {
        let emr = sync.emr.as_ref();
        let emr_name = emr
            .and_then(|e| e.display_name.as_deref().or(e.name.as_deref()))
            .unwrap_or("unknown EMR");
        let emr_kind = emr.and_then(|e| e.type_.as_deref()).unwrap_or("?");
        let at = |t: &Option<chrono::DateTime<chrono::Utc>>| {
            t.map_or("never".to_string(), |t| t.to_rfc3339())
        };
        let locations: Vec<String> = sync.locations.iter().map(|l| l.id.to_string()).collect();
        println!(
            "    {:<20} {emr_name} ({emr_kind})  read={} (last {})  write={} (last {})  locations=[{}]",
            sync.sync_source_name.as_deref().unwrap_or("(unnamed sync)"),
            sync.read_status.as_deref().unwrap_or("?"),
            at(&sync.read_status_at),
            sync.write_status.as_deref().unwrap_or("?"),
            at(&sync.write_status_at),
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

fn print_locations(groups: &[InstitutionLocations]) {
    let locations: Vec<&Location> = groups.iter().flat_map(|g| g.locations.iter()).collect();
    println!("  Locations ({}):", locations.len());
    for l in locations {
        println!(
            "    {:>6}  {:<20} {:<8}  map_by_operatory={}  insert_appt_client={}  appt_types_map_by_operatory={}  set_availability_by_operatory={}",
            l.id,
            l.name.as_deref().unwrap_or("(unnamed)"),
            if l.inactive == Some(true) {
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
