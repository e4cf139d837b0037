"""Cross-check against the real ConstellationDAQ 1.0.2 codec (the oracle venv, via `cdaq_python`).

We encode messages, 1.0.2 decodes them and re-encodes the decoded values with its own encoder; the bytes
must be identical. That shows 1.0.2 accepts everything we send and that both encoders agree byte for
byte. Pure: the helper script opens no socket.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocols import cdtp, chirp, chp, cmdp, cscp, is_valid_canonical_name
from tests.protocols import captures as cap
from tests.protocols import strategies as s

pytestmark = pytest.mark.interop
SCRIPT = Path(__file__).with_name("oracle_codec.py")

# 1.0.2 decodes CSCP/CMDP/CDTP times as datetime (µs, years 1..9999): keep the values it can represent.
# Negative and ts96 times are covered too: 1.0.2 turns them into datetimes just the same.
us_times = st.integers(-62135596800, 253402300799).flatmap(
    lambda sec: st.integers(0, 999_999).map(lambda us: sec * 10**9 + us * 1000)
)
us_timestamps = us_times.map(msgpack.Timestamp.from_unix_nano)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.binary(max_size=12),
    us_timestamps,
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
tags = st.dictionaries(st.text(max_size=10), values, max_size=4)
upper_names = st.from_regex(r"[A-Z0-9_]{1,12}", fullmatch=True)

cases = st.one_of(
    s.beacons.map(lambda m: ("chirp", [chirp.encode(m)])),
    st.builds(
        cscp.Message,
        s.canonical_names,
        st.sampled_from(cscp.VerbType),
        st.text(max_size=20),
        values,
        tags,
        us_times,
    ).map(lambda m: ("cscp", cscp.encode(m))),
    s.heartbeats.map(lambda m: ("chp", chp.encode(m))),
    st.builds(
        cmdp.LogMessage,
        s.canonical_names,
        st.sampled_from(cmdp.Level),
        upper_names | st.just(""),
        st.text(max_size=30),
        tags,
        us_times,
    ).map(lambda m: ("cmdp", cmdp.encode(m))),
    st.builds(
        cmdp.Metric, s.canonical_names, upper_names, s.metric_values, st.text(max_size=4), tags, us_times
    ).map(lambda m: ("cmdp", cmdp.encode(m))),
    st.builds(
        cmdp.Notification,
        s.canonical_names,
        st.sampled_from(["LOG", "STAT"]),
        st.dictionaries(st.text(max_size=8), st.text(max_size=12), max_size=4),
        tags,
        us_times,
    ).map(lambda m: ("cmdp", cmdp.encode(m))),
    st.builds(
        cdtp.DataMessage,
        s.canonical_names,
        st.just(cdtp.CDTPType.DATA),
        st.lists(
            st.builds(
                cdtp.DataRecord,
                st.integers(0, 2**64 - 1),
                tags,
                st.lists(st.binary(max_size=16), max_size=3).map(tuple),
            ),
            max_size=3,
        ).map(tuple),
    ).map(lambda m: ("cdtp", [cdtp.encode(m)])),
)

CAPTURES: list[tuple[str, list[bytes]]] = [
    ("chirp", [cap.CHIRP_OFFER]),
    ("chirp", [cap.CHIRP_REQUEST_HB]),
    ("chirp", [cap.CHIRP_DEPART]),
    ("cscp", [cap.CSCP_INIT_HEADER, cap.CSCP_INIT_VERB, cap.CSCP_INIT_PAYLOAD]),
    ("cscp", [cap.CSCP_STATE_HEADER, cap.CSCP_STATE_VERB, cap.CSCP_STATE_PAYLOAD]),
    ("chp", [cap.CHP_HEARTBEAT]),
    ("chp", [cap.CHP_EXTRASYSTOLE, cap.CHP_EXTRASYSTOLE_STATUS]),
    ("cmdp", [cap.CMDP_LOG_TOPIC, cap.CMDP_LOG_HEADER, cap.CMDP_LOG_TEXT]),
    ("cmdp", [cap.CMDP_CPU_TOPIC, cap.CMDP_CPU_HEADER, cap.CMDP_CPU_PAYLOAD]),
]
NAMES = ["Mariner.One", "a.b", "Ü.ß", "a", "a.b.c", ".b", "a-b.c", "a.b ", "Mariner.One\n"]
RUN_IDS = ["run_007", "a-b", "", "r 1", "r.1", "run\n"]


def run_oracle(python: Path, batch: list[tuple[str, list[bytes]]]) -> dict[str, Any]:
    req = {
        "cases": [{"proto": p, "frames": [f.hex() for f in frames]} for p, frames in batch],
        "names": NAMES,
        "run_ids": RUN_IDS,
    }
    proc = subprocess.run(
        [str(python), str(SCRIPT)],
        input=json.dumps(req),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def check(python: Path, batch: list[tuple[str, list[bytes]]]) -> dict[str, Any]:
    result = run_oracle(python, batch)
    for (proto, frames), out in zip(batch, result["cases"], strict=True):
        assert "error" not in out, (proto, [f.hex() for f in frames], out)
        assert [bytes.fromhex(f) for f in out["frames"]] == frames, proto
    return result


def test_captures_and_name_rules_agree_with_1_0_2(cdaq_python: Path) -> None:
    result = check(cdaq_python, CAPTURES)
    ours = [is_valid_canonical_name(n) for n in NAMES]
    # the one documented difference: 1.0.2's re.match("^\w+$") accepts a trailing newline, we do not
    assert [o or n.endswith("\n") for o, n in zip(ours, NAMES, strict=True)] == result["names"]
    from protocols import InvalidName, validate_run_id

    def ok(run_id: str) -> bool:
        try:
            validate_run_id(run_id)
        except InvalidName:
            return False
        return True

    assert [ok(r) or r.endswith("\n") for r in RUN_IDS] == result["run_ids"]
    # Python level -> wire level: identical from 5 up; below 5 1.0.2 says CRITICAL, we say TRACE
    ours_levels = [cmdp.Level.from_python_level(n).name for n in range(61)]
    assert ours_levels[5:] == result["levels"][5:]
    assert result["levels"][:5] == ["CRITICAL"] * 5


@settings(max_examples=3, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.lists(cases, min_size=40, max_size=60))
def test_random_messages_byte_identical_with_1_0_2(
    cdaq_python: Path, batch: list[tuple[str, list[bytes]]]
) -> None:
    check(cdaq_python, batch)
