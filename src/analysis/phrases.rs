//! How figures read in evidence lines and verdicts: takes a duration or a close code, gives the
//! words (`250 ms`, `60.0 s`, `no code (1005)`), the same wherever they appear.

/// A duration, with the precision a person reads at that scale.
pub(super) fn secs(s: f64) -> String {
    if s < 0.001 {
        format!("{:.2} ms", s * 1e3)
    } else if s < 0.01 {
        format!("{:.1} ms", s * 1e3)
    } else if s < 1.0 {
        format!("{:.0} ms", s * 1e3)
    } else {
        format!("{s:.1} s")
    }
}

/// A close frame's code, or what its absence makes the peer report.
pub(super) fn close_desc(code: Option<u16>) -> String {
    match code {
        Some(c) => format!("{c}"),
        None => "no code (1005)".to_owned(),
    }
}
