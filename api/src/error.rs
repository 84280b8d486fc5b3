//! The one error type of the domain, and the one place it becomes a GraphQL error.
use sea_orm::{DbErr, SqlErr};

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the contact is marked do-not-disturb: nothing was sent")]
    ContactDnd,
    #[error("invalid plugin: {0}")]
    PluginInvalid(String),
    #[error("not implemented yet: {0}")]
    NotImplemented(&'static str),
    #[error("database error")]
    Database(#[from] DbErr),
    #[error("internal error")]
    Internal(String),
}

pub type DomainResult<T> = Result<T, DomainError>;

impl DomainError {
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Unauthenticated => "UNAUTHENTICATED",
            DomainError::Forbidden(_) => "FORBIDDEN",
            DomainError::NotFound(_) => "NOT_FOUND",
            DomainError::Invalid { .. } => "BAD_USER_INPUT",
            DomainError::Conflict(_) => "CONFLICT",
            DomainError::ContactDnd => "CONTACT_DND",
            DomainError::PluginInvalid(_) => "PLUGIN_INVALID",
            DomainError::NotImplemented(_) => "NOT_IMPLEMENTED",
            DomainError::Database(_) | DomainError::Internal(_) => "INTERNAL",
        }
    }

    /// True when the database refused a row because a unique key already holds it:
    /// the caller lost a race and should read what the winner wrote.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, DomainError::Database(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))))
    }
}

pub fn is_unique_violation(e: &DbErr) -> bool {
    matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_)))
}

/// Gives an error raised by a resolver its contract code. Resolvers return `DomainError` with
/// `?`; async-graphql keeps it as the error's source, and this is the one place that reads it.
/// Internal errors are logged with a reference and reach the client as that reference only.
pub fn expose(error: &mut async_graphql::ServerError) {
    let source = error.source.clone();
    let Some(domain) = source
        .as_deref()
        .and_then(|s| s.downcast_ref::<DomainError>())
    else {
        engine_code(error);
        return;
    };
    let code = domain.code();
    let mut ext = error.extensions.take().unwrap_or_default();
    ext.set("code", code);
    match domain {
        DomainError::Database(_) | DomainError::Internal(_) => {
            let reference = format!("{:016x}", rand::random::<u64>());
            tracing::error!(error = ?domain, reference, path = ?error.path, "internal error");
            error.message = format!("internal error (reference {reference})");
            ext.set("reference", reference);
        }
        DomainError::Invalid { field, .. } => ext.set("field", field.clone()),
        _ => {}
    }
    error.extensions = Some(ext);
}

/// Errors raised by the GraphQL engine itself (syntax, validation, limits) get a contract code
/// too; one raised by a resolver keeps the code it set.
fn engine_code(error: &mut async_graphql::ServerError) {
    if error
        .extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
    {
        return;
    }
    let m = &error.message;
    let code = if m.contains("too complex")
        || m.contains("nested too deep")
        || m.contains("too many directives")
        || m.contains("recursion")
    {
        "QUERY_TOO_COMPLEX"
    } else {
        "BAD_USER_INPUT"
    };
    let mut ext = error.extensions.take().unwrap_or_default();
    ext.set("code", code);
    error.extensions = Some(ext);
}

/// The schema as HTTP and WebSocket run it: `expose` applied to every response. Not a schema
/// extension: with any extension installed, async-graphql sends every field of every query
/// through the extension chain.
#[derive(Clone)]
pub struct Exposed(pub crate::graphql::ConfabSchema);

impl async_graphql::Executor for Exposed {
    async fn execute(&self, request: async_graphql::Request) -> async_graphql::Response {
        let mut response = self.0.execute(request).await;
        response.errors.iter_mut().for_each(expose);
        response
    }

    fn execute_stream(
        &self,
        request: async_graphql::Request,
        session_data: Option<std::sync::Arc<async_graphql::Data>>,
    ) -> futures::stream::BoxStream<'static, async_graphql::Response> {
        use futures::StreamExt;
        self.0
            .execute_stream_with_session_data(request, session_data.unwrap_or_default())
            .map(|mut response| {
                response.errors.iter_mut().for_each(expose);
                response
            })
            .boxed()
    }
}
