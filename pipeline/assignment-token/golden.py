"""Independent reference for token.ts: builds the same HS256 compact JWS with Python's standard
library (hmac, hashlib, base64, json) and prints golden tokens. token.test.ts pins its output;
`python3 pipeline/assignment-token/golden.py` reprints it. PyJWT would verify these tokens too."""
import base64, hashlib, hmac, json

def b64url(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()

def sign(kid: str, secret: bytes, claims: dict) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    sig = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(sig)}"

SECRET = bytes(range(32))  # 00 01 … 1f
cases = [
    ("k1", {"iss": "penumbra", "sub": "u-000001", "item": "com.example.notes", "var": "checkout-v2", "pv": 3, "iat": 1764200000, "exp": 1764286400}),
    ("k1", {"iss": "penumbra", "sub": "u-000001", "item": "com.example.notes", "var": "control", "ctl": "checkout-v2", "pv": 3, "iat": 1764200000, "exp": 1764286400}),
    ("k2", {"iss": "penumbra", "sub": "üser-é", "item": "com.example.notes", "var": "original", "pv": 0, "iat": 1764200000, "exp": 1764200060}),
]
print(json.dumps([{"kid": k, "claims": c, "token": sign(k, SECRET, c)} for k, c in cases], indent=2, ensure_ascii=False))
