"""Appendix A of the wire reference: frames captured from the real ConstellationDAQ 1.0.2."""

from __future__ import annotations


def hx(text: str) -> bytes:
    """Bytes from a hex dump (whitespace ignored)."""
    return bytes.fromhex("".join(text.split()))


def ts64_ns(eight: str) -> int:
    """Decode a timestamp64 body by hand (upper 30 bits ns, lower 34 bits s), independent of msgpack."""
    data = int.from_bytes(hx(eight), "big")
    return (data & (2**34 - 1)) * 1_000_000_000 + (data >> 34)


GROUP = "edda"
MD5_EDDA = hx("3191fe735ce6c6bab5a659fd9bac14fd")
MD5_MARINER_ONE = hx("f8ea4cf994bda24cbca98578e99a15dd")

# A.1 CHIRP OFFER CONTROL port 35001, and the REQUEST/DEPART variants
CHIRP_OFFER = hx("""
43 48 49 52 50 01 02 31 91 fe 73 5c e6 c6 ba b5
a6 59 fd 9b ac 14 fd f8 ea 4c f9 94 bd a2 4c bc
a9 85 78 e9 9a 15 dd 01 88 b9""")
CHIRP_REQUEST_HB = CHIRP_OFFER[:6] + b"\x01" + CHIRP_OFFER[7:39] + hx("02 00 00")
CHIRP_DEPART = CHIRP_OFFER[:6] + b"\x03" + CHIRP_OFFER[7:39] + hx("01 88 b9")

# A.2 CSCP request initialize / start from BaseController.ctl
CSCP_INIT_HEADER = hx("""
a5 43 53 43 50 01 b2 42 61 73 65 43 6f 6e 74 72
6f 6c 6c 65 72 2e 63 74 6c d7 ff e1 fb 03 60 6b
02 16 23 80""")
CSCP_INIT_TIME_NS = ts64_ns("e1 fb 03 60 6b 02 16 23")
CSCP_INIT_VERB = hx("00 aa 69 6e 69 74 69 61 6c 69 7a 65")
CSCP_INIT_PAYLOAD = hx("""
83 a9 5f 61 75 74 6f 6e 6f 6d 79 81 a4 72 6f 6c
65 a9 45 53 53 45 4e 54 49 41 4c a3 61 72 72 93
01 02 03 a7 76 6f 6c 74 61 67 65 cb 3f f8 00 00
00 00 00 00""")
CSCP_INIT_CONFIG = {"_autonomy": {"role": "ESSENTIAL"}, "arr": [1, 2, 3], "voltage": 1.5}
CSCP_START_VERB = hx("00 a5 73 74 61 72 74")
CSCP_START_PAYLOAD = hx("a7 72 75 6e 5f 30 30 37")

# A.3 get_state reply (NEW)
CSCP_STATE_HEADER = hx("""
a5 43 53 43 50 01 ab 4d 61 72 69 6e 65 72 2e 4f
6e 65 d7 ff d8 9a 32 00 6b 02 16 40 82 ac 6c 61
73 74 5f 63 68 61 6e 67 65 64 d7 ff 7a eb f4 e0
6b 02 16 3d b0 6c 61 73 74 5f 63 68 61 6e 67 65
64 5f 69 73 6f d9 20 32 30 32 36 2d 31 31 2d 32
31 54 32 32 3a 30 37 3a 35 37 2e 35 31 35 35 37
31 2b 30 30 3a 30 30""")
CSCP_STATE_TIME_NS = ts64_ns("d8 9a 32 00 6b 02 16 40")
CSCP_STATE_LAST_CHANGED_NS = ts64_ns("7a eb f4 e0 6b 02 16 3d")
CSCP_STATE_ISO = "2026-11-21T22:07:57.515571+00:00"
CSCP_STATE_VERB = hx("01 a3 4e 45 57")
CSCP_STATE_PAYLOAD = hx("10")
CSCP_INIT_REPLY_VERB = hx("01 ad") + b"transitioning"
CSCP_INIT_REPLY_PAYLOAD = hx("aa") + b"initialize"
CSCP_ROLE_REPLY_VERB = hx("01 a7") + b"DYNAMIC"
CSCP_ROLE_REPLY_PAYLOAD = hx("06")

# A.4 regular heartbeat; A.5 extrasystole with status
CHP_HEARTBEAT = hx("""
a4 43 48 50 01 ab 4d 61 72 69 6e 65 72 2e 4f 6e
65 d7 ff 07 0e 39 b4 6b 02 16 3e 10 06 cd 01 f4""")
CHP_HEARTBEAT_TIME_NS = ts64_ns("07 0e 39 b4 6b 02 16 3e")
CHP_EXTRASYSTOLE = hx("""
a4 43 48 50 01 ab 4d 61 72 69 6e 65 72 2e 4f 6e
65 d7 ff 62 95 2b a0 6b 02 16 41 12 cc 86 cd 01
f4""")
CHP_EXTRASYSTOLE_TIME_NS = ts64_ns("62 95 2b a0 6b 02 16 41")
CHP_EXTRASYSTOLE_STATUS = hx("""
49 6e 69 74 69 61 6c 69 7a 65 20 72 65 71 75 65
73 74 65 64""")

# A.6 CMDP log message LOG/STATUS/FSM
CMDP_LOG_TOPIC = b"LOG/STATUS/FSM"
CMDP_LOG_HEADER = hx("""
a5 43 4d 44 50 01 ab 4d 61 72 69 6e 65 72 2e 4f
6e 65 d7 ff 62 a3 57 c0 6b 02 16 41 89 a8 66 69
6c 65 6e 61 6d 65 aa 6c 6f 67 67 69 6e 67 2e 70
79 a8 70 61 74 68 6e 61 6d 65 d9 44 2f 6f 70 74
2f 76 65 6e 76 2f 6c 69 62 2f 70 79 74 68 6f 6e
33 2e 31 31 2f 73 69 74 65 2d 70 61 63 6b 61 67
65 73 2f 63 6f 6e 73 74 65 6c 6c 61 74 69 6f 6e
2f 63 6f 72 65 2f 6c 6f 67 67 69 6e 67 2e 70 79
a6 6c 69 6e 65 6e 6f 34 a8 66 75 6e 63 4e 61 6d
65 a6 73 74 61 74 75 73 a6 6d 6f 64 75 6c 65 a7
6c 6f 67 67 69 6e 67 a6 74 68 72 65 61 64 cf 00
00 7f 6e 86 7f 66 c0 aa 74 68 72 65 61 64 4e 61
6d 65 b5 54 68 72 65 61 64 2d 34 20 28 5f 72 65
63 76 5f 63 6d 64 73 29 a7 70 72 6f 63 65 73 73
cd 1c 99 ab 70 72 6f 63 65 73 73 4e 61 6d 65 ab
4d 61 69 6e 50 72 6f 63 65 73 73""")
CMDP_LOG_TIME_NS = ts64_ns("62 a3 57 c0 6b 02 16 41")
CMDP_LOG_TAGS = {
    "filename": "logging.py",
    "pathname": "/opt/venv/lib/python3.11/site-packages/constellation/core/logging.py",
    "lineno": 52,
    "funcName": "status",
    "module": "logging",
    "thread": 0x7F6E867F66C0,
    "threadName": "Thread-4 (_recv_cmds)",
    "process": 0x1C99,
    "processName": "MainProcess",
}
CMDP_LOG_TEXT = hx("""
53 74 61 74 65 20 74 72 61 6e 73 69 74 69 6f 6e
20 69 6e 69 74 69 61 6c 69 7a 65 20 69 6e 69 74
69 61 74 65 64""")

# A.7 metrics and the STAT? notification
CMDP_CPU_TOPIC = hx("53 54 41 54 2f 43 50 55 5f 4c 4f 41 44 5f 41 56 47")
CMDP_CPU_HEADER = hx("a5 43 4d 44 50 01 ab 4d 61 72 69 6e 65 72 2e 4f 6e 65 d7 ff 69 61 99 a0 6b 02 16 41 80")
CMDP_CPU_TIME_NS = ts64_ns("69 61 99 a0 6b 02 16 41")
CMDP_CPU_PAYLOAD = hx("cb 40 7b 2d 6c 00 00 00 00 00 a1 25")
CMDP_STATE_TOPIC = hx("53 54 41 54 2f 53 54 41 54 45")
CMDP_STATE_PAYLOAD = hx("ac 69 6e 69 74 69 61 6c 69 7a 69 6e 67 00 a0")
CMDP_STAT_NOTIFY_TOPIC = hx("53 54 41 54 3f")
CMDP_STAT_NOTIFY_TOPICS = {
    "BRIGHTNESS": "",
    "RUN_ID": "Current run identifier. Updated when changed.",
    "STATE": "Current satellite state. Updated when changed.",  # elided in the dump; 1.0.2 source text
    "CPU_LOAD_AVG": "CPU load average.",
    "MEM_AVAIL": "Available memory in Megabytes.",
}

# A.8 CDTP2 DATA prefix (first 48 of 1568 bytes)
CDTP_DATA_PREFIX = hx("""
a5 43 44 54 50 02 b5 50 79 52 61 6e 64 6f 6d 54
72 61 6e 73 6d 69 74 74 65 72 2e 54 00 dc 00 40
93 01 80 92 c4 08 9b ef e2 06 1d 78 33 22 c4 08""")
