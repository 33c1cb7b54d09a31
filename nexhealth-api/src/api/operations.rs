//! What the spec says about each operation, read from it at build time.

/// Facts the spec states about one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    /// The spec's `operationId`, e.g. `getLocations`.
    pub id: &'static str,
    /// The name progenitor gives the operation (`get_locations`).
    pub rust_name: &'static str,
    /// HTTP method, upper case.
    pub method: &'static str,
    /// Path template, e.g. `/locations/{id}`.
    pub path: &'static str,
    /// The documented success status.
    pub success_status: u16,
    /// The documented error statuses.
    pub error_statuses: &'static [u16],
    /// Whether repeating the call is harmless (GETs and `x-idempotent` operations).
    pub idempotent: bool,
    /// Whether NexHealth expects the `Nex-Api-Version` header on it.
    pub needs_api_version: bool,
}

impl Operation {
    /// A regex matching the operation's concrete paths: `/locations/{id}`
    /// gives `^/locations/[^/]+$`.
    pub fn path_pattern(&self) -> String {
        let segments: Vec<&str> = self
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "[^/]+" } else { s })
            .collect();
        format!("^{}$", segments.join("/"))
    }
}

include!(concat!(env!("OUT_DIR"), "/generated_operations.rs"));

/// Looks an operation up by its spec id or by progenitor's snake-case name.
pub fn find(name: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|op| op.id == name || op.rust_name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_patterns_replace_each_parameter_with_one_segment() {
        let pattern = |id: &str| super::find(id).unwrap().path_pattern();
        assert_eq!(pattern("getLocationsId"), "^/locations/[^/]+$");
        assert_eq!(pattern("getLocations"), "^/locations$");
        assert_eq!(pattern("getOnboardingsHashid"), "^/onboardings/[^/]+$");
    }
}
