//! Parsed GraphQL documents, kept by their text. A client sends the same few documents over
//! and over, and parsing one costs several times what copying its parse does (the inbox
//! query: 0.57 M instructions to parse, about a twentieth of its whole request).
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use async_graphql::parser::types::ExecutableDocument;
use lru::LruCache;

/// Longer documents are parsed every time: they are rarely sent twice and would crowd out
/// the ones that are.
const MAX_KEPT_BYTES: usize = 8 << 10;

pub struct Documents {
    kept: Mutex<LruCache<String, Arc<ExecutableDocument>>>,
}

impl Documents {
    /// Keeps the `capacity` documents used last.
    pub fn new(capacity: NonZeroUsize) -> Self {
        Documents {
            kept: Mutex::new(LruCache::new(capacity)),
        }
    }

    /// Gives `request` its parsed document: a copy of the kept one, or parsed now and kept.
    /// A document that does not parse is left to the executor, which reports why.
    pub fn attach(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_KEPT_BYTES {
            return;
        }
        let kept = self.lock().get(request.query.as_str()).cloned();
        match kept {
            Some(doc) => request.set_parsed_query(ExecutableDocument::clone(&doc)),
            None => {
                if let Ok(doc) = request.parsed_query() {
                    let doc = Arc::new(doc.clone());
                    self.lock().put(request.query.clone(), doc);
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Arc<ExecutableDocument>>> {
        // The cache holds no invariant a panic could break halfway.
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn documents() -> Documents {
        Documents::new(NonZeroUsize::new(2).expect("non-zero"))
    }

    #[test]
    fn a_kept_document_is_the_same_parse() {
        let docs = documents();
        let query = "query Q($id: ID!) { conversation(id: $id) { id ...F } } fragment F on Conversation { starred }";
        let mut first = async_graphql::Request::new(query);
        docs.attach(&mut first);
        let mut second = async_graphql::Request::new(query);
        docs.attach(&mut second);
        let parsed = async_graphql::parser::parse_query(query).expect("parses");
        assert_eq!(
            format!("{:?}", second.parsed_query().expect("attached")),
            format!("{parsed:?}")
        );
        assert_eq!(docs.lock().len(), 1);
    }

    #[test]
    fn bad_and_long_documents_are_not_kept_and_the_least_recent_goes_first() {
        let docs = documents();
        docs.attach(&mut async_graphql::Request::new("{ conversations"));
        let long = format!("{{ {} }}", "a ".repeat(MAX_KEPT_BYTES));
        docs.attach(&mut async_graphql::Request::new(long));
        assert_eq!(docs.lock().len(), 0);
        for q in ["{ a }", "{ b }", "{ a }", "{ c }"] {
            docs.attach(&mut async_graphql::Request::new(q));
        }
        let kept: Vec<String> = docs.lock().iter().map(|(k, _)| k.clone()).collect();
        assert_eq!(kept, ["{ c }", "{ a }"]);
    }
}
