#!/usr/bin/env python3
"""Check what a command printed, several files in one run.

usage: check_output.py KIND:FILE...
  text:FILE   terminal-safe text: valid UTF-8, no control character (C0,
              DEL, C1) but newline and tab
  json:FILE   one JSON document
  jsonl:FILE  one JSON document per line
Exit 0 when every file passes; else 1, one line on stderr per failure.
"""
import json
import sys


def text(data):
    try:
        s = data.decode("utf-8")
    except UnicodeDecodeError as e:
        return f"invalid UTF-8 at byte {e.start}"
    for i, ch in enumerate(s):
        o = ord(ch)
        if (o < 0x20 and ch not in "\n\t") or 0x7F <= o <= 0x9F:
            return f"control U+{o:04X} at character {i}"
    return None


def one_json(data):
    try:
        json.loads(data)
    except ValueError as e:
        return f"not JSON: {e}"
    return None


def json_lines(data):
    for n, line in enumerate(data.splitlines(), 1):
        try:
            json.loads(line)
        except ValueError as e:
            return f"line {n} not JSON: {e}"
    return None


CHECKS = {"text": text, "json": one_json, "jsonl": json_lines}


def main(argv):
    bad = 0
    for arg in argv[1:]:
        kind, _, path = arg.partition(":")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            print(f"{path}: {e}", file=sys.stderr)
            bad = 1
            continue
        why = CHECKS[kind](data)
        if why is not None:
            print(f"{path}: {kind}: {why}", file=sys.stderr)
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main(sys.argv))
