//! Castellan embedded MQTT broker.
