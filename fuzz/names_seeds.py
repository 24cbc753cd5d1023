#!/usr/bin/env python3
"""Seeds for the names_packets fuzz target: the UDP and TCP payloads of real captures,
in the target's input format, one seed file per capture (at most 64 packets each).

    python3 names_seeds.py ../../shared/corpus/real corpus/names_packets

Reads the captures with tshark -n (no name resolution: nothing is sent).
"""
import pathlib
import subprocess
import sys

# The fuzz target's PORTS, in order: a port byte p stands for PORTS[p % 16].
PORTS = [53, 5353, 5355, 137, 67, 68, 546, 547, 1900, 443, 80, 8080, 853, 4433, 8443, 1234]
FIELDS = ["ipv6.src", "udp.srcport", "udp.dstport", "tcp.srcport", "tcp.dstport",
          "tcp.seq_raw", "tcp.flags", "udp.payload", "tcp.payload"]


def packets(path):
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    cmd += ["-Y", "udp.payload or tcp.payload"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        v6, usp, udp_, tsp, tdp, seq, tflags, upay, tpay = (line.split("\t") + [""] * 9)[:9]
        tcp = bool(tpay)
        sp, dp = (int(tsp or 0), int(tdp or 0)) if tcp else (int(usp or 0), int(udp_ or 0))
        payload = bytes.fromhex((tpay or upay).replace(":", ""))[:65535]
        reply = sp in PORTS and dp not in PORTS
        service = sp if reply else dp
        if service not in PORTS:
            continue
        flags = (1 if tcp else 0) | (2 if v6 else 0) | (4 if reply else 0)
        head = bytes([flags, PORTS.index(service)]) + len(payload).to_bytes(2, "big")
        if tcp:
            head += int(seq or 0).to_bytes(4, "big")
        yield head + payload


def main():
    src, dst = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    dst.mkdir(parents=True, exist_ok=True)
    for cap in sorted(src.glob("*.pcap*")):
        seed = b"".join(list(packets(cap))[:64])
        if seed:
            (dst / (cap.name + ".seed")).write_bytes(seed)


if __name__ == "__main__":
    main()
