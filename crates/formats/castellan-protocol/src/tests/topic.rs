//! Topics: the builders and [`Topic::parse`] are inverses over valid ids (property test), and
//! hostile topic names (path steps, empty levels, wildcards, other prefixes, overlong) are
//! refused without a panic.

use proptest::prelude::*;

use crate::topic::{Direction, MAX_ID_LEN, MAX_TOPIC_LEN, is_valid_id};
use crate::*;

/// An id the protocol accepts: 1 to 128 of `A-Z a-z 0-9 . _ -`, not `.` or `..`.
fn valid_id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,128}".prop_filter("not a path step", |s| s != "." && s != "..")
}

fn every_topic(id: &str, release: &str) -> Vec<(String, Topic)> {
    let onboard = |kind| Topic::Onboard {
        id: id.into(),
        kind,
    };
    let up = |kind| Topic::UpdateUp {
        id: id.into(),
        kind,
    };
    let down = |kind| Topic::UpdateDown {
        id: id.into(),
        kind,
    };
    let chunk = Topic::UpdateChunk {
        id: id.into(),
        release: release.into(),
    };
    vec![
        (topics::hello(id), onboard(OnboardKind::Hello)),
        (topics::challenge(id), onboard(OnboardKind::Challenge)),
        (topics::evidence(id), onboard(OnboardKind::Evidence)),
        (topics::result(id), onboard(OnboardKind::Result)),
        (topics::telemetry(id), Topic::Telemetry { id: id.into() }),
        (topics::status(id), Topic::Status { id: id.into() }),
        (format!("dev/{id}/events"), Topic::Events { id: id.into() }),
        (topics::update_status(id), up(UpdateUpKind::Status)),
        (topics::update_fetch(id), up(UpdateUpKind::Fetch)),
        (topics::update_evidence(id), up(UpdateUpKind::Evidence)),
        (topics::update_offer(id), down(UpdateDownKind::Offer)),
        (
            topics::update_challenge(id),
            down(UpdateDownKind::Challenge),
        ),
        (topics::update_result(id), down(UpdateDownKind::Result)),
        (topics::update_cancel(id), down(UpdateDownKind::Cancel)),
        (topics::update_chunk(id, release), chunk),
        (topics::tuf_request(id), Topic::TufRequest { id: id.into() }),
        (
            topics::tuf_response(id),
            Topic::TufResponse { id: id.into() },
        ),
        (
            topics::decommission(id),
            Topic::Decommission { id: id.into() },
        ),
        (topics::erased(id), Topic::Erased { id: id.into() }),
        (
            topics::detect_report(id),
            Topic::DetectReport { id: id.into() },
        ),
        (topics::reattest(id), Topic::Reattest { id: id.into() }),
        (topics::reattested(id), Topic::Reattested { id: id.into() }),
    ]
}

proptest! {
    #[test]
    fn builders_and_parse_are_inverses(id in valid_id(), release in valid_id()) {
        for (text, topic) in every_topic(&id, &release) {
            prop_assert_eq!(Topic::parse(&text), Ok(topic.clone()));
            prop_assert_eq!(topic.to_string(), text.clone());
            prop_assert_eq!(topic.device_id(), id.as_str());
        }
    }

    #[test]
    fn parse_then_display_is_identity_on_anything(s in "(dev/)?[A-Za-z0-9./_+#-]{0,40}") {
        if let Ok(t) = Topic::parse(&s) {
            prop_assert_eq!(t.to_string(), s.clone());
            prop_assert_eq!(Topic::parse(&t.to_string()), Ok(t));
        }
    }
}

#[test]
fn directions_follow_who_publishes() {
    for (text, topic) in every_topic("d", "r") {
        let up = text.contains("/up/") || !text.contains("/down/");
        let expected = if up { Direction::Up } else { Direction::Down };
        assert_eq!(topic.direction(), expected, "{text}");
    }
}

#[test]
fn attack_hostile_topics_are_refused() {
    let bad_id = [
        "dev/../telemetry",
        "dev/./telemetry",
        "dev//telemetry",
        "dev/+/telemetry",
        "dev/#/telemetry",
        "dev/a b/telemetry",
        "dev/é/telemetry",
        "dev/d/down/update/chunk/..",
        "dev/d/down/update/chunk/",
        "dev/d/down/update/chunk/+",
        "dev/d/down/update/chunk/#",
    ];
    for t in bad_id {
        assert_eq!(Topic::parse(t), Err(TopicError::BadId), "{t}");
    }
    let long_id = format!("dev/{}/telemetry", "a".repeat(MAX_ID_LEN + 1));
    assert_eq!(Topic::parse(&long_id), Err(TopicError::BadId));
    let unknown = [
        "dev/d/telemetry/",
        "dev/d/telemetry/x",
        "dev/d/up/onboard/#",
        "dev/d/up/onboard/+",
        "dev/d/up/onboard//hello",
        "dev/d/up/update/chunk/r",
        "dev/d/down/update/fetch",
        "dev/d/up/onboard/challenge",
        "dev/d/down/update/chunk/r/x",
        "dev/d/down/tuf/request",
        "dev/d/up/tuf/response",
        "dev/d/up/tuf/request/x",
        "dev/d/up/tuf/+",
        "dev/d/up//update/status",
        "dev/d/",
        "dev/d/cmd/reboot",
        "dev/d/../d/telemetry",
    ];
    for t in unknown {
        assert_eq!(
            Topic::parse(t),
            Err(TopicError::Unknown { id: "d".into() }),
            "{t}"
        );
    }
    for t in [
        "",
        "dev",
        "dev/",
        "dev/d",
        "/dev/d/telemetry",
        "devices/d/telemetry",
        "DEV/d/telemetry",
        "svc/d/telemetry",
        "#",
        "+/d/telemetry",
    ] {
        assert_eq!(Topic::parse(t), Err(TopicError::NotDevice), "{t:?}");
    }
    let overlong = format!("dev/d/{}", "a/".repeat(MAX_TOPIC_LEN));
    assert_eq!(
        Topic::parse(&overlong),
        Err(TopicError::TooLong {
            len: overlong.len()
        })
    );
    // Every refusal says why.
    assert!(TopicError::BadId.to_string().contains("id"));
}

#[test]
fn ids_follow_the_brokers_rule() {
    for ok in ["CSTL-0001", "sensor-v1-2", "a", "a.b_c-d", "..."] {
        assert!(is_valid_id(ok), "{ok}");
    }
    for bad in ["", ".", "..", "a/b", "a+", "a#", "a b", "a\0"] {
        assert!(!is_valid_id(bad), "{bad:?}");
    }
    assert!(is_valid_id(&"x".repeat(MAX_ID_LEN)));
    assert!(!is_valid_id(&"x".repeat(MAX_ID_LEN + 1)));
}
