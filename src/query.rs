//! The connection filter language: takes a query string such as
//! `code:1006 host:example -kind:clean_close` and gives a parsed [`Query`] that says whether a
//! connection matches.
//!
//! The terminal UI's `/` filter uses it, and so can the command line. The language is described
//! in `docs/query.md`: space-separated terms, all of which must hold; `field:value` terms, the
//! bare words `anomaly` and `open`, free text, and `!` or `-` in front of a term to negate it.
//! Anything the parser does not understand is an error naming the term, never a silent
//! "matches nothing".

use std::fmt;

use thiserror::Error;

use crate::diagnosis::TerminationKind;
use crate::event::ConnectionEnd;

/// The field names a term may start with, for error messages.
pub const FIELDS: &str = "code, kind, host, path, port, client, server, subprotocol, verdict";

/// Why a query string is not a query.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum QueryError {
    /// `foo:bar` with a field name the language does not have.
    #[error("unknown field `{0}:` (fields: {FIELDS})")]
    UnknownField(String),
    /// A field with nothing after the colon.
    #[error("`{0}:` needs a value")]
    EmptyValue(String),
    /// A value of the wrong shape for its field.
    #[error("`{field}:{value}`: {why}")]
    BadValue {
        /// The field.
        field: &'static str,
        /// The value given.
        value: String,
        /// What was expected.
        why: String,
    },
    /// A `"` without its partner.
    #[error("unclosed quote")]
    UnclosedQuote,
    /// `!` or `-` with nothing after it.
    #[error("`{0}` negates nothing")]
    EmptyNegation(char),
}

/// A connection's verdict class, as the UI colours it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerdictClass {
    /// Ended well (or is still open) and broke no rule.
    Clean,
    /// Ended in a way `--fail-on abnormal` counts.
    Abnormal,
    /// Broke a protocol rule or hit a limit (whatever the ending).
    Anomaly,
}

impl VerdictClass {
    /// The name used in queries and on screen.
    pub fn as_str(self) -> &'static str {
        match self {
            VerdictClass::Clean => "clean",
            VerdictClass::Abnormal => "abnormal",
            VerdictClass::Anomaly => "anomaly",
        }
    }
}

/// What a query looks at: the facts of one connection, borrowed.
#[derive(Clone, Debug, Default)]
pub struct Facts<'a> {
    /// Client `ip:port`.
    pub client: &'a str,
    /// Server `ip:port`.
    pub server: &'a str,
    /// `Host` header.
    pub host: Option<&'a str>,
    /// Request target.
    pub path: Option<&'a str>,
    /// Subprotocol chosen by the server.
    pub subprotocol: Option<&'a str>,
    /// Termination kind name, once the connection has ended.
    pub kind: Option<&'static str>,
    /// Close codes: those each side observed and those sent in close frames.
    pub codes: Vec<u16>,
    /// Whether the diagnosis calls the ending abnormal.
    pub abnormal: bool,
    /// Anomalies recorded.
    pub anomalies: u64,
    /// Still open: not ended yet, or open when the capture ended.
    pub open: bool,
    /// The diagnosis sentence, when there is one.
    pub verdict: Option<&'a str>,
}

impl Facts<'_> {
    /// The classes this connection belongs to (abnormal and anomaly can both hold).
    pub fn is(&self, class: VerdictClass) -> bool {
        match class {
            VerdictClass::Clean => !self.abnormal && self.anomalies == 0,
            VerdictClass::Abnormal => self.abnormal,
            VerdictClass::Anomaly => self.anomalies > 0,
        }
    }

    /// The one class the UI shows: anomalies first, then abnormal, else clean.
    pub fn class(&self) -> VerdictClass {
        if self.anomalies > 0 {
            VerdictClass::Anomaly
        } else if self.abnormal {
            VerdictClass::Abnormal
        } else {
            VerdictClass::Clean
        }
    }
}

/// Anything a query can be evaluated against.
pub trait Queryable {
    /// The facts the query language reads.
    fn facts(&self) -> Facts<'_>;
}

impl Queryable for ConnectionEnd {
    fn facts(&self) -> Facts<'_> {
        let h = self.handshake.as_ref();
        let d = self.diagnosis.as_ref();
        let mut codes: Vec<u16> = self.close.iter().filter_map(|c| c.code).collect();
        if let Some(d) = d {
            codes.extend(d.client_observed_code);
            codes.extend(d.server_observed_code);
        }
        Facts {
            client: &self.client,
            server: &self.server,
            // wss:// without keys has no Host header; the TLS server name stands in for it.
            host: h
                .and_then(|h| h.host.as_deref())
                .or_else(|| self.tls.as_ref().and_then(|t| t.sni.as_deref())),
            path: h.and_then(|h| h.path.as_deref()),
            subprotocol: h.and_then(|h| h.subprotocol.as_deref()),
            kind: d.map(|d| d.kind.as_str()),
            codes,
            abnormal: d.is_some_and(|d| d.abnormal),
            anomalies: self.anomaly_count,
            open: d.is_some_and(|d| d.kind == TerminationKind::OpenAtCaptureEnd),
            verdict: d.map(|d| d.verdict.as_str()),
        }
    }
}

/// One condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pred {
    /// A close code either side observed or sent.
    Code(u16),
    /// The termination kind (its snake-case name).
    Kind(&'static str),
    /// `Host` header contains (case-insensitive).
    Host(String),
    /// Request target contains (case-sensitive: paths are).
    Path(String),
    /// Client or server port.
    Port(u16),
    /// Client address contains.
    Client(String),
    /// Server address contains.
    Server(String),
    /// Subprotocol equals (case-insensitive).
    Subprotocol(String),
    /// Verdict class.
    Verdict(VerdictClass),
    /// At least one anomaly.
    Anomaly,
    /// Still open.
    Open,
    /// Free text: host, path, addresses, subprotocol, kind or verdict contain it (case-insensitive).
    Text(String),
}

/// One term: a condition, maybe negated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// `!` or `-` in front.
    pub negated: bool,
    /// The condition.
    pub pred: Pred,
}

/// A parsed query: every term must hold. The empty query matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    /// The terms, in the order written.
    pub terms: Vec<Term>,
}

impl Query {
    /// Parses a query string.
    pub fn parse(s: &str) -> Result<Query, QueryError> {
        let mut terms = Vec::new();
        for word in split(s)? {
            terms.push(term(&word)?);
        }
        Ok(Query { terms })
    }

    /// Whether the query matches nothing-filtering (no terms).
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Whether `item` satisfies every term.
    pub fn matches<Q: Queryable + ?Sized>(&self, item: &Q) -> bool {
        if self.terms.is_empty() {
            return true;
        }
        self.matches_facts(&item.facts())
    }

    /// Whether these facts satisfy every term.
    pub fn matches_facts(&self, f: &Facts<'_>) -> bool {
        self.terms.iter().all(|t| eval(&t.pred, f) != t.negated)
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, t) in self.terms.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            if t.negated {
                f.write_str("-")?;
            }
            match &t.pred {
                Pred::Code(c) => write!(f, "code:{c}")?,
                Pred::Kind(k) => write!(f, "kind:{k}")?,
                Pred::Host(v) => write!(f, "host:{}", quoted(v))?,
                Pred::Path(v) => write!(f, "path:{}", quoted(v))?,
                Pred::Port(p) => write!(f, "port:{p}")?,
                Pred::Client(v) => write!(f, "client:{}", quoted(v))?,
                Pred::Server(v) => write!(f, "server:{}", quoted(v))?,
                Pred::Subprotocol(v) => write!(f, "subprotocol:{}", quoted(v))?,
                Pred::Verdict(v) => write!(f, "verdict:{}", v.as_str())?,
                Pred::Anomaly => f.write_str("anomaly")?,
                Pred::Open => f.write_str("open")?,
                Pred::Text(v) => f.write_str(&quoted(v))?,
            }
        }
        Ok(())
    }
}

fn quoted(v: &str) -> String {
    if v.contains(' ') || v.is_empty() {
        format!("\"{v}\"")
    } else {
        v.to_owned()
    }
}

/// Splits on spaces outside double quotes; quotes are removed.
fn split(s: &str) -> Result<Vec<String>, QueryError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_quote = false;
    let mut any = false;
    for c in s.chars() {
        match c {
            '"' => {
                in_quote = !in_quote;
                any = true;
            }
            c if c.is_whitespace() && !in_quote => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if in_quote {
        return Err(QueryError::UnclosedQuote);
    }
    if any {
        out.push(cur);
    }
    Ok(out)
}

fn term(word: &str) -> Result<Term, QueryError> {
    let (negated, body) = match word.chars().next() {
        Some(c @ ('!' | '-')) => {
            let rest = &word[1..];
            if rest.is_empty() {
                return Err(QueryError::EmptyNegation(c));
            }
            (true, rest)
        }
        _ => (false, word),
    };
    Ok(Term {
        negated,
        pred: pred(body)?,
    })
}

fn pred(body: &str) -> Result<Pred, QueryError> {
    let Some((field, value)) = body.split_once(':') else {
        return Ok(match body.to_ascii_lowercase().as_str() {
            "anomaly" | "anomalies" => Pred::Anomaly,
            "open" => Pred::Open,
            _ => Pred::Text(body.to_owned()),
        });
    };
    let name = field.to_ascii_lowercase();
    // `127.0.0.1:9102` and `[::1]:80` are free text, not fields: only a word can name a field.
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
        return Ok(Pred::Text(body.to_owned()));
    }
    let known = [
        "code",
        "kind",
        "host",
        "path",
        "port",
        "client",
        "server",
        "subprotocol",
        "verdict",
    ];
    if !known.contains(&name.as_str()) {
        return Err(QueryError::UnknownField(field.to_owned()));
    }
    if value.is_empty() {
        return Err(QueryError::EmptyValue(field.to_owned()));
    }
    let bad = |field: &'static str, why: &str| QueryError::BadValue {
        field,
        value: value.to_owned(),
        why: why.to_owned(),
    };
    Ok(match name.as_str() {
        "code" => Pred::Code(
            value
                .parse()
                .map_err(|_| bad("code", "expected a close code (0-65535)"))?,
        ),
        "port" => Pred::Port(
            value
                .parse()
                .map_err(|_| bad("port", "expected a port (0-65535)"))?,
        ),
        "kind" => {
            let v = value.to_ascii_lowercase();
            let kind = TerminationKind::ALL
                .iter()
                .map(|k| k.as_str())
                .find(|k| *k == v);
            match kind {
                Some(k) => Pred::Kind(k),
                None => {
                    let names: Vec<&str> =
                        TerminationKind::ALL.iter().map(|k| k.as_str()).collect();
                    return Err(bad(
                        "kind",
                        &format!("expected one of {}", names.join(", ")),
                    ));
                }
            }
        }
        "verdict" => Pred::Verdict(match value.to_ascii_lowercase().as_str() {
            "clean" => VerdictClass::Clean,
            "abnormal" => VerdictClass::Abnormal,
            "anomaly" | "anomalies" => VerdictClass::Anomaly,
            _ => return Err(bad("verdict", "expected clean, abnormal or anomaly")),
        }),
        "host" => Pred::Host(value.to_owned()),
        "path" => Pred::Path(value.to_owned()),
        "client" => Pred::Client(value.to_owned()),
        "server" => Pred::Server(value.to_owned()),
        _ => Pred::Subprotocol(value.to_owned()),
    })
}

/// ASCII case-insensitive substring test without allocating for the common all-ASCII needle.
fn contains_ci(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return true;
    }
    if needle.is_ascii() {
        let n = needle.as_bytes();
        return hay
            .as_bytes()
            .windows(n.len())
            .any(|w| w.eq_ignore_ascii_case(n));
    }
    hay.to_lowercase().contains(&needle.to_lowercase())
}

fn port_of(addr: &str) -> Option<u16> {
    addr.rsplit_once(':').and_then(|(_, p)| p.parse().ok())
}

fn eval(p: &Pred, f: &Facts<'_>) -> bool {
    match p {
        Pred::Code(c) => f.codes.contains(c),
        Pred::Kind(k) => f.kind == Some(*k),
        Pred::Host(v) => f.host.is_some_and(|h| contains_ci(h, v)),
        Pred::Path(v) => f.path.is_some_and(|h| h.contains(v.as_str())),
        Pred::Port(port) => port_of(f.client) == Some(*port) || port_of(f.server) == Some(*port),
        Pred::Client(v) => contains_ci(f.client, v),
        Pred::Server(v) => contains_ci(f.server, v),
        Pred::Subprotocol(v) => f.subprotocol.is_some_and(|s| s.eq_ignore_ascii_case(v)),
        Pred::Verdict(c) => f.is(*c),
        Pred::Anomaly => f.anomalies > 0,
        Pred::Open => f.open,
        Pred::Text(v) => {
            contains_ci(f.client, v)
                || contains_ci(f.server, v)
                || f.host.is_some_and(|h| contains_ci(h, v))
                || f.path.is_some_and(|h| contains_ci(h, v))
                || f.subprotocol.is_some_and(|h| contains_ci(h, v))
                || f.kind.is_some_and(|h| contains_ci(h, v))
                || f.verdict.is_some_and(|h| contains_ci(h, v))
                || contains_ci(f.class().as_str(), v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts<'static> {
        Facts {
            client: "127.0.0.1:45678",
            server: "[::1]:9101",
            host: Some("Example.COM:9101"),
            path: Some("/chat?room=1"),
            subprotocol: Some("chat.v1"),
            kind: Some("rst_without_close"),
            codes: vec![1006, 1006],
            abnormal: true,
            anomalies: 0,
            open: false,
            verdict: Some("Reset by the server"),
        }
    }

    fn m(q: &str) -> bool {
        Query::parse(q)
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .matches_facts(&facts())
    }

    #[test]
    fn parses_fields_negation_and_quotes() {
        let q = Query::parse(r#"code:1006 -kind:clean_close !anomaly path:"/a b" open x"#)
            .expect("parses");
        assert_eq!(
            q.terms,
            vec![
                Term {
                    negated: false,
                    pred: Pred::Code(1006)
                },
                Term {
                    negated: true,
                    pred: Pred::Kind("clean_close")
                },
                Term {
                    negated: true,
                    pred: Pred::Anomaly
                },
                Term {
                    negated: false,
                    pred: Pred::Path("/a b".into())
                },
                Term {
                    negated: false,
                    pred: Pred::Open
                },
                Term {
                    negated: false,
                    pred: Pred::Text("x".into())
                },
            ]
        );
        // Display writes a query that parses back to the same terms.
        assert_eq!(Query::parse(&q.to_string()), Ok(q));
        assert!(Query::parse("   ").expect("empty").is_empty());
    }

    #[test]
    fn errors_name_the_term() {
        assert_eq!(
            Query::parse("colour:red"),
            Err(QueryError::UnknownField("colour".into()))
        );
        assert_eq!(
            Query::parse("code:"),
            Err(QueryError::EmptyValue("code".into()))
        );
        assert!(matches!(
            Query::parse("code:abc"),
            Err(QueryError::BadValue { field: "code", .. })
        ));
        assert!(matches!(
            Query::parse("port:70000"),
            Err(QueryError::BadValue { field: "port", .. })
        ));
        let e = Query::parse("kind:rst").expect_err("not a kind");
        assert!(e.to_string().contains("rst_without_close"), "{e}");
        assert!(matches!(
            Query::parse("verdict:ok"),
            Err(QueryError::BadValue {
                field: "verdict",
                ..
            })
        ));
        assert_eq!(Query::parse("path:\"/x"), Err(QueryError::UnclosedQuote));
        assert_eq!(Query::parse("a -"), Err(QueryError::EmptyNegation('-')));
        assert_eq!(Query::parse("!"), Err(QueryError::EmptyNegation('!')));
    }

    #[test]
    fn addresses_are_free_text_not_fields() {
        let q = Query::parse("127.0.0.1:45678").expect("parses");
        assert_eq!(q.terms[0].pred, Pred::Text("127.0.0.1:45678".into()));
        assert!(m("127.0.0.1:45678"));
        assert!(m("[::1]:9101"));
        assert!(!m("10.0.0.1:1"));
    }

    #[test]
    fn evaluates_each_field() {
        assert!(m("code:1006"));
        assert!(!m("code:1000"));
        assert!(m("kind:rst_without_close"));
        assert!(m("KIND:RST_WITHOUT_CLOSE"));
        assert!(!m("kind:clean_close"));
        assert!(m("host:example.com"));
        assert!(!m("host:other"));
        assert!(m("path:/chat"));
        assert!(!m("path:/CHAT"), "paths are case-sensitive");
        assert!(m("port:45678") && m("port:9101"));
        assert!(!m("port:80"));
        assert!(m("client:127.0.0") && !m("client:::1"));
        assert!(m("server:::1") && !m("server:127.0"));
        assert!(m("subprotocol:CHAT.V1") && !m("subprotocol:chat"));
        assert!(m("verdict:abnormal"));
        assert!(!m("verdict:clean"));
        assert!(!m("verdict:anomaly"));
        assert!(!m("anomaly"));
        assert!(!m("open"));
    }

    #[test]
    fn terms_are_anded_and_negation_inverts() {
        assert!(m("code:1006 host:example"));
        assert!(!m("code:1006 host:nope"));
        assert!(m("-code:1000 !anomaly"));
        assert!(!m("-code:1006"));
        assert!(m("-open"));
    }

    #[test]
    fn free_text_looks_everywhere() {
        assert!(m("EXAMPLE"));
        assert!(m("room=1"));
        assert!(m("reset by"));
        assert!(m("rst_without"));
        assert!(m("abnormal"), "the verdict class is text too");
        assert!(!m("zebra"));
    }

    #[test]
    fn classes() {
        let mut f = facts();
        assert_eq!(f.class(), VerdictClass::Abnormal);
        f.anomalies = 2;
        assert_eq!(f.class(), VerdictClass::Anomaly);
        assert!(f.is(VerdictClass::Abnormal) && f.is(VerdictClass::Anomaly));
        f.abnormal = false;
        f.anomalies = 0;
        assert_eq!(f.class(), VerdictClass::Clean);
        let q = Query::parse("verdict:clean anomaly").expect("parses");
        assert!(!q.matches_facts(&f));
    }

    #[test]
    fn non_ascii_text_is_case_insensitive() {
        assert!(contains_ci("Ünïcode", "üNÏ"));
        assert!(!contains_ci("abc", "abcd"));
    }
}
