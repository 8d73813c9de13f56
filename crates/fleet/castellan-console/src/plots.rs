//! Time series of one device drawn on the server as inline SVG (no script, presentation
//! attributes only, as the CSP wants): each numeric telemetry field over the records the store
//! keeps, and the edge detector's scores when the store has them.
//!
//! Telemetry is the device's own JSON: only finite numbers become points (top-level fields,
//! and one level of nested objects as `outer.inner`); strings, arrays and anything else are
//! left out, and the number of series and points is bounded whatever the device sends.

use maud::{Markup, html};

use crate::layout::when;

/// Series drawn at most (the first fields by name).
pub(crate) const MAX_SERIES: usize = 8;
/// The plot's drawing area, in SVG units.
const W: f64 = 560.0;
const H: f64 = 90.0;
/// Left margin for the value labels.
const LEFT: f64 = 64.0;

/// One named series of (Unix seconds, value), oldest first.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Series {
    pub(crate) name: String,
    pub(crate) points: Vec<(i64, f64)>,
}

/// The numeric fields of telemetry records `(at, payload)` (any order) as series, oldest first.
pub(crate) fn telemetry_series(records: &[(i64, String)]) -> Vec<Series> {
    let mut by_name: std::collections::BTreeMap<String, Vec<(i64, f64)>> = Default::default();
    let mut sorted: Vec<&(i64, String)> = records.iter().collect();
    sorted.sort_by_key(|r| r.0);
    for (at, payload) in sorted {
        let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(payload) else {
            continue;
        };
        let mut push = |name: String, v: &serde_json::Value| {
            if let Some(x) = v.as_f64().filter(|x| x.is_finite())
                && (by_name.contains_key(&name) || by_name.len() < MAX_SERIES)
            {
                by_name.entry(name).or_default().push((*at, x));
            }
        };
        for (k, v) in &fields {
            match v {
                serde_json::Value::Object(inner) => {
                    for (k2, v2) in inner {
                        push(format!("{k}.{k2}"), v2);
                    }
                }
                other => push(k.clone(), other),
            }
        }
    }
    by_name
        .into_iter()
        .map(|(name, points)| Series { name, points })
        .collect()
}

/// The polyline's points of `s`, scaled into the plot (time across, value up).
pub(crate) fn polyline(s: &Series) -> String {
    let (t0, t1) = bounds(s.points.iter().map(|p| p.0 as f64));
    let (v0, v1) = bounds(s.points.iter().map(|p| p.1));
    let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (W - LEFT);
    let y = |v: f64| H - (v - v0) / (v1 - v0) * (H - 8.0) - 4.0;
    s.points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t as f64), y(*v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Min and max of `xs`, widened so that the span is never zero.
fn bounds(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    });
    if !lo.is_finite() || !hi.is_finite() {
        return (0.0, 1.0);
    }
    if (hi - lo).abs() < f64::EPSILON {
        (lo - 1.0, hi + 1.0)
    } else {
        (lo, hi)
    }
}

fn label(v: f64) -> String {
    if v.abs() >= 1e6 || (v != 0.0 && v.abs() < 1e-2) {
        format!("{v:.2e}")
    } else {
        format!("{v:.2}")
    }
}

/// One series as a small plot: the line, its minimum and maximum, first and last time.
pub(crate) fn plot(id: &str, s: &Series, stroke: &str) -> Markup {
    let (v0, v1) = bounds(s.points.iter().map(|p| p.1));
    let first = s.points.first().map(|p| p.0);
    let last = s.points.last().map(|p| p.0);
    let height = H + 18.0;
    html! {
        figure.plot {
            figcaption { (s.name) " · " (s.points.len()) " points" }
            svg id=(id) class="plot" role="img" width="100%" height=(height)
                viewBox={"0 0 " (W) " " (height)} {
                line x1=(LEFT) y1="0" x2=(LEFT) y2=(H) stroke="#d9dee6" {}
                line x1=(LEFT) y1=(H) x2=(W) y2=(H) stroke="#d9dee6" {}
                text x="0" y="12" { (label(v1)) }
                text x="0" y=(H) { (label(v0)) }
                text x=(LEFT) y=(H + 15.0) { (when(first)) }
                text x=(W) y=(H + 15.0) text-anchor="end" { (when(last)) }
                @if s.points.len() == 1 {
                    @let p = polyline(s);
                    @let (cx, cy) = p.split_once(',').unwrap_or(("0", "0"));
                    circle cx=(cx) cy=(cy) r="3" fill=(stroke) {}
                } @else {
                    polyline points=(polyline(s)) fill="none" stroke=(stroke) stroke-width="2" {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(at: i64, json: &str) -> (i64, String) {
        (at, json.to_string())
    }

    #[test]
    fn numeric_fields_become_series_oldest_first() {
        let recs = [
            rec(30, r#"{"temp": 21.5, "fw": "1.0", "power": {"mv": 3300}}"#),
            rec(10, r#"{"temp": 20, "uptime": 5, "power": {"mv": 3310}}"#),
            rec(20, "not json"),
            rec(25, r#"[1, 2]"#),
        ];
        let s = telemetry_series(&recs);
        let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, vec!["power.mv", "temp", "uptime"]);
        assert_eq!(s[1].points, vec![(10, 20.0), (30, 21.5)]);
        let line = polyline(&s[1]);
        assert!(line.starts_with("64.0,86.0"), "{line}");
        assert!(line.ends_with("560.0,4.0"), "{line}");
    }

    #[test]
    fn attack_telemetry_with_many_fields_is_bounded() {
        let many: String = (0..500)
            .map(|i| format!("\"f{i:03}\": {i}"))
            .collect::<Vec<_>>()
            .join(",");
        let recs = [
            rec(1, &format!("{{{many}}}")),
            rec(2, &format!("{{{many}}}")),
        ];
        let s = telemetry_series(&recs);
        assert_eq!(s.len(), MAX_SERIES);
        assert!(s.iter().all(|s| s.points.len() == 2));
    }

    #[test]
    fn flat_and_single_point_series_draw_without_dividing_by_zero() {
        let flat = Series {
            name: "x".into(),
            points: vec![(5, 1.0), (5, 1.0)],
        };
        assert!(!polyline(&flat).contains("NaN"));
        let markup = plot("p", &flat, "#000").into_string();
        assert!(markup.contains("<polyline"), "{markup}");
        let one = Series {
            name: "<svg onload=alert(1)>".into(),
            points: vec![(5, 2.0)],
        };
        let markup = plot("p", &one, "#000").into_string();
        assert!(markup.contains("<circle"), "{markup}");
        assert!(
            !markup.contains("<svg onload"),
            "the name is escaped: {markup}"
        );
    }
}
