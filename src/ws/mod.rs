//! WebSocket framing (RFC 6455): takes one direction's reassembled byte stream and gives frames
//! (unmasked), then messages (defragmented, inflated per RFC 7692, UTF-8 checked).

pub mod coding;
pub mod decoder;
pub mod frame;
pub mod mask;
pub mod message;
