#!/usr/bin/env python3
"""Verify a PSA attestation token (COSE_Sign1, ES256) with pycose and print its claims as JSON.

Usage: verify_token.py TOKEN_FILE X_HEX Y_HEX
Exit 0 and one JSON object on stdout when the signature verifies; exit 1 with the reason on
stderr otherwise. Used by castellan-attest's interop tests (the peer is pycose, not Castellan).
"""
import json
import sys

import cbor2
from pycose.headers import Algorithm
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message

CLAIMS = {
    10: "nonce",
    256: "instance_id",
    265: "profile",
    268: "boot_seed",
    2394: "client_id",
    2395: "lifecycle",
    2396: "implementation_id",
    2398: "certification_reference",
    2399: "software_components",
    2400: "verification_service",
}
COMPONENT = {1: "measurement_type", 2: "measurement_value", 4: "version", 5: "signer_id",
             6: "measurement_desc"}


def plain(value):
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {COMPONENT.get(k, str(k)): plain(v) for k, v in value.items()}
    return value


def decode_sign1(token):
    """Tagged (18) or untagged COSE_Sign1. Decoded here rather than with CoseMessage.decode,
    which fails with cbor2 >= 6 (tag contents come back immutable: a tuple and a frozen map,
    where pycose 1.1 wants a list and a dict)."""
    obj = cbor2.loads(token)
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != 18:
            raise ValueError(f"CBOR tag {obj.tag} is not COSE_Sign1 (18)")
        obj = obj.value
    items = list(obj)
    if len(items) != 4:
        raise ValueError("COSE_Sign1 must be a 4-element array")
    items[1] = dict(items[1])
    return Sign1Message.from_cose_obj(items, True)


def main():
    token_file, x_hex, y_hex = sys.argv[1:4]
    with open(token_file, "rb") as f:
        token = f.read()
    msg = decode_sign1(token)
    msg.key = EC2Key(crv=P256, x=bytes.fromhex(x_hex), y=bytes.fromhex(y_hex))
    if not msg.verify_signature():
        print("signature invalid", file=sys.stderr)
        sys.exit(1)
    claims = cbor2.loads(msg.payload)
    out = {"verified": True, "alg": msg.get_attr(Algorithm).identifier}
    for key, value in claims.items():
        out[CLAIMS.get(key, str(key))] = plain(value)
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
