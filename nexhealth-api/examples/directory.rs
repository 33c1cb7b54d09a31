//! The directory an integrator needs: each institution (name, subdomain), its
//! syncs (EMR, read and write status, how old, stale or red flagged with `!`)
//! and its locations (id, name, whether writes can work now, the flags), joined
//! by institution id ([`nexhealth_api::overview`]): every location is shown, and
//! what could not be read is said.
//!
//! With `NEXHEALTH_API_KEY` set it talks to `NEXHEALTH_BASE_URL` (default the
//! real API). Without it, it starts an in-process stand-in server that answers
//! with the spec's examples. Set `RUST_LOG=nexhealth_api=debug` to see the
//! SDK's tracing (operation, status, attempt, timing; never bodies or keys).

use nexhealth_api::Client;
use nexhealth_api::mock::StandIn;
use nexhealth_api::overview::Overview;

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

    // Institutions, syncs and locations joined by institution id: a location is
    // never dropped, and what could not be read is said.
    let overview = Overview::fetch(&client).await?;
    print!("{overview}");
    Ok(())
}
