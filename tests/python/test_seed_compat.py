"""The seed's consumer code against the seed and against shmdemux.

seed_consumer.py is run twice on the same bytes, pushed from an async
iterator in chunks of seeded random sizes: as it is (the seed's
PyAVDemuxer, PyAV in this process) and with only its import line changed
(shmdemux.PyAVDemuxer, a sandboxed broker worker). What the two yield must
be the same, stream fields and every packet's fields, properties, size and
payload MD5 (decoded frames: their pixels' or samples' MD5), except where
the seed loses information, which the binding keeps, and this test holds
the binding to exactly that:
  - a timestamp the container does not give is None, where the seed says 0
    (and its *_seconds 0.0);
  - a duration the stream does not give is None where the seed says 0.0;
  - decoded frames: an audio frame's is_keyframe is the frame's own key
    flag (the seed always says False), and a frame's duration is the
    frame's (the seed copies the packet's, 0 for frames the decoder
    flushes at the end).
The order of packets across tracks is compared as is for packets; for
decoded frames, per track (the seed decodes everything in one thread, the
worker has one decoder per track, so the tracks interleave differently).
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import HERE, ffmpeg, ffprobe_packets

pytest.importorskip("av", reason="python3-av is not installed")


def run_arm(which, path, decode=False):
    """(returncode, result) of seed_runner.py in a process of its own."""
    import shmdemux
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(shmdemux.__file__))] +
        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    p = subprocess.run(
        [sys.executable, os.path.join(HERE, "seed_runner.py"), which, path]
        + (["decode"] if decode else []),
        capture_output=True, text=True, timeout=300, env=env)
    if p.returncode != 0:
        return p.returncode, p.stderr
    out = json.loads(p.stdout)
    return 0, (out["streams"], out["packets"])


def run_both(path, decode=False):
    out = {}
    for which in ("seed", "shmdemux"):
        rc, res = run_arm(which, path, decode)
        assert rc == 0, "%s: exit %d: %s" % (which, rc, res[-2000:])
        out[which] = res
    return out["seed"], out["shmdemux"]


def check_streams(seed, ours):
    for kind in ("video", "audio"):
        a, b = seed[kind], ours[kind]
        assert (a is None) == (b is None), kind
        if a is None:
            continue
        b = dict(b)
        if b["duration_seconds"] is None:
            assert a["duration_seconds"] == 0.0
            b["duration_seconds"] = 0.0
        if kind == "video" and b["fps"] is None:
            assert a["fps"] == 24.0
            b["fps"] = 24.0
        if kind == "video" and b["pixel_format"] is None:
            assert a["pixel_format"] == "yuv420p"
            b["pixel_format"] = "yuv420p"
        assert a == b, kind


def normalise_unset(seed_pkt, ours_pkt, stats):
    """ours with its None timestamps replaced by the seed's 0, after
    checking the seed said 0 there."""
    b = dict(ours_pkt)
    for k in ("pts", "dts"):
        if b[k] is None:
            assert seed_pkt[k] == 0 and seed_pkt[k + "_seconds"] == 0.0
            assert b[k + "_seconds"] is None
            b[k], b[k + "_seconds"] = 0, 0.0
            stats["unset"] += 1
    return b


def compare_packets(seed_pkts, ours_pkts):
    assert len(seed_pkts) > 0
    assert len(ours_pkts) == len(seed_pkts)
    stats = {"unset": 0}
    for i, (a, b) in enumerate(zip(seed_pkts, ours_pkts)):
        assert a == normalise_unset(a, b, stats), "packet %d" % i
    return stats


def compare_frames(seed_pkts, ours_pkts):
    stats = {"unset": 0, "frames": 0}
    tracks = {p["stream_index"] for p in seed_pkts}
    assert tracks == {p["stream_index"] for p in ours_pkts}
    for t in sorted(tracks):
        a_list = [p for p in seed_pkts if p["stream_index"] == t]
        b_list = [p for p in ours_pkts if p["stream_index"] == t]
        assert len(a_list) == len(b_list), "track %d" % t
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            b = normalise_unset(a, b, stats)
            a = dict(a)
            if "frame_md5" in a:
                stats["frames"] += 1
                for k in ("duration", "duration_seconds"):
                    a.pop(k), b.pop(k)
                if a["codec_type"] == "audio":
                    assert a["is_keyframe"] is False
                    a.pop("is_keyframe"), b.pop("is_keyframe")
            assert a == b, "track %d item %d" % (t, i)
    return stats


@pytest.mark.parametrize("name", [
    "h264_aac.mkv", "h264_aac.ts", "h264_aac_faststart.mp4",
    "h264_aac_frag.mp4", "vp9_opus.webm", "mpeg2_mp2.ts",
    "h264_ac3.avi", "vorbis.ogg", "flac.flac", "aac.adts",
    "h264_aac_srt.mkv", "hevc_ac3.mkv",
])
def test_packets(broker, media, name):
    seed, ours = run_both(os.path.join(media, name))
    check_streams(seed[0], ours[0])
    compare_packets(seed[1], ours[1])


def test_unset_timestamps_stay_none(broker, media):
    """Raw H.264 carries no timestamps: the seed yields 0, the binding
    None, for every packet."""
    seed, ours = run_both(os.path.join(media, "h264.h264"))
    check_streams(seed[0], ours[0])
    stats = compare_packets(seed[1], ours[1])
    assert stats["unset"] >= len(ours[1])
    assert all(p["pts"] is None for p in ours[1])


def test_first_video_and_audio_only(broker, tmp_path):
    """Made here: video, two audio tracks and a subtitle track; both yield
    the first video and the first audio track only."""
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,900\nhello\n")
    path = str(tmp_path / "multi.mkv")
    ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=1",
           "-f", "lavfi", "-i", "sine=f=440:r=48000:d=1",
           "-f", "lavfi", "-i", "sine=f=880:r=44100:d=1", "-i", str(srt),
           "-map", "0", "-map", "1", "-map", "2", "-map", "3",
           "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac",
           "-c:s", "srt", "-fflags", "+bitexact", path)
    seed, ours = run_both(path)
    check_streams(seed[0], ours[0])
    compare_packets(seed[1], ours[1])
    assert {p["stream_index"] for p in ours[1]} == {0, 1}


@pytest.mark.parametrize("name", ["h264_aac.mkv", "vp9_opus.webm",
                                  "mpeg2_mp2.ts"])
def test_decoded_frames(broker, media, name):
    seed, ours = run_both(os.path.join(media, name), decode=True)
    check_streams(seed[0], ours[0])
    stats = compare_frames(seed[1], ours[1])
    assert stats["frames"] == len(ours[1])


@pytest.mark.parametrize("name", ["mpeg2_mp2.mpg", "h264_aac.flv"])
def test_seed_crash_is_isolated(broker, media, name):
    """PyAV 10 crashes the seed's whole process on these inputs; through
    the binding the demuxing happens in a worker and the consumer gets
    every packet ffprobe sees. A PyAV that does not crash must then yield
    what the binding does."""
    path = os.path.join(media, name)
    rc, seed = run_arm("seed", path)
    assert rc in (0, -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGBUS), rc
    rc, ours = run_arm("shmdemux", path)
    assert rc == 0, ours[-2000:]
    want = [(int(s), int(size)) for s, size in
            ffprobe_packets(path, "stream_index", "size")]
    assert [(p["stream_index"], p["size"]) for p in ours[1]] == want
    if not isinstance(seed, str):
        check_streams(seed[0], ours[0])
        compare_packets(seed[1], ours[1])


@pytest.mark.parametrize("name", ["h264_aac_moovend.mp4", "h264_pcm.mov"])
def test_moov_at_end(broker, media, name):
    """An MP4 / MOV with its index at the end cannot be demuxed from a pipe
    by the seed (its open fails and it yields nothing, quietly); the
    broker spools it (bounded) and the binding yields ffprobe's packets."""
    path = os.path.join(media, name)
    seed, ours = run_both(path)
    assert seed[0] == {"video": None, "audio": None} and seed[1] == []
    want = [(int(s), int(size)) for s, size in
            ffprobe_packets(path, "stream_index", "size")]
    assert [(p["stream_index"], p["size"]) for p in ours[1]] == want


def test_live_ts_joined_mid_stream(broker, media, tmp_path):
    """The seed's live-TS tolerance (discardcorrupt, ignore_err): bytes
    that start mid-way through a TS packet, far from a keyframe, with a
    run of damaged bytes three quarters in (earlier, inside the seed's
    probing of this 2 s clip, the seed fails to open where the worker
    does not). Both yield the same packets."""
    with open(os.path.join(media, "h264_aac.ts"), "rb") as f:
        data = bytearray(f.read()[188 * 41 + 77:])
    at = len(data) * 3 // 4
    data[at:at + 300] = bytes((i * 151 + 7) & 0xff for i in range(300))
    path = str(tmp_path / "joined.ts")
    with open(path, "wb") as f:
        f.write(data)
    seed, ours = run_both(path)
    check_streams(seed[0], ours[0])
    compare_packets(seed[1], ours[1])
