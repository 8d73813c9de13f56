//! Eclipse Mosquitto: the reference broker (benchmarks) and its command-line clients
//! (`mosquitto_pub`, `mosquitto_sub`: a second MQTT client stack against our broker).

/// How to install the broker.
pub const INSTALL_BROKER: &str = "apt-get install -y mosquitto";
/// How to install the clients.
pub const INSTALL_CLIENTS: &str = "apt-get install -y mosquitto-clients";
/// Where Debian puts the broker.
pub const BROKER_PATHS: [&str; 2] = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"];

/// Fails the test unless the `mosquitto` broker is installed.
#[track_caller]
pub fn require_broker() {
    super::require_file("`mosquitto`", &BROKER_PATHS, INSTALL_BROKER);
}

/// Fails the test unless `mosquitto_pub` and `mosquitto_sub` are on the `PATH`.
#[track_caller]
pub fn require_clients() {
    super::require_tool("mosquitto_pub", INSTALL_CLIENTS);
    super::require_tool("mosquitto_sub", INSTALL_CLIENTS);
}

/// The arguments of one QoS 1 message on `topic` for `mosquitto_pub`.
pub fn qos1_message(topic: &str, payload: &str) -> Vec<String> {
    ["-q", "1", "-t", topic, "-m", payload]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// Runs `mosquitto_pub` with `args` (at most 15 s): (exit success, stdout+stderr).
pub async fn publish(args: &[String]) -> (bool, String) {
    require_clients();
    super::run("mosquitto_pub", args, std::time::Duration::from_secs(15)).await
}
