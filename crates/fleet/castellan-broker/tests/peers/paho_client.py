"""One MQTT session with paho-mqtt 2.1 over mutual TLS, driven by a JSON scenario on argv[1];
prints one JSON line with what happened. Used by tests/paho.rs.

Scenario keys: host, port, ca, cert (optional), key (optional), client_id, version ("311"|"5"),
subscribe (list of filters), publish (list of [topic, payload]), wait (seconds to collect messages).
"""

import json
import ssl
import sys
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def main():
    sc = json.loads(sys.argv[1])
    proto = mqtt.MQTTv5 if sc.get("version") == "5" else mqtt.MQTTv311
    result = {"connect": None, "suback": None, "published": [], "received": [], "error": None}
    connected = threading.Event()
    subacked = threading.Event()
    published = set()
    lock = threading.Lock()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=sc["client_id"], protocol=proto)
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=sc["ca"])
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if sc.get("cert"):
        ctx.load_cert_chain(sc["cert"], sc["key"])
    client.tls_set_context(ctx)

    def on_connect(c, userdata, flags, reason_code, properties):
        result["connect"] = reason_code.value
        connected.set()

    def on_subscribe(c, userdata, mid, reason_codes, properties):
        result["suback"] = [rc.value for rc in reason_codes]
        subacked.set()

    def on_publish(c, userdata, mid, reason_code, properties):
        with lock:
            published.add(mid)

    def on_message(c, userdata, msg):
        with lock:
            result["received"].append([msg.topic, msg.payload.decode("utf-8", "replace")])

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_publish = on_publish
    client.on_message = on_message
    try:
        client.connect(sc["host"], sc["port"], keepalive=30)
    except Exception as e:  # TLS refusal surfaces here
        result["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(result))
        return
    client.loop_start()
    try:
        if not connected.wait(10):
            result["error"] = "no CONNACK"
        elif result["connect"] == 0:
            if sc.get("subscribe"):
                client.subscribe([(f, 1) for f in sc["subscribe"]])
                if not subacked.wait(10):
                    result["error"] = "no SUBACK"
            for topic, payload in sc.get("publish", []):
                info = client.publish(topic, payload, qos=1)
                deadline = time.time() + 5
                while time.time() < deadline:
                    with lock:
                        if info.mid in published:
                            break
                    if not client.is_connected():
                        break
                    time.sleep(0.02)
                with lock:
                    result["published"].append(info.mid in published)
            time.sleep(sc.get("wait", 0))
    except Exception as e:
        result["error"] = "%s: %s" % (type(e).__name__, e)
    finally:
        client.disconnect()
        client.loop_stop()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
