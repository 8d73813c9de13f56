#!/usr/bin/env python3
"""Build and sign a PSA attestation token (RFC 9783 claims with cbor2, COSE_Sign1 ES256 with
pycose) and write it to a file: the peer side of castellan-attest's interop tests.

Usage: make_token.py OUT_FILE D_HEX X_HEX Y_HEX NONCE_HEX
"""
import sys

import cbor2
from pycose.algorithms import Es256
from pycose.headers import Algorithm
from pycose.keys import EC2Key
from pycose.keys.curves import P256
from pycose.messages import Sign1Message


def main():
    out_file, d_hex, x_hex, y_hex, nonce_hex = sys.argv[1:6]
    claims = {
        265: "tag:psacertified.org,2023:psa#tfm",
        10: bytes.fromhex(nonce_hex),
        256: b"\x01" + bytes([0x77] * 32),
        2396: bytes([0xcc] * 32),
        2394: 0x7FFFFFFF,
        2395: 0x3001,
        268: bytes([0xbe] * 16),
        2398: "1234567890123-12345",
        2399: [
            {1: "BL", 2: bytes([0xb1] * 32), 4: "0.9.1+3", 5: bytes([0x51] * 32), 6: "sha-256"},
            {1: "PRoT", 2: bytes([0xb2] * 48), 5: bytes([0x52] * 48), 6: "sha-384"},
        ],
        2400: "https://veraison.example/psa",
    }
    key = EC2Key(crv=P256, x=bytes.fromhex(x_hex), y=bytes.fromhex(y_hex), d=bytes.fromhex(d_hex))
    msg = Sign1Message(phdr={Algorithm: Es256}, payload=cbor2.dumps(claims))
    msg.key = key
    with open(out_file, "wb") as f:
        f.write(msg.encode())


if __name__ == "__main__":
    main()
