//! A request body that can be sent again: the bytes read from the client are kept, up to
//! a limit, so a retry replays them and then goes on reading from the client. Past the
//! limit the kept bytes are dropped and the request can no longer be retried.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::body::{Body, BoxError};

/// The client's body and what has been kept of it.
pub struct Replay {
    tape: Arc<Mutex<Tape>>,
}

struct Tape {
    /// The client's body; `None` once it ended.
    source: Option<Body>,
    kept: Vec<Bytes>,
    kept_bytes: usize,
    limit: usize,
    /// More than `limit` was read: nothing can be replayed.
    overflowed: bool,
    trailers: Option<HeaderMap>,
    /// Which reader may read; older ones (of failed attempts) get an error.
    reader: u64,
    hint: SizeHint,
}

impl Replay {
    /// Keeps up to `limit` bytes of `body`.
    pub fn new(body: Body, limit: usize) -> Self {
        let hint = body.size_hint();
        let source = (!body.is_end_stream()).then_some(body);
        Replay {
            tape: Arc::new(Mutex::new(Tape {
                source,
                kept: Vec::new(),
                kept_bytes: 0,
                limit,
                overflowed: false,
                trailers: None,
                reader: 0,
                hint,
            })),
        }
    }

    /// Whether the body can still be sent again from its start.
    pub fn can_replay(&self) -> bool {
        self.tape.lock().is_ok_and(|t| !t.overflowed)
    }

    /// A reader from the start of the body for the next attempt; earlier readers stop.
    pub fn body(&self) -> Body {
        let (reader, ended) = match self.tape.lock() {
            Ok(mut tape) => {
                tape.reader += 1;
                let ended =
                    tape.source.is_none() && tape.kept.is_empty() && tape.trailers.is_none();
                (tape.reader, ended)
            }
            Err(_) => (0, false),
        };
        if ended {
            return crate::body::empty();
        }
        crate::body::boxed(Reader {
            tape: self.tape.clone(),
            reader,
            position: 0,
            done: false,
        })
    }
}

struct Reader {
    tape: Arc<Mutex<Tape>>,
    reader: u64,
    position: usize,
    done: bool,
}

impl HttpBody for Reader {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let tape = self.tape.clone();
        let Ok(mut tape) = tape.lock() else {
            return Poll::Ready(Some(Err("request body state lost".into())));
        };
        if tape.reader != self.reader {
            return Poll::Ready(Some(Err("superseded by a retry".into())));
        }
        if let Some(data) = tape.kept.get(self.position).cloned() {
            self.position += 1;
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        let Some(source) = tape.source.as_mut() else {
            self.done = true;
            return Poll::Ready(tape.trailers.clone().map(|t| Ok(Frame::trailers(t))));
        };
        match Pin::new(source).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) => {
                tape.source = None;
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                tape.source = None;
                tape.overflowed = true;
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(Some(Ok(frame))) => {
                let frame = match frame.into_data() {
                    Ok(data) => {
                        if !tape.overflowed && tape.kept_bytes + data.len() <= tape.limit {
                            tape.kept_bytes += data.len();
                            tape.kept.push(data.clone());
                            self.position = tape.kept.len();
                        } else if !tape.overflowed {
                            tape.overflowed = true;
                            tape.kept = Vec::new();
                        }
                        Frame::data(data)
                    }
                    Err(frame) => {
                        if let Some(trailers) = frame.trailers_ref() {
                            tape.trailers = Some(trailers.clone());
                        }
                        tape.source = None;
                        self.done = true;
                        frame
                    }
                };
                Poll::Ready(Some(Ok(frame)))
            }
        }
    }

    /// True as soon as nothing is left, so the last data frame carries END_STREAM: an
    /// empty DATA frame per request would look like a flood to HTTP/2 servers that count
    /// small frames.
    fn is_end_stream(&self) -> bool {
        if self.done {
            return true;
        }
        let Ok(tape) = self.tape.lock() else {
            return false;
        };
        tape.reader == self.reader
            && self.position >= tape.kept.len()
            && tape.trailers.is_none()
            && tape.source.as_ref().is_none_or(|s| s.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match self.tape.lock() {
            Ok(tape) if self.position == 0 && !self.done => tape.hint,
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt, StreamBody};

    fn chunked(chunks: &[&'static str]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c.as_bytes()))))
            .collect();
        crate::body::boxed(StreamBody::new(tokio_stream::iter(frames)))
    }

    async fn read(body: Body) -> Result<String, BoxError> {
        let bytes = body.collect().await?.to_bytes();
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn a_retry_sees_the_whole_body_again() {
        let replay = Replay::new(chunked(&["ab", "cd", "ef"]), 100);
        // The first attempt reads part of the body and fails.
        let mut first = replay.body();
        let frame = first.frame().await.expect("frame").expect("ok");
        assert_eq!(frame.into_data().expect("data"), "ab");
        drop(first);
        assert!(replay.can_replay());
        assert_eq!(read(replay.body()).await.expect("replayed"), "abcdef");
        assert_eq!(read(replay.body()).await.expect("again"), "abcdef");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_cannot_be_replayed_but_still_streams() {
        let replay = Replay::new(chunked(&["abcd", "efgh"]), 5);
        assert_eq!(read(replay.body()).await.expect("streamed"), "abcdefgh");
        assert!(!replay.can_replay());
    }

    #[tokio::test]
    async fn an_older_reader_stops_when_a_retry_starts() {
        let replay = Replay::new(chunked(&["ab", "cd"]), 100);
        let mut old = replay.body();
        let _new = replay.body();
        assert!(old.frame().await.expect("frame").is_err());
    }
}
