//! Helpers that do what an integrator means with the management operations.
//!
//! Both are idempotent: running them twice creates nothing twice. They list
//! first and create only what is missing; creations (POST) are never retried
//! by the SDK (unless the client's calls opt in), so a failure leaves at most
//! what NexHealth already made, which the next run finds.

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::{
    WebhookEndpoint, WebhookEndpointCreateRequest, WebhookEndpointUpdateRequest, WebhookEventName,
    WebhookResourceType, WebhookSubscription, WebhookSubscriptionCreateRequest,
    WebhookSubscriptionUpdateRequest,
};

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
            Some(endpoint) if endpoint.active != Some(false) => Ok(endpoint),
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
