//! A GraphQL-over-WebSocket test client for both subprotocols.
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
}

/// What the server did with a connection attempt.
#[derive(Debug)]
pub enum Refused {
    Closed(u16),
    Other(String),
}

impl Ws {
    /// Connects to `base_url` (http://host:port) and completes `connection_init`.
    pub async fn connect(
        base_url: &str,
        protocol: &'static str,
        token: &str,
    ) -> Result<Ws, Refused> {
        let url = format!("{}/graphql", base_url.replacen("http://", "ws://", 1));
        let mut request = url.into_client_request().expect("a websocket URL");
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        // A small read buffer: tungstenite zero-fills all of it before every read attempt
        // (snapview/tungstenite-rs#547), which at the default 128 KiB made a thousand idle
        // test subscribers cost the bench's machine more than the server under test did.
        let config = WebSocketConfig::default().read_buffer_size(8 * 1024);
        let (socket, response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .map_err(|e| Refused::Other(e.to_string()))?;
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server speaks the asked subprotocol"
        );
        let mut ws = Ws { socket, protocol };
        ws.send(json!({ "type": "connection_init", "payload": { "authorization": format!("Bearer {token}") } })).await;
        loop {
            match ws.raw().await {
                Some(Ok(v)) if v["type"] == "connection_ack" => return Ok(ws),
                Some(Ok(v)) if v["type"] == "ka" || v["type"] == "ping" => continue,
                Some(Ok(v)) if v["type"] == "connection_error" => continue,
                Some(Ok(v)) => return Err(Refused::Other(v.to_string())),
                Some(Err(code)) => return Err(Refused::Closed(code)),
                None => return Err(Refused::Other("no answer".into())),
            }
        }
    }

    async fn send(&mut self, v: Value) {
        self.socket
            .send(Message::Text(v.to_string().into()))
            .await
            .expect("send on the websocket");
    }

    /// The next protocol message as JSON, or the close code; None on timeout.
    async fn raw(&mut self) -> Option<Result<Value, u16>> {
        let next = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
            .await
            .ok()?;
        match next {
            Some(Ok(Message::Text(t))) => Some(Ok(
                serde_json::from_str(t.as_str()).expect("JSON from the server")
            )),
            Some(Ok(Message::Close(frame))) => Some(Err(frame.map_or(1005, |f| u16::from(f.code)))),
            Some(Ok(_)) => Some(Ok(json!({ "type": "ka" }))),
            Some(Err(e)) => panic!("websocket error: {e}"),
            None => Some(Err(1006)),
        }
    }

    /// Starts subscription `id`.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == TRANSPORT_WS {
            "subscribe"
        } else {
            "start"
        };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } })).await;
    }

    /// The next result of subscription `id` (`{data}` or `{errors}`), answering pings on the way.
    pub async fn next(&mut self, id: &str) -> Value {
        loop {
            let msg = self
                .raw()
                .await
                .expect("an event within 10 s")
                .expect("the socket stays open");
            match msg["type"].as_str() {
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                Some("next") | Some("data") if msg["id"] == id => return msg["payload"].clone(),
                Some("error") if msg["id"] == id => return json!({ "errors": msg["payload"] }),
                _ => {}
            }
        }
    }

    /// True when nothing arrives for `id` within `wait`.
    pub async fn quiet(&mut self, id: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return true;
            }
            match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let v: Value = serde_json::from_str(t.as_str()).expect("JSON");
                    if v["id"] == id {
                        return false;
                    }
                }
                Ok(_) => {}
            }
        }
    }

    /// Waits for the server to close the socket and returns the close code.
    pub async fn closed(&mut self) -> u16 {
        loop {
            match self.raw().await {
                Some(Err(code)) => return code,
                Some(Ok(_)) => continue,
                None => panic!("the socket stayed open"),
            }
        }
    }
}
