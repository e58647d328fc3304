//! What kind of client sent a request, and which paths are public.

use http::{HeaderMap, Method, header};

/// Whether an unauthenticated request should get `401` JSON rather than a sign-in redirect.
///
/// Browsers navigating to a page send `Accept: text/html…`; `fetch`/XHR calls and API
/// clients do not, or say so with `X-Requested-With`. Anything that is not a plain
/// GET/HEAD document navigation gets JSON, since redirecting a POST to a sign-in page
/// would lose its body anyway.
pub fn wants_json(method: &Method, headers: &HeaderMap) -> bool {
    if headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
    {
        return true;
    }
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let accepts_html = accept.contains("text/html");
    !(accepts_html && (method == Method::GET || method == Method::HEAD))
}

/// Path patterns that need no session.
///
/// A pattern is an exact path (`/`), a one-segment wildcard (`/blog/*` matches `/blog/x`
/// but not `/blog/x/y`) or a subtree (`/assets/**` matches `/assets` and everything under it).
#[derive(Clone, Debug, Default)]
pub struct PathPatterns {
    patterns: Vec<Pattern>,
}

#[derive(Clone, Debug)]
enum Pattern {
    Exact(String),
    OneSegment(String),
    Subtree(String),
}

impl PathPatterns {
    /// Builds the set from patterns such as `"/"`, `"/public/*"`, `"/assets/**"`.
    pub fn new<I, S>(patterns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let patterns = patterns
            .into_iter()
            .map(|p| {
                let p = p.as_ref();
                if let Some(base) = p.strip_suffix("/**") {
                    Pattern::Subtree(base.to_owned())
                } else if let Some(base) = p.strip_suffix("/*") {
                    Pattern::OneSegment(base.to_owned())
                } else {
                    Pattern::Exact(p.to_owned())
                }
            })
            .collect();
        Self { patterns }
    }

    /// Adds one pattern.
    pub fn push(&mut self, pattern: &str) {
        self.patterns.extend(Self::new([pattern]).patterns);
    }

    /// Whether `path` matches any pattern.
    pub fn matches(&self, path: &str) -> bool {
        self.patterns.iter().any(|p| match p {
            Pattern::Exact(e) => path == e,
            Pattern::OneSegment(base) => path
                .strip_prefix(base.as_str())
                .and_then(|rest| rest.strip_prefix('/'))
                .is_some_and(|seg| !seg.is_empty() && !seg.contains('/')),
            Pattern::Subtree(base) => {
                path == base
                    || path
                        .strip_prefix(base.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_navigation_gets_a_redirect_and_api_calls_get_json() {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT,
            "text/html,application/xhtml+xml".parse().unwrap(),
        );
        assert!(!wants_json(&Method::GET, &h));
        assert!(wants_json(&Method::POST, &h));
        h.insert("x-requested-with", "XMLHttpRequest".parse().unwrap());
        assert!(wants_json(&Method::GET, &h));
        assert!(wants_json(&Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn path_patterns_match_exact_segment_and_subtree() {
        let p = PathPatterns::new(["/", "/blog/*", "/assets/**"]);
        assert!(p.matches("/"));
        assert!(!p.matches("/dashboard"));
        assert!(p.matches("/blog/hello"));
        assert!(!p.matches("/blog/hello/world"));
        assert!(!p.matches("/blog/"));
        assert!(p.matches("/assets"));
        assert!(p.matches("/assets/css/site.css"));
        assert!(!p.matches("/assetsx"));
    }
}
