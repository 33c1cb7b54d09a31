//! The one place where every generated call is shaped before it is sent:
//! NexHealth's headers, the bearer token, input checks, and the single
//! re-authentication after a 401.

use std::time::Instant;

use progenitor_client::{ClientHooks, ClientInfo, OperationInfo};
use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;

use crate::auth::Session;
use crate::{Client, Error, context, headers, operations};

/// The token exchange: sent with the raw key, never retried after a 401.
const AUTHENTICATE: &str = "postAuthenticates";

/// Query parameters that must not be empty when present.
const NON_EMPTY_QUERY: [&str; 1] = ["subdomain"];

fn check_query(request: &reqwest::Request) -> Result<(), Error> {
    for (name, value) in request.url().query_pairs() {
        if NON_EMPTY_QUERY.contains(&name.as_ref()) && value.trim().is_empty() {
            return Err(Error::invalid_request(format!(
                "`{name}` must not be empty"
            )));
        }
    }
    Ok(())
}

fn operation_name(info: &OperationInfo) -> &'static str {
    operations::find(info.operation_id).map_or(info.operation_id, |op| op.id)
}

impl ClientHooks<Session> for Client {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let needs_version =
            operations::find(info.operation_id).is_some_and(|op| op.needs_api_version);
        headers::apply(request, needs_version);
        let refuse = |e: Error| {
            let message = e.to_string();
            context::stash_error(e);
            progenitor_client::Error::Custom(message)
        };
        check_query(request).map_err(refuse)?;
        if !self.inner().is_own_origin(request.url()) {
            return Err(refuse(Error::invalid_request(
                "refusing to send credentials to a host other than the configured base URL",
            )));
        }
        let credential =
            if operations::find(info.operation_id).is_some_and(|op| op.id == AUTHENTICATE) {
                self.inner().key_header()
            } else {
                self.inner().bearer(self.client()).await
            };
        request
            .headers_mut()
            .insert(AUTHORIZATION, credential.map_err(refuse)?);
        Ok(())
    }

    async fn exec(
        &self,
        request: reqwest::Request,
        info: &OperationInfo,
    ) -> reqwest::Result<reqwest::Response> {
        let operation = operation_name(info);
        let started = Instant::now();
        let retry = request.try_clone();
        let refused = request.headers().get(AUTHORIZATION).cloned();
        let response = self.client().execute(request).await?;
        context::record_status(response.status().as_u16());
        tracing::debug!(
            operation,
            status = response.status().as_u16(),
            attempt = 1,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "nexhealth call"
        );
        if response.status() != StatusCode::UNAUTHORIZED || operation == AUTHENTICATE {
            return Ok(response);
        }
        // The token may have been revoked or expired early: drop it, get a
        // new one (shared with concurrent callers) and try once more.
        let Some(mut again) = retry else {
            return Ok(response);
        };
        self.inner().invalidate(refused.as_ref());
        let bearer = match self.inner().bearer(self.client()).await {
            Ok(bearer) => bearer,
            Err(e) => {
                tracing::debug!(operation, "re-authentication failed");
                if !e.is_unauthorized() {
                    context::stash_error(e);
                }
                return Ok(response);
            }
        };
        again.headers_mut().insert(AUTHORIZATION, bearer);
        let response = self.client().execute(again).await?;
        context::record_status(response.status().as_u16());
        tracing::debug!(
            operation,
            status = response.status().as_u16(),
            attempt = 2,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "nexhealth call"
        );
        Ok(response)
    }
}
