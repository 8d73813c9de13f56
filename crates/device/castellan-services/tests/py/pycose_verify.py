#!/usr/bin/env python3
"""Verify a device's PSA attestation token (COSE_Sign1, ES256) with pycose.

Usage: pycose_verify.py TOKEN_FILE PUBLIC_KEY_HEX   (SEC1 uncompressed, 04 || x || y)
Prints `nonce=<hex>`, `lifecycle=<hex>` and `instance_id=<hex>` and exits 0 when the signature
verifies; exits 1 with the reason on stderr otherwise. The peer of castellan-services'
interop test: pycose checks the signature, not Castellan.
"""
import sys

import cbor2
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message


def main():
    token_file, public_hex = sys.argv[1:3]
    public = bytes.fromhex(public_hex)
    if len(public) != 65 or public[0] != 4:
        sys.exit("public key must be SEC1 uncompressed (65 bytes)")
    with open(token_file, "rb") as f:
        obj = cbor2.loads(f.read())
    if not isinstance(obj, cbor2.CBORTag) or obj.tag != 18:
        sys.exit("not a tagged COSE_Sign1")
    items = list(obj.value)
    items[1] = dict(items[1])
    msg = Sign1Message.from_cose_obj(items, True)
    msg.key = EC2Key(crv=P256, x=public[1:33], y=public[33:65])
    if not msg.verify_signature():
        sys.exit("signature invalid")
    claims = cbor2.loads(msg.payload)
    print(f"nonce={claims[10].hex()}")
    print(f"lifecycle={claims[2395]:#06x}")
    print(f"instance_id={claims[256].hex()}")


if __name__ == "__main__":
    main()
