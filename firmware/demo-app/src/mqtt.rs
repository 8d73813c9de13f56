//! MQTT 5 over the device's own TLS 1.3 to the fleet's broker (command
//! `mqtt <port> <device-id>`): attested onboarding, then operation with the LDevID, as `docs/fleet-protocol.md` lays it out,
//! with the IDevID the factory provisioned in trusted storage.
//!
//! ```text
//!  TLS (crate::tls::connect: CA and IDevID from trusted storage, key in the secure partition)
//!  CONNECT    client id = device id (the IDevID's CN), clean start, keep-alive 60 s
//!  SUBSCRIBE  dev/<id>/down/onboard/#              QoS 1
//!  PUBLISH    dev/<id>/up/onboard/hello   {}       QoS 1   (the onboarding request)
//!  ◀ PUBLISH  dev/<id>/down/onboard/challenge {"nonce": "<hex>"}   printed
//!  PUBLISH    dev/<id>/up/onboard/evidence {"token", "csr"}  castellan-fleet-client, over
//!             the gate: token and LDevID key's CSR made in the secure partition
//!  ◀ PUBLISH  dev/<id>/down/onboard/result {"accepted": true, "ldevid_pem"}
//!             → the LDevID (which must certify that key) into trusted storage
//!  PUBLISH    dev/<id>/telemetry          {}       QoS 1   must be refused: an IDevID
//!                                                          session may use onboarding topics only
//!  DISCONNECT; a new TLS session with the LDevID (trusted storage; key 0x720 in the secure
//!  partition), CONNECT again
//!  SUBSCRIBE  dev/<id>/cmd/#, dev/<id>/down/update/#, dev/<id>/down/lifecycle/#   QoS 1
//!  PUBLISH    dev/<id>/status    {"online":true}                 QoS 1   PUBACK success
//!  PUBLISH    dev/<id>/telemetry {"uptime_s", "boot_count", …}   QoS 1   PUBACK success
//! ```
//!
//! The client is `rust-mqtt` (MIT OR Apache-2.0, `no_std`, no allocator: its bump buffer
//! holds what a received packet borrows) over embedded-tls's connection, which implements
//! `embedded-io-async` 0.7 as rust-mqtt expects.

use core::num::NonZero;

use castellan_gate::client::Veneers;
use castellan_gate::println;
use embassy_net::Stack;
use embassy_time::{Duration, Instant, Timer, with_timeout};
use rust_mqtt::Bytes;
use rust_mqtt::buffer::BumpBuffer;
use rust_mqtt::client::Client;
use rust_mqtt::client::event::Event;
use rust_mqtt::client::options::{
    ConnectOptions, DisconnectOptions, PublicationOptions, SubscriptionOptions, TopicReference,
};
use rust_mqtt::config::KeepAlive;
use rust_mqtt::types::{MqttString, ReasonCode, TopicFilter, TopicName};

use castellan_fleet_client::{Action, ONLINE, Onboarding, Operation, TELEMETRY_MAX, Telemetry};

use crate::tls::{self, Buffers, Credentials, Session};
use crate::trust::CERT_MAX;

/// Longest topic built here (`dev/<64-char id>/down/onboard/challenge`).
const TOPIC_MAX: usize = 96;
/// How long the broker and the service have to answer each step.
const STEP: Duration = Duration::from_secs(30);

/// A topic string in a fixed buffer.
struct Topic {
    buf: [u8; TOPIC_MAX],
    len: usize,
}

impl Topic {
    /// `dev/<id>/<rest>`; `None` when it does not fit.
    fn of(id: &str, rest: &str) -> Option<Topic> {
        let mut t = Topic {
            buf: [0; TOPIC_MAX],
            len: 0,
        };
        for part in ["dev/", id, "/", rest] {
            let end = t.len + part.len();
            t.buf.get_mut(t.len..end)?.copy_from_slice(part.as_bytes());
            t.len = end;
        }
        Some(t)
    }

    fn as_str(&self) -> &str {
        core::str::from_utf8(self.buf.get(..self.len).unwrap_or(&[])).unwrap_or("")
    }
}

/// The nonce of a challenge body (`{"nonce": "<hex>"}`): the hex string, checked to be
/// 64, 96 or 128 hex digits (32, 48 or 64 bytes, the nonce lengths of the protocol).
fn nonce_of(body: &[u8]) -> Option<&str> {
    let text = core::str::from_utf8(body).ok()?;
    let at = text.find("\"nonce\"")? + "\"nonce\"".len();
    let rest = text.get(at..)?.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"')?;
    let hex = rest.get(..rest.find('"')?)?;
    (matches!(hex.len(), 64 | 96 | 128) && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then_some(hex)
}

type Mqtt<'a, 'c> = Client<'a, 'c, Session<'a>, BumpBuffer<'c>, 1, 1, 1, 1, 0, 0, 0>;

/// Polls until a PUBLISH on `topic` arrives (its body copied into `out`), printing the acks
/// on the way; `None` on timeout, error or disconnect.
async fn wait_publish(c: &mut Mqtt<'_, '_>, topic: &str, out: &mut [u8]) -> Option<usize> {
    for _ in 0..8 {
        match with_timeout(STEP, c.poll()).await {
            Ok(Ok(Event::Publish(p))) => {
                let name = p.topic.name().map(|n| n.as_ref().as_str()).unwrap_or("");
                if name == topic {
                    let body: &[u8] = &p.message;
                    let Some(dst) = out.get_mut(..body.len()) else {
                        println!(
                            "[app] mqtt: a message of {} bytes on {topic}: too large",
                            body.len()
                        );
                        return None;
                    };
                    dst.copy_from_slice(body);
                    return Some(body.len());
                }
                println!("[app] mqtt: message on {name} (not awaited)");
            }
            Ok(Ok(Event::PublishAcknowledged(a))) => {
                println!(
                    "[app] mqtt: PUBACK, reason code {:#04x}",
                    a.reason_code.value()
                );
            }
            Ok(Ok(other)) => println!("[app] mqtt: {}", name_of(&other)),
            Ok(Err(_)) => {
                println!("[app] mqtt: receive failed (connection closed or protocol error)");
                return None;
            }
            Err(_) => {
                println!("[app] mqtt: nothing on {topic} within {} s", STEP.as_secs());
                return None;
            }
        }
    }
    None
}

/// The rest of onboarding through `castellan-fleet-client`: the challenge answered with the
/// evidence it builds through the gate, then the result: the LDevID stored, or the refusal.
async fn onboard(
    c: &mut Mqtt<'_, '_>,
    ob: &mut Onboarding,
    (challenge, result_topic): (&str, &str),
    body: &[u8],
    result: &mut [u8; 4096],
) -> bool {
    match ob.on_message(&mut Veneers, challenge, body) {
        Ok(Action::Publish { topic, payload }) => {
            let (Ok(name), len) = (MqttString::from_str(topic), payload.len()) else {
                return false;
            };
            let Some(name) = TopicName::new(name) else {
                return false;
            };
            let opts = PublicationOptions::new(TopicReference::Name(name)).at_least_once();
            if c.publish(&opts, Bytes::from(payload)).await.is_err() {
                println!("[app] mqtt: the evidence was not sent");
                return false;
            }
            println!(
                "[app] mqtt: evidence published ({len} bytes: attestation token and CSR for the LDevID key, both from the secure partition)"
            );
        }
        Ok(_) => {
            println!("[app] mqtt: the fleet client did not answer the challenge");
            return false;
        }
        Err(e) => {
            println!("[app] mqtt: onboarding: {e}");
            return false;
        }
    }
    let Some(n) = wait_publish(c, result_topic, result).await else {
        return false;
    };
    match ob.on_message(&mut Veneers, result_topic, &result[..n]) {
        Ok(Action::Onboarded { len }) => {
            println!(
                "[app] mqtt: onboarded: LDevID ({len} bytes) certifies the secure partition's key, stored in trusted storage"
            );
            true
        }
        Ok(Action::Refused { reason, code }) => {
            println!("[app] mqtt: onboarding refused: {reason} ({code})");
            false
        }
        Ok(_) => false,
        Err(e) => {
            println!("[app] mqtt: onboarding result: {e}");
            false
        }
    }
}

fn name_of<const S: usize, const U: usize>(e: &Event<'_, S, U>) -> &'static str {
    match e {
        Event::Pingresp => "PINGRESP",
        Event::Suback(_) => "SUBACK",
        Event::Unsuback(_) => "UNSUBACK",
        Event::PublishRejected(_) => "publication rejected",
        Event::PublishAborted(_) => "publication aborted",
        Event::PublishReceived(_) => "PUBREC",
        Event::PublishReleased(_) => "PUBREL",
        Event::PublishComplete(_) => "PUBCOMP",
        Event::Duplicate(_) => "duplicate PUBLISH",
        Event::Auth(_) => "AUTH",
        _ => "another packet",
    }
}

/// CONNECT with `client_id` over `session` (clean start, keep-alive 60 s); false once the
/// failure is printed.
async fn mqtt_connect<'a>(
    c: &mut Mqtt<'a, '_>,
    session: Session<'a>,
    id: &str,
    identity: &str,
) -> bool {
    let Ok(client_id) = MqttString::from_str(id) else {
        return false;
    };
    let options = ConnectOptions::new()
        .clean_start()
        .keep_alive(KeepAlive::Seconds(NonZero::<u16>::MIN.saturating_add(59)));
    match with_timeout(STEP, c.connect(session, &options, Some(client_id))).await {
        Ok(Ok(_)) => {
            println!("[app] mqtt: connected to the broker as {id} (MQTT 5, {identity})");
            true
        }
        Ok(Err(_)) => {
            println!("[app] mqtt: CONNECT refused (or the connection closed)");
            false
        }
        Err(_) => {
            println!("[app] mqtt: no CONNACK within {} s", STEP.as_secs());
            false
        }
    }
}

/// SUBSCRIBE to `filter` at QoS 1 and wait for its SUBACK; false once the failure is printed.
async fn subscribe(c: &mut Mqtt<'_, '_>, filter: &str) -> bool {
    let Some(f) = MqttString::from_str(filter).ok().and_then(TopicFilter::new) else {
        return false;
    };
    if c.subscribe(f, &SubscriptionOptions::new().at_least_once())
        .await
        .is_err()
    {
        println!("[app] mqtt: SUBSCRIBE failed");
        return false;
    }
    match with_timeout(STEP, c.poll()).await {
        Ok(Ok(Event::Suback(s))) if s.reason_code == ReasonCode::GrantedQoS1 => {
            println!("[app] mqtt: subscribed to {filter}");
            true
        }
        Ok(Ok(Event::Suback(s))) => {
            println!(
                "[app] mqtt: subscription to {filter} refused, reason code {:#04x}",
                s.reason_code.value()
            );
            false
        }
        _ => {
            println!("[app] mqtt: no SUBACK");
            false
        }
    }
}

/// How the broker answered a QoS 1 publication.
enum Answer {
    /// PUBACK with reason code Success.
    Accepted,
    /// PUBACK with an error reason code, or the connection closed: refused.
    Refused,
    /// Nothing, or another packet.
    Unclear,
}

/// PUBLISH `payload` on `topic` at QoS 1 and wait for the broker's answer.
async fn publish(c: &mut Mqtt<'_, '_>, topic: &str, payload: &[u8]) -> Answer {
    let Some(name) = MqttString::from_str(topic).ok().and_then(TopicName::new) else {
        return Answer::Unclear;
    };
    let opts = PublicationOptions::new(TopicReference::Name(name)).at_least_once();
    if c.publish(&opts, Bytes::from(payload)).await.is_err() {
        println!("[app] mqtt: PUBLISH on {topic} failed at send");
        return Answer::Refused;
    }
    match with_timeout(STEP, c.poll()).await {
        Ok(Ok(Event::PublishAcknowledged(a))) if a.reason_code == ReasonCode::Success => {
            Answer::Accepted
        }
        Ok(Ok(Event::PublishAcknowledged(a))) => {
            println!(
                "[app] mqtt: PUBACK on {topic}, reason code {:#04x}",
                a.reason_code.value()
            );
            Answer::Refused
        }
        Ok(Ok(other)) => {
            println!("[app] mqtt: {topic} answered with {}", name_of(&other));
            Answer::Unclear
        }
        Ok(Err(_)) => {
            println!("[app] mqtt: the broker closed the connection after PUBLISH on {topic}");
            Answer::Refused
        }
        Err(_) => {
            println!("[app] mqtt: no answer to the PUBLISH on {topic}");
            Answer::Unclear
        }
    }
}

/// `mqtt <port> <device-id>`: onboarding with the IDevID (and the refused telemetry that
/// shows its limits), then a second session with the LDevID: operational subscriptions,
/// status and telemetry the fleet accepts. True when every step went as it must.
pub async fn run(stack: Stack<'static>, port: u16, id: &str, firmware: [u32; 3]) -> bool {
    if !castellan_fleet_client::valid_id(id) {
        println!("[app] mqtt: the device id is not [A-Za-z0-9._-]{{1,64}}");
        return false;
    }
    let mut ca = [0u8; CERT_MAX];
    let mut cert = [0u8; CERT_MAX];
    let (ca_len, cert_len) = match tls::provisioned(&mut ca, &mut cert) {
        Ok(l) => l,
        Err(e) => {
            println!("[app] mqtt: no CA and IDevID: {e}");
            return false;
        }
    };
    let (mut rx, mut tx) = ([0u8; 2048], [0u8; 2048]);
    let Some(records) = tls::record_buffers() else {
        return false;
    };
    let mut bufs = Buffers {
        socket: (&mut rx, &mut tx),
        records,
    };
    // Received packets borrow from it and it is not reset within a session: room for the
    // whole exchange (the onboarding result, with two certificates in PEM, is the largest).
    let mut mem = [0u8; 12 * 1024];
    let idevid = Credentials {
        ca: &ca[..ca_len],
        cert: &cert[..cert_len],
        key_id: tls::TLS_KEY_ID,
    };
    if !onboarding_session(stack, port, bufs.reborrow(), idevid, &mut mem, id).await {
        return false;
    }
    let mut ldevid = [0u8; CERT_MAX];
    let n = match castellan_fleet_client::stored_ldevid(&mut Veneers, &mut ldevid) {
        Ok(n) => n,
        Err(e) => {
            println!("[app] mqtt: no LDevID in trusted storage: {e}");
            return false;
        }
    };
    let creds = Credentials {
        ca: &ca[..ca_len],
        cert: &ldevid[..n],
        key_id: castellan_fleet_client::LDEVID_KEY_ID,
    };
    // QEMU's forward reconnects to the broker a second after the first connection closed:
    // the device waits, and tries again (a few times) while the connection is not there yet.
    for _ in 0..4 {
        Timer::after(Duration::from_secs(2)).await;
        let session = (stack, port, bufs.reborrow(), creds);
        if let Some(ok) = operational_session(session, &mut mem, id, firmware).await {
            return ok;
        }
    }
    false
}

/// The IDevID session: onboarding, then a publication outside the IDevID's topics that the
/// broker must refuse. True when both went as they must.
async fn onboarding_session(
    stack: Stack<'static>,
    port: u16,
    bufs: Buffers<'_>,
    creds: Credentials<'_>,
    mem: &mut [u8],
    id: &str,
) -> bool {
    let (Some(hello), Some(challenge), Some(result), Some(telemetry)) = (
        Topic::of(id, "up/onboard/hello"),
        Topic::of(id, "down/onboard/challenge"),
        Topic::of(id, "down/onboard/result"),
        Topic::of(id, "telemetry"),
    ) else {
        return false;
    };
    let mut ob = match Onboarding::new(id, crate::sha256) {
        Ok(o) => o,
        Err(e) => {
            println!("[app] mqtt: {e}");
            return false;
        }
    };
    let Some(session) = tls::connect(stack, port, bufs, creds).await else {
        return false;
    };
    let mut buffer = BumpBuffer::new(mem);
    let mut c: Mqtt<'_, '_> = Client::new(&mut buffer);
    if !mqtt_connect(&mut c, session, id, "IDevID").await
        || !subscribe(&mut c, ob.subscription()).await
    {
        return false;
    }
    // The onboarding request as the fleet client has it (`{}` on the hello topic).
    if !matches!(ob.start(), Action::Publish { topic, payload: b"{}" } if topic == hello.as_str()) {
        return false;
    }
    let Some(hello_t) = MqttString::from_str(hello.as_str())
        .ok()
        .and_then(TopicName::new)
    else {
        return false;
    };
    let hello_opts = PublicationOptions::new(TopicReference::Name(hello_t)).at_least_once();
    if c.publish(&hello_opts, Bytes::from("{}")).await.is_err() {
        println!("[app] mqtt: PUBLISH failed");
        return false;
    }
    println!(
        "[app] mqtt: onboarding request published on {}",
        hello.as_str()
    );
    let mut body = [0u8; 4096];
    let Some(n) = wait_publish(&mut c, challenge.as_str(), &mut body).await else {
        return false;
    };
    let Some(nonce) = nonce_of(&body[..n]) else {
        println!("[app] mqtt: the challenge carries no valid nonce");
        return false;
    };
    println!(
        "[app] mqtt: challenge from the fleet on {}: nonce {nonce}",
        challenge.as_str()
    );
    let mut body2 = [0u8; 4096];
    let topics = (challenge.as_str(), result.as_str());
    if !onboard(&mut c, &mut ob, topics, &body[..n], &mut body2).await {
        return false;
    }
    // attack_idevid_publishes_telemetry: the IDevID may use onboarding topics only.
    let refused = match publish(&mut c, telemetry.as_str(), b"{}").await {
        Answer::Refused => {
            println!("[app] mqtt: telemetry with the IDevID refused by the broker");
            true
        }
        Answer::Accepted => {
            println!("[app] mqtt: telemetry with the IDevID was accepted");
            false
        }
        Answer::Unclear => false,
    };
    let _ = c.disconnect(&DisconnectOptions::new()).await;
    refused
}

/// The LDevID session: TLS with the LDevID (its key in the secure partition), the operational
/// subscriptions, the status and one telemetry message, each acknowledged by the broker.
/// `None` when the TLS session could not be opened (the caller may try again).
async fn operational_session(
    (stack, port, bufs, creds): (Stack<'static>, u16, Buffers<'_>, Credentials<'_>),
    mem: &mut [u8],
    id: &str,
    firmware: [u32; 3],
) -> Option<bool> {
    let op = match Operation::new(id) {
        Ok(o) => o,
        Err(e) => {
            println!("[app] mqtt: {e}");
            return Some(false);
        }
    };
    let session = tls::connect(stack, port, bufs, creds).await?;
    Some(operate(session, &op, mem, id, firmware).await)
}

/// The LDevID session once TLS is up.
async fn operate<'a>(
    session: Session<'a>,
    op: &Operation,
    mem: &mut [u8],
    id: &str,
    firmware: [u32; 3],
) -> bool {
    let mut buffer = BumpBuffer::new(mem);
    let mut c: Mqtt<'_, '_> = Client::new(&mut buffer);
    if !mqtt_connect(&mut c, session, id, "LDevID").await {
        return false;
    }
    for filter in op.subscriptions() {
        if !subscribe(&mut c, filter).await {
            return false;
        }
    }
    if !matches!(
        publish(&mut c, op.status_topic(), ONLINE).await,
        Answer::Accepted
    ) {
        return false;
    }
    let report = Telemetry {
        uptime_s: Instant::now().as_secs(),
        boot_count: crate::boot_count_stored(),
        firmware,
        messages_sent: 1,
    };
    let mut out = [0u8; TELEMETRY_MAX];
    let Ok(n) = report.encode(&mut out) else {
        return false;
    };
    let ok = matches!(
        publish(&mut c, op.telemetry_topic(), &out[..n]).await,
        Answer::Accepted
    );
    if ok {
        println!(
            "[app] mqtt: telemetry with the LDevID accepted by the broker: {}",
            core::str::from_utf8(&out[..n]).unwrap_or("")
        );
    }
    let _ = c.disconnect(&DisconnectOptions::new()).await;
    ok
}
