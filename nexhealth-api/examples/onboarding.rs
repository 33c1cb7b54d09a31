//! Which onboarding step does a situation call for? Prints the action from
//! NexHealth's guide to managing syncs and, when the action is an API call,
//! makes it: on the embedded stand-in server without `NEXHEALTH_API_KEY`, or
//! against NexHealth with the key and `--execute` (creating a real link).
//!
//! `cargo run -p nexhealth-api --example onboarding -- --help`

use std::process::ExitCode;

use nexhealth_api::Client;
use nexhealth_api::mock::StandIn;
use nexhealth_api::onboarding::{Action, Scenario, decide};
use nexhealth_api::types::EmrName;

const HELP: &str = "\
usage: onboarding <scenario> [options] [--execute]

scenarios (from NexHealth's guide to managing syncs):
  new-single            a new customer, one location      --institution-name NAME [--emr EMR]
  new-multi-cloud       a new customer, cloud EHR with several locations
                                                          --institution-name NAME --location NAME... [--emr EMR]
  add-own-database      an existing customer adds a location with its own server or unshared cloud EHR
                                                          --subdomain S [--emr EMR]
  add-shared-server     an existing customer adds a location sharing a server with sister locations
                                                          --subdomain S --new-location NAME [--synced-sister NAME] [--emr EMR]
  office-left-group     an office leaves its group        --location-id ID --institution-name NAME [--emr EMR]
  synchronizer-deleted  the Synchronizer was deleted      --subdomain S --location-id ID...
  server-migration      same EHR moved to a new server    --subdomain S --location-id ID...
  emr-migration         moved to another EHR              --subdomain S --location-id ID... [--emr EMR]

EMR: athena, curve2, cloud9, denticon, dentrix, dentrixascend, drchrono, eaglesoft, ecw, modmed, nextgen, opendental
--execute  with NEXHEALTH_API_KEY set, really call POST /onboardings (without a key the stand-in server answers)";

struct Args {
    scenario: String,
    values: Vec<(String, String)>,
    execute: bool,
}

impl Args {
    fn parse() -> Result<Self, String> {
        let mut raw = std::env::args().skip(1);
        let mut scenario = None;
        let mut values = Vec::new();
        let mut execute = false;
        while let Some(arg) = raw.next() {
            match arg.as_str() {
                "--help" | "-h" => return Err(String::new()),
                "--execute" => execute = true,
                flag if flag.starts_with("--") => {
                    let value = raw.next().ok_or(format!("{flag} needs a value"))?;
                    values.push((flag.trim_start_matches("--").to_string(), value));
                }
                name if scenario.is_none() => scenario = Some(name.to_string()),
                other => return Err(format!("unexpected argument {other}")),
            }
        }
        Ok(Self {
            scenario: scenario.ok_or("no scenario given")?,
            values,
            execute,
        })
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn one(&self, name: &str) -> Result<String, String> {
        self.all(name)
            .pop()
            .ok_or(format!("--{name} is required for {}", self.scenario))
    }

    fn emr(&self) -> Result<Option<EmrName>, String> {
        self.all("emr")
            .pop()
            .map(|e| e.parse::<EmrName>().map_err(|_| format!("unknown EMR {e}")))
            .transpose()
    }

    fn ids(&self) -> Result<Vec<i32>, String> {
        let ids: Result<Vec<i32>, _> = self.all("location-id").iter().map(|v| v.parse()).collect();
        let ids = ids.map_err(|_| "--location-id takes a number".to_string())?;
        if ids.is_empty() {
            Err(format!("--location-id is required for {}", self.scenario))
        } else {
            Ok(ids)
        }
    }

    fn scenario(&self) -> Result<Scenario, String> {
        Ok(match self.scenario.as_str() {
            "new-single" => Scenario::NewSingleLocation {
                institution_name: self.one("institution-name")?,
                emr: self.emr()?,
            },
            "new-multi-cloud" => Scenario::NewMultiLocationCloud {
                institution_name: self.one("institution-name")?,
                emr: self.emr()?,
                locations_to_sync: self.all("location"),
            },
            "add-own-database" => Scenario::AddLocationOwnDatabase {
                subdomain: self.one("subdomain")?,
                emr: self.emr()?,
            },
            "add-shared-server" => Scenario::AddLocationSharedServer {
                subdomain: self.one("subdomain")?,
                new_location: self.one("new-location")?,
                synced_sister: self.all("synced-sister").pop(),
                emr: self.emr()?,
            },
            "office-left-group" => Scenario::OfficeLeftGroup {
                location_id: self
                    .one("location-id")?
                    .parse()
                    .map_err(|_| "--location-id takes a number")?,
                institution_name: self.one("institution-name")?,
                emr: self.emr()?,
            },
            "synchronizer-deleted" => Scenario::SynchronizerDeleted {
                subdomain: self.one("subdomain")?,
                location_ids: self.ids()?,
            },
            "server-migration" => Scenario::ServerMigration {
                subdomain: self.one("subdomain")?,
                location_ids: self.ids()?,
            },
            "emr-migration" => Scenario::EmrMigration {
                subdomain: self.one("subdomain")?,
                old_location_ids: self.ids()?,
                emr: self.emr()?,
            },
            other => return Err(format!("unknown scenario {other}")),
        })
    }
}

fn describe(action: &Action) {
    match action {
        Action::OnboardNewInstitution(_) => println!(
            "Action: create an onboarding for a NEW institution (POST /onboardings with institution_name)."
        ),
        Action::OnboardIntoInstitution(_) => println!(
            "Action: create an onboarding in the EXISTING institution, i.e. a new sync (POST /onboardings with subdomain)."
        ),
        Action::OnboardThenTellSupport(..) => println!(
            "Action: create an onboarding for a new institution, then tell NexHealth support which locations to sync."
        ),
        Action::AskSupport(_) => println!(
            "Action: do NOT create a sync; ask NexHealth support to add the location to the existing sync."
        ),
        Action::ReinstallWithNewProductKey {
            stale_location_ids, ..
        } => println!(
            "Action: keep the sync and location ids; reinstall the Synchronizer with a new product key from NexHealth support. Data for locations {stale_location_ids:?} is stale until then."
        ),
        Action::DeactivateThenOnboard {
            deactivate_location_id,
            ..
        } => println!(
            "Action: deactivate location {deactivate_location_id} in the Developer Portal (not an API call), then create an onboarding for a new institution."
        ),
        Action::OnboardAndReplaceLocationIds {
            replace_location_ids,
            ..
        } => println!(
            "Action: keep the institution, create an onboarding for a new sync; once installed, replace stored location ids {replace_location_ids:?} (and every patient, provider and appointment id) with the new ones."
        ),
    }
    if let Some(request) = action.onboarding_request() {
        println!(
            "POST /onboardings body: {}",
            serde_json::to_string(request).unwrap_or_default()
        );
    }
    if let Some(support) = action.support_request() {
        println!(
            "Message for {}:\n  Subject: {}",
            nexhealth_api::onboarding::SUPPORT,
            support.subject
        );
        for line in &support.details {
            println!("  {line}");
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match Args::parse() {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            println!("{HELP}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let scenario = match args.scenario() {
        Ok(s) => s,
        Err(message) => {
            eprintln!("error: {message}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    let action = decide(&scenario);
    describe(&action);
    if action.onboarding_request().is_none() {
        return ExitCode::SUCCESS;
    }
    let (client, _stand_in) = if std::env::var_os(nexhealth_api::API_KEY_VAR).is_some() {
        if !args.execute {
            println!(
                "(NEXHEALTH_API_KEY is set: add --execute to create this onboarding at NexHealth)"
            );
            return ExitCode::SUCCESS;
        }
        match Client::from_env() {
            Ok(client) => (client, None),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        let server = StandIn::start().await;
        println!(
            "(calling the embedded stand-in server at {}: NEXHEALTH_API_KEY is not set)",
            server.base_url()
        );
        let client = Client::builder("stand-in-key")
            .base_url(server.base_url())
            .build()
            .expect("valid settings");
        (client, Some(server))
    };
    match client.carry_out(&action).await {
        Ok(Some(onboarding)) => {
            println!(
                "Created onboarding {} ({}): send {} to the practice; it expires {}",
                onboarding.id,
                onboarding.status.as_deref().unwrap_or("?"),
                onboarding.url.as_deref().unwrap_or("(no url)"),
                onboarding
                    .url_expires_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
