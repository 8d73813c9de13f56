//! The topic-filter matcher and least-privilege policy as pure functions: examples, an
//! exhaustive check over a small topic universe, and property tests against a reference matcher.

use castellan_broker::auth::serial_hex;
use castellan_broker::topic::{
    filter_covers, filter_matches, validate_filter, validate_id, validate_topic_name,
};
use castellan_broker::{Identity, TopicPolicy};
use proptest::prelude::*;

/// Reference matcher written from MQTT 3.1.1 §4.7, recursively over levels.
fn reference_matches(filter: &[&str], topic: &[&str]) -> bool {
    match (filter.split_first(), topic.split_first()) {
        (Some((&"#", _)), _) => true,
        (Some((&"+", fr)), Some((_, tr))) => reference_matches(fr, tr),
        (Some((f, fr)), Some((t, tr))) => f == t && reference_matches(fr, tr),
        (None, None) => true,
        _ => false,
    }
}

fn levels(s: &str) -> Vec<&str> {
    s.split('/').collect()
}

#[test]
fn device_subscriptions_that_reach_other_devices_are_refused() {
    let a = TopicPolicy::device("dev-a").unwrap();
    for f in [
        "dev/dev-a/cmd/#",
        "dev/dev-a/cmd/reboot",
        "dev/dev-a/cmd/+",
        "dev/dev-a/cmd",
        "dev/dev-a/down/update/#",
    ] {
        assert!(a.may_subscribe(f), "{f} should be allowed");
    }
    let attacks = [
        "dev/#",
        "dev/+/cmd/#",
        "#",
        "+/+/cmd/x",
        "+/dev-a/cmd/#",
        "dev/dev-b/cmd/#",
        "dev/dev-a/#",
        "dev/dev-a/+",
        "dev/dev-a/+/x",
        "$SYS/#",
        "$share/g/dev/dev-a/cmd/#",
        "dev/dev-a/cmd/../../dev-b/cmd/#",
        "dev//dev-a/cmd/#",
        "dev/dev-a/cmd/#/x",
        "dev/dev-a/cmd/x#",
        "dev/dev-a/cmd/+x",
        "",
    ];
    for f in attacks {
        assert!(!a.may_subscribe(f), "{f:?} must be refused");
    }
}

#[test]
fn device_publishes_only_to_its_uplink_topics() {
    let a = TopicPolicy::device("dev-a").unwrap();
    for t in [
        "dev/dev-a/telemetry",
        "dev/dev-a/events",
        "dev/dev-a/status",
        "dev/dev-a/up/onboard/token",
        "dev/dev-a/up/x",
    ] {
        assert!(a.may_publish(t), "{t}");
    }
    for t in [
        "dev/dev-b/telemetry",
        "dev/dev-a/cmd/reboot",
        "dev/dev-a/down/x",
        "dev/dev-a/telemetry/extra",
        "dev/+/telemetry",
        "dev/dev-a/up/#",
        "dev/dev-a/up/../../dev-b/cmd/x",
        "dev/dev-a/up//x",
        "$SYS/broker",
        "dev/dev-a/up/x\u{0}",
    ] {
        assert!(!a.may_publish(t), "{t:?} must be refused");
    }
}

#[test]
fn quarantine_and_onboarding_allow_only_their_channel() {
    let q = TopicPolicy::quarantined("dev-q").unwrap();
    assert!(q.may_publish("dev/dev-q/up/update/status"));
    assert!(q.may_subscribe("dev/dev-q/down/update/#"));
    assert!(!q.may_publish("dev/dev-q/telemetry"));
    // Its online flag (and last will) only, nothing of another device's.
    assert!(q.may_publish("dev/dev-q/status"));
    assert!(!q.may_publish("dev/dev-x/status"));
    assert!(!q.may_publish("dev/dev-q/up/onboard/token"));
    assert!(!q.may_subscribe("dev/dev-q/cmd/#"));
    assert!(!q.may_subscribe("dev/dev-q/down/#"));
    // A contained device can still be decommissioned: the lifecycle channel, its own only.
    assert!(q.may_subscribe("dev/dev-q/down/lifecycle/decommission"));
    assert!(q.may_publish("dev/dev-q/up/lifecycle/erased"));
    assert!(!q.may_publish("dev/dev-q/down/lifecycle/decommission"));
    assert!(!q.may_subscribe("dev/dev-x/down/lifecycle/#"));
    assert!(!q.may_publish("dev/dev-x/up/lifecycle/erased"));
    // A contained device keeps reporting what its detector sees, under its own id only.
    assert!(q.may_publish("dev/dev-q/up/detect/report"));
    assert!(!q.may_publish("dev/dev-x/up/detect/report"));
    assert!(!q.may_publish("dev/dev-q/up/detect/other"));
    assert!(
        TopicPolicy::device("dev-q")
            .unwrap()
            .may_publish("dev/dev-q/up/detect/report")
    );
    let o = TopicPolicy::onboarding("dev-o").unwrap();
    assert!(o.may_publish("dev/dev-o/up/onboard/token"));
    assert!(o.may_subscribe("dev/dev-o/down/onboard/nonce"));
    assert!(!o.may_publish("dev/dev-o/telemetry"));
    assert!(!o.may_subscribe("dev/dev-o/cmd/#"));
    assert!(TopicPolicy::deny_all().publish_patterns().is_empty());
    assert!(!TopicPolicy::deny_all().may_publish("dev/x/telemetry"));
}

#[test]
fn attack_tuf_requests_and_answers_of_another_device_are_refused() {
    let a = TopicPolicy::device("dev-a").unwrap();
    let q = TopicPolicy::quarantined("dev-a").unwrap();
    for policy in [&a, &q] {
        assert!(policy.may_publish("dev/dev-a/up/tuf/request"));
        assert!(policy.may_subscribe("dev/dev-a/down/tuf/response"));
        for t in ["dev/dev-b/up/tuf/request", "dev/dev-a/down/tuf/response"] {
            assert!(!policy.may_publish(t), "{t} must be refused");
        }
        for f in [
            "dev/dev-b/down/tuf/response",
            "dev/+/down/tuf/response",
            "dev/dev-a/up/tuf/request",
            "dev/#",
        ] {
            assert!(!policy.may_subscribe(f), "{f} must be refused");
        }
    }
    assert!(!q.may_publish("dev/dev-a/up/tuf/other"));
    assert!(!q.may_subscribe("dev/dev-a/down/tuf/#"));
    let o = TopicPolicy::onboarding("dev-a").unwrap();
    assert!(!o.may_publish("dev/dev-a/up/tuf/request"));
    assert!(!o.may_subscribe("dev/dev-a/down/tuf/response"));
}

#[test]
fn service_reads_uplinks_and_sends_commands_only() {
    let s = TopicPolicy::service();
    assert!(s.may_publish("dev/dev-a/cmd/reboot"));
    assert!(s.may_publish("dev/dev-b/down/update/manifest"));
    assert!(
        !s.may_publish("dev/dev-a/telemetry"),
        "a service cannot forge device telemetry"
    );
    assert!(s.may_subscribe("dev/+/telemetry"));
    assert!(s.may_subscribe("dev/dev-a/up/#"));
    assert!(!s.may_subscribe("dev/#"));
    assert!(!s.may_subscribe("#"));
    assert!(
        !s.may_subscribe("dev/+/cmd/#"),
        "a service does not read other services' commands"
    );
    // The fleet's alerts: services read them, nobody publishes them but the fleet server.
    assert!(s.may_subscribe("fleet/alerts"));
    assert!(
        !s.may_publish("fleet/alerts"),
        "a service cannot forge an alert"
    );
    let d = TopicPolicy::device("dev-a").unwrap();
    assert!(
        !d.may_subscribe("fleet/alerts"),
        "devices do not read the fleet's alerts"
    );
    assert!(!d.may_publish("fleet/alerts"));
}

#[test]
fn device_policy_must_stay_in_its_namespace() {
    assert!(
        TopicPolicy::device("dev-a")
            .unwrap()
            .confined_to_device("dev-a")
    );
    assert!(
        TopicPolicy::quarantined("dev-a")
            .unwrap()
            .confined_to_device("dev-a")
    );
    assert!(
        !TopicPolicy::device("dev-a")
            .unwrap()
            .confined_to_device("dev-b")
    );
    assert!(!TopicPolicy::service().confined_to_device("dev-a"));
    let leaky = TopicPolicy::custom(
        vec!["dev/dev-a/telemetry".into()],
        vec!["dev/+/cmd/#".into()],
    )
    .unwrap();
    assert!(!leaky.confined_to_device("dev-a"));
    assert!(TopicPolicy::custom(vec!["dev/a//x".into()], vec![]).is_err());
    assert!(TopicPolicy::custom(vec![], vec!["dev/a/#/x".into()]).is_err());
}

#[test]
fn identities_come_from_the_common_name() {
    assert_eq!(
        Identity::from_common_name("dev-01").unwrap(),
        Identity::Device("dev-01".into())
    );
    assert_eq!(
        Identity::from_common_name("svc:fleet").unwrap(),
        Identity::Service("fleet".into())
    );
    for bad in [
        "",
        "svc:",
        "a/b",
        "+",
        "#",
        "..",
        ".",
        "dev 1",
        "svc:a/b",
        "$SYS",
        "dév",
        &"x".repeat(129),
    ] {
        assert!(Identity::from_common_name(bad).is_err(), "{bad:?}");
        assert!(TopicPolicy::device(bad).is_err(), "{bad:?}");
    }
    assert!(validate_id(&"x".repeat(128)).is_ok());
}

#[test]
fn hardening_rules_for_topics_and_filters() {
    assert!(validate_topic_name("dev/a/telemetry").is_ok());
    assert!(validate_filter("dev/+/cmd/#").is_ok());
    assert!(validate_filter("#").is_ok());
    for bad in ["dev/+/x", "dev/#"] {
        assert!(
            validate_topic_name(bad).is_err(),
            "wildcard in a topic name: {bad}"
        );
    }
    let deep = vec!["a"; 17].join("/");
    let long = "a".repeat(1025);
    for bad in [
        "", "/", "a/", "/a", "a//b", "a/./b", "a/../b", "$SYS/x", "a/$x", "a/#/b", "a/b#", "a/+b",
        "a\nb", &deep, &long,
    ] {
        assert!(validate_filter(bad).is_err(), "{bad:?}");
    }
    assert!(validate_filter(&vec!["a"; 16].join("/")).is_ok());
}

#[test]
fn serial_hex_matches_the_form_rmqtt_reports() {
    assert_eq!(serial_hex(&[0x00, 0x0a, 0xbc]), "abc");
    assert_eq!(serial_hex(&[0x40, 0x00]), "4000");
    assert_eq!(serial_hex(&[]), "0");
    assert_eq!(serial_hex(&[0, 0]), "0");
}

/// Every filter up to 4 levels over {dev, dev-a, dev-b, cmd, down, x, +, #} against every topic up
/// to 4 levels over the literals: a filter is allowed to device `dev-a` exactly when every topic
/// it matches is matched by one of the device's subscribe patterns.
#[test]
fn exhaustive_small_universe_subscribe_is_allowed_iff_every_match_is_allowed() {
    let literals = ["dev", "dev-a", "dev-b", "cmd", "down", "x"];
    let mut topics: Vec<String> = Vec::new();
    let mut frontier: Vec<String> = literals.iter().map(|s| (*s).to_owned()).collect();
    for _ in 0..4 {
        topics.extend(frontier.iter().cloned());
        frontier = frontier
            .iter()
            .flat_map(|p| literals.iter().map(move |l| format!("{p}/{l}")))
            .collect();
    }
    let symbols = ["dev", "dev-a", "dev-b", "cmd", "down", "x", "+", "#"];
    let mut filters: Vec<String> = symbols.iter().map(|s| (*s).to_owned()).collect();
    let mut frontier = filters.clone();
    for _ in 0..3 {
        frontier = frontier
            .iter()
            .filter(|p| !p.ends_with('#'))
            .flat_map(|p| symbols.iter().map(move |l| format!("{p}/{l}")))
            .collect();
        filters.extend(frontier.iter().cloned());
    }
    let policy = TopicPolicy::device("dev-a").unwrap();
    let topic_levels: Vec<Vec<&str>> = topics.iter().map(|t| levels(t)).collect();
    let pattern_levels: Vec<Vec<&str>> = policy
        .subscribe_patterns()
        .iter()
        .map(|p| levels(p))
        .collect();
    // Which topics of the universe the policy's patterns allow.
    let inside: Vec<bool> = topic_levels
        .iter()
        .map(|t| pattern_levels.iter().any(|p| reference_matches(p, t)))
        .collect();
    let mut allowed = 0;
    for f in &filters {
        let fl = levels(f);
        let matched: Vec<usize> = (0..topics.len())
            .filter(|&i| reference_matches(&fl, &topic_levels[i]))
            .collect();
        let all_inside = matched.iter().all(|&i| inside[i]);
        let may = policy.may_subscribe(f);
        if may {
            allowed += 1;
            assert!(
                all_inside,
                "{f} allowed but matches a topic outside the policy"
            );
            assert!(
                matched.iter().all(|&i| topics[i].starts_with("dev/dev-a/")),
                "{f} reaches another device"
            );
        } else if !matched.is_empty() {
            assert!(
                !all_inside,
                "{f} refused although every topic it matches is allowed"
            );
        }
    }
    assert!(allowed >= 10, "only {allowed} filters allowed");
}

fn level() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("dev".to_owned()),
        Just("dev-a".to_owned()),
        Just("dev-b".to_owned()),
        Just("cmd".to_owned()),
        Just("up".to_owned()),
        Just("x".to_owned()),
        "[a-c]{1,2}",
    ]
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..7).prop_map(|v| v.join("/"))
}

fn filter() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop_oneof![3 => level(), 1 => Just("+".to_owned())], 0..6),
        any::<bool>(),
    )
        .prop_map(|(mut v, hash)| {
            if hash || v.is_empty() {
                v.push("#".to_owned());
            }
            v.join("/")
        })
}

proptest! {
    #[test]
    fn matcher_agrees_with_the_reference(f in filter(), t in topic()) {
        prop_assert_eq!(filter_matches(&f, &t), reference_matches(&levels(&f), &levels(&t)));
    }

    #[test]
    fn covers_is_sound(p in filter(), f in filter(), t in topic()) {
        // If p covers f, no topic matched by f escapes p.
        if filter_covers(&p, &f) && filter_matches(&f, &t) {
            prop_assert!(filter_matches(&p, &t), "{} covers {} but not {}", p, f, t);
        }
    }

    #[test]
    fn covering_a_concrete_topic_is_matching_it(p in filter(), t in topic()) {
        prop_assert_eq!(filter_covers(&p, &t), filter_matches(&p, &t));
    }

    #[test]
    fn device_filters_never_reach_another_device(f in filter(), t in topic()) {
        let policy = TopicPolicy::device("dev-a").unwrap();
        if policy.may_subscribe(&f) && filter_matches(&f, &t) {
            prop_assert!(t.starts_with("dev/dev-a/cmd") || t.starts_with("dev/dev-a/down"), "{} reaches {}", f, t);
        }
        if policy.may_publish(&t) {
            prop_assert!(t.starts_with("dev/dev-a/"));
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,40}", t in "[a-z+#/$.]{0,20}") {
        let policy = TopicPolicy::device("dev-a").unwrap();
        let _ = policy.may_subscribe(&s);
        let _ = policy.may_publish(&s);
        let _ = policy.may_subscribe(&t);
        let _ = filter_covers(&t, &s);
        let _ = Identity::from_common_name(&s);
    }
}
