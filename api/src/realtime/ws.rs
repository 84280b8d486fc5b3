//! GraphQL over WebSocket on `/graphql`: `graphql-transport-ws` (graphql-ws library, Apollo,
//! urql) and the legacy `graphql-ws` (subscriptions-transport-ws), chosen by
//! `Sec-WebSocket-Protocol`. Auth is the `connection_init` payload's `authorization`.
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::{
    ALL_WEBSOCKET_PROTOCOLS, WebSocket, WebSocketProtocols as Protocols, WsMessage,
};
use async_graphql::parser::types::OperationType;
use async_graphql::{Data, Executor, Request};
use axum::extract::ws::{CloseFrame, Message, WebSocket as Socket, WebSocketUpgrade};
use axum::http::HeaderMap;
use axum::response::Response;
use futures::stream::BoxStream;
use futures::{SinkExt, StreamExt};

use crate::domain::auth::authenticate;
use crate::graphql::loaders::Loaders;
use crate::http::AppState;
use crate::turns::Turns;

/// Server pings (graphql-transport-ws) or `ka` messages (legacy) keep idle sockets open
/// through proxies and tell dead clients apart.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Closing codes: 4403 for a refused token, 1001 "going away" on shutdown.
pub const CLOSE_FORBIDDEN: u16 = 4403;
pub const CLOSE_GOING_AWAY: u16 = 1001;
const AUTH_FAILED: &str = "authentication failed";
/// The socket's read buffer. tungstenite zero-fills the whole buffer before every read
/// attempt, data or not (snapview/tungstenite-rs#547), and a subscriber's socket is polled
/// for reads each time an event wakes it: with the default 128 KiB that memset was half the
/// server's CPU when 1,000 subscribers took 20 events a second (docs/benchmarks.md). Clients
/// send small messages (subscribe, ping, complete); a larger one is read in more pieces.
const READ_BUFFER: usize = 8 * 1024;

/// Operations on a socket take turns as HTTP's do (`crate::turns`): a query waits for its
/// turn and holds it until its response is built; a mutation goes at once; a subscription,
/// which stays open, never holds one.
#[derive(Clone)]
struct Turned {
    exposed: crate::error::Exposed,
    queries: Turns,
}

impl Turned {
    fn is_query(request: &mut Request) -> bool {
        crate::http::operation_type(request) == Some(OperationType::Query)
    }
}

impl Executor for Turned {
    async fn execute(&self, mut request: Request) -> async_graphql::Response {
        let _turn = self.queries.take(!Self::is_query(&mut request)).await;
        self.exposed.execute(request).await
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, async_graphql::Response> {
        if !Self::is_query(&mut request) {
            return self.exposed.execute_stream(request, session_data);
        }
        let (exposed, queries) = (self.exposed.clone(), self.queries.clone());
        futures::stream::once(async move {
            let _turn = queries.take(false).await;
            // A query's stream ends after its one response: the turn is held until it is built.
            let responses: Vec<async_graphql::Response> = exposed
                .execute_stream(request, session_data)
                .collect()
                .await;
            futures::stream::iter(responses)
        })
        .flatten()
        .boxed()
    }
}

pub fn upgrade(app: AppState, headers: &HeaderMap, ws: WebSocketUpgrade) -> Response {
    let protocol = headers
        .get(axum::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| Protocols::from_str(p.trim()).ok())
        })
        .unwrap_or(Protocols::GraphQLWS);
    let sockets = app.sockets.clone();
    ws.protocols(ALL_WEBSOCKET_PROTOCOLS)
        .read_buffer_size(READ_BUFFER)
        .on_upgrade(move |socket| sockets.track_future(serve(app, socket, protocol)))
}

async fn serve(app: AppState, socket: Socket, protocol: Protocols) {
    let (mut sink, incoming) = socket.split();
    let incoming = incoming
        .take_while(|m| futures::future::ready(!matches!(m, Ok(Message::Close(_)) | Err(_))))
        .filter_map(|m| {
            futures::future::ready(match m {
                Ok(Message::Text(t)) => Some(t.as_str().as_bytes().to_vec()),
                Ok(Message::Binary(b)) => Some(b.to_vec()),
                _ => None,
            })
        });
    let db = app.state.db.clone();
    let executor = Turned {
        exposed: crate::error::Exposed(app.schema.clone()),
        queries: app.queries.clone(),
    };
    let mut graphql = WebSocket::new(executor, incoming, protocol)
        .on_connection_init(move |payload| async move {
            let header = payload
                .get("authorization")
                .or_else(|| payload.get("Authorization"))
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            match authenticate(&db, header.as_deref()).await {
                Ok(scope) => {
                    let mut data = Data::default();
                    data.insert(Loaders::new(&db, scope.workspace_id, None));
                    data.insert(scope);
                    Ok(data)
                }
                Err(e) => {
                    tracing::info!(error = %e, "websocket connection refused");
                    Err(async_graphql::Error::new(AUTH_FAILED))
                }
            }
        })
        .boxed();
    let mut shutdown = app.shutdown.clone();
    let mut keepalive =
        tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
    loop {
        tokio::select! {
            out = graphql.next() => match out {
                Some(WsMessage::Text(text)) => {
                    if text.contains(AUTH_FAILED) && text.contains("connection_error") {
                        // Legacy protocol: it said connection_error; close as the newer one does.
                        let _ = sink.send(Message::Text(text.into())).await;
                        close(&mut sink, CLOSE_FORBIDDEN, "Forbidden").await;
                        return;
                    }
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let (code, reason) = if reason.contains(AUTH_FAILED) { (CLOSE_FORBIDDEN, "Forbidden".to_string()) } else { (code, reason) };
                    close(&mut sink, code, &reason).await;
                    return;
                }
                None => {
                    let _ = sink.close().await;
                    return;
                }
            },
            _ = keepalive.tick() => {
                let beat = match protocol {
                    Protocols::GraphQLWS => r#"{"type":"ping"}"#,
                    Protocols::SubscriptionsTransportWS => r#"{"type":"ka"}"#,
                };
                if sink.send(Message::Text(beat.into())).await.is_err() {
                    return;
                }
            }
            _ = shutdown.changed() => {
                close(&mut sink, CLOSE_GOING_AWAY, "server shutting down").await;
                return;
            }
        }
    }
}

async fn close(sink: &mut futures::stream::SplitSink<Socket, Message>, code: u16, reason: &str) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = sink.send(Message::Close(Some(frame))).await;
    let _ = sink.close().await;
}
