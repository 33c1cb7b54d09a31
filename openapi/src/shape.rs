//! Where progenitor's output is shaped into the public API of nexhealth-api.
//!
//! progenitor gives every request builder a `send()` that answers its own
//! `ResponseValue` and `progenitor_client::Error`. nexhealth-api's builders are
//! awaited directly instead (`client.get_locations().await?`), which answers
//! `nexhealth_api::Response` and `nexhealth_api::Error`. So that a user who
//! reads any operation's documentation finds that path, and does not stumble
//! into the other:
//!
//! - the operation docs show `.await?` on the builder, and say what it answers;
//! - `send` is renamed `progenitor_send` and hidden from rustdoc and from IDE
//!   completion (it stays public only for the benchmark that measures the
//!   layers of a call, and for the crate's own `IntoFuture` glue);
//! - `Client::new` goes (it unwraps a reqwest build) and `Client::new_with_client`
//!   becomes `pub(crate)`: a client is built with `Client::builder`, which fills
//!   in the state they need;
//! - an integer parameter setter takes `Into<i32>` (and so on) instead of
//!   `TryInto`, so `.id(5_000_000_000i64)` is a compile error rather than an
//!   error at send time;
//! - every operation method gets `#[doc(alias)]`es for its resource words
//!   (`location`, `webhook_subscription`, `subscription`) and its verb
//!   (`get_location`, `list_locations`, `delete_webhook_subscription`), so that
//!   rustdoc's search finds NexHealth's operation ids by what they act on;
//! - `Client`'s rustdoc is a short guide to the type (the spec's `info` text
//!   stays in the spec).
//!
//! The typed httpmock helpers get rustdoc on every matcher and answer, and a
//! `header` method on every answer (a 429 with `Retry-After` in one line).
//! progenitor 0.15.1 matches an array query parameter with
//! `value.to_string()`, which does not compile for `Vec<T>`; NexHealth's
//! `location_ids[]` repeats the key once per value, so that matcher is
//! rewritten to require one `name=value` pair per element.
//!
//! Everything here works on the syntax tree, never on text, and fails loudly
//! (a [`ShapeError`]) when progenitor's output no longer has the shape it
//! expects, rather than silently leaving the raw API in place.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{Attribute, ImplItem, Item, TypeParamBound, Visibility, WherePredicate, parse_quote};

/// progenitor's output did not look as expected.
#[derive(Debug)]
pub struct ShapeError(pub String);

/// Renamed from progenitor's `send`.
pub const RAW_SEND: &str = "progenitor_send";

fn doc(text: &str) -> Attribute {
    parse_quote!(#[doc = #text])
}

fn doc_text(attr: &Attribute) -> Option<String> {
    let syn::Meta::NameValue(nv) = &attr.meta else {
        return None;
    };
    if !nv.path.is_ident("doc") {
        return None;
    }
    match &nv.value {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

fn is_inherent_impl_of(item: &syn::ItemImpl, name: &str) -> bool {
    item.trait_.is_none() && matches!(&*item.self_ty, syn::Type::Path(p) if p.path.is_ident(name))
}

fn crate_vis() -> Visibility {
    parse_quote!(pub(crate))
}

/// Shapes the generated client (see the module docs).
pub fn client(file: &mut syn::File, routes: &[(String, String, String)]) -> Result<(), ShapeError> {
    let mut constructors = 0;
    let mut operations = 0;
    let mut sends = 0;
    let mut aliased = 0;
    let mut guides = 0;
    for item in &mut file.items {
        match item {
            Item::Struct(s) if s.ident == "Client" => {
                s.attrs.retain(|a| doc_text(a).is_none());
                s.attrs.insert(0, doc(CLIENT_GUIDE));
                guides += 1;
            }
            Item::Impl(imp) if is_inherent_impl_of(imp, "Client") => {
                // `new` builds its own reqwest client with `unwrap()`; nothing uses it.
                let before = imp.items.len();
                imp.items
                    .retain(|m| !matches!(m, ImplItem::Fn(f) if f.sig.ident == "new"));
                constructors += before - imp.items.len();
                for member in &mut imp.items {
                    let ImplItem::Fn(f) = member else { continue };
                    let name = f.sig.ident.to_string();
                    if name == "new_with_client" {
                        f.vis = crate_vis();
                        constructors += 1;
                        continue;
                    }
                    for attr in &mut f.attrs {
                        if let Some(text) = doc_text(attr)
                            && text.contains(".send()")
                        {
                            *attr = doc(&operation_doc(&text));
                            operations += 1;
                        }
                    }
                    if let Some((_, method, path)) = routes.iter().find(|(n, ..)| *n == name) {
                        for alias in aliases(method, path) {
                            f.attrs.push(parse_quote!(#[doc(alias = #alias)]));
                        }
                        aliased += 1;
                    }
                }
            }
            Item::Mod(m) if m.ident == "builder" => {
                let Some((_, items)) = &mut m.content else {
                    continue;
                };
                for item in items {
                    let Item::Impl(imp) = item else { continue };
                    if imp.trait_.is_some() {
                        continue;
                    }
                    for member in &mut imp.items {
                        let ImplItem::Fn(f) = member else { continue };
                        if f.sig.ident == "send" {
                            f.sig.ident = syn::Ident::new(RAW_SEND, Span::call_site());
                            f.attrs.retain(|a| doc_text(a).is_none());
                            f.attrs.push(doc(
                                "progenitor's call without nexhealth-api's answer types. \
                                 `.await` the builder instead.",
                            ));
                            f.attrs.push(parse_quote!(#[doc(hidden)]));
                            sends += 1;
                        } else {
                            infallible_integer_setter(f);
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if constructors != 2
        || operations == 0
        || sends != operations
        || aliased != routes.len()
        || guides != 1
    {
        return Err(ShapeError(format!(
            "progenitor's client no longer has the expected shape \
             ({constructors} constructors, {operations} operation docs, {sends} send methods, \
             {aliased} of {} operations found to alias, {guides} `Client` struct)",
            routes.len()
        )));
    }
    Ok(())
}

/// The rustdoc of the generated `Client`.
const CLIENT_GUIDE: &str = "\
A client of NexHealth's Synchronizer API: hold one per service and clone it freely \
(clones share the cached token, the rate limit and the connection pool).

Build it with [`Client::from_env`] (reads `NEXHEALTH_API_KEY` and `NEXHEALTH_BASE_URL`), \
[`ClientBuilder::from_env`](crate::ClientBuilder::from_env) to configure more, or \
[`Client::builder`] with a key.

Every operation is a method named after NexHealth's operation id \
(`getLocationsId` is [`get_locations_id`](Self::get_locations_id)) that answers a request \
builder: set its parameters, then `.await` it for a [`Response`](crate::Response) (the \
operation's data, with the envelope's count and warnings) or an [`Error`](crate::Error). \
rustdoc's search finds them by resource too (`location`, `webhook_subscription`, \
`list_locations`). Per-call timeout, retry policy and deadline come from \
[`CallExt`](crate::CallExt); helpers built on the calls live in \
[`directory`](crate::directory), [`sync_health`](crate::sync_health), \
[`overview`](crate::overview) and [`onboarding`](crate::onboarding).

```no_run
# async fn run() -> Result<(), nexhealth_api::Error> {
let client = nexhealth_api::Client::from_env()?;
let location = client.get_locations_id().id(7).await?;
println!(\"{:?}\", location.name);
# Ok(()) }
```";

/// The `#[doc(alias)]`es of the operation at `method` `path`: each resource
/// segment and its words, singular and plural, and a verb with the last
/// resource (`list_locations`, `get_location`, `create_onboarding`,
/// `update_webhook_endpoint`, `delete_webhook_subscription`). rustdoc allows
/// no spaces in an alias, hence the underscores.
pub fn aliases(method: &str, path: &str) -> Vec<String> {
    fn singular(word: &str) -> String {
        match word.strip_suffix('s') {
            Some(stem) if !word.ends_with("ss") && !word.ends_with("status") => stem.to_string(),
            _ => word.to_string(),
        }
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let resources: Vec<&str> = segments
        .iter()
        .copied()
        .filter(|s| !s.starts_with('{'))
        .collect();
    let mut out: Vec<String> = Vec::new();
    let mut add = |alias: String| {
        if !alias.is_empty() && !out.contains(&alias) {
            out.push(alias);
        }
    };
    for resource in &resources {
        add(resource.to_string());
        add(singular(resource));
        if resource.contains('_') {
            for word in resource.split('_') {
                add(word.to_string());
                add(singular(word));
            }
        }
    }
    if let Some(last) = resources.last() {
        let item = segments.last().is_some_and(|s| s.starts_with('{'));
        let verb = match (method, item) {
            ("get", false) => "list",
            ("get", true) => "get",
            ("post", _) => "create",
            ("put" | "patch", _) => "update",
            ("delete", _) => "delete",
            (other, _) => other,
        };
        let noun = if verb == "list" {
            last.to_string()
        } else {
            singular(last)
        };
        add(format!("{verb}_{noun}"));
    }
    out
}

/// Rewrites progenitor's `.send().await` example into the awaited builder.
fn operation_doc(text: &str) -> String {
    let example = text
        .replace("let response = ", "let answer = ")
        .replace("    .send()\n    .await;", "    .await?;");
    format!(
        "{example}\n\nAwaiting the builder answers [`Response`](crate::Response), which derefs to \
         the operation's data and keeps the envelope's `count`, `page_info` and warnings, or \
         [`Error`](crate::Error). Per-call settings (timeout, retry) come from \
         [`CallExt`](crate::CallExt)."
    )
}

const INTEGERS: [&str; 9] = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "bool"];

/// `V: TryInto<i32>` becomes `V: Into<i32>`: a value that cannot fit does not
/// compile. (`Into` implies `TryInto`, so the body stays as generated.)
fn infallible_integer_setter(f: &mut syn::ImplItemFn) {
    let Some(clause) = &mut f.sig.generics.where_clause else {
        return;
    };
    for predicate in &mut clause.predicates {
        let WherePredicate::Type(pt) = predicate else {
            continue;
        };
        for bound in &mut pt.bounds {
            let TypeParamBound::Trait(tb) = bound else {
                continue;
            };
            let Some(last) = tb.path.segments.last_mut() else {
                continue;
            };
            if last.ident != "TryInto" {
                continue;
            }
            let target = last.arguments.to_token_stream().to_string();
            let target = target.trim_start_matches('<').trim_end_matches('>').trim();
            if INTEGERS.contains(&target) {
                last.ident = syn::Ident::new("Into", last.ident.span());
            }
        }
    }
}

/// Documents the typed httpmock helpers and adds `header` to every answer.
pub fn httpmock(file: &mut syn::File, snake: impl Fn(&str) -> String) -> Result<(), ShapeError> {
    let mut wrappers = 0;
    for item in &mut file.items {
        match item {
            Item::Mod(m) if m.ident == "operations" => {
                let Some((_, items)) = &mut m.content else {
                    continue;
                };
                for item in items {
                    match item {
                        Item::Struct(s) => {
                            let name = s.ident.to_string();
                            s.attrs.push(doc(&wrapper_doc(&name, &snake)));
                        }
                        Item::Impl(imp) => {
                            let syn::Type::Path(p) = &*imp.self_ty else {
                                continue;
                            };
                            let Some(ident) = p.path.get_ident().map(ToString::to_string) else {
                                continue;
                            };
                            if ident.ends_with("When") {
                                match_list_queries_per_element(imp)?;
                                document_when(imp);
                                wrappers += 1;
                            } else if ident.ends_with("Then") {
                                document_then(imp);
                                wrappers += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
            Item::Trait(t) if t.ident == "MockServerExt" => {
                t.attrs.push(doc(
                    "One typed mock per operation of the spec, on httpmock's `MockServer`. \
                     Each method hands its closure the operation's matcher (`When`, already \
                     matching the method and path) and its answer (`Then`, one method per \
                     documented status).",
                ));
                for member in &mut t.items {
                    if let syn::TraitItem::Fn(f) = member {
                        let name = f.sig.ident.to_string();
                        f.attrs.push(doc(&format!(
                            "Mocks the operation of [`Client::{name}`](crate::Client::{name})."
                        )));
                    }
                }
            }
            _ => {}
        }
    }
    if wrappers == 0 {
        return Err(ShapeError(
            "progenitor's httpmock helpers no longer have the expected shape".into(),
        ));
    }
    Ok(())
}

fn wrapper_doc(name: &str, snake: &impl Fn(&str) -> String) -> String {
    let (op, role) = if let Some(op) = name.strip_suffix("When") {
        (op, "What a request must look like to match")
    } else if let Some(op) = name.strip_suffix("Then") {
        (op, "The answer of")
    } else {
        (name, "Part of")
    };
    let method = snake(op);
    format!("{role} the mock of [`Client::{method}`](crate::Client::{method}).")
}

fn body_calls(f: &syn::ImplItemFn, call: &str) -> bool {
    f.block.to_token_stream().to_string().contains(call)
}

/// In a `When` setter that takes a list (`T: Into<Option<&Vec<_>>>`),
/// rewrites `self.0.query_param(NAME, value.to_string())` into one pair per
/// element: `value.iter().fold(self.0, |when, item| when.query_param(NAME,
/// item.to_string()))`. Fails when a list setter has no such call.
fn match_list_queries_per_element(imp: &mut syn::ItemImpl) -> Result<(), ShapeError> {
    for member in &mut imp.items {
        let ImplItem::Fn(f) = member else { continue };
        let takes_list = f
            .sig
            .generics
            .where_clause
            .as_ref()
            .is_some_and(|w| w.to_token_stream().to_string().contains(":: vec :: Vec <"));
        if !takes_list || !body_calls(f, "query_param") {
            continue;
        }
        let mut rewritten = 0;
        rewrite_calls(&mut f.block.stmts, &mut |expr| {
            let syn::Expr::MethodCall(call) = expr else {
                return false;
            };
            let receiver = call.receiver.to_token_stream().to_string();
            if call.method != "query_param" || receiver != "self . 0" || call.args.len() != 2 {
                return false;
            }
            let value = call.args[1].to_token_stream().to_string();
            if value != "value . to_string ()" {
                return false;
            }
            let name = &call.args[0];
            *expr = parse_quote!(
                value.iter().fold(self.0, |when, item| when.query_param(#name, item.to_string()))
            );
            rewritten += 1;
            true
        });
        if rewritten != 1 {
            return Err(ShapeError(format!(
                "the list matcher `{}` no longer matches with `self.0.query_param(NAME, \
                 value.to_string())`",
                f.sig.ident
            )));
        }
    }
    Ok(())
}

/// Calls `rewrite` on every expression of `stmts`, depth first, until it
/// answers `true` for one (which it has then replaced).
fn rewrite_calls(stmts: &mut [syn::Stmt], rewrite: &mut impl FnMut(&mut syn::Expr) -> bool) {
    fn expr(e: &mut syn::Expr, rewrite: &mut impl FnMut(&mut syn::Expr) -> bool) -> bool {
        if rewrite(e) {
            return true;
        }
        match e {
            syn::Expr::Call(call) => call.args.iter_mut().any(|a| expr(a, rewrite)),
            syn::Expr::MethodCall(call) => {
                expr(&mut call.receiver, rewrite) || call.args.iter_mut().any(|a| expr(a, rewrite))
            }
            syn::Expr::If(i) => {
                block(&mut i.then_branch.stmts, rewrite)
                    || i.else_branch
                        .as_mut()
                        .is_some_and(|(_, e)| expr(e, rewrite))
            }
            syn::Expr::Block(b) => block(&mut b.block.stmts, rewrite),
            _ => false,
        }
    }
    fn block(stmts: &mut [syn::Stmt], rewrite: &mut impl FnMut(&mut syn::Expr) -> bool) -> bool {
        stmts.iter_mut().any(|s| match s {
            syn::Stmt::Expr(e, _) => expr(e, rewrite),
            syn::Stmt::Local(l) => l.init.as_mut().is_some_and(|i| expr(&mut i.expr, rewrite)),
            _ => false,
        })
    }
    block(stmts, rewrite);
}

fn document_when(imp: &mut syn::ItemImpl) {
    for member in &mut imp.items {
        let ImplItem::Fn(f) = member else { continue };
        let name = f.sig.ident.to_string();
        let text = match name.as_str() {
            "new" => "Wraps httpmock's `When`, adding this operation's method and path.".into(),
            "into_inner" => {
                "httpmock's own `When`, for a condition these typed matchers do not cover.".into()
            }
            "body" => "Matches requests whose JSON body equals `value`.".into(),
            _ if body_calls(f, "path_matches") => {
                format!("Matches requests whose path holds `value` as the `{name}` parameter.")
            }
            _ if body_calls(f, "query_param") => format!(
                "Matches requests whose `{name}` query parameter is `value` (for a list, each \
                 element as one `{name}` pair). `None` matches only requests without the \
                 parameter; to accept any value, do not call this method."
            ),
            _ if body_calls(f, "header") => format!(
                "Matches requests whose `{name}` header (in the spec's spelling) is `value`. \
                 `None` matches only requests without the header; to accept any value, do not \
                 call this method."
            ),
            _ => format!("Matches requests on `{name}`."),
        };
        f.attrs.push(doc(&text));
    }
}

fn document_then(imp: &mut syn::ItemImpl) {
    for member in &mut imp.items {
        let ImplItem::Fn(f) = member else { continue };
        let name = f.sig.ident.to_string();
        let text = match name.as_str() {
            "new" => "Wraps httpmock's `Then`.".to_string(),
            "into_inner" => {
                "httpmock's own `Then`, for an answer these typed methods do not cover.".to_string()
            }
            _ => {
                let tokens = f.block.to_token_stream().to_string();
                let status = tokens
                    .split("status (")
                    .nth(1)
                    .and_then(|rest| rest.split("u16").next())
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                if tokens.contains("json_body_obj") {
                    format!("Answers status {status} with `value` as its JSON body.")
                } else {
                    format!("Answers status {status} without a body.")
                }
            }
        };
        f.attrs.push(doc(&text));
    }
    imp.items.push(parse_quote! {
        /// Adds a header to the answer, e.g.
        /// `then.too_many_requests(&payloads::error(429)).header("retry-after", "2")`.
        pub fn header(self, name: &str, value: &str) -> Self {
            Self(self.0.header(name, value))
        }
    });
}

#[cfg(test)]
mod tests {
    use super::aliases;

    #[test]
    fn aliases_name_the_resource_its_words_and_the_verb() {
        assert_eq!(
            aliases("get", "/locations/{id}"),
            ["locations", "location", "get_location"]
        );
        assert_eq!(
            aliases("get", "/locations"),
            ["locations", "location", "list_locations"]
        );
        assert_eq!(
            aliases("get", "/sync_status"),
            ["sync_status", "sync", "status", "list_sync_status"]
        );
        let nested = aliases(
            "delete",
            "/webhook_endpoints/{id}/webhook_subscriptions/{subscription_id}",
        );
        for expected in [
            "webhook_endpoint",
            "webhook_subscriptions",
            "webhook_subscription",
            "subscription",
            "webhook",
            "delete_webhook_subscription",
        ] {
            assert!(
                nested.iter().any(|a| a == expected),
                "{expected} in {nested:?}"
            );
        }
        assert!(nested.iter().all(|a| !a.contains(' ') && !a.is_empty()));
        assert_eq!(
            aliases("post", "/onboardings").last().unwrap(),
            "create_onboarding"
        );
        assert_eq!(
            aliases("patch", "/webhook_endpoints/{id}").last().unwrap(),
            "update_webhook_endpoint"
        );
    }
}
