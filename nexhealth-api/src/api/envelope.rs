//! Unwrapping NexHealth's response envelope, so a call answers with its `data`
//! while `count`, `page_info` and warnings stay reachable.

use std::fmt;
use std::ops::Deref;

use futures::future::BoxFuture;
use progenitor_client::ResponseValue;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Error, collect_messages, decode, describe_json_error};
use crate::generated::types::{ErrorEnvelope, Messages, PageInfo};
use crate::transport::context;

/// A success envelope: `data` plus the envelope's other fields.
pub trait Envelope: DeserializeOwned + Send + 'static {
    /// What `data` holds.
    type Data;
    /// Splits the envelope into its data and the rest.
    fn into_parts(self) -> (Self::Data, EnvelopeMeta);
}

/// The envelope fields around `data`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct EnvelopeMeta {
    /// The envelope's `code` (true on success).
    pub code: Option<bool>,
    /// `count`: the size of the whole collection.
    pub count: Option<i32>,
    /// `page_info`, on cursor-paginated collections.
    pub page_info: Option<PageInfo>,
    /// `error` and `description` flattened: on a success these are warnings.
    pub messages: Vec<String>,
}

impl EnvelopeMeta {
    #[doc(hidden)]
    pub fn from_fields(
        code: Option<bool>,
        count: Option<i32>,
        page_info: Option<PageInfo>,
        description: Option<&Messages>,
        error: Option<&[String]>,
    ) -> Self {
        Self {
            code,
            count,
            page_info,
            messages: collect_messages(description, error),
        }
    }
}

/// A successful answer: derefs to its `data`.
pub struct Response<T> {
    data: T,
    meta: EnvelopeMeta,
    /// Status and headers, kept where progenitor put them rather than copied.
    head: ResponseValue<()>,
}

impl<T> Response<T> {
    /// The payload.
    pub fn data(&self) -> &T {
        &self.data
    }
    /// Takes the payload.
    pub fn into_data(self) -> T {
        self.data
    }
    /// Takes the payload and the envelope fields.
    pub fn into_parts(self) -> (T, EnvelopeMeta) {
        (self.data, self.meta)
    }
    /// `count`: the total size of a collection.
    pub fn count(&self) -> Option<i32> {
        self.meta.count
    }
    /// `page_info`, on cursor-paginated collections.
    pub fn page_info(&self) -> Option<&PageInfo> {
        self.meta.page_info.as_ref()
    }
    /// Warnings NexHealth attached to the success (for example, ignored parameters).
    pub fn warnings(&self) -> &[String] {
        &self.meta.messages
    }
    /// The envelope fields.
    pub fn meta(&self) -> &EnvelopeMeta {
        &self.meta
    }
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.head.status()
    }
    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }
}

impl<T> Deref for Response<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.data
    }
}

/// Shows the status and envelope fields, never the payload (it may hold patient data).
impl<T> fmt::Debug for Response<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status().as_u16())
            .field("count", &self.meta.count)
            .field("warnings", &self.meta.messages.len())
            .field("data", &std::any::type_name::<T>())
            .finish()
    }
}

type ProgenitorResult<T> = Result<ResponseValue<T>, progenitor_client::Error<ErrorEnvelope>>;

/// What `.await` on a request builder runs: the generated call, then the
/// split of its envelope (or the mapping of its error) into ours.
///
/// A named future rather than a boxed `async` block: the success path needs
/// no state of its own, so the result is handed on without another box.
#[must_use = "futures do nothing unless awaited"]
pub struct CallFuture<'a, T: Envelope> {
    operation: &'static str,
    state: CallState<'a, T>,
}

type Scoped<'a, T> = BoxFuture<'a, (ProgenitorResult<T>, context::CallContext)>;

enum CallState<'a, T: Envelope> {
    Sending(Scoped<'a, T>),
    Converting(BoxFuture<'a, Error>),
    Done,
}

impl<T: Envelope> fmt::Debug for CallFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallFuture")
            .field("operation", &self.operation)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Envelope> Future for CallFuture<'a, T> {
    type Output = Result<Response<T::Data>, Error>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        let operation = self.operation;
        loop {
            match &mut self.state {
                CallState::Sending(call) => {
                    let Poll::Ready((result, ctx)) = call.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    match result {
                        Ok(value) => {
                            self.state = CallState::Done;
                            let answer = split::<T>(operation, value);
                            ctx.finish(operation, answer.as_ref().map(drop));
                            return Poll::Ready(answer);
                        }
                        // Boxed: only the error path needs this state.
                        Err(e) => {
                            self.state =
                                CallState::Converting(Box::pin(convert::<T>(operation, e, ctx)));
                        }
                    }
                }
                CallState::Converting(error) => {
                    let Poll::Ready(error) = error.as_mut().poll(cx) else {
                        return Poll::Pending;
                    };
                    self.state = CallState::Done;
                    return Poll::Ready(Err(error));
                }
                // A caller that polls again after the answer gets an error, not a panic.
                CallState::Done => {
                    return Poll::Ready(Err(Error::invalid_request(
                        "the call's future was polled after it completed",
                    )));
                }
            }
        }
    }
}

/// Takes the envelope out and keeps status and headers in place.
fn split<T: Envelope>(
    operation: &'static str,
    value: ResponseValue<T>,
) -> Result<Response<T::Data>, Error> {
    let mut parts = None;
    let head = value
        .map(|envelope: T| parts = Some(envelope.into_parts()))
        .unwrap_or_else(|never: std::convert::Infallible| match never {});
    match parts {
        Some((data, meta)) => Ok(Response { data, meta, head }),
        // `map` always calls its closure; no panic if that ever changes.
        None => Err(Error::InvalidResponse {
            operation,
            status: Some(head.status().as_u16()),
            field: None,
            reason: "the envelope could not be taken out".into(),
        }),
    }
}

/// Runs one generated call and turns its result into ours.
#[doc(hidden)]
pub fn run<'a, T, F>(operation: &'static str, call: F) -> CallFuture<'a, T>
where
    T: Envelope,
    F: Future<Output = ProgenitorResult<T>> + Send + 'a,
{
    CallFuture {
        operation,
        state: CallState::Sending(Box::pin(context::scope(call))),
    }
}

async fn convert<T: Envelope>(
    operation: &'static str,
    error: progenitor_client::Error<ErrorEnvelope>,
    ctx: context::CallContext,
) -> Error {
    let started = ctx.started.borrow_mut().take();
    let error = convert_error::<T>(operation, error, ctx).await;
    context::finish(started, operation, Err(&error));
    error
}

async fn convert_error<T: Envelope>(
    operation: &'static str,
    error: progenitor_client::Error<ErrorEnvelope>,
    ctx: context::CallContext,
) -> Error {
    use progenitor_client::Error as P;
    if let Some(stashed) = ctx.error.borrow_mut().take() {
        return stashed;
    }
    let status = ctx.status.get();
    match error {
        P::InvalidRequest(message) => Error::invalid_parameter(message),
        P::Custom(message) => Error::invalid_request(message),
        P::CommunicationError(e) | P::ResponseBodyError(e) => Error::from_reqwest(operation, e),
        P::ErrorResponse(value) => {
            let status = value.status();
            let headers = value.headers().clone();
            Error::from_status(ApiError::new(
                operation,
                status,
                Some(&value),
                Some(&headers),
            ))
        }
        P::InvalidResponsePayload(bytes, e) => {
            match status.and_then(|s| StatusCode::from_u16(s).ok()) {
                // A documented error status whose body is not an error envelope
                // (an HTML page from a proxy, say): the status is what matters.
                Some(s) if s.is_client_error() || s.is_server_error() => Error::from_status(
                    ApiError::new(operation, s, None, None).with_retry_after(ctx.retry_after.get()),
                ),
                _ => invalid_payload::<T>(operation, status, &bytes, &e),
            }
        }
        P::UnexpectedResponse(response) => {
            let status = response.status();
            let headers = response.headers().clone();
            let envelope = response
                .bytes()
                .await
                .ok()
                .and_then(|b| serde_json::from_slice::<ErrorEnvelope>(&b).ok());
            if status.is_success() {
                return Error::InvalidResponse {
                    operation,
                    status: Some(status.as_u16()),
                    field: None,
                    reason: "a success status the spec does not document".into(),
                };
            }
            Error::from_status(ApiError::new(
                operation,
                status,
                envelope.as_ref(),
                Some(&headers),
            ))
        }
        P::InvalidUpgrade(_) => Error::InvalidResponse {
            operation,
            status,
            field: None,
            reason: "unexpected protocol upgrade".into(),
        },
    }
}

/// Decodes again with path tracking to name the field that failed.
fn invalid_payload<T: Envelope>(
    operation: &'static str,
    status: Option<u16>,
    bytes: &[u8],
    fallback: &serde_json::Error,
) -> Error {
    match decode::<T>(operation, status, bytes) {
        Err(e) => e,
        Ok(_) => Error::InvalidResponse {
            operation,
            status,
            field: None,
            reason: describe_json_error(fallback),
        },
    }
}

/// Implements [`Envelope`] for a generated envelope type.
macro_rules! impl_envelope {
    ($envelope:ident => $data:ty) => {
        impl $crate::api::envelope::Envelope for $crate::generated::types::$envelope {
            type Data = $data;
            fn into_parts(self) -> (Self::Data, $crate::api::envelope::EnvelopeMeta) {
                let meta = $crate::api::envelope::EnvelopeMeta::from_fields(
                    self.code,
                    self.count,
                    self.page_info,
                    self.description.as_ref(),
                    self.error.as_deref(),
                );
                (self.data, meta)
            }
        }
    };
}
pub(crate) use impl_envelope;

/// An answer without a body (204): its data is `()`.
impl Envelope for () {
    type Data = ();
    fn into_parts(self) -> (Self::Data, EnvelopeMeta) {
        ((), EnvelopeMeta::default())
    }
}

/// Makes a generated request builder awaitable: `client.get_locations().await?`.
macro_rules! impl_into_future {
    ($builder:ident => no_content, $operation:literal) => {
        impl $crate::api::call::Sealed for $crate::generated::builder::$builder<'_> {}

        impl<'a> ::std::future::IntoFuture for $crate::generated::builder::$builder<'a> {
            type Output =
                ::std::result::Result<$crate::api::envelope::Response<()>, $crate::error::Error>;
            type IntoFuture = $crate::api::envelope::CallFuture<'a, ()>;
            fn into_future(self) -> Self::IntoFuture {
                $crate::api::envelope::run::<(), _>(
                    $operation,
                    ::std::boxed::Box::pin(self.progenitor_send()),
                )
            }
        }
    };
    ($builder:ident => $envelope:ident, $operation:literal) => {
        impl $crate::api::call::Sealed for $crate::generated::builder::$builder<'_> {}

        impl<'a> ::std::future::IntoFuture for $crate::generated::builder::$builder<'a> {
            type Output = ::std::result::Result<
                $crate::api::envelope::Response<
                    <$crate::generated::types::$envelope as $crate::api::envelope::Envelope>::Data,
                >,
                $crate::error::Error,
            >;
            type IntoFuture =
                $crate::api::envelope::CallFuture<'a, $crate::generated::types::$envelope>;
            fn into_future(self) -> Self::IntoFuture {
                // Boxed at once: the generated future is large, and moving it
                // by value into the wrappers would copy it each time.
                $crate::api::envelope::run::<$crate::generated::types::$envelope, _>(
                    $operation,
                    ::std::boxed::Box::pin(self.progenitor_send()),
                )
            }
        }
    };
}
pub(crate) use impl_into_future;
