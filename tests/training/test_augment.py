"""Speaker and channel augmentations (issue 12 part 3): each does what it claims, keeps
length and alignment, is pure and seeded; the recipe draws and logs them."""

from __future__ import annotations

import numpy as np
import pytest
from training.data.corpus import validate_phones

from training import augment as A
from training import train as T

SR = A.SAMPLE_RATE


def vowel(
    f0: float = 100.0,
    seconds: float = 1.0,
    formants: tuple[tuple[float, float], ...] = ((700, 80), (1220, 90), (2600, 120)),
) -> np.ndarray:
    """Harmonics of ``f0`` shaped by a cascade of three formant resonances (an /a/-like vowel)."""
    t = np.arange(int(seconds * SR)) / SR
    x = np.zeros_like(t)
    for k in range(1, int(7800 / f0)):
        f = k * f0
        amp = np.prod([1 / abs(1 - (f / fc) ** 2 + 1j * f * bw / fc**2) for fc, bw in formants])
        x += amp * np.sin(2 * np.pi * f * t + 0.7 * k)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def speechlike(seconds: float = 2.0) -> np.ndarray:
    """Vowels of changing pitch separated by pauses of digital silence."""
    parts = []
    for i, f0 in enumerate((110.0, 150.0, 190.0, 130.0)):
        parts += (
            [vowel(f0, seconds / 8), np.zeros(int(seconds / 8 * SR), np.float32)]
            if i % 2
            else [vowel(f0, seconds / 4)]
        )
    return np.concatenate(parts)[: int(seconds * SR)]


def centroid(x: np.ndarray) -> float:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float((mag * np.fft.rfftfreq(len(x), 1 / SR)).sum() / mag.sum())


def strongest_hz(x: np.ndarray, lo: float, hi: float) -> float:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / SR)
    band = (f >= lo) & (f <= hi)
    return float(f[band][np.argmax(mag[band])])


def f0_of(x: np.ndarray) -> float:
    seg = x[len(x) // 4 : len(x) // 4 + 4000].astype(np.float64)
    c = np.correlate(seg, seg, "full")[len(seg) - 1 :]
    lo, hi = SR // 400, SR // 60
    return SR / (lo + int(np.argmax(c[lo:hi])))


def lag_ms(ref: np.ndarray, out: np.ndarray) -> float:
    return 1000 * A._lag(ref, out, int(0.05 * SR)) / SR


def test_stft_resynthesis_is_exact() -> None:
    x = speechlike(0.7)
    np.testing.assert_allclose(A._istft(A._stft(x), len(x)), x, atol=1e-6)


@pytest.mark.parametrize("factor", [0.85, 1.15])
def test_vtl_warp_moves_formants_keeps_pitch_and_length(factor: float) -> None:
    x = vowel(100.0)
    before = x.copy()
    y = A.vtl_warp(x, factor)
    np.testing.assert_array_equal(x, before)
    assert y.dtype == np.float32 and y.shape == x.shape
    direction = np.sign(factor - 1)
    assert np.sign(centroid(y) - centroid(x)) == direction and abs(centroid(y) - centroid(x)) > 80
    # F1 (700 Hz) and F2 (1220 Hz) move by about the factor: their strongest harmonics follow.
    assert strongest_hz(y, 300, 1000) == pytest.approx(700 * factor, abs=60)
    assert strongest_hz(y, 1000, 1700) == pytest.approx(1200 * factor, abs=60)
    assert f0_of(y) == pytest.approx(f0_of(x), rel=0.02)
    np.testing.assert_array_equal(A.vtl_warp(x, factor), y)
    with pytest.raises(ValueError, match="vtl"):
        A.vtl_warp(x, 2.0)


def test_tempo_keeps_pitch_and_rescales_phones() -> None:
    x = vowel(120.0, 2.0)
    x[SR : SR + 160] = 0.9  # a click at 1.0 s, to follow through the stretch
    phones = [(0.0, 0.5, "SIL"), (0.5, 1.2, "AA"), (1.2, 2.0, "M")]
    for factor in (0.8, 1.25):
        y, spans = A.tempo(x, factor, phones)
        assert spans is not None and len(y) == round(len(x) / factor)
        validate_phones(spans, len(y) / SR)
        assert spans[1] == pytest.approx((0.5 / factor, 1.2 / factor, "AA"))
        assert f0_of(y) == pytest.approx(120.0, rel=0.03)
        click = int(np.argmax(np.abs(y - np.median(y))[int(0.5 * SR / factor) :])) + int(
            0.5 * SR / factor
        )
        assert abs(click / SR - 1.0 / factor) < 0.012  # WSOLA tolerance is 6 ms
    assert A.tempo(x, 1.1)[1] is None
    with pytest.raises(ValueError, match="tempo"):
        A.tempo(x, 3.0)


def test_pitch_shift_moves_pitch_and_optionally_keeps_formants() -> None:
    x = vowel(100.0)
    up = A.pitch_shift(x, 4.0)
    kept = A.pitch_shift(x, 4.0, keep_formants=True)
    assert up.shape == kept.shape == x.shape
    assert f0_of(up) == pytest.approx(100 * 2 ** (4 / 12), rel=0.03)
    assert f0_of(kept) == pytest.approx(100 * 2 ** (4 / 12), rel=0.03)
    # Resampling drags the formants up with the pitch; keep_formants puts them back.
    assert abs(centroid(kept) - centroid(x)) < 0.4 * abs(centroid(up) - centroid(x))


def test_equalize_has_the_stated_gain_and_no_delay() -> None:
    t = np.arange(SR) / SR
    tone = (0.1 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    boosted = A.equalize(tone, [A.EqBand("peak", 1000.0, 6.0, 1.0)])
    mid = slice(2000, -2000)
    assert np.std(boosted[mid]) / np.std(tone[mid]) == pytest.approx(10 ** (6 / 20), rel=0.02)
    x = speechlike(1.0)
    bands = A.random_eq(np.random.default_rng(4))
    assert 2 <= len(bands) <= 4 and bands == A.random_eq(np.random.default_rng(4))
    y = A.equalize(x, bands)
    assert y.shape == x.shape and lag_ms(x, y) == 0.0
    np.testing.assert_array_equal(A.equalize(x, ()), x)
    with pytest.raises(ValueError, match="kind"):
        A.equalize(x, [A.EqBand("notch", 1000.0)])


def test_wideband_and_mic_chain_keep_alignment_and_shape_the_band() -> None:
    t = np.arange(SR) / SR
    low = np.sin(2 * np.pi * 1000 * t)
    high = np.sin(2 * np.pi * 7950 * t)
    mid = slice(2000, -2000)
    wb = A.wideband((0.1 * (low + high)).astype(np.float32), cutoff_hz=7000.0)
    spectrum = np.abs(np.fft.rfft(wb[mid] * np.hanning(len(wb[mid]))))
    f = np.fft.rfftfreq(len(wb[mid]), 1 / SR)
    assert spectrum[np.argmin(abs(f - 7950))] < 0.1 * spectrum[np.argmin(abs(f - 1000))]
    x = speechlike(1.0)
    chain = A.random_mic_chain(np.random.default_rng(7))
    assert chain == A.random_mic_chain(np.random.default_rng(7))
    y = A.mic_chain_48k(x, chain)
    assert y.shape == x.shape and y.dtype == np.float32 and lag_ms(x, y) == 0.0
    assert np.corrcoef(x, y)[0, 1] > 0.7
    hum = (0.1 * np.sin(2 * np.pi * 20 * t)).astype(np.float32)  # below every high-pass drawn
    assert np.std(A.mic_chain_48k(hum, A.MicChain(highpass_hz=150.0))[mid]) < 0.1 * np.std(hum)
    saturated = A.mic_chain_48k(x, A.MicChain(drive=4.0))
    assert np.abs(saturated).max() == pytest.approx(np.abs(x).max(), rel=0.1)


@pytest.mark.parametrize("codec", A.available_codecs())
def test_codec_roundtrip_keeps_length_and_alignment(codec: str) -> None:
    x = speechlike(1.5)
    before = x.copy()
    for quality in (0.0, 1.0):
        y = A.codec_roundtrip(x, codec, quality)
        assert y.shape == x.shape and y.dtype == np.float32
        assert abs(lag_ms(x, y)) <= 1.0, (codec, quality, lag_ms(x, y))
        # Telephone codecs drop everything above 3.4 kHz, so compare in that band.
        ref = A.band_limit(x) if codec in ("gsm", "mulaw") else x
        assert np.corrcoef(ref, y)[0, 1] > (0.6 if codec == "gsm" else 0.85), (codec, quality)
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(
        A.codec_roundtrip(x, codec, 0.3), A.codec_roundtrip(x, codec, 0.3)
    )
    assert A.codec_roundtrip(np.zeros(0, np.float32), codec).shape == (0,)


def test_codecs_available_here_and_unknown_rejected() -> None:
    assert {"gsm", "mulaw", "adpcm"} <= set(A.available_codecs())  # sox or libsndfile, always
    with pytest.raises(ValueError, match="unknown codec"):
        A.codec_roundtrip(speechlike(0.5), "aac")


def test_reverb_keeps_the_direct_path_and_adds_reflections() -> None:
    click = np.zeros(SR, np.float32)
    click[1000] = 0.5
    y = A.reverb(click, np.random.default_rng(3), rt60_s=(0.4, 0.4), wet=0.5)
    np.testing.assert_array_equal(
        y, A.reverb(click, np.random.default_rng(3), rt60_s=(0.4, 0.4), wet=0.5)
    )
    assert (
        y.shape == click.shape and int(np.argmax(np.abs(y))) == 1000
    )  # direct path first and loudest
    assert np.abs(y[:1000]).max() < 1e-6  # nothing before the sound (causal, up to FFT rounding)
    early = np.abs(y[1000 + 32 : 1000 + 400])
    assert early.max() > 0.05 * np.abs(y).max()  # discrete early reflections at 2-25 ms
    tail = np.square(y[1000:].astype(np.float64))
    e1, e2 = tail[800:2400].sum(), tail[4000:5600].sum()  # 50-150 ms vs 250-350 ms
    assert e2 < e1 * 0.5  # decays
    x = speechlike(1.0)
    assert np.sqrt(np.mean(A.reverb(x, np.random.default_rng(1)) ** 2)) == pytest.approx(
        np.sqrt(np.mean(x**2)), rel=1e-3
    )


def test_noise_floor_fills_digital_silence_at_the_stated_level() -> None:
    x = speechlike(2.0)
    assert A.has_digital_silence(x) and not A.has_digital_silence(vowel())
    y = A.noise_floor(x, np.random.default_rng(5), -50.0)
    np.testing.assert_array_equal(y, A.noise_floor(x, np.random.default_rng(5), -50.0))
    assert y.shape == x.shape and not A.has_digital_silence(y)
    silent = x == 0
    level = 20 * np.log10(np.sqrt(np.mean(np.square(y[silent], dtype=np.float64))))
    assert level == pytest.approx(-50.0, abs=1.5)


def test_add_noise_against_the_speech_level() -> None:
    x = speechlike(2.0)
    speech = x[x != 0]
    assert A.active_rms(x) == pytest.approx(
        np.sqrt(np.mean(speech.astype(np.float64) ** 2)), rel=0.05
    )
    noise = A.white_noise(len(x), np.random.default_rng(2))
    y = A.add_noise(x, noise, 10.0, reference_rms=A.active_rms(x))
    assert 20 * np.log10(A.active_rms(x) / np.std(y - x)) == pytest.approx(10.0, abs=0.1)


# ---------------------------------------------------------------------- the recipe's draws

SPEAKER = {"speed", "tempo", "pitch", "vtl", "pad"}
CHANNEL = {"reverb", "eq", "band.telephone", "band.wideband", "band.mic48k", "gain", "floor"}


def test_recipe_draws_every_augmentation_and_keeps_alignment() -> None:
    x = speechlike(1.0)
    phones = [(0.0, 0.25, "AA"), (0.25, 0.5, "M"), (0.5, 0.75, "SIL"), (0.75, 1.0, "IY")]
    seen: set[str] = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        y, spans, applied = T._perturb_speaker(x, phones, rng)
        validate_phones(spans, len(y) / SR)
        timed = any(a.startswith(("speed", "tempo", "pad")) for a in applied)
        assert timed or len(y) == len(x)
        z, channel = T._degrade(y, rng, [x])
        assert z.shape == y.shape and z.dtype == np.float32 and np.isfinite(z).all()
        seen |= {a.split(":", 1)[0] for a in applied + channel}
    assert seen >= SPEAKER | CHANNEL
    assert {s for s in seen if s.startswith("noise.")} and {
        s for s in seen if s.startswith("codec.")
    }


def test_render_clip_logs_and_is_deterministic(tmp_path) -> None:  # noqa: ANN001
    import soundfile as sf

    wav = tmp_path / "clip.wav"
    sf.write(wav, speechlike(1.5), SR)
    phones = [
        [0.0, 0.375, "AA"],
        [0.375, 0.5625, "M"],
        [0.5625, 0.75, "SIL"],
        [0.75, 1.125, "IY"],
        [1.125, 1.5, "SIL"],
    ]
    job = (str(wav), phones, 4, 11, [str(wav)], T.DEFAULT_SPEAKER)
    a, b = T.render_clip(job), T.render_clip(job)
    assert [e.augmentations for e in a] == [e.augmentations for e in b]
    for ea, eb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ea.feats, eb.feats)
        assert len(ea.feats) == len(ea.targets) == len(ea.weights)
    assert a[0].augmentations[0] == "clean" and len(a[0].augmentations) == 2  # clean + level only
    assert all(e.augmentations and e.augmentations[0] != "clean" for e in a[1:])
    counts = T.augmentation_counts(a)
    assert counts["examples"] == 4 and counts["clean"] == 1 and counts["gain"] == 4


def test_without_speaker_warps_only_speed_pitch_and_padding_move_the_speaker() -> None:
    rng = np.random.default_rng(3)
    phones = [(0.0, 0.5, "AA"), (0.5, 1.0, "M")]
    seen: set[str] = set()
    for _ in range(40):
        _, ph, applied = T._perturb_speaker(
            speechlike(1.0), phones, rng, T.SpeakerStage(warps=False)
        )
        seen |= {a.split(":")[0] for a in applied}
        assert ph[-1][1] > 0.5  # the phones still tile the (possibly resampled) clip
    assert seen <= {"speed", "pitch", "pad"} and {"speed", "pitch"} <= seen
    seen = set()
    for _ in range(40):
        seen |= {a.split(":")[0] for a in T._perturb_speaker(speechlike(1.0), phones, rng)[2]}
    assert {"tempo", "vtl"} <= seen


def test_a_wider_vtl_range_changes_only_the_warp_factors() -> None:
    """Two ranges at one seed draw the same augmentations: a paired comparison of
    recipes differs in the vocal-tract factors alone."""
    phones = [(0.0, 0.5, "AA"), (0.5, 1.0, "M")]
    narrow = T.SpeakerStage(vtl_range=(0.85, 1.15))
    wide = T.SpeakerStage(vtl_range=(0.85, 1.25))
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    vtls: list[tuple[float, float]] = []
    for _ in range(40):
        a = T._perturb_speaker(speechlike(1.0), phones, rng_a, narrow)[2]
        b = T._perturb_speaker(speechlike(1.0), phones, rng_b, wide)[2]
        assert [x for x in a if not x.startswith("vtl")] == [x for x in b if not x.startswith("vtl")]
        va = [float(x.split(":")[1]) for x in a if x.startswith("vtl")]
        vb = [float(x.split(":")[1]) for x in b if x.startswith("vtl")]
        vtls += list(zip(va, vb, strict=True))
    assert vtls and all(0.85 <= x <= 1.15 and 0.85 <= y <= 1.25 and y >= x - 1e-3 for x, y in vtls)
    assert max(y for _, y in vtls) > 1.15
    # The recipe's own stage keeps the render key it always had; any other gets a tag.
    assert T.DEFAULT_SPEAKER.cache_tag() == ""
    other = narrow if T.DEFAULT_SPEAKER.vtl_range != narrow.vtl_range else wide
    lo, hi = other.vtl_range
    assert other.cache_tag() == f",vtl={lo:g}-{hi:g}"
    assert T.SpeakerStage(warps=False).cache_tag() == ",no-warps"


@pytest.mark.parametrize(
    ("warps", "vtl", "words"),
    [(True, (0.85, 1.4), "1.270"), (True, (1.1, 1.0), "LO < HI"), (False, (0.9, 1.2), "needs the warps")],
)
def test_a_speaker_stage_outside_the_warp_range_is_refused(
    warps: bool, vtl: tuple[float, float], words: str
) -> None:
    with pytest.raises(ValueError, match=words):
        T.SpeakerStage(warps=warps, vtl_range=vtl)


def test_render_cache_key_follows_the_render_code(monkeypatch: pytest.MonkeyPatch) -> None:
    key = T._render_fingerprint()
    assert key == T._render_fingerprint()
    monkeypatch.setattr(T, "RENDER_VERSION", T.RENDER_VERSION + 1)
    assert T._render_fingerprint() != key
    monkeypatch.undo()
    monkeypatch.setitem(T.CODEC_WEIGHTS, "opus", 0.5)
    assert T._render_fingerprint() != key


def test_gsm_without_sox_uses_libsndfile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    A._codec_delay.cache_clear()  # the delay is measured per backend
    try:
        x = speechlike(1.0)
        y = A.gsm_roundtrip(x)
        assert y.shape == x.shape and abs(lag_ms(x, y)) <= 1.0
        assert np.corrcoef(A.band_limit(x), y)[0, 1] > 0.6
    finally:
        A._codec_delay.cache_clear()
