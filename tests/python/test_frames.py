"""Frames decoded in the sandboxed worker, read through the binding:
planes as buffers with their layout, to_ndarray() equal to PyAV's decode of
the same file in this process (pixels and samples, bit for bit, and pts),
to_av() frames, views that stop exporting at the next read, copies in
live mode."""

import asyncio
import os

import pytest

np = pytest.importorskip("numpy", reason="python3-numpy is not installed")
av = pytest.importorskip("av", reason="python3-av is not installed")


def pyav_frames(path, kind):
    with av.open(path) as c:
        stream = c.streams.video[0] if kind == "video" else c.streams.audio[0]
        return [(f.pts, f.to_ndarray()) for f in c.decode(stream)]


def test_video_planes_and_ndarray(shm, media):
    path = os.path.join(media, "h264_aac.mkv")
    want = pyav_frames(path, "video")
    got = []
    with shm.open(path, decode="video") as s:
        prev = None
        for pkt in s:
            f = pkt.decoded_frame
            if pkt.codec_type != "video":
                assert f is None and pkt.size > 0
                continue
            assert f is not None and pkt.data == b""
            assert (f.width, f.height, f.format) == (320, 240, "yuv420p")
            assert pkt.pts == f.pts and pkt.stream_index == f.stream_index
            assert f.time_base == s.video_stream.time_base
            planes = f.planes
            assert [(p.width, p.height) for p in planes] == [
                (320, 240), (160, 120), (160, 120)]
            for p in planes:
                assert p.line_size >= p.width
                assert p.buffer_size == p.line_size * p.height == len(p)
                assert len(memoryview(p)) == p.buffer_size
                assert memoryview(p).readonly
            if prev is not None:
                # the previous frame's planes stopped exporting
                assert not prev.valid
                with pytest.raises(BufferError):
                    memoryview(prev.planes[0])
            got.append((f.pts, f.to_ndarray()))
            prev = f
    assert len(got) == len(want) > 0
    for (gp, ga), (wp, wa) in zip(got, want):
        assert gp == wp
        assert ga.shape == wa.shape and np.array_equal(ga, wa)


def test_audio_ndarray(shm, media):
    path = os.path.join(media, "h264_aac.mkv")
    want = pyav_frames(path, "audio")
    got = []
    with shm.open(path, decode="audio") as s:
        for pkt in s:
            f = pkt.decoded_frame
            if f is None:
                continue
            assert f.codec_type == "audio" and f.format == "fltp"
            assert f.is_planar and f.channels == 2 == len(f.planes)
            assert f.sample_rate == 48000 and f.bytes_per_sample == 4
            assert all(p.buffer_size >= f.samples * 4 for p in f.planes)
            got.append((f.pts, f.to_ndarray()))
    assert len(got) == len(want) > 0
    for (gp, ga), (wp, wa) in zip(got, want):
        assert gp == wp and np.array_equal(ga, wa)


def test_ndarray_without_copy_views_the_ring(shm, media):
    """A mono planar frame: to_ndarray(copy=False) is a view of the plane,
    which pins the mapping like any export."""
    with shm.open(os.path.join(media, "aac.adts"), decode="audio") as s:
        pkt = s.read()
        f = pkt.decoded_frame
        view = f.to_ndarray(copy=False)
        assert view.shape == (1, f.samples) and not view.flags.owndata
        assert np.array_equal(view, f.to_ndarray())
        assert s.reader.exports >= 1
        del view


def test_to_av(shm, media):
    path = os.path.join(media, "h264_aac.mkv")
    want_v = pyav_frames(path, "video")
    want_a = pyav_frames(path, "audio")
    got_v, got_a = [], []
    with shm.open(path, decode="all") as s:
        for pkt in s:
            f = pkt.decoded_frame.to_av()
            assert f.time_base == pkt.time_base
            if pkt.codec_type == "video":
                assert isinstance(f, av.VideoFrame)
                assert f.format.name == "yuv420p"
                got_v.append((f.pts, f.to_ndarray()))
            else:
                assert isinstance(f, av.AudioFrame)
                assert f.sample_rate == 48000 and f.format.name == "fltp"
                got_a.append((f.pts, f.to_ndarray()))
    for got, want in ((got_v, want_v), (got_a, want_a)):
        assert len(got) == len(want) > 0
        for (gp, ga), (wp, wa) in zip(got, want):
            assert gp == wp and np.array_equal(ga, wa)


def test_demuxer_av_frames(shm, media):
    """Demuxer(av_frames=True): decoded_frame is a PyAV frame, as the
    seed's was."""
    path = os.path.join(media, "h264_aac.mkv")
    want = pyav_frames(path, "video")

    async def main():
        d = shm.Demuxer(decode_video=True, av_frames=True)
        await d.start(path)
        out = []
        async for pkt in d.iter_packets():
            if pkt.codec_type == "video":
                assert isinstance(pkt.decoded_frame, av.VideoFrame)
                assert pkt.data == b"" and pkt.pts_seconds is not None
                out.append((pkt.pts, pkt.decoded_frame.to_ndarray()))
        return out

    got = asyncio.run(main())
    assert len(got) == len(want)
    for (gp, ga), (wp, wa) in zip(got, want):
        assert gp == wp and np.array_equal(ga, wa)


def test_live_frames_are_copies(shm, media):
    """Live producers never wait, so a live reader's frames are copies,
    checked intact: they stay valid after the next read."""
    path = os.path.join(media, "h264_aac.ts")
    want = pyav_frames(path, "video")
    got = []
    with shm.open(path, decode="video", mode="live", realtime=True,
                  wait_consumers=1) as s:
        assert s.reader.copy
        prev = None
        for pkt in s:
            if pkt.codec_type != "video":
                continue
            f = pkt.decoded_frame
            if prev is not None:
                assert prev.valid and len(memoryview(prev.planes[0])) > 0
            got.append((f.pts, f.to_ndarray()))
            prev = f
        assert s.status()["overruns"] == 0
    assert len(got) == len(want)
    for (gp, ga), (wp, wa) in zip(got, want):
        assert gp == wp and np.array_equal(ga, wa)
