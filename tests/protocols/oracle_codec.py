"""Run by the ConstellationDAQ 1.0.2 python (not by pytest): decode with 1.0.2, re-encode with 1.0.2.

stdin: JSON {"cases": [{"proto": ..., "frames": [hex, ...]}], "names": [...], "run_ids": [...]}.
stdout: JSON {"cases": [{"frames": [hex, ...]} | {"error": str}], "names": [bool], "run_ids": [bool],
"levels": [1.0.2 wire level name for Python levelno 0..60]}.
Pure: only message classes are used; no socket is opened.
"""

import io
import json
import re
import sys

import msgpack
from constellation.core.chirp import CHIRPMessage
from constellation.core.chp import chp_decode_message
from constellation.core.message.cdtp2 import CDTP2Message
from constellation.core.message.cmdp1 import (
    CMDP1LogMessage,
    CMDP1Message,
    CMDP1Notification,
    CMDP1StatMessage,
)
from constellation.core.message.cscp1 import CSCP1Message
from constellation.core.protocol import Protocol
from constellation.core.protocol.cmdp1 import log_level_from_levelno
from constellation.core.protocol.cscp1 import is_valid_canonical_name


def chirp(frames):
    msg = CHIRPMessage()
    msg.unpack(frames[0])
    return [msg.pack()]


def cscp(frames):
    return CSCP1Message.disassemble(frames).assemble().frames


def chp(frames):
    name, ts, state, flags, interval, status = chp_decode_message(frames)
    packer = msgpack.Packer()  # exactly what CHPTransmitter.send writes
    stream = io.BytesIO()
    for obj in (Protocol.CHP1, name, ts, state, flags, interval):
        stream.write(packer.pack(obj))
    out = [stream.getvalue()]
    if status is not None:
        out.append(status.encode())
    return out


def cmdp(frames):
    raw = CMDP1Message.disassemble(frames)
    if raw.is_log_message():
        m = CMDP1LogMessage.disassemble(frames)
        new = CMDP1LogMessage(m.sender, m.log_level, m.log_topic, m.log_message, m.time, m.tags)
    elif raw.is_stat_message():
        m = CMDP1StatMessage.disassemble(frames)
        new = CMDP1StatMessage(m.sender, m.metric, m.value, m.time, m.tags)
    else:
        m = CMDP1Notification.disassemble(frames)
        new = CMDP1Notification(m.sender, m.topics_prefix, m.topics, m.time, m.tags)
    return new.assemble().frames


def cdtp(frames):
    return CDTP2Message.disassemble(frames).assemble().frames


CODECS = {"chirp": chirp, "cscp": cscp, "chp": chp, "cmdp": cmdp, "cdtp": cdtp}


def main():
    req = json.load(sys.stdin)
    out = []
    for case in req["cases"]:
        frames = [bytes.fromhex(f) for f in case["frames"]]
        try:
            out.append({"frames": [bytes(f).hex() for f in CODECS[case["proto"]](frames)]})
        except Exception as exc:  # report, do not die: the test shows which case 1.0.2 refused
            out.append({"error": f"{type(exc).__name__}: {exc}"})
    names = [is_valid_canonical_name(n) for n in req["names"]]
    run_ids = [bool(re.match(r"^[\w-]+$", r)) for r in req["run_ids"]]  # 1.0.2 fsm.py's check in start()
    levels = [log_level_from_levelno(n).name for n in range(61)]
    json.dump({"cases": out, "names": names, "run_ids": run_ids, "levels": levels}, sys.stdout)


main()
