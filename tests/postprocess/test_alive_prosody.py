"""The streaming prosody tracker: exact under any chunking, right on known signals."""

from __future__ import annotations

import numpy as np
import pytest
from alive_support import FPS, RATE, n_frames, phrases, syllables
from hypothesis import given, settings
from hypothesis import strategies as st

from audio2face.audio.prosody import Prosody, ProsodyOptions, ProsodyTracker

AUDIO = phrases([(2.0, 0.6), (1.5, 0.8), (1.0, 0.3)], seed=3)
N = n_frames(AUDIO.shape[0])
FIELDS = ("rms_db", "f0_hz", "voiced", "speaking", "phrase_start", "phrase_end", "nucleus", "bands")


def whole() -> Prosody:
    tr = ProsodyTracker(RATE, FPS)
    tr.push(AUDIO)
    return tr.take(N, final=True)


WHOLE = whole()


@settings(max_examples=25, deadline=None)
@given(
    pushes=st.lists(st.integers(1, 4000), min_size=1, max_size=40),
    takes=st.lists(st.integers(0, 9), min_size=1, max_size=60),
)
def test_any_chunking_gives_the_same_features(pushes: list[int], takes: list[int]) -> None:
    """Frames are taken as soon as the frame clock allows, in random pieces."""
    tr = ProsodyTracker(RATE, FPS)
    parts, pos, done, i = [], 0, 0, 0
    while pos < AUDIO.shape[0]:
        k = pushes[i % len(pushes)]
        tr.push(AUDIO[pos : pos + k])
        pos += k
        allowed = n_frames(min(pos, AUDIO.shape[0])) - done
        m = min(allowed, takes[i % len(takes)])
        parts.append(tr.take(m))
        done += m
        i += 1
    parts.append(tr.take(N - done, final=True))
    got = Prosody.concat(parts)
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(got, name), getattr(WHOLE, name), err_msg=name)


def test_pitch_of_a_harmonic_tone() -> None:
    t = np.arange(RATE) / RATE
    x = sum(0.1 * np.sin(2 * np.pi * 150.0 * k * t) / k for k in range(1, 5)).astype(np.float32)
    tr = ProsodyTracker(RATE, FPS)
    tr.push(x)
    p = tr.take(n_frames(RATE))
    mid = p.f0_hz[3:-3]
    assert p.voiced[3:-3].all()
    assert np.all(np.abs(mid - 150.0) < 2.0), mid


@pytest.mark.parametrize("rate", [8000, 22050, 44100, 48000])
def test_other_sample_rates_agree_on_pitch_and_phrases(rate: int) -> None:
    import soxr

    x = soxr.resample(AUDIO, RATE, rate).astype(np.float32)
    tr = ProsodyTracker(rate, FPS)
    tr.push(x)
    p = tr.take(N, final=True)
    n = N
    both = p.voiced[:n] & WHOLE.voiced[:n]
    assert both.sum() > 0.8 * WHOLE.voiced.sum()
    assert np.median(np.abs(p.f0_hz[:n][both] / WHOLE.f0_hz[:n][both] - 1)) < 0.02
    assert np.flatnonzero(p.phrase_start).tolist() == np.flatnonzero(WHOLE.phrase_start).tolist()
    assert p.bands_valid == (rate >= 16000)


def test_phrases_start_and_end_at_the_pauses() -> None:
    starts = np.flatnonzero(WHOLE.phrase_start) / FPS
    ends = np.flatnonzero(WHOLE.phrase_end) / FPS
    # speech at 0.5, 3.1, 5.4 s; pauses confirmed pause_s after each phrase's end
    np.testing.assert_allclose(starts, [0.5, 3.1, 5.4], atol=0.1)
    pause = ProsodyOptions().pause_s
    np.testing.assert_allclose(ends, [2.5 + pause, 4.6 + pause, 6.4 + pause], atol=0.12)
    assert not WHOLE.speaking[: int(0.45 * FPS)].any()


def test_syllable_nuclei_come_at_the_syllable_rate() -> None:
    x = syllables(10.0, rate_hz=4.5, seed=1)
    tr = ProsodyTracker(RATE, FPS)
    tr.push(x)
    p = tr.take(n_frames(x.shape[0]))
    rate = (p.nucleus > 0).sum() / 10.0
    assert 3.5 < rate < 5.5, rate
    assert 0 < (p.nucleus > 0.5).sum() < (p.nucleus > 0).sum()  # some, not all, stressed


def test_silence_is_quiet_and_unvoiced() -> None:
    tr = ProsodyTracker(RATE, FPS)
    tr.push(np.zeros(RATE, np.float32))
    p = tr.take(30)
    assert not p.voiced.any() and not p.speaking.any() and (p.rms_db == -100).all()


def test_interrupt_drops_unanimated_audio_and_resumes_the_clock() -> None:
    tr = ProsodyTracker(RATE, FPS)
    tr.push(AUDIO[: RATE * 2])
    tr.take(30)  # one second animated, one more second pushed
    tr.interrupt(resume_sample=RATE + RATE // 10)
    assert tr.samples_in == RATE + RATE // 10
    p = tr.take(3, final=True)
    assert (p.rms_db[1:] == -100).all()  # the dropped audio is silence now
    tr.push(AUDIO[: RATE // 2])
    assert tr.samples_in == RATE + RATE // 10 + RATE // 2


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="sample_rate must be an integer in 8000..192000"):
        ProsodyTracker(4000, FPS)
    with pytest.raises(ValueError, match="fps must be in"):
        ProsodyTracker(RATE, 0.0)
    tr = ProsodyTracker(RATE, FPS)
    with pytest.raises(ValueError, match="mono"):
        tr.push(np.zeros((10, 2), np.float32))
    with pytest.raises(ValueError, match="n_frames must be >= 0"):
        tr.take(-1)
    with pytest.raises(ValueError, match="outside the 5 frames"):
        tr.take(5).slice(2, 9)


def test_take_many_is_separate_takes_batched() -> None:
    """One FFT for several streams gives exactly what each stream's own take gives."""
    import soxr

    other = soxr.resample(AUDIO, RATE, 22050).astype(np.float32)
    solo = [ProsodyTracker(RATE, FPS), ProsodyTracker(RATE, FPS), ProsodyTracker(22050, FPS)]
    many = [ProsodyTracker(RATE, FPS), ProsodyTracker(RATE, FPS), ProsodyTracker(22050, FPS)]
    inputs = [AUDIO, AUDIO[::-1].copy(), other]
    for s, m, x in zip(solo, many, inputs, strict=True):
        s.push(x)
        m.push(x)
    for counts in ([3, 0, 5], [1, 7, 2], [40, 40, 40]):
        got = ProsodyTracker.take_many(many, counts)
        for tr, n, g in zip(solo, counts, got, strict=True):
            want = tr.take(n)
            for name in FIELDS:
                np.testing.assert_array_equal(getattr(g, name), getattr(want, name), err_msg=name)
    with pytest.raises(ValueError, match="2 trackers but 1 frame counts"):
        ProsodyTracker.take_many(many[:2], [1])


def test_a_long_stream_keeps_only_the_audio_its_next_windows_need() -> None:
    """Two minutes in 40 ms pushes: the tracker's buffer stays at a fraction of a
    second (a server runs hundreds of these), not the whole stream."""
    tr = ProsodyTracker(RATE, FPS)
    body = RATE // 25
    loop = np.tile(AUDIO, 1 + (120 * RATE) // AUDIO.shape[0])[: 120 * RATE]
    done = 0
    sizes = set()
    for pos in range(0, loop.shape[0], body):
        tr.push(loop[pos : pos + body])
        m = n_frames(pos + body) - done
        last = tr.take(m)
        done += m
        sizes.add(tr._audio.buf.shape[0])
    assert max(sizes) <= RATE // 2  # a window, a few pushes' room: not 120 s
    assert len(last) and np.isfinite(last.rms_db).all()


def test_analyses_with_one_fft_size_do_not_share_padding() -> None:
    """A 42 ms window pads to the same 960-point FFT as the default 40 ms one at 16 kHz;
    running it first on the same thread must not leave samples in the other's padding."""
    from audio2face.audio.prosody import _analysis

    longer = ProsodyOptions(window_s=0.042)
    assert _analysis(RATE, longer).nfft == _analysis(RATE, ProsodyOptions()).nfft
    assert _analysis(RATE, longer).win > _analysis(RATE, ProsodyOptions()).win
    other = ProsodyTracker(RATE, FPS, longer)
    other.push(AUDIO)
    other.take(N, final=True)  # fills the longer window's columns of the FFT input
    again = whole()
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(again, name), getattr(WHOLE, name), err_msg=name)
