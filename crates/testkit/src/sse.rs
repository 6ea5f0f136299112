//! A server-sent-events client for tests: opens the stream, then yields one event at a
//! time, telling a stream that ended apart from one that went quiet.

use std::net::SocketAddr;
use std::time::Duration;

use crate::http::{client, url};

/// One event: its `event:` name (`message` when absent) and its `data:` lines.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// An open event stream.
pub struct EventStream {
    response: reqwest::Response,
    text: String,
    pub status: u16,
    pub content_type: String,
}

impl EventStream {
    /// `GET path` on `addr` with `headers`; returns once the response head has arrived.
    pub async fn open(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> EventStream {
        let mut request = client(None).get(url(addr, path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = tokio::time::timeout(Duration::from_secs(30), request.send())
            .await
            .unwrap_or_else(|_| panic!("no answer head for GET {path} within 30 s"))
            .unwrap_or_else(|e| panic!("GET http://{addr}{path}: {e}"));
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        EventStream {
            status: response.status().as_u16(),
            response,
            text: String::new(),
            content_type,
        }
    }

    /// The next event; `None` when the server ended the stream. Panics when neither
    /// happens within `within` (a stream that only went quiet has not ended).
    pub async fn next(&mut self, within: Duration) -> Option<SseEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.parse_one() {
                return Some(event);
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self.text.push_str(&String::from_utf8_lossy(&bytes)),
                // A clean end or a broken connection: either way the stream is over.
                Ok(Ok(None)) | Ok(Err(_)) => return None,
                Err(_) => panic!("no event and no end of the stream within {within:?}"),
            }
        }
    }

    /// Takes the first complete event out of the buffer (skipping comment-only blocks).
    fn parse_one(&mut self) -> Option<SseEvent> {
        while let Some(end) = self.text.find("\n\n") {
            let block: String = self.text.drain(..end + 2).collect();
            let mut event = SseEvent {
                event: "message".into(),
                data: String::new(),
            };
            let mut any = false;
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event.event = v.trim().to_string();
                    any = true;
                } else if let Some(v) = line.strip_prefix("data:") {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    any = true;
                }
            }
            if any {
                return Some(event);
            }
        }
        None
    }
}
