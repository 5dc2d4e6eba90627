//! One side ending its part of a connection, as the analysis notes it: takes a close frame's,
//! FIN's or RST's time and direction, and gives the words the proxy-leg story tells it with
//! (`sent close 1000`). Its own module because both what is kept per connection (`conn`) and
//! the heartbeat bookkeeping (`heartbeat`: a pong after its pinger ended is late) read it.

use crate::types::{Dir, Ts};

/// How one side ended its part.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum What {
    Close(Option<u16>),
    Fin,
    Rst,
}

/// One side ending its part: a close frame, a FIN or an RST.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    pub(super) ts: Ts,
    pub(super) dir: Dir,
    pub(super) what: What,
}

impl Mark {
    /// `sent close 1000`, `sent FIN`, ...
    pub(super) fn verb(&self) -> String {
        match self.what {
            What::Close(Some(c)) => format!("sent close {c}"),
            What::Close(None) => "sent close (no code)".to_owned(),
            What::Fin => "sent FIN".to_owned(),
            What::Rst => "sent RST".to_owned(),
        }
    }
}
