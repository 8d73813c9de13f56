//! paho-mqtt 2.x, the Eclipse Python MQTT client: a second client stack (Python's ssl module,
//! MQTT 5 and 3.1.1) the broker and server tests drive through scripts.

/// How to install it (the version `cargo xtask deps` pins).
pub const INSTALL: &str = "pip install paho-mqtt==2.1.0";

/// Fails the test unless `python3` imports paho-mqtt 2.x.
#[track_caller]
pub fn require() {
    super::require_tool("python3", "apt-get install -y python3");
    super::require_python_check(
        "paho-mqtt 2.x",
        "import paho.mqtt.client, paho.mqtt; assert paho.mqtt.__version__.startswith('2.')",
        INSTALL,
    );
}
