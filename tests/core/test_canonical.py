"""The canonical JSON every evidence hash covers is RFC 8785's, checked against the
examples RFC 8785 publishes (section 3.2.2's sample, 3.2.3's sorting, Appendix B)."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime

import pytest

from core.canonical import canonical
from core.ledger import seal


def test_the_rfc_sample_object_canonicalises_as_the_rfc_prints_it():
    text = ('{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
            '"string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
            '"literals": [null, true, false]}')
    assert canonical(json.loads(text)) == (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}').encode()


def test_members_are_sorted_by_their_utf16_code_units():
    text = ('{"\\u20ac": "Euro Sign", "\\r": "Carriage Return", "\\ufb33": "Hebrew Letter Dalet '
            'With Dagesh", "1": "One", "\\ud83d\\ude00": "Emoji: Grinning Face", "\\u0080": '
            '"Control", "\\u00f6": "Latin Small Letter O With Diaeresis"}')
    values = [v for v in json.loads(canonical(json.loads(text))).values()]
    assert values == ["Carriage Return", "One", "Control",
                      "Latin Small Letter O With Diaeresis", "Euro Sign",
                      "Emoji: Grinning Face", "Hebrew Letter Dalet With Dagesh"]


@pytest.mark.parametrize(("ieee", "expected"), [
    ("0000000000000000", "0"), ("8000000000000000", "0"), ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"), ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"), ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"), ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"), ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"), ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"), ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"), ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"), ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"), ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"), ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
])
def test_numbers_are_written_as_appendix_b_says(ieee: str, expected: str):
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    assert canonical(number) == expected.encode()


@pytest.mark.parametrize("ieee", ["7fffffffffffffff", "7ff0000000000000"])
def test_nan_and_infinity_have_no_canonical_form(ieee: str):
    (number,) = struct.unpack(">d", bytes.fromhex(ieee))
    with pytest.raises(ValueError, match="RFC 8785"):
        canonical(number)


def test_a_ledger_detail_is_stored_as_its_canonical_json():
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    stored = seal(None, {"request": "r-1", "at": at, "count": 2, "note": "déjà vu"})
    assert stored == ('{"at":"2026-01-02 03:04:05+00:00","count":2,"note":"déjà vu",'
                      '"request":"r-1"}').encode()
    assert stored == canonical(json.loads(stored))  # what a reader recomputes
