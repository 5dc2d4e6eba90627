//! wsinspect reads packet captures and tells what happened on every WebSocket connection.

pub mod analysis;
pub mod capture;
pub mod config;
pub mod deflate;
pub mod diagnosis;
pub mod error;
pub mod event;
pub mod http;
pub mod net;
pub mod output;
pub mod parallel;
pub mod pipeline;
pub mod query;
pub mod session;
pub mod sink;
pub mod tcp;
pub mod tls;
pub mod tui;
pub mod types;
pub mod ws;

pub use error::Error;
