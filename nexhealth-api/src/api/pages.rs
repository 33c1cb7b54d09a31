//! Cursor-paginated lists as lazy streams: nothing is requested until the
//! stream is polled, and it stops on the last page, a missing cursor or a
//! cursor that repeats.

use std::collections::HashSet;

use futures::Stream;
use futures::stream::{self, TryStreamExt};

use crate::error::Error;
use crate::generated::Client;
use crate::generated::types::{Onboarding, OnboardingStatusFilter};

/// Filters for [`Client::onboardings_stream`].
#[derive(Debug, Clone, Default)]
pub struct OnboardingQuery {
    /// Only this institution.
    pub subdomain: Option<String>,
    /// Only this state.
    pub status: Option<OnboardingStatusFilter>,
    /// Page size (NexHealth allows up to 1000).
    pub per_page: Option<std::num::NonZeroU32>,
    /// Sort keys, e.g. `-created_at`.
    pub sort: Option<String>,
}

struct Cursor {
    next: Option<String>,
    seen: HashSet<String>,
    done: bool,
}

impl Client {
    /// Every onboarding matching `query`, one page at a time, lazily.
    pub fn onboardings_stream(
        &self,
        query: OnboardingQuery,
    ) -> impl Stream<Item = Result<Onboarding, Error>> + '_ {
        let start = Cursor {
            next: None,
            seen: HashSet::new(),
            done: false,
        };
        stream::try_unfold(start, move |mut cursor| {
            let query = query.clone();
            async move {
                if cursor.done {
                    return Ok(None);
                }
                let mut request = self.get_onboardings();
                if let Some(subdomain) = query.subdomain {
                    request = request.subdomain(subdomain);
                }
                if let Some(status) = query.status {
                    request = request.status(status);
                }
                if let Some(per_page) = query.per_page {
                    request = request.per_page(per_page);
                }
                if let Some(sort) = query.sort {
                    request = request.sort(sort);
                }
                if let Some(end_cursor) = cursor.next.take() {
                    request = request.end_cursor(end_cursor);
                }
                let page = request.await?;
                let info = page.page_info().cloned();
                let next = info
                    .as_ref()
                    .filter(|i| i.has_next_page == Some(true))
                    .and_then(|i| i.end_cursor.clone())
                    .filter(|c| !c.is_empty());
                match next {
                    Some(next) if cursor.seen.insert(next.clone()) => cursor.next = Some(next),
                    Some(_) => {
                        tracing::warn!(operation = "getOnboardings", "cursor repeated; stopping");
                        cursor.done = true;
                    }
                    None => {
                        if info.as_ref().and_then(|i| i.has_next_page) == Some(true) {
                            tracing::warn!(
                                operation = "getOnboardings",
                                "next page announced without a cursor; stopping"
                            );
                        }
                        cursor.done = true;
                    }
                }
                Ok(Some((
                    stream::iter(page.into_data().into_iter().map(Ok)),
                    cursor,
                )))
            }
        })
        .try_flatten()
    }
}
