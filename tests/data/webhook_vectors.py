#!/usr/bin/env python3
"""Signature vectors for nexhealth-api's webhook receiver, computed with Python's
own hmac, hashlib and base64 (an implementation independent of the Rust one).

The scheme (see nexhealth-api's `webhooks::signature` rustdoc for its sources):
HMAC-SHA256, keyed with the endpoint's secret_key (UTF-8), over
"{timestamp}.{base64(raw body)}", hex digest in the `signature` header.

    python3 tests/data/webhook_vectors.py > tests/data/webhook-vectors.json
"""
import base64
import hashlib
import hmac
import json

CASES = [
    ("NArWk7gdI96Bdn", "2026-08-14T10:00:00Z", b'{"event_name":"sync_status_read_change","data":{}}'),
    ("s3cret", "2026-01-01T00:00:00.000Z", b"{}"),
    ("k\xc3\xa9y-with-utf8".encode("latin-1").decode("utf-8"), "2026-11-24T17:48:06+00:00", b"\xff\xfe\x00binary, not UTF-8"),
    ("secret", "1700000000", b""),
]

vectors = []
for secret, timestamp, body in CASES:
    message = timestamp.encode() + b"." + base64.b64encode(body)
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    vectors.append({
        "secret": secret,
        "timestamp": timestamp,
        "body_base64": base64.b64encode(body).decode("ascii"),
        "signature_hex": digest.hex(),
        "signature_base64": base64.b64encode(digest).decode("ascii"),
    })
print(json.dumps(vectors, indent=1))
