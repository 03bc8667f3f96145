#!/usr/bin/env python3
"""Regenerates the seed inputs in fuzz/seeds/ from the recorded nginx <-> php-fpm
transcripts in fcgi-core/tests/fixtures/ (standard library only).

The raw-bytes targets read a fixed-size prefix (configuration, split mode, salt) before the
wire bytes; each seed is `prefix + transcript` (or a piece of one under 8 KiB). The prefix
layouts are documented at the top of each target and in fuzz/README.md.

Usage: python3 fuzz/make_seeds.py   (from anywhere; overwrites the generated seeds only,
leaving other files in fuzz/seeds/, such as regression inputs, alone)
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURES = os.path.join(HERE, "..", "fcgi-core", "tests", "fixtures")
SEEDS = os.path.join(HERE, "seeds")


def fixture(name):
    with open(os.path.join(FIXTURES, name), "rb") as f:
        return f.read()


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    assert len(data) < 8192 + 8, (target, name, len(data))
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def records(data):
    """(offset, type, id, content, total length) of each record."""
    out, at = [], 0
    while at + 8 <= len(data):
        _, rtype, rid, clen, plen, _ = struct.unpack(">BBHHBB", data[at:at + 8])
        total = 8 + clen + plen
        out.append((at, rtype, rid, data[at + 8:at + 8 + clen], total))
        at += total
    return out


# Pieces of the two large transcripts, each under 8 KiB.
post_req = fixture("post_body.request.bin")
post_recs = records(post_req)
# BEGIN_REQUEST + PARAMS + empty PARAMS, then the last 4096-byte STDIN record + empty STDIN:
# a whole request with a 4 KiB body.
head_end = post_recs[3][0]  # offset of the first STDIN record
tail_start = post_recs[-2][0]
post_small = post_req[:head_end] + post_req[tail_start:]
post_cut = post_req[:8000]  # ends inside the first 32 KiB STDIN record

large_resp = fixture("large_response.response.bin")
large_recs = records(large_resp)
large_head = large_resp[:8000]  # inside the first 8184-byte STDOUT record
large_tail = large_resp[large_recs[-2][0]:]  # last STDOUT (242 bytes) + END_REQUEST

requests = {
    "get_query": fixture("get_query.request.bin"),
    "keepalive": fixture("keepalive.request.bin"),
    "missing_script": fixture("missing_script.request.bin"),
    "large_response": fixture("large_response.request.bin"),
    "get_values": fixture("get_values.request.bin"),
    "post_body_4k": post_small,
    "post_body_cut": post_cut,
}
responses = {
    "get_query": fixture("get_query.response.bin"),
    "keepalive": fixture("keepalive.response.bin"),
    "missing_script": fixture("missing_script.response.bin"),
    "post_body": fixture("post_body.response.bin"),
    "get_values": fixture("get_values.response.bin"),
    "large_response_head": large_head,
    "large_response_tail": large_tail,
}

# record_decoder: [split mode A, split mode B, salt, salt] + bytes.
for i, (name, data) in enumerate(list(requests.items()) + list(responses.items())):
    side = "request" if name in requests and data is requests[name] else "response"
    write("record_decoder", f"{name}.{side}", bytes([2 + i % 6, 1 + i % 7, i, 0x5A]) + data)

# server_connection: see the table in fuzz_targets/server_connection.rs.
#   0x20: like php-fpm (no multiplexing, Responder), EOF at the end, default limits.
#   0x2F: multiplexing, all roles; small caps; slow socket and lazy application.
for name, data in requests.items():
    for label, split in (("fpm", 2), ("fpm_whole", 0)):  # up to 8 bytes per chunk / at once
        write("server_connection", f"{name}.{label}", bytes([0x20, 1, 0, split << 3, 1, 2, 3, 4]) + data)
    write(
        "server_connection",
        f"{name}.small",
        bytes([0x2F | 0xC0, 4, 0x04 | (3 << 3), 0x03 | (3 << 3) | (2 << 6), 9, 8, 7, 6]) + data,
    )

# client_connection: see the table in fuzz_targets/client_connection.rs.
#   0x40: one request in flight (Responder), reactive caller, default limits.
for name, data in responses.items():
    p0 = 0x40 | (0x80 if name == "get_values" else 0)
    p1 = 0x08 if name == "keepalive" else 0x00  # keep-conn for the keep-alive transcript
    for label, split in (("nginx", 2), ("nginx_whole", 0), ("nginx_mixed", 7)):
        write("client_connection", f"{name}.{label}", bytes([p0, p1, 0, split << 3, 1, 2, 3, 4]) + data)
    write(
        "client_connection",
        f"{name}.lazy",
        bytes([0x40 | 0x30 | 0x02, 0x0B, 0x03 | (2 << 3), 0x02 | (1 << 3) | (2 << 6), 5, 6, 7, 8])
        + data,
    )


def pair(name, value, long_form=False):
    def length(n):
        if n < 128 and not long_form:
            return bytes([n])
        return struct.pack(">I", n | 0x80000000)

    return length(len(name)) + length(len(value)) + name + value


# params_reader: [split mode, cap selector, salt, salt] + a name-value block.
get_query_params = records(fixture("get_query.request.bin"))[1][3]
get_values_block = records(fixture("get_values.request.bin"))[0][3]
blocks = {
    "short_lengths": pair(b"SCRIPT_FILENAME", b"/var/www/index.php")
    + pair(b"REQUEST_METHOD", b"GET")
    + pair(b"CONTENT_LENGTH", b""),
    "long_lengths": pair(b"HTTP_" + b"A" * 195, b"v" * 300) + pair(b"QUERY_STRING", b"q" * 128),
    "non_canonical": pair(b"abc", b"def", long_form=True) + pair(b"X", b"1"),
    "duplicates": pair(b"HTTP_COOKIE", b"a=1") + pair(b"HTTP_COOKIE", b"b=2") + pair(b"", b""),
    "nginx_get_query": get_query_params,
    "get_values": get_values_block,
    "truncated": (pair(b"SERVER_NAME", b"localhost") + pair(b"HTTP_" + b"B" * 140, b"x" * 10))[:-5],
    "empty": b"",
}
for i, (name, block) in enumerate(blocks.items()):
    write("params_reader", name, bytes([2 + i % 6, i % 8, i, 0xA5]) + block)


# ops: an `arbitrary` encoding of `Scenario` (arbitrary 1.x: fields in order, bool = low bit
# of a byte, u8 = one byte, u32 = 4 bytes little-endian, an enum variant = (u32 * number of
# variants) >> 32, each `Vec` element preceded by a byte whose low bit says "one more").
# `cargo +nightly fuzz fmt ops fuzz/seeds/ops/<file>` prints what a file decodes to.
OPS_VARIANTS = 16  # number of `Op` variants in fuzz_targets/ops.rs (GetValues is the 9th, index 8)


def ops_variant(index):
    """A little-endian u32 that selects `Op` variant `index`."""
    word = ((index << 32) + OPS_VARIANTS - 1) // OPS_VARIANTS  # smallest u32 mapping to it
    assert (word * OPS_VARIANTS) >> 32 == index
    return struct.pack("<I", word)


def ops_setup(server_output_sel=0):
    # multiplex, max_requests, roles, server_limits[3], server_padding_none,
    # client_concurrency, client_limits[3], client_padding_none
    return bytes([0, 0, 0, 0, 0, server_output_sel, 0, 0, 0, 0, 0, 0])


# regress_drive_to_idle_rounds: the server's output cap at 16 bytes (selector 7) and 72
# GET_VALUES (variant 8) for all three variables queued, then the end (no final EOF). Once
# its queue is over the 16-byte cap the server reads no more, so it answers one GET_VALUES
# per round of `drive_to_idle`, 72 rounds or more: the old fixed count of 64 rounds
# panicked with "the two sides did not come to rest" although nothing was stuck.
GET_VALUES_ALL = b"\x01" + ops_variant(8) + bytes([0x07])
write("ops", "regress_drive_to_idle_rounds", ops_setup(7) + GET_VALUES_ALL * 72 + b"\x00\x00")

print("seeds written to", SEEDS)
