//! Well-known proxy and load-balancer timeouts: takes the table in `data/proxy-timeouts.json`
//! (embedded at build time) plus the user's `--timeout NAME=DURATION` rows, and gives the rows
//! a silence (idle timers) or a connection lifetime (lifetime cutoffs) matches.

use serde::{Deserialize, Serialize};

use super::phrases::secs;
use crate::diagnosis::{TimeoutKind, TimeoutMatch};
use crate::error::Error;

/// The table, embedded so that the binary needs no data files at run time.
const TABLE: &str = include_str!("../../data/proxy-timeouts.json");
/// Below this, silence before the end is reaction time, not a timer.
pub(super) const MIN_TIMER_SILENCE_S: f64 = 1.0;

/// One row of the table.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Timeout {
    /// Short product name (`nginx`, `aws-alb`).
    pub name: String,
    /// The setting that controls it.
    pub setting: String,
    /// Default in seconds; `None` when the product has no default.
    pub seconds: Option<f64>,
    /// Idle timer or lifetime cutoff.
    pub kind: TimeoutKind,
    /// How the product ends the connection.
    #[serde(default)]
    pub ends_with: String,
    /// Caveats.
    #[serde(default)]
    pub note: String,
    /// Where the value comes from (`user` for `--timeout`).
    pub source: String,
}

#[derive(Deserialize)]
struct File {
    timeouts: Vec<Timeout>,
}

/// The embedded table.
pub fn builtin() -> Result<Vec<Timeout>, Error> {
    let f: File = serde_json::from_str(TABLE)
        .map_err(|e| Error::Config(format!("embedded timeout table: {e}")))?;
    Ok(f.timeouts)
}

/// Parses a `NAME=DURATION` user row (`nginx=3s`, `lb=1m30s`, `x=250ms`, `y=45`).
///
/// When NAME is a product of the built-in table, the row borrows its setting and kind, so the
/// verdict can say `nginx proxy_read_timeout`.
pub fn parse_user(spec: &str, table: &[Timeout]) -> Result<Timeout, Error> {
    let (name, dur) = spec
        .split_once('=')
        .ok_or_else(|| Error::Config(format!("--timeout {spec}: expected NAME=DURATION")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::Config(format!("--timeout {spec}: empty name")));
    }
    let seconds = parse_duration(dur.trim())
        .ok_or_else(|| Error::Config(format!("--timeout {spec}: bad duration {dur:?}")))?;
    let known = table.iter().find(|t| t.name.eq_ignore_ascii_case(name));
    Ok(Timeout {
        name: name.to_owned(),
        setting: known.map_or_else(|| "timeout".to_owned(), |t| t.setting.clone()),
        seconds: Some(seconds),
        kind: known.map_or(TimeoutKind::Idle, |t| t.kind),
        ends_with: known.map(|t| t.ends_with.clone()).unwrap_or_default(),
        note: "given with --timeout".to_owned(),
        source: "user".to_owned(),
    })
}

/// Seconds from `90`, `3s`, `250ms`, `2m`, `1h`, `1m30s`.
fn parse_duration(s: &str) -> Option<f64> {
    if let Ok(v) = s.parse::<f64>() {
        return (v.is_finite() && v > 0.0).then_some(v);
    }
    let mut total = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let value: f64 = rest.get(..num_end)?.parse().ok()?;
        rest = rest.get(num_end..)?;
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match rest.get(..unit_end)? {
            "ms" => 1e-3,
            "s" => 1.0,
            "m" | "min" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = rest.get(unit_end..)?;
        total += value * scale;
    }
    (total > 0.0 && total.is_finite()).then_some(total)
}

/// How close a measured time must be to a timeout to name it: 2 % of the timeout, but at least
/// 1 s (timers tick, peers take time to react), and never more than a quarter of it so a short
/// user timeout does not swallow unrelated silences.
pub fn tolerance(seconds: f64) -> f64 {
    (seconds * 0.02).max(1.0).min(seconds / 4.0)
}

/// Rows of `kind` whose value `measured` seconds matches, closest first.
pub fn matching(table: &[Timeout], kind: TimeoutKind, measured: f64) -> Vec<&Timeout> {
    let mut hits: Vec<(&Timeout, f64)> = table
        .iter()
        .filter(|t| t.kind == kind)
        .filter_map(|t| {
            let s = t.seconds?;
            let off = (measured - s).abs();
            (off <= tolerance(s)).then_some((t, off))
        })
        .collect();
    // User rows first: the user told us what is on the path.
    hits.sort_by(|a, b| {
        (a.0.source != "user")
            .cmp(&(b.0.source != "user"))
            .then(a.1.total_cmp(&b.1))
    });
    hits.into_iter().map(|(t, _)| t).collect()
}

/// Known timeouts an ending by a timer may match: the final silence against idle timers, the
/// whole lifetime against lifetime cutoffs (each only past the shortest timer worth naming).
pub(super) fn timeout_matches(
    table: &[Timeout],
    final_silence: Option<f64>,
    duration: f64,
) -> Vec<TimeoutMatch> {
    let to_match = |t: &Timeout| TimeoutMatch {
        name: t.name.clone(),
        setting: t.setting.clone(),
        seconds: t.seconds.unwrap_or_default(),
        kind: t.kind,
        source: t.source.clone(),
    };
    let mut matches = Vec::new();
    if let Some(s) = final_silence.filter(|s| *s >= MIN_TIMER_SILENCE_S) {
        matches.extend(
            matching(table, TimeoutKind::Idle, s)
                .into_iter()
                .map(to_match),
        );
    }
    if duration >= MIN_TIMER_SILENCE_S {
        matches.extend(
            matching(table, TimeoutKind::Lifetime, duration)
                .into_iter()
                .map(to_match),
        );
    }
    matches
}

/// One evidence line per timeout matched, with its source.
pub(super) fn cite_timeouts(matches: &[TimeoutMatch], ev: &mut Vec<String>) {
    for m in matches {
        ev.push(format!(
            "matches {} {} = {} ({}; source: {})",
            m.name,
            m.setting,
            secs(m.seconds),
            match m.kind {
                TimeoutKind::Idle => "idle timer",
                TimeoutKind::Lifetime => "lifetime cutoff",
            },
            m.source
        ));
    }
}

/// The sentence a verdict ends with when the end matches timeouts: which ones (built-in rows
/// marked as defaults), and what to change. Pings reset an idle timer but not a lifetime cutoff,
/// so the advice follows the kinds matched. `None` when nothing matched.
pub(super) fn matches_sentence(
    matches: &[TimeoutMatch],
    final_silence: Option<f64>,
) -> Option<String> {
    if matches.is_empty() {
        return None;
    }
    let advice = if matches.iter().any(|m| m.kind == TimeoutKind::Idle) {
        format!(
            "Send pings more often than every {} or raise the timeout.",
            secs(final_silence.unwrap_or_default())
        )
    } else {
        "Pings do not help against a lifetime cutoff: raise it, or reconnect before it.".to_owned()
    };
    let names: Vec<String> = matches
        .iter()
        .map(|m| {
            let default = if m.source == "user" { "" } else { " default" };
            format!("{} {} ({}{default})", m.name, m.setting, secs(m.seconds))
        })
        .collect();
    Some(format!("Matches {}. {advice}", names.join(" or ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_table_parses_and_every_row_has_a_source() {
        let t = builtin().expect("table");
        assert!(t.len() >= 10);
        for row in &t {
            assert!(row.source.starts_with("https://"), "{}", row.name);
        }
        let haproxy = t.iter().find(|r| r.name == "haproxy").expect("haproxy");
        assert!(haproxy.seconds.is_none(), "HAProxy has no default");
        let gcp = t.iter().find(|r| r.name == "gcp-https-lb").expect("gcp");
        assert_eq!(gcp.kind, TimeoutKind::Lifetime);
    }

    #[test]
    fn analysis_durations() {
        assert_eq!(parse_duration("3s"), Some(3.0));
        assert_eq!(parse_duration("250ms"), Some(0.25));
        assert_eq!(parse_duration("1m30s"), Some(90.0));
        assert_eq!(parse_duration("45"), Some(45.0));
        assert_eq!(parse_duration("3x"), None);
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn analysis_matching_idle_and_user_rows() {
        let mut t = builtin().expect("table");
        let names = |v: Vec<&Timeout>| v.iter().map(|r| r.name.clone()).collect::<Vec<_>>();
        let m = names(matching(&t, TimeoutKind::Idle, 60.4));
        assert!(m.contains(&"nginx".to_owned()) && m.contains(&"aws-alb".to_owned()));
        assert!(!m.contains(&"heroku".to_owned()));
        assert!(matching(&t, TimeoutKind::Idle, 3.0).is_empty());
        // GCP is a lifetime cutoff: 30 s of silence is not it.
        assert!(names(matching(&t, TimeoutKind::Idle, 30.0)).is_empty());
        assert_eq!(
            names(matching(&t, TimeoutKind::Lifetime, 30.2)),
            ["gcp-https-lb"]
        );
        let user = parse_user("nginx=3s", &t).expect("row");
        assert_eq!(user.setting, "proxy_read_timeout");
        t.push(user);
        assert_eq!(names(matching(&t, TimeoutKind::Idle, 3.01)), ["nginx"]);
        assert!(parse_user("nginx", &t).is_err());
        assert!(parse_user("=3s", &t).is_err());
    }
}
