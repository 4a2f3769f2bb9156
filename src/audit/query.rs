//! Reading the trail: the filters of the admin API and `klard-auth audit list`
//! (user, type, ip, since, until, before, limit) parsed in one place, and the JSON
//! form of an event.

use serde_json::{Value, json};

use crate::store::audit::{AuditRow, Filter};

/// Page size when none is asked for, and the most one page may hold.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// Builds a [`Filter`] from query pairs. `type` may repeat and may be a comma list;
/// every other name at most once. The message names the bad parameter.
pub fn filter(pairs: &[(String, String)]) -> Result<Filter, String> {
    let mut f = Filter {
        limit: DEFAULT_LIMIT,
        ..Filter::default()
    };
    let mut seen: Vec<&str> = Vec::new();
    for (k, v) in pairs {
        if v.is_empty() {
            continue;
        }
        if k != "type" {
            if seen.contains(&k.as_str()) {
                return Err(format!("`{k}` is given more than once"));
            }
            seen.push(k);
        }
        match k.as_str() {
            "user" => f.subject = Some(v.clone()),
            "type" => f.event_types.extend(
                v.split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string),
            ),
            "ip" => {
                let ip: std::net::IpAddr = v
                    .parse()
                    .map_err(|_| format!("`ip`: `{v}` is not an IP address"))?;
                f.ip = Some(ip.to_string());
            }
            "since" => f.since = Some(time(v).map_err(|e| format!("`since`: {e}"))?),
            "until" => f.until = Some(time(v).map_err(|e| format!("`until`: {e}"))?),
            "before" => {
                f.before_seq = Some(
                    v.parse::<i64>()
                        .ok()
                        .filter(|b| *b > 0)
                        .ok_or_else(|| format!("`before`: `{v}` is not a positive integer"))?,
                )
            }
            "limit" => {
                f.limit = v
                    .parse::<i64>()
                    .ok()
                    .filter(|l| (1..=MAX_LIMIT).contains(l))
                    .ok_or_else(|| format!("`limit`: must be an integer from 1 to {MAX_LIMIT}"))?
            }
            other => return Err(format!("unknown parameter `{other}`")),
        }
    }
    if let (Some(s), Some(u)) = (f.since, f.until)
        && s >= u
    {
        return Err("`since` must be before `until`".into());
    }
    Ok(f)
}

/// The paging cursor after a page: the oldest seq in it, if the page was full.
pub fn next_cursor(rows: &[AuditRow], limit: i64) -> Option<i64> {
    (rows.len() as i64 >= limit)
        .then(|| rows.last().map(|r| r.seq))
        .flatten()
}

/// Unix seconds, or RFC 3339 (`2026-12-01T15:20:00Z`, `...+01:00`, fractions ignored).
pub fn time(s: &str) -> Result<i64, String> {
    if let Ok(n) = s.parse::<i64>() {
        return Ok(n);
    }
    rfc3339(s).ok_or_else(|| format!("`{s}` is neither Unix seconds nor an RFC 3339 time"))
}

fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &r[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let o = rest.get(1..)?;
            if o.len() != 5 || o.as_bytes()[2] != b':' {
                return None;
            }
            let oh = o.get(0..2)?.parse::<i64>().ok()?;
            let om = o.get(3..5)?.parse::<i64>().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se - offset)
}

/// Howard Hinnant's days_from_civil (days since 1970-01-01).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The admin view of an event: everything, hashes included.
pub fn admin_json(r: &AuditRow) -> Value {
    json!({
        "seq": r.seq,
        "time": crate::api::iso8601(r.at),
        "time_unix": r.at,
        "type": r.event_type,
        "outcome": r.outcome,
        "actor": r.actor,
        "subject": r.subject,
        "client_id": r.client_id,
        "ip": r.ip,
        "user_agent": r.user_agent,
        "request_id": r.request_id,
        "data": data(r),
        "hash": r.hash,
        "prev_hash": r.prev_hash,
    })
}

/// The stored details as an object (an unreadable value as an empty one).
pub fn data(r: &AuditRow) -> Value {
    match serde_json::from_str::<Value>(&r.data) {
        Ok(v @ Value::Object(_)) => v,
        _ => json!({}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn times() {
        assert_eq!(time("0"), Ok(0));
        assert_eq!(time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(time("2026-12-01T15:20:00Z"), Ok(1_796_138_400));
        assert_eq!(time("2026-12-01T16:20:00.123+01:00"), Ok(1_796_138_400));
        assert!(time("2026-13-01T00:00:00Z").is_err());
        assert!(time("yesterday").is_err());
        assert!(time("2026-12-01").is_err());
    }

    #[test]
    fn filters() {
        let f = filter(&pairs(&[
            ("type", "a,b"),
            ("type", "c"),
            ("user", "u"),
            ("limit", "10"),
        ]))
        .unwrap();
        assert_eq!(f.event_types, ["a", "b", "c"]);
        assert_eq!(f.subject.as_deref(), Some("u"));
        assert_eq!(f.limit, 10);
        assert_eq!(filter(&[]).unwrap().limit, DEFAULT_LIMIT);
        for bad in [
            ("limit", "0"),
            ("limit", "501"),
            ("before", "x"),
            ("ip", "300.1.1.1"),
            ("since", "soon"),
            ("colour", "red"),
        ] {
            let e = filter(&pairs(&[bad])).unwrap_err();
            assert!(e.contains(bad.0), "{e}");
        }
        assert!(filter(&pairs(&[("user", "a"), ("user", "b")])).is_err());
        assert!(filter(&pairs(&[("since", "10"), ("until", "5")])).is_err());
    }
}
