#!/usr/bin/env python3
"""Reference implementation of Penumbra traffic splitting (HASH_VERSION 1), for notebooks.

Spec: pipeline/traffic-split/README.md. Standard library only.

    python3 reference.py [cases.json]   # checks every golden case, exit 1 on a mismatch
    python3 reference.py --hash SALT USERID   # prints murmur3 and bucket

Control cohorts (issue 11) are implemented: a shadow whose `control` is not false owns twice its
width, odd offsets from its anchor being its control (variant "control", plus the shadow's name).

Semver rules: only primitive comparators (`>=1.2.0 <2.0.0-0 || =3.0.0`) are implemented;
cases whose range uses ^, ~, x-ranges or hyphen ranges have their bucket checked but their
variant/reason skipped (counted in the summary).
"""
import json
import re
import sys

BUCKETS = 10000
HASH_VERSION = 1


def utf8(s: str) -> bytes:
    # WHATWG encoding: lone surrogates (json.loads keeps them) become U+FFFD.
    return "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in s).encode("utf-8")


def murmur3_32(data: bytes, seed: int = 0) -> int:
    c1, c2, m = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF
    h = seed
    n4 = len(data) & ~3
    for i in range(0, n4, 4):
        k = int.from_bytes(data[i:i + 4], "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
        h = ((h << 13) | (h >> 19)) & m
        h = (h * 5 + 0xE6546B64) & m
    tail = data[n4:]
    if tail:
        k = int.from_bytes(tail, "little")
        k = (k * c1) & m
        k = ((k << 15) | (k >> 17)) & m
        k = (k * c2) & m
        h ^= k
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & m
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & m
    h ^= h >> 16
    return h


def bucket(salt: str, user_id: str) -> int:
    return murmur3_32(utf8(salt + ":" + user_id)) % BUCKETS


# --- semver (primitive comparators, includePrerelease semantics) -------------------------

_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][a-zA-Z0-9-]*)"
_VERSION = re.compile(
    rf"^v?({_NUM})\.({_NUM})\.({_NUM})(?:-({_PRE_ID}(?:\.{_PRE_ID})*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$"
)


class Unsupported(Exception):
    pass


def parse_version(v: str):
    m = _VERSION.match(v.strip())
    if not m or len(v) > 256:
        return None
    pre = tuple(int(p) if p.isdigit() else p for p in m.group(4).split(".")) if m.group(4) else ()
    return (int(m.group(1)), int(m.group(2)), int(m.group(3))), pre


def compare(a, b) -> int:
    if a[0] != b[0]:
        return -1 if a[0] < b[0] else 1
    pa, pb = a[1], b[1]
    if not pa or not pb:
        return (0 if not pa and not pb else (1 if not pa else -1))
    for x, y in zip(pa, pb):
        if x == y:
            continue
        if isinstance(x, int) and isinstance(y, int):
            return -1 if x < y else 1
        if isinstance(x, int):
            return -1
        if isinstance(y, int):
            return 1
        return -1 if x < y else 1
    return (len(pa) > len(pb)) - (len(pa) < len(pb))


_COMPARATOR = re.compile(r"^(<=|>=|<|>|=)?\s*(v?\S+)$")


def satisfies(version: str, rng: str) -> bool:
    v = parse_version(version)
    for alternative in rng.split("||"):
        parts = alternative.split()
        ok = True
        for part in parts:
            m = _COMPARATOR.match(part)
            target = parse_version(m.group(2)) if m else None
            if target is None or re.search(r"[\^~xX*]", part):
                raise Unsupported(rng)
            op = m.group(1) or "="
            if v is None:
                ok = False
                continue
            c = compare(v, target)
            ok = ok and {"<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0, "=": c == 0}[op]
        if parts and ok and v is not None:
            return True
    return False


# --- rules and decision ------------------------------------------------------------------

BUILTIN = ("userId", "deviceType", "country", "userGroup", "appVersion")


def attribute(user: dict, name: str):
    v = user.get(name) if name in BUILTIN else (user.get("attributes") or {}).get(name)
    return v if isinstance(v, str) and v != "" else None


def segment_rule_holds(user: dict, rule: dict, segments) -> bool:
    """segments: {segment id: [member user ids]} of the known segments, or None (none known).
    A segment absent from the map is unknown: like a missing attribute, it makes neither op hold."""
    uid = user.get("userId")
    if segments is None or not isinstance(uid, str) or uid == "":
        return False
    def membership(sid):
        return -1 if sid not in segments else (1 if uid in segments[sid] else 0)
    if rule["op"] == "in":
        return any(membership(s) == 1 for s in rule["values"])
    return all(membership(s) == 0 for s in rule["values"])


def rule_holds(user: dict, rule: dict, segments=None) -> bool:
    if rule["attribute"] == "segment":
        return segment_rule_holds(user, rule, segments)
    v = attribute(user, rule["attribute"])
    if v is None:  # missing never matches, negative rules included
        return False
    op = rule["op"]
    if op in ("in", "not_in"):
        return (v in rule["values"]) == (op == "in")
    if op in ("equals", "not_equals"):
        value = rule.get("value", (rule.get("values") or [None])[0])
        return (v == value) == (op == "equals")
    if op == "semver":
        return satisfies(v, rule["range"])
    if op == "regex":
        return len(v) <= 256 and re.search(rule["pattern"], v) is not None
    raise ValueError(op)


def eligible(user: dict, traffic: dict, segments=None) -> bool:
    rules = traffic["rules"]
    if not rules:
        return True
    results = (rule_holds(user, r, segments) for r in rules)
    return all(results) if traffic["match"] == "all" else any(results)


def layout(shares_bp, holdout_bp, controls=None):
    """[lo, hi) of each shadow in the assignment-bucket space (2w wide with a control cohort)."""
    n = len(shares_bp)
    controls = controls or [False] * n
    widths = [(0 if holdout_bp >= BUCKETS else s * BUCKETS // (BUCKETS - holdout_bp)) * (2 if c else 1)
              for s, c in zip(shares_bp, controls)]
    ranges = []
    for i, w in enumerate(widths):
        first = i - i % 2
        lo = first * BUCKETS // n
        hi = min(first + 2, n) * BUCKETS // n
        ranges.append((hi - w, hi) if i % 2 == 1 else (lo, lo + w))
    return ranges


def js_round(x: float) -> int:
    # Math.round: halves go up (Python's round() goes to even).
    import math
    return math.floor(x + 0.5)


def decide(profile, user, segments=None):
    """-> (variant, bucket, reason[, controlOf]); profile=None means no profile. Assumes a valid profile.

    Control cohorts: a shadow with `control` (absent = true) owns 2w buckets from its anchor; the
    offset d from the anchor (b - lo growing up, hi - 1 - b growing down) decides: even -> the
    shadow, odd -> ("control", b, "control", <shadow name>).
    segments: the case's {segment id: [members]} map (None: no segment known).
    """
    if profile is None:
        return ("original", -1, "no_profile")
    if profile["state"] == "rolled_back":
        return ("original", -1, "rolled_back")
    shadows = profile["shadows"]
    elig = [eligible(user, s["traffic"], segments) for s in shadows]
    if not any(elig):
        return ("original", -1, "no_match")
    seed = profile.get("seed") or profile["itemId"]
    b = bucket(seed, user["userId"])
    holdout_bp = js_round((profile.get("holdout") or 0) * 100)
    if holdout_bp > 0 and bucket(seed + ":holdout", user["userId"]) < holdout_bp:
        return ("original", b, "holdout")
    controls = [s.get("control", True) is not False for s in shadows]
    # A shadow rolled back on its own (pipeline/rollout) owns no buckets; nobody else moves.
    ranges = layout([0 if s.get("state") == "rolled_back" else js_round(s["traffic"]["percentage"] * 100) for s in shadows], holdout_bp, controls)
    for i, (s, ok, (lo, hi)) in enumerate(zip(shadows, elig, ranges)):
        if lo <= b < hi:
            if not ok:
                return ("original", b, "not_in_share")
            d = hi - 1 - b if i % 2 == 1 else b - lo
            if controls[i] and d % 2 == 1:
                return ("control", b, "control", s["name"])
            return (s["name"], b, "assigned")
    return ("original", b, "not_in_share")


def check(path: str) -> int:
    with open(path, encoding="utf-8") as f:
        cases = json.load(f)
    failures = skipped = 0
    for case in cases:
        exp = case["expected"]
        profile = case.get("profile")
        if exp["reason"] == "invalid_profile":
            skipped += 1  # validation lives in TypeScript; the reference assumes valid input
            continue
        try:
            got = decide(profile, case["user"], case.get("segments"))
        except Unsupported:
            skipped += 1
            if exp["bucket"] >= 0:
                seed = profile.get("seed") or profile["itemId"]
                if bucket(seed, case["user"]["userId"]) != exp["bucket"]:
                    failures += 1
                    print(f"MISMATCH bucket {case['name']}", file=sys.stderr)
            continue
        want = (exp["variant"], exp["bucket"], exp["reason"]) + ((exp["controlOf"],) if "controlOf" in exp else ())
        if got != want:
            failures += 1
            print(f"MISMATCH {case['name']}: got {got}, expected {want}", file=sys.stderr)
    controls = sum(1 for c in cases if c["expected"]["reason"] == "control")
    print(json.dumps({"cases": len(cases), "checked": len(cases) - skipped, "skipped": skipped, "failures": failures, "control": controls}))
    return 1 if failures else 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--hash":
        data = utf8(sys.argv[2] + ":" + sys.argv[3])
        print(json.dumps({"murmur3": murmur3_32(data), "bucket": murmur3_32(data) % BUCKETS}))
        sys.exit(0)
    sys.exit(check(sys.argv[1] if len(sys.argv) > 1 else __file__.rsplit("/", 1)[0] + "/cases.json"))
