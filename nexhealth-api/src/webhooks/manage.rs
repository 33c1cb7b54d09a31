//! Helpers that do what an integrator means with the management operations.
//!
//! All are idempotent: running them twice creates nothing twice. They list
//! first and create only what is missing; creations (POST) are never retried
//! by the SDK (unless the client's calls opt in), so a failure leaves at most
//! what NexHealth already made, which the next run finds.
//!
//! NexHealth retries a failed delivery for 48 hours, then sets the endpoint
//! `active = false` and stops sending to it until it is turned back on with a
//! PATCH. [`Client::ensure_webhook_endpoints_active`] finds the endpoints it
//! turned off (among those an [`EndpointFilter`] selects) and turns exactly
//! those back on, answering a [`ReactivationReport`]; run it at start and
//! every hour or so.

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::{
    WebhookEndpoint, WebhookEndpointCreateRequest, WebhookEndpointUpdateRequest, WebhookEventName,
    WebhookResourceType, WebhookSubscription, WebhookSubscriptionCreateRequest,
    WebhookSubscriptionUpdateRequest,
};

/// Which of the API user's webhook endpoints
/// [`Client::ensure_webhook_endpoints_active`] looks after.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum EndpointFilter {
    /// Every endpoint of the API user (endpoints belong to the key, not to
    /// an institution).
    #[default]
    All,
    /// The endpoints whose `target_url` is exactly one of these (compared as
    /// text, as [`Client::ensure_webhook_endpoint`] does).
    TargetUrls(Vec<String>),
}

impl EndpointFilter {
    /// The endpoints whose `target_url` is exactly one of `urls`.
    pub fn target_urls<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::TargetUrls(urls.into_iter().map(Into::into).collect())
    }

    /// Whether `endpoint` is one of those selected.
    pub fn matches(&self, endpoint: &WebhookEndpoint) -> bool {
        match self {
            Self::All => true,
            Self::TargetUrls(urls) => endpoint
                .target_url
                .as_deref()
                .is_some_and(|target| urls.iter().any(|url| url == target)),
        }
    }
}

/// What [`Client::ensure_webhook_endpoints_active`] found and did. Its
/// `Debug` never shows a secret (a [`WebhookSecret`](crate::WebhookSecret)
/// prints `<redacted>`).
#[derive(Debug, Default)]
pub struct ReactivationReport {
    /// The selected endpoints that were inactive, as NexHealth listed them.
    pub inactive: Vec<WebhookEndpoint>,
    /// Those turned back on, as the PATCH answered them (active).
    pub reactivated: Vec<WebhookEndpoint>,
    /// Those still off: the PATCH failed, or answered the endpoint inactive.
    pub failed: Vec<ReactivationFailure>,
}

impl ReactivationReport {
    /// Whether every inactive endpoint found was turned back on (also when
    /// none was found).
    pub fn all_reactivated(&self) -> bool {
        self.failed.is_empty()
    }
}

/// An inactive endpoint that could not be turned back on.
#[derive(Debug)]
pub struct ReactivationFailure {
    /// The endpoint's id.
    pub endpoint_id: i32,
    /// Why: the PATCH's error, or [`Error::InvalidResponse`] when it answered
    /// the endpoint still inactive.
    pub error: Error,
}

impl WebhookEndpoint {
    /// Whether NexHealth delivers to this endpoint: `false` once it turned
    /// the endpoint off (48 hours of failed deliveries) or after you did.
    /// The generated `active` field is an `Option<bool>`; an endpoint that
    /// does not say counts as active, NexHealth's default.
    pub fn is_active(&self) -> bool {
        self.active != Some(false)
    }
}

/// The endpoint's target host alone, for logs: no scheme, credentials, port,
/// path or query (a path or query can carry a token).
fn target_host(endpoint: &WebhookEndpoint) -> String {
    let Some(url) = endpoint.target_url.as_deref() else {
        return "<none>".to_string();
    };
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "<not a URL>".to_string())
}

/// The two sync-status events.
///
/// Value: `sync_status_read_change` and `sync_status_write_change`.
pub const SYNC_STATUS_EVENTS: [WebhookEventName; 2] = [
    WebhookEventName::SyncStatusReadChange,
    WebhookEventName::SyncStatusWriteChange,
];

impl Client {
    /// Makes sure an endpoint delivers to `target_url`: finds it among the
    /// API user's endpoints, turns it back on if NexHealth turned it off
    /// (after 48 hours of failed deliveries), and registers it only when it
    /// does not exist.
    pub async fn ensure_webhook_endpoint(
        &self,
        target_url: &str,
    ) -> Result<WebhookEndpoint, Error> {
        let endpoints = self.get_webhook_endpoints().await?.into_data();
        match endpoints
            .into_iter()
            .find(|e| e.target_url.as_deref() == Some(target_url))
        {
            Some(endpoint) if endpoint.is_active() => Ok(endpoint),
            Some(endpoint) => Ok(self
                .patch_webhook_endpoints_id()
                .id(endpoint.id)
                .body(WebhookEndpointUpdateRequest {
                    target_url: None,
                    active: Some(true),
                })
                .await?
                .into_data()),
            None => Ok(self
                .post_webhook_endpoints()
                .body(WebhookEndpointCreateRequest {
                    target_url: target_url.to_string(),
                    active: None,
                })
                .await?
                .into_data()),
        }
    }

    /// Turns back on the endpoints `filter` selects that NexHealth turned
    /// off (it sets `active = false` after 48 hours of failed deliveries and
    /// sends nothing more until a PATCH sets `active: true`).
    ///
    /// Lists the inactive endpoints (`GET /webhook_endpoints?active=false`;
    /// each listed endpoint is checked again, so an active one is never
    /// touched), then sends `PATCH /webhook_endpoints/{id}` with
    /// `{"active": true}` for each selected one, one after the other, and
    /// logs each at WARN with its id and target host only (never its URL's
    /// path or its `secret_key`). A PATCH that fails, or that answers the
    /// endpoint still inactive, is in [`ReactivationReport::failed`]; the
    /// others are still sent. Fails only when the list cannot be read.
    ///
    /// ```no_run
    /// use nexhealth_api::webhooks::manage::EndpointFilter;
    ///
    /// # async fn run(client: nexhealth_api::Client) -> Result<(), nexhealth_api::Error> {
    /// let ours = EndpointFilter::target_urls(["https://hooks.example.com/nexhealth"]);
    /// let report = client.ensure_webhook_endpoints_active(&ours).await?;
    /// for failure in &report.failed {
    ///     eprintln!("endpoint {} is still off: {}", failure.endpoint_id, failure.error);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn ensure_webhook_endpoints_active(
        &self,
        filter: &EndpointFilter,
    ) -> Result<ReactivationReport, Error> {
        let listed = self
            .get_webhook_endpoints()
            .active(false)
            .await?
            .into_data();
        let mut report = ReactivationReport {
            inactive: listed
                .into_iter()
                .filter(|e| !e.is_active() && filter.matches(e))
                .collect(),
            ..ReactivationReport::default()
        };
        for endpoint in &report.inactive {
            let host = target_host(endpoint);
            let answer = self
                .patch_webhook_endpoints_id()
                .id(endpoint.id)
                .body(WebhookEndpointUpdateRequest {
                    target_url: None,
                    active: Some(true),
                })
                .await
                .map(|r| r.into_data());
            let error = match answer {
                Ok(updated) if updated.is_active() => {
                    tracing::warn!(
                        endpoint_id = endpoint.id,
                        target_host = %host,
                        "NexHealth had turned this webhook endpoint off (48 hours of failed \
                         deliveries); turned it back on"
                    );
                    report.reactivated.push(updated);
                    continue;
                }
                Ok(_) => Error::InvalidResponse {
                    operation: "patchWebhookEndpointsId",
                    status: Some(200),
                    field: Some("data.active".to_string()),
                    reason: "the endpoint is still inactive after `active: true`".to_string(),
                },
                Err(error) => error,
            };
            tracing::warn!(
                endpoint_id = endpoint.id,
                target_host = %host,
                error = error.kind(),
                "NexHealth turned this webhook endpoint off (48 hours of failed deliveries) \
                 and turning it back on failed: it receives nothing"
            );
            report.failed.push(ReactivationFailure {
                endpoint_id: endpoint.id,
                error,
            });
        }
        Ok(report)
    }

    /// Makes sure endpoint `endpoint_id` receives both sync-status events of
    /// the institution `subdomain`: resumes paused subscriptions and creates
    /// missing ones. Answers the two subscriptions.
    pub async fn ensure_sync_status_subscriptions(
        &self,
        endpoint_id: i32,
        subdomain: &str,
    ) -> Result<Vec<WebhookSubscription>, Error> {
        let existing = self
            .get_webhook_endpoints_id_webhook_subscriptions()
            .id(endpoint_id)
            .subdomain(subdomain)
            .resource_type(WebhookResourceType::SyncStatus)
            .await?
            .into_data();
        let mut out = Vec::new();
        for event in SYNC_STATUS_EVENTS {
            let name = event.to_string();
            let found = existing.iter().find(|s| {
                s.event.as_deref() == Some(name.as_str())
                    && s.resource_type.as_deref() == Some("SyncStatus")
            });
            let subscription = match found {
                Some(s) if s.active != Some(false) => s.clone(),
                Some(s) => self
                    .patch_webhook_endpoints_id_webhook_subscriptions_subscription_id()
                    .id(endpoint_id)
                    .subscription_id(s.id)
                    .subdomain(subdomain)
                    .body(WebhookSubscriptionUpdateRequest {
                        new_endpoint_id: None,
                        active: Some(true),
                    })
                    .await?
                    .into_data(),
                None => self
                    .post_webhook_endpoints_id_webhook_subscriptions()
                    .id(endpoint_id)
                    .subdomain(subdomain)
                    .body(WebhookSubscriptionCreateRequest {
                        resource_type: WebhookResourceType::SyncStatus,
                        event,
                        active: None,
                    })
                    .await?
                    .into_data(),
            };
            out.push(subscription);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(id: i32, url: Option<&str>, active: Option<bool>) -> WebhookEndpoint {
        WebhookEndpoint {
            active,
            created_at: None,
            id,
            secret_key: None,
            target_url: url.map(str::to_string),
            updated_at: None,
        }
    }

    #[test]
    fn only_an_explicit_false_is_inactive() {
        assert!(endpoint(1, None, Some(true)).is_active());
        assert!(endpoint(1, None, None).is_active());
        assert!(!endpoint(1, None, Some(false)).is_active());
    }

    #[test]
    fn the_filter_compares_target_urls_exactly() {
        let ours = EndpointFilter::target_urls(["https://a.example.com/hooks"]);
        assert!(ours.matches(&endpoint(1, Some("https://a.example.com/hooks"), None)));
        assert!(!ours.matches(&endpoint(2, Some("https://a.example.com/hooks/"), None)));
        assert!(!ours.matches(&endpoint(3, None, None)));
        assert!(EndpointFilter::All.matches(&endpoint(3, None, None)));
        assert_eq!(EndpointFilter::default(), EndpointFilter::All);
    }

    #[test]
    fn logs_see_the_host_alone() {
        let url = "https://user:pw@hooks.example.com:8443/nexhealth?token=abc";
        assert_eq!(
            target_host(&endpoint(1, Some(url), None)),
            "hooks.example.com"
        );
        assert_eq!(
            target_host(&endpoint(1, Some("not a url"), None)),
            "<not a URL>"
        );
        assert_eq!(target_host(&endpoint(1, None, None)), "<none>");
    }
}
