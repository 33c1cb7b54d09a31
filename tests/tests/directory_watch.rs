//! The main job in `--watch` mode against the stand-in whose locations move:
//! the directory printed once, then one JSON line per change, NexHealth's
//! migration among them as `replaced`, and a clean stop after `--seconds`;
//! the stand-in's scripted sync history (`mock::sync_phases`: writes of
//! location 7 down after 2 s, back at 4 s) as `sync_down` then `sync_up`.

use std::process::Command;

use serde_json::Value;

/// The example's binary, built now: a test never runs a stale one.
fn example() -> std::path::PathBuf {
    nexhealth_contract_tests::example_binary("directory", &["redis"])
}

#[test]
fn watch_prints_the_directory_then_one_json_line_per_change() {
    let binary = example();
    let started = std::time::Instant::now();
    let out = Command::new(binary)
        .args(["--watch", "0.3", "--seconds", "4"])
        .env_remove("NEXHEALTH_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed().as_secs_f64() < 30.0,
        "stopped after --seconds"
    );
    assert!(
        stdout.lines().next().unwrap().contains("stand-in server"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Locations (2):"),
        "the directory first: {stdout}"
    );
    // The locations' changes; the syncs' lines are checked below.
    let changes: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(|c| !is_sync_change(c))
        .collect();
    for change in &changes {
        let kind = change["change"].as_str().unwrap();
        assert!(
            [
                "added",
                "removed",
                "deactivated",
                "reactivated",
                "renamed",
                "moved",
                "flags",
                "replaced"
            ]
            .contains(&kind),
            "{change}"
        );
        assert!(change["location_id"].is_i64(), "{change}");
    }
    // One step per refresh: the whole scripted history, in order.
    let kinds: Vec<(String, i64)> = changes
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap().to_string(),
                c["location_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let expected = nexhealth_contract_tests::scripted_location_changes();
    assert_eq!(kinds, expected, "{stdout}");
    let has = |kind: &str, id: i64| {
        changes
            .iter()
            .any(|c| c["change"] == kind && c["location_id"] == id)
    };
    assert!(has("added", 9), "{stdout}");
    assert!(has("reactivated", 8), "{stdout}");
    let replaced = changes
        .iter()
        .find(|c| c["change"] == "replaced")
        .unwrap_or_else(|| panic!("no replacement in {stdout}"));
    assert_eq!(
        (replaced["old"].as_i64(), replaced["new"].as_i64()),
        (Some(7), Some(70))
    );
    assert_eq!(replaced["evidence"]["same_name"], true);
    assert_eq!(replaced["evidence"]["old_location"], "deactivated");
    // 7 is reported once, as replaced: never also as deactivated or removed.
    assert!(!has("deactivated", 7) && !has("removed", 7), "{stdout}");
}

/// Every JSON line of `stdout`, parsed.
fn json_lines(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn is_sync_change(line: &Value) -> bool {
    line["change"]
        .as_str()
        .is_some_and(|c| c.starts_with("sync_"))
}

#[test]
fn watch_shows_a_sync_going_down_and_coming_back() {
    let binary = example();
    let out = Command::new(binary)
        .args(["--watch", "1", "--seconds", "8"])
        .env_remove("NEXHEALTH_API_KEY")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("refresh failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let syncs: Vec<Value> = json_lines(&stdout)
        .into_iter()
        .filter(is_sync_change)
        .collect();
    // Only the scripted side moves: "Uptown cloud" stays red on writes, and
    // everything else green and fresh, whatever the clock.
    let kinds: Vec<(&str, &str, &str)> = syncs
        .iter()
        .map(|c| {
            (
                c["change"].as_str().unwrap(),
                c["side"].as_str().unwrap(),
                c["state"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [("sync_down", "write", "red"), ("sync_up", "write", "green")],
        "{stdout}"
    );
    for change in &syncs {
        assert_eq!(change["sync"], "Front desk server", "{change}");
        assert_eq!(change["institution_id"], 1, "{change}");
        assert_eq!(change["location_ids"], serde_json::json!([7]), "{change}");
        assert_eq!(change["stale"], false, "{change}");
    }
    // Down: the last check-in held; back: a newer one.
    let last = |c: &Value| {
        nexhealth_api::chrono::DateTime::parse_from_rfc3339(c["last"].as_str().unwrap()).unwrap()
    };
    assert!(last(&syncs[1]) > last(&syncs[0]), "{stdout}");
    // One line per change, in the order they happened, among the locations'.
    let lines: Vec<&str> = stdout.lines().collect();
    let position = |kind: &str| lines.iter().position(|l| l.contains(kind)).unwrap();
    assert!(
        position("\"sync_down\"") < position("\"sync_up\""),
        "{stdout}"
    );
}

#[test]
fn bad_watch_values_are_refused_with_a_message() {
    let binary = example();
    for bad in [["--watch", "0"], ["--watch", "soon"], ["--watch", "1e12"]] {
        let out = Command::new(&binary)
            .args(bad)
            .env_remove("NEXHEALTH_API_KEY")
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--watch"), "{bad:?}: {stderr}");
    }
}
