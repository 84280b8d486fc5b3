//! Captured stdout/stderr: kept up to a cap, the rest dropped (a chatty plugin is not a
//! failing one), with a mark that it was cut.
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Clone)]
pub struct CappedOutput {
    cap: usize,
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    cut: bool,
}

impl CappedOutput {
    pub fn new(cap: usize) -> Self {
        CappedOutput {
            cap,
            inner: Arc::default(),
        }
    }

    fn push(&self, data: &[u8]) {
        let mut c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let room = self.cap.saturating_sub(c.bytes.len());
        if data.len() > room {
            c.cut = true;
        }
        c.bytes.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// What was written, as text, marked when it was cut at the cap.
    pub fn text(&self) -> String {
        let c = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut text = String::from_utf8_lossy(&c.bytes).into_owned();
        if c.cut {
            text.push_str(&format!("\n[output cut at {} bytes]", self.cap));
        }
        text
    }
}

impl IsTerminal for CappedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CappedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CappedOutput {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        self.push(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always ready: what does not fit is dropped, so the guest never blocks or fails.
        Ok(64 << 10)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CappedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CappedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.push(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_kept_up_to_the_cap_and_marked_when_cut() {
        let out = CappedOutput::new(10);
        out.push(b"hello ");
        assert_eq!(out.text(), "hello ");
        out.push(b"world, and more");
        assert_eq!(out.text(), "hello worl\n[output cut at 10 bytes]");
        out.push(b"!");
        assert!(
            out.text().starts_with("hello worl\n"),
            "nothing more is kept"
        );
    }

    #[test]
    fn writes_never_fail_even_past_the_cap() {
        let mut out = CappedOutput::new(4);
        for _ in 0..3 {
            assert!(OutputStream::write(&mut out, bytes::Bytes::from_static(b"abc")).is_ok());
            assert!(out.check_write().is_ok());
        }
        assert!(out.text().starts_with("abca"));
    }
}
