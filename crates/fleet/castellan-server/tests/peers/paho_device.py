"""An interactive MQTT device session with paho-mqtt 2.1 over mutual TLS, for the fleet server's
tests: one connection that subscribes and publishes as the device would, driven line by line.

argv[1]: JSON {host, port, ca, cert, key, client_id, version ("311"|"5"), subscribe: [filters]}.
stdin: one JSON command per line: {"publish": [topic, payload]} or {"quit": true}.
stdout: one JSON event per line: connected {rc}, suback {codes}, message {topic, payload,
payload_hex},
published {mid}, disconnected {rc}, error {detail}.
"""

import json
import ssl
import sys
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

lock = threading.Lock()


def emit(**event):
    with lock:
        sys.stdout.write(json.dumps(event) + "\n")
        sys.stdout.flush()


def main():
    sc = json.loads(sys.argv[1])
    proto = mqtt.MQTTv5 if sc.get("version") == "5" else mqtt.MQTTv311
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sc["client_id"], protocol=proto)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=sc["ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(sc["cert"], sc["key"])
    client.tls_set_context(ctx)

    def on_connect(c, userdata, flags, reason_code, properties):
        emit(event="connected", rc=reason_code.value)
        if reason_code.value == 0 and sc.get("subscribe"):
            c.subscribe([(f, 1) for f in sc["subscribe"]])

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        emit(event="suback", codes=[rc.value for rc in reason_codes])

    def on_publish(c, userdata, mid, reason_code, properties):
        emit(event="published", mid=mid)

    def on_message(c, userdata, msg):
        emit(event="message", topic=msg.topic, payload=msg.payload.decode("utf-8", "replace"),
             payload_hex=msg.payload.hex())

    def on_disconnect(c, userdata, flags, reason_code, properties):
        emit(event="disconnected", rc=reason_code.value)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    client.on_disconnect = on_disconnect
    try:
        client.connect(sc["host"], sc["port"], keepalive=30)
    except Exception as e:  # TLS refusals surface here
        emit(event="error", detail="%s: %s" % (type(e).__name__, e))
        return
    # No automatic reconnection: a closed session must stay visible to the test.
    client.reconnect_delay_set(min_delay=3600, max_delay=3600)
    client.loop_start()
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        if "publish" in cmd:
            topic, payload = cmd["publish"]
            info = client.publish(topic, payload, qos=1)
            emit(event="queued", mid=info.mid, rc=info.rc)
    client.disconnect()
    client.loop_stop()


if __name__ == "__main__":
    main()
