"""Hypothesis strategies for valid field values and messages of every protocol."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import strategies as st

from protocols import HeartbeatFlags, State, cdtp, chirp, chp, cmdp, cscp

# years 1..9999: every time 1.0.2 can turn into a datetime
MAX_NS = 253402300799 * 1_000_000_000 + 999_999_999
MIN_NS = -62135596800 * 1_000_000_000

name_parts = st.from_regex(r"\w{1,12}", fullmatch=True)
canonical_names = st.builds(lambda t, n: f"{t}.{n}", name_parts, name_parts)
run_ids = st.from_regex(r"[\w-]{1,16}", fullmatch=True)

times_ns = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda s: s * 1_000_000_000),  # timestamp32
    st.integers(0, 2**34 * 1_000_000_000 - 1),  # timestamp64
    st.integers(MIN_NS, MAX_NS),  # timestamp96 (negative or beyond 2514)
)
timestamps = times_ns.map(msgpack.Timestamp.from_unix_nano)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=20),
    timestamps,
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)
tags = st.dictionaries(st.text(max_size=12), values, max_size=5)
wire_states = st.sampled_from([s for s in State if s is not State.DEAD])

beacons = st.builds(
    chirp.Beacon,
    st.sampled_from(chirp.MessageType),
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.sampled_from(chirp.ServiceId),
    st.integers(0, 0xFFFF),
)

cscp_messages = st.builds(
    cscp.Message,
    canonical_names,
    st.sampled_from(cscp.VerbType),
    st.text(max_size=30),
    values,
    tags,
    times_ns,
)

heartbeats = st.builds(
    chp.Heartbeat,
    canonical_names,
    wire_states,
    st.integers(0, 0xFF).map(HeartbeatFlags),
    st.integers(0, chp.MAX_INTERVAL_MS),
    st.none() | st.text(max_size=40),
    times_ns,
)

topic_text = st.text(max_size=16)
log_messages = st.builds(
    cmdp.LogMessage,
    canonical_names,
    st.sampled_from(cmdp.Level),
    topic_text,
    st.text(max_size=60),
    tags,
    times_ns,
)
metric_values = st.one_of(
    st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(allow_nan=False), st.text(max_size=20)
)
metrics = st.builds(
    cmdp.Metric,
    canonical_names,
    topic_text.filter(bool),
    metric_values,
    st.text(max_size=6),
    tags,
    times_ns,
)
notifications = st.builds(
    cmdp.Notification,
    canonical_names,
    st.sampled_from(["LOG", "STAT"]),
    st.dictionaries(st.text(max_size=12), st.text(max_size=30), max_size=6),
    tags,
    times_ns,
)
cmdp_messages = st.one_of(log_messages, metrics, notifications)

records = st.builds(
    cdtp.DataRecord,
    st.integers(0, 2**64 - 1),
    tags,
    st.lists(st.binary(max_size=32), max_size=4).map(tuple),
)
data_messages = st.one_of(
    st.builds(
        cdtp.DataMessage,
        canonical_names,
        st.just(cdtp.CDTPType.DATA),
        st.lists(records, max_size=4).map(tuple),
    ),
    st.builds(
        cdtp.DataMessage,
        canonical_names,
        st.sampled_from([cdtp.CDTPType.BOR, cdtp.CDTPType.EOR]),
        st.tuples(records, records),
    ),
)
