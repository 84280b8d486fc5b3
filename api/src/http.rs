//! HTTP surface: GraphQL over HTTP on `/graphql` (POST, and GET for queries), GraphiQL with its
//! assets built in, and `/healthz`.
use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, OperationType};
use axum::Router;
use axum::body::Bytes;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{DefaultBodyLimit, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::error::DomainError;
use crate::graphql::documents::Documents;
use crate::graphql::loaders::{Batches, Loaders};
use crate::graphql::{ConfabSchema, State as GqlState};

#[derive(Clone)]
pub struct AppState {
    pub schema: ConfabSchema,
    pub state: Arc<GqlState>,
    /// Flips to true when the server shuts down; WebSockets close with "going away".
    pub shutdown: tokio::sync::watch::Receiver<bool>,
    /// The largest JSON request body; multipart uploads may be as large as a plugin.
    pub max_body_bytes: usize,
    /// Parsed documents, reused by requests that send the same text.
    pub documents: Arc<Documents>,
    /// The open WebSockets (see `Services::sockets`).
    pub sockets: tokio_util::task::TaskTracker,
    /// How many queries execute at once (`crate::turns`).
    pub queries: crate::turns::Turns,
}

/// Room for a plugin upload and the multipart request around it.
const MAX_MULTIPART_BYTES: usize = crate::domain::plugins::MAX_UPLOAD_BYTES + (64 << 10);

pub fn router(app: AppState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphiql/{asset}", get(graphiql_asset))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(
            max_body_bytes.max(MAX_MULTIPART_BYTES),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("request handler panicked");
            problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "INTERNAL",
            )
        }))
        .layer(TraceLayer::new_for_http())
        .with_state(app)
}

async fn healthz(State(app): State<AppState>) -> Response {
    match app.state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database does not answer");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
    }
}

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";

/// The response media type the client accepts; None when it accepts neither JSON type.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flavor {
    GraphqlResponse,
    Json,
}

fn negotiate(headers: &HeaderMap) -> Option<Flavor> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Some(Flavor::Json);
    };
    let mut json = false;
    for range in accept.split(',') {
        let media = range
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match media.as_str() {
            GRAPHQL_RESPONSE => return Some(Flavor::GraphqlResponse),
            "application/json" | "application/*" | "*/*" => json = true,
            "" => json = true,
            _ => {}
        }
    }
    json.then_some(Flavor::Json)
}

fn problem(status: StatusCode, message: &str, code: &str) -> Response {
    let body = json!({ "errors": [{ "message": message, "extensions": { "code": code } }] });
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

async fn graphql_post(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(flavor) = negotiate(&headers) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "accept application/graphql-response+json or application/json",
            "BAD_USER_INPUT",
        );
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if media == "multipart/form-data" {
        // The GraphQL multipart request spec: file uploads (installPlugin).
        let opts = async_graphql::http::MultipartOptions::default()
            .max_num_files(1)
            .max_file_size(crate::domain::plugins::MAX_UPLOAD_BYTES + 1);
        let body = futures::io::Cursor::new(body);
        return match async_graphql::http::receive_body(Some(content_type), body, opts).await {
            Ok(request) => execute(app, &headers, request, flavor).await,
            Err(async_graphql::ParseRequestError::PayloadTooLarge) => problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!(
                    "the upload is larger than {} bytes",
                    crate::domain::plugins::MAX_UPLOAD_BYTES
                ),
                "PLUGIN_INVALID",
            ),
            Err(e) => problem(
                StatusCode::BAD_REQUEST,
                &format!("not a GraphQL multipart request: {e}"),
                "BAD_USER_INPUT",
            ),
        };
    }
    if media != "application/json" {
        return problem(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the request as application/json (or multipart/form-data to upload a file)",
            "BAD_USER_INPUT",
        );
    }
    if body.len() > app.max_body_bytes {
        return problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the request body is larger than {} bytes",
                app.max_body_bytes
            ),
            "BAD_USER_INPUT",
        );
    }
    let request = match parse_body(&body) {
        Ok(r) => r,
        Err(msg) => return problem(StatusCode::BAD_REQUEST, &msg, "BAD_USER_INPUT"),
    };
    execute(app, &headers, request, flavor).await
}

/// Reads `{query, operationName?, variables?, extensions?}` strictly, as the spec asks.
fn parse_body(body: &[u8]) -> Result<async_graphql::Request, String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let obj = value.as_object().ok_or("the body must be a JSON object")?;
    let query = match obj.get("query") {
        Some(Value::String(q)) => q.clone(),
        Some(_) => return Err("`query` must be a string".into()),
        None => return Err("`query` is required".into()),
    };
    let mut request = async_graphql::Request::new(query);
    match obj.get("operationName") {
        Some(Value::String(name)) => request = request.operation_name(name.clone()),
        Some(Value::Null) | None => {}
        Some(_) => return Err("`operationName` must be a string".into()),
    }
    match obj.get("variables") {
        Some(Value::Object(vars)) => {
            request = request.variables(async_graphql::Variables::from_json(Value::Object(
                vars.clone(),
            )));
        }
        Some(Value::Null) | None => {}
        Some(_) => return Err("`variables` must be an object".into()),
    }
    match obj.get("extensions") {
        Some(Value::Object(_)) | Some(Value::Null) | None => {}
        Some(_) => return Err("`extensions` must be an object".into()),
    }
    Ok(request)
}

async fn graphql_get(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    if let Ok(ws) = ws {
        return crate::realtime::ws::upgrade(app, &headers, ws);
    }
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let query = query.unwrap_or_default();
    if wants_html && !query.contains("query=") {
        return Html(GRAPHIQL_HTML).into_response();
    }
    let Some(flavor) = negotiate(&headers) else {
        return problem(
            StatusCode::NOT_ACCEPTABLE,
            "accept application/graphql-response+json or application/json",
            "BAD_USER_INPUT",
        );
    };
    let request = match async_graphql::http::parse_query_string(&query) {
        Ok(r) => r,
        Err(e) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!("bad query string: {e}"),
                "BAD_USER_INPUT",
            );
        }
    };
    if request.query.is_empty() {
        return problem(
            StatusCode::BAD_REQUEST,
            "`query` is required",
            "BAD_USER_INPUT",
        );
    }
    let mut request = request;
    if is_mutation(&mut request) {
        let mut resp = problem(
            StatusCode::METHOD_NOT_ALLOWED,
            "mutations must be sent with POST",
            "BAD_USER_INPUT",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    execute(app, &headers, request, flavor).await
}

/// Whether the request's operation is a mutation; the parse is kept for execution.
fn is_mutation(request: &mut async_graphql::Request) -> bool {
    operation_type(request) == Some(OperationType::Mutation)
}

/// The type of the operation a request runs; None when it does not parse or names none.
pub(crate) fn operation_type(request: &mut async_graphql::Request) -> Option<OperationType> {
    let name = request.operation_name.clone();
    let Ok(doc) = request.parsed_query() else {
        return None;
    };
    let op = match (&doc.operations, name.as_deref()) {
        (DocumentOperations::Single(op), _) => Some(&op.node),
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name).map(|o| &o.node),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|o| &o.node)
        }
        _ => None,
    };
    op.map(|o| o.ty)
}

async fn execute(
    app: AppState,
    headers: &HeaderMap,
    request: async_graphql::Request,
    flavor: Flavor,
) -> Response {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let mut request = request;
    let batches = Batches::default();
    match app.state.tokens.authenticate(&app.state.db, auth).await {
        Ok(scope) => {
            request = request
                .data(Loaders::new(
                    &app.state.db,
                    scope.workspace_id,
                    Some(&batches),
                ))
                .data(scope);
        }
        Err(DomainError::Unauthenticated) => {}
        Err(e) => {
            tracing::error!(error = ?e, "authentication failed");
            return problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
                "INTERNAL",
            );
        }
    }
    app.documents.attach(&mut request);
    let writes = is_mutation(&mut request);
    // Held until the response is text: building it is part of the query's work.
    let _turn = app.queries.take(writes).await;
    let exposed = crate::error::Exposed(app.schema.clone());
    let response = batches
        .drive(async_graphql::Executor::execute(&exposed, request))
        .await;
    if writes {
        // Whatever the mutation committed is now visible: let the event source and the
        // scheduler look at once (a query changes nothing, so it wakes nobody).
        app.state.bus.wake();
        app.state.scheduler.wake();
    }
    let request_error = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    if !request_error {
        // Straight to text: a large response is not built twice.
        let body = serde_json::to_string(&response).unwrap_or_else(|_| "{}".into());
        return respond_text(StatusCode::OK, flavor, body);
    }
    // A request error has no `data` at all.
    let mut body = serde_json::to_value(&response).unwrap_or_else(|_| json!({}));
    if let Some(obj) = body.as_object_mut() {
        obj.remove("data");
    }
    let status = if flavor == Flavor::GraphqlResponse {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    respond(status, flavor, body)
}

fn respond(status: StatusCode, flavor: Flavor, body: Value) -> Response {
    respond_text(status, flavor, body.to_string())
}

fn respond_text(status: StatusCode, flavor: Flavor, body: String) -> Response {
    let content_type = match flavor {
        Flavor::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        Flavor::Json => "application/json; charset=utf-8",
    };
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

static GRAPHIQL_JS: &[u8] = include_bytes!("../assets/graphiql/graphiql.min.js.gz");
static GRAPHIQL_CSS: &[u8] = include_bytes!("../assets/graphiql/graphiql.min.css.gz");
static REACT_JS: &[u8] = include_bytes!("../assets/graphiql/react.production.min.js.gz");
static REACT_DOM_JS: &[u8] = include_bytes!("../assets/graphiql/react-dom.production.min.js.gz");

async fn graphiql_asset(axum::extract::Path(asset): axum::extract::Path<String>) -> Response {
    let (bytes, content_type) = match asset.as_str() {
        "graphiql.min.js" => (GRAPHIQL_JS, "text/javascript"),
        "graphiql.min.css" => (GRAPHIQL_CSS, "text/css"),
        "react.production.min.js" => (REACT_JS, "text/javascript"),
        "react-dom.production.min.js" => (REACT_DOM_JS, "text/javascript"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_ENCODING, "gzip"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        bytes,
    )
        .into_response()
}

const GRAPHIQL_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Confab GraphiQL</title>
  <link rel="stylesheet" href="/graphiql/graphiql.min.css">
  <style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL...</div>
  <script src="/graphiql/react.production.min.js"></script>
  <script src="/graphiql/react-dom.production.min.js"></script>
  <script src="/graphiql/graphiql.min.js"></script>
  <script>
    // Subscriptions run over graphql-transport-ws on the same URL; the Authorization header
    // typed below is sent as the connection_init payload.
    const wsUrl = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/graphql';
    const fetcher = GraphiQL.createFetcher({ url: '/graphql', subscriptionUrl: wsUrl });
    const root = ReactDOM.createRoot(document.getElementById('graphiql'));
    root.render(React.createElement(GraphiQL, {
      fetcher,
      defaultHeaders: '{\n  "Authorization": "Bearer <paste a token from `confab token create`>"\n}',
      defaultQuery: '{\n  me { name email role }\n  conversations(first: 10) {\n    edges { node { id contact { name } lastMessage { body } unreadCount } }\n  }\n}\n',
      shouldPersistHeaders: true,
    }));
  </script>
</body>
</html>
"#;
