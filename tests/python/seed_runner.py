"""Run seed_consumer.py against one demuxer in this process and print what
it yields as JSON on stdout.

usage: seed_runner.py seed|shmdemux FILE [decode]

test_seed_compat.py runs each arm in a process of its own: the seed
demuxes in its caller's process, and PyAV 10 crashes that process on some
inputs (the seed's documented weakness), which must not take pytest along.
The consumer is seed_consumer.py as it is (the seed) or with only its
import line changed (shmdemux). The bytes are pushed from an async
iterator in chunks of seeded random sizes (1 byte to 256 KiB), as a
network source delivers them.
"""

import asyncio
import json
import os
import random
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_IMPORT = "from pyav_demuxer import PyAVDemuxer"
OURS_IMPORT = "from shmdemux import PyAVDemuxer"


def load_consumer(which):
    with open(os.path.join(HERE, "seed_consumer.py")) as f:
        text = f.read()
    if text.count(SEED_IMPORT) != 1:
        raise SystemExit("seed_consumer.py must import the seed once")
    if which == "shmdemux":
        text = text.replace(SEED_IMPORT, OURS_IMPORT)
    mod = types.ModuleType("seed_consumer")
    exec(compile(text, "seed_consumer.py", "exec"), mod.__dict__)
    return mod


async def chunks(path, seed=1):
    rng = random.Random(seed)
    with open(path, "rb") as f:
        data = f.read()
    i = 0
    while i < len(data):
        n = rng.randint(1, 256 * 1024)
        yield data[i:i + n]
        i += n


def main():
    which, path = sys.argv[1], sys.argv[2]
    decode = len(sys.argv) > 3 and sys.argv[3] == "decode"
    sys.path.insert(0, os.path.join(HERE, "seed"))
    mod = load_consumer(which)
    streams, packets = asyncio.run(mod.consume(chunks(path), decode, decode))
    json.dump({"streams": streams, "packets": packets}, sys.stdout)


if __name__ == "__main__":
    main()
