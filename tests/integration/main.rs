//! One integration-test binary (one link on a 2-core CI): captures in, JSON out, checked against
//! the truth the peers wrote (samples/) and against other projects' expected outputs (the public
//! corpus beside the repository).

mod cli;
mod cli_ux;
mod corpus;
mod diagnosis;
mod hostile;
mod json_spool;
#[cfg(feature = "live")]
mod live;
mod metrics;
mod robustness;
mod samples;
mod threads;
mod tls;
mod tui;
mod util;
