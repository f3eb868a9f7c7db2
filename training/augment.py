"""On-the-fly audio augmentations for training (pure numpy, seeded, 16 kHz mono).

Every function takes float32 audio (and, where it draws randomness, a
``numpy.random.Generator``), returns new arrays and never mutates its inputs.
Functions that change timing (speed, tempo, padding) also return the transformed
phone spans so labels stay aligned with the audio; every other function keeps the
length *and* the alignment exactly (codec delays are measured and removed).

Groups (``training/train.py`` draws them; ``training/DATA.md`` lists probabilities):

- speaker: :func:`vtl_warp` (formants), :func:`pitch_shift`, :func:`tempo`, :func:`speed`;
- channel: :func:`equalize` / :func:`random_eq`, :func:`band_limit` (telephone),
  :func:`wideband`, :func:`mic_chain_48k`, :func:`codec_roundtrip`, :func:`reverb`,
  :func:`add_noise`, :func:`noise_floor`, :func:`gain`.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

__all__ = [
    "CODECS",
    "EqBand",
    "MicChain",
    "active_rms",
    "add_noise",
    "available_codecs",
    "babble_noise",
    "band_limit",
    "codec_roundtrip",
    "equalize",
    "gain",
    "gsm_roundtrip",
    "has_digital_silence",
    "mic_chain_48k",
    "mu_law_roundtrip",
    "music_background",
    "noise_floor",
    "pad_silence",
    "pink_noise",
    "pitch_shift",
    "random_eq",
    "random_mic_chain",
    "reverb",
    "speed",
    "tempo",
    "vtl_warp",
    "white_noise",
    "wideband",
]

Audio = npt.NDArray[np.float32]
Span = tuple[float, float, str]
SAMPLE_RATE = 16000


def _f32(x: npt.ArrayLike) -> Audio:
    return np.asarray(x, dtype=np.float32)


def _rms(x: npt.NDArray[np.floating]) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0


def _fit(x: npt.ArrayLike, n: int) -> Audio:
    """Crop or zero-pad to exactly ``n`` samples (never loops the signal round)."""
    x = _f32(x)
    return x[:n].copy() if len(x) >= n else np.concatenate([x, np.zeros(n - len(x), np.float32)])


def _fft_len(n: int) -> int:
    return 1 << max(int(n) - 1, 1).bit_length()


def _scale_spans(phones: list[Span], factor: float, duration: float) -> list[Span]:
    scaled = [(s / factor, e / factor, p) for s, e, p in phones]
    if scaled:  # absorb rounding so phones still tile the clip exactly
        scaled[-1] = (scaled[-1][0], duration, scaled[-1][2])
    return scaled


# ----------------------------------------------------------------------------- noise


def white_noise(n: int, rng: np.random.Generator) -> Audio:
    return _f32(rng.standard_normal(n))


def pink_noise(n: int, rng: np.random.Generator) -> Audio:
    """1/f noise by shaping white noise's spectrum (amplitude ∝ f^-1/2)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spectrum), dtype=np.float64)
    f[0] = 1.0
    pink = np.fft.irfft(spectrum / np.sqrt(f), n)
    return _f32(pink / (np.std(pink) + 1e-12))


def babble_noise(others: list[Audio], n: int, rng: np.random.Generator, talkers: int = 4) -> Audio:
    """Sum of random excerpts of other clips (crowd-like speech noise)."""
    if not others:
        raise ValueError("babble_noise needs at least one other clip")
    out = np.zeros(n, np.float64)
    for _ in range(talkers):
        clip = others[int(rng.integers(len(others)))]
        if clip.size == 0:
            continue
        start = int(rng.integers(max(len(clip) - n, 0) + 1))
        piece = np.resize(clip[start : start + n], n)  # loops short clips
        out += piece / (_rms(piece) + 1e-9)
    return _f32(out / (np.std(out) + 1e-12))


def active_rms(audio: Audio, floor_db: float = -40.0) -> float:
    """RMS over the 10 ms frames within ``floor_db`` of the loudest one: the speech level,
    which the padding and pauses around a clip do not dilute (the quality benchmark's
    noise conditions mean the same by "SNR")."""
    n = len(audio) // 160
    if n == 0:
        return _rms(audio)
    power = np.mean(np.square(audio[: n * 160].reshape(n, 160), dtype=np.float64), axis=1)
    active = power[power >= power.max() * 10 ** (floor_db / 10)]
    return float(np.sqrt(active.mean())) if active.size and power.max() > 0 else 0.0


def add_noise(audio: Audio, noise: Audio, snr_db: float, reference_rms: float | None = None) -> Audio:
    """Mix ``noise`` (looped/cropped to length) at ``snr_db`` below the clip's RMS, or below
    ``reference_rms`` (e.g. :func:`active_rms`) when given."""
    if audio.size == 0:
        return _f32(audio.copy())
    noise = np.resize(noise, audio.shape)
    level = _rms(audio) if reference_rms is None else reference_rms
    scale = level / (_rms(noise) + 1e-12) / (10 ** (snr_db / 20))
    return _f32(audio + scale * noise)


def has_digital_silence(audio: Audio, threshold_db: float = -70.0, min_s: float = 0.05) -> bool:
    """True when at least ``min_s`` of 10 ms frames sit below ``threshold_db`` dBFS (RMS):
    synthetic voices pause in exact zeros, which no microphone ever delivers."""
    n = len(audio) // 160
    if n == 0:
        return False
    power = np.mean(np.square(audio[: n * 160].reshape(n, 160), dtype=np.float64), axis=1)
    return int(np.sum(power < 10 ** (threshold_db / 10))) * 0.01 >= min_s


def noise_floor(audio: Audio, rng: np.random.Generator, level_db: float) -> Audio:
    """Add a steady noise floor at ``level_db`` dBFS RMS everywhere (mic self-noise, room
    tone): a random white/pink mix, so rest is learnt against a floor, not digital zero."""
    if audio.size == 0:
        return _f32(audio.copy())
    mix = float(rng.uniform(0.0, 1.0))
    floor = mix * white_noise(len(audio), rng) + (1 - mix) * pink_noise(len(audio), rng)
    floor *= 10 ** (level_db / 20) / (_rms(floor) + 1e-12)
    return _f32(audio + floor)


def music_background(n: int, rng: np.random.Generator, notes: int = 8) -> Audio:
    """Music-like noise: harmonic tones (random pitches, 3-6 partials) under ADSR-ish envelopes."""
    out = np.zeros(n, np.float64)
    t = np.arange(n) / SAMPLE_RATE
    for _ in range(notes):
        f0 = 110.0 * 2 ** (rng.integers(0, 36) / 12)  # A2..A5 on the equal-tempered scale
        start = int(rng.integers(0, max(n - 1, 1)))
        length = int(rng.uniform(0.2, 1.5) * SAMPLE_RATE)
        seg = slice(start, min(n, start + length))
        tt = t[seg] - t[start]
        env = (1 - np.exp(-tt / 0.01)) * np.exp(-tt / rng.uniform(0.2, 0.8))
        tone = sum(np.sin(2 * np.pi * f0 * k * tt) / k**1.5 for k in range(1, int(rng.integers(3, 7))))
        out[seg] += env * tone
    return _f32(out / (np.std(out) + 1e-12))


# ----------------------------------------------------------------------------- room


def reverb(audio: Audio, rng: np.random.Generator, rt60_s: tuple[float, float] = (0.15, 0.8),
           wet: float = 0.5) -> Audio:  # fmt: skip
    """Convolve with a synthetic room response: the direct path at lag 0 (so alignment is
    kept), 3-8 early reflections at 2-25 ms, then a diffuse tail of exponentially decaying
    noise whose treble dies 1.5-2.5x faster (air and wall absorption). ``wet`` is the
    reflected energy relative to the direct path; the output keeps the input's RMS."""
    rt60 = float(rng.uniform(*rt60_s))
    n = max(int(rt60 * SAMPLE_RATE), 64)
    t = np.arange(n) / SAMPLE_RATE
    # Two bands of independent noise decaying at different rates, split at 2-4 kHz.
    lo_n, hi_n = rng.standard_normal(n), rng.standard_normal(n)
    split = np.fft.rfftfreq(n, 1 / SAMPLE_RATE) < rng.uniform(2000.0, 4000.0)
    lo_n = np.fft.irfft(np.fft.rfft(lo_n) * split, n)
    hi_n = np.fft.irfft(np.fft.rfft(hi_n) * ~split, n)
    hf_rt = rt60 / rng.uniform(1.5, 2.5)
    tail = lo_n * np.exp(-6.9 * t / rt60) + hi_n * np.exp(-6.9 * t / hf_rt)  # -60 dB at rt60
    first = int(rng.uniform(0.002, 0.008) * SAMPLE_RATE)
    tail[:first] = 0.0
    tail *= np.clip((np.arange(n) - first) / (0.01 * SAMPLE_RATE), 0.0, 1.0)  # diffuse build-up
    early = np.zeros(n)
    for _ in range(int(rng.integers(3, 9))):
        d = int(rng.uniform(0.002, 0.025) * SAMPLE_RATE)
        early[min(d, n - 1)] += rng.choice([-1.0, 1.0]) * rng.uniform(0.3, 1.0) * 0.002 * SAMPLE_RATE / d
    tail = tail / (np.sqrt(np.sum(tail**2)) + 1e-12) * np.sqrt(max(np.sum(early**2), 0.05))
    ir = early + tail
    ir = ir / (np.sqrt(np.sum(ir**2)) + 1e-12) * wet
    ir[0] = 1.0
    nfft = _fft_len(len(audio) + n - 1)
    out = np.fft.irfft(np.fft.rfft(audio, nfft) * np.fft.rfft(ir, nfft), nfft)[: len(audio)]
    return _f32(out * (_rms(audio) / (_rms(out) + 1e-12)))


# ----------------------------------------------------------------------------- EQ and bands


@dataclass(frozen=True)
class EqBand:
    """One RBJ-cookbook biquad: ``peak``, ``lowshelf``, ``highshelf``, ``highpass`` or ``lowpass``
    (the last two are 2nd order; repeat a band for steeper slopes)."""

    kind: str
    freq_hz: float
    gain_db: float = 0.0
    q: float = 0.707

    def describe(self) -> str:
        shape = f"{self.kind}{self.freq_hz:.0f}"
        return shape if "pass" in self.kind else f"{shape}{self.gain_db:+.1f}"


def _biquad_response(band: EqBand, z: npt.NDArray[np.complex128], sr: int) -> npt.NDArray[np.float64]:
    """|H| of the band's biquad at ``z`` = exp(-j 2 pi f / sr)."""
    g = 10 ** (band.gain_db / 40)  # the cookbook's "A"
    w0 = 2 * np.pi * min(band.freq_hz, 0.49 * sr) / sr
    cw, alpha = np.cos(w0), np.sin(w0) / (2 * band.q)
    sa = 2 * np.sqrt(g) * alpha
    if band.kind == "peak":
        b, a = [1 + alpha * g, -2 * cw, 1 - alpha * g], [1 + alpha / g, -2 * cw, 1 - alpha / g]
    elif band.kind == "lowshelf":
        b = [g * ((g + 1) - (g - 1) * cw + sa), 2 * g * ((g - 1) - (g + 1) * cw), g * ((g + 1) - (g - 1) * cw - sa)]
        a = [(g + 1) + (g - 1) * cw + sa, -2 * ((g - 1) + (g + 1) * cw), (g + 1) + (g - 1) * cw - sa]
    elif band.kind == "highshelf":
        b = [g * ((g + 1) + (g - 1) * cw + sa), -2 * g * ((g - 1) + (g + 1) * cw), g * ((g + 1) + (g - 1) * cw - sa)]
        a = [(g + 1) - (g - 1) * cw + sa, 2 * ((g - 1) - (g + 1) * cw), (g + 1) - (g - 1) * cw - sa]
    elif band.kind == "lowpass":
        b, a = [(1 - cw) / 2, 1 - cw, (1 - cw) / 2], [1 + alpha, -2 * cw, 1 - alpha]
    elif band.kind == "highpass":
        b, a = [(1 + cw) / 2, -(1 + cw), (1 + cw) / 2], [1 + alpha, -2 * cw, 1 - alpha]
    else:
        raise ValueError(f"unknown EQ band kind {band.kind!r}")
    return np.abs((b[0] + b[1] * z + b[2] * z * z) / (a[0] + a[1] * z + a[2] * z * z))


def equalize(audio: Audio, bands: tuple[EqBand, ...] | list[EqBand], sr: int = SAMPLE_RATE) -> Audio:
    """Apply the bands' magnitude responses (zero phase, via one FFT): no delay, so phone
    labels stay aligned; log-mel features do not see phase anyway."""
    if not bands or audio.size == 0:
        return _f32(audio.copy())
    nfft = _fft_len(len(audio) + 4096)  # room for the filters' tails on both sides
    z = np.exp(-1j * 2 * np.pi * np.fft.rfftfreq(nfft, 1 / sr) / sr)
    response = np.ones(len(z))
    for band in bands:
        response *= _biquad_response(band, z, sr)
    return _f32(np.fft.irfft(np.fft.rfft(audio, nfft) * response, nfft)[: len(audio)])


def random_eq(rng: np.random.Generator, bands: tuple[int, int] = (2, 4),
              max_gain_db: float = 9.0) -> tuple[EqBand, ...]:  # fmt: skip
    """2-4 random peaking/shelf filters (log-uniform centre frequency, +-``max_gain_db``):
    the colour of an unknown microphone, speaker or room."""
    out = []
    for _ in range(int(rng.integers(bands[0], bands[1] + 1))):
        kind = str(rng.choice(["peak", "peak", "lowshelf", "highshelf"]))
        lo, hi = {"peak": (150.0, 6500.0), "lowshelf": (80.0, 500.0), "highshelf": (1500.0, 6000.0)}[kind]
        freq = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        out.append(EqBand(kind, freq, float(rng.uniform(-max_gain_db, max_gain_db)), float(rng.uniform(0.5, 2.5))))
    return tuple(out)


def band_limit(audio: Audio, low_hz: float = 300.0, high_hz: float = 3400.0, via_rate: int = 8000) -> Audio:
    """Telephone band: resample down to ``via_rate`` and back (soxr), then cut below ``low_hz``."""
    down = soxr.resample(audio, SAMPLE_RATE, via_rate, quality="HQ")
    up = _fit(soxr.resample(down, via_rate, SAMPLE_RATE, quality="HQ"), len(audio))
    spectrum = np.fft.rfft(up)
    freqs = np.fft.rfftfreq(len(up), 1 / SAMPLE_RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    return _f32(np.fft.irfft(spectrum, len(up)))


def wideband(audio: Audio, cutoff_hz: float = 7000.0, highpass_hz: float = 100.0) -> Audio:
    """A 16 kHz "wideband" device (headset, laptop mic, G.722-class call): 4th-order low-pass
    at ``cutoff_hz`` (7-8 kHz) and 2nd-order high-pass at ``highpass_hz``. Mild on purpose."""
    bands = (EqBand("lowpass", cutoff_hz), EqBand("lowpass", cutoff_hz), EqBand("highpass", highpass_hz))
    return equalize(audio, bands)


@dataclass(frozen=True)
class MicChain:
    """A 48 kHz recording chain: high-pass, mic colour (EQ), preamp saturation, downsampler."""

    highpass_hz: float = 80.0
    eq: tuple[EqBand, ...] = ()
    drive: float = 0.0  # tanh saturation drive; 0 = clean preamp
    resampler: str = "HQ"  # soxr quality of the 48 -> 16 kHz step (LQ rolls off earliest)

    def describe(self) -> str:
        return f"hp{self.highpass_hz:.0f}/eq{len(self.eq)}/drive{self.drive:.1f}/{self.resampler}"


def random_mic_chain(rng: np.random.Generator) -> MicChain:
    presence = float(rng.uniform(2000.0, 8000.0))
    eq = (EqBand("peak", presence, float(rng.uniform(0.0, 6.0)), float(rng.uniform(0.7, 2.0))),
          EqBand("lowshelf", 200.0, float(rng.uniform(-4.0, 6.0))),  # proximity effect (or its absence)
          EqBand("highshelf", 12000.0, float(rng.uniform(-6.0, 3.0))))  # fmt: skip
    drive = float(rng.uniform(1.0, 4.0)) if rng.random() < 0.4 else 0.0
    return MicChain(float(rng.uniform(40.0, 160.0)), eq, drive, str(rng.choice(["LQ", "MQ", "HQ"])))


def mic_chain_48k(audio: Audio, chain: MicChain) -> Audio:
    """Simulate a 48 kHz microphone: upsample, EQ and saturate at 48 kHz (so the
    saturation's harmonics above 8 kHz are removed by a real anti-alias filter rather than
    folded back), then downsample to 16 kHz. Length and alignment kept (soxr is zero-delay)."""
    if audio.size == 0:
        return _f32(audio.copy())
    x = soxr.resample(audio, SAMPLE_RATE, 48000, quality="HQ")
    x = equalize(x, (EqBand("highpass", chain.highpass_hz), *chain.eq), sr=48000)
    if chain.drive > 0:
        peak = float(np.max(np.abs(x))) + 1e-9
        x = np.tanh(chain.drive * x / peak) / np.tanh(chain.drive) * peak  # same peak, squashed body
    return _fit(soxr.resample(x, 48000, SAMPLE_RATE, quality=chain.resampler), len(audio))


# ----------------------------------------------------------------------------- codecs

CODECS = ("gsm", "mulaw", "g722", "adpcm", "opus", "vorbis", "mp3")
_RAW16 = ["-t", "raw", "-e", "signed", "-b", "16", "-c", "1"]


def _pcm16(audio: Audio) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def _sf_roundtrip(audio: Audio, fmt: str, subtype: str, level: float | None, sr: int = SAMPLE_RATE) -> Audio:
    buf = io.BytesIO()
    kw = {} if level is None else {"compression_level": level}
    sf.write(buf, np.clip(audio, -1, 1), sr, format=fmt, subtype=subtype, **kw)
    buf.seek(0)
    return _f32(sf.read(buf, dtype="float32")[0])


def _gsm_raw(audio: Audio) -> Audio:
    if shutil.which("sox") is None:  # libsndfile's GSM 06.10 at 8 kHz is the same codec
        down = _f32(soxr.resample(audio, SAMPLE_RATE, 8000, quality="HQ"))
        return _f32(soxr.resample(_sf_roundtrip(down, "WAV", "GSM610", None, 8000), 8000, SAMPLE_RATE, quality="HQ"))
    sox = ["sox", "-D", "-R"]  # no dither, repeatable: the same input gives the same output
    gsm = subprocess.run([*sox, *_RAW16, "-r", str(SAMPLE_RATE), "-", "-t", "gsm", "-r", "8000", "-"],
                         input=_pcm16(audio), capture_output=True, check=True).stdout  # fmt: skip
    back = subprocess.run([*sox, "-t", "gsm", "-r", "8000", "-c", "1", "-", *_RAW16, "-r", str(SAMPLE_RATE), "-"],
                          input=gsm, capture_output=True, check=True).stdout  # fmt: skip
    return _f32(np.frombuffer(back, dtype="<i2").astype(np.float32) / 32768.0)


def _g722_raw(audio: Audio) -> Audio:
    quiet = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin"]
    enc = subprocess.run([*quiet, "-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", "pipe:0",
                          "-c:a", "g722", "-f", "g722", "pipe:1"],
                         input=_pcm16(audio), capture_output=True, check=True).stdout  # fmt: skip
    dec = subprocess.run([*quiet, "-f", "g722", "-i", "pipe:0", "-f", "s16le", "-ac", "1", "pipe:1"],
                         input=enc, capture_output=True, check=True).stdout  # fmt: skip
    return _f32(np.frombuffer(dec, dtype="<i2").astype(np.float32) / 32768.0)


def _codec_raw(audio: Audio, codec: str, quality: float) -> Audio:
    """Encode and decode; the output may be delayed and of another length."""
    q = float(np.clip(quality, 0.0, 1.0))
    if codec == "gsm":
        return _gsm_raw(audio)
    if codec == "mulaw":  # G.711 is an 8 kHz codec: telephone band, then companding
        return mu_law_roundtrip(band_limit(audio))
    if codec == "g722":
        return _g722_raw(audio)
    if codec == "adpcm":  # IMA ADPCM at 16 kHz (4 bits/sample): cheap devices and DECT-like links
        return _sf_roundtrip(audio, "WAV", "IMA_ADPCM", None)
    # libsndfile's compression levels, mapped so that quality 0..1 spans useful bitrates here:
    # Opus ~10-40 kbit/s, Vorbis ~29-64 kbit/s, MP3 (VBR, gapless) ~28-76 kbit/s at 16 kHz.
    if codec == "opus":
        return _sf_roundtrip(audio, "OGG", "OPUS", 0.99 - 0.14 * q)
    if codec == "vorbis":
        return _sf_roundtrip(audio, "OGG", "VORBIS", 1.0 - 0.7 * q)
    if codec == "mp3":
        return _sf_roundtrip(audio, "MP3", "MPEG_LAYER_III", 0.99 - 0.99 * q)
    raise ValueError(f"unknown codec {codec!r}; expected one of {CODECS}")


@functools.cache
def available_codecs() -> tuple[str, ...]:
    """The codecs this machine can run (g722 needs ffmpeg; the others libsndfile or sox)."""
    have = set(sf.available_formats())
    subtypes = {fmt: set(sf.available_subtypes(fmt)) for fmt in ("OGG", "MP3")}
    ok = {"gsm": True, "mulaw": True, "adpcm": True, "g722": shutil.which("ffmpeg") is not None,
          "opus": "OPUS" in subtypes["OGG"], "vorbis": "VORBIS" in subtypes["OGG"],
          "mp3": "MP3" in have and "MPEG_LAYER_III" in subtypes["MP3"]}  # fmt: skip
    return tuple(c for c in CODECS if ok[c])


def _lag(ref: npt.NDArray[np.floating], out: npt.NDArray[np.floating], max_lag: int) -> int:
    """Delay of ``out`` against ``ref`` in samples (cross-correlation peak within +-max_lag)."""
    nfft = _fft_len(len(ref) + len(out))
    c = np.fft.irfft(np.fft.rfft(out, nfft) * np.conj(np.fft.rfft(ref, nfft)), nfft)
    window = np.concatenate([c[-max_lag:], c[: max_lag + 1]])
    return int(np.argmax(window)) - max_lag


@functools.cache
def _codec_delay(codec: str) -> int:
    """The codec's delay, measured once per process on a fixed probe (speech-band noise
    bursts) so it follows whatever libsndfile/sox/ffmpeg version is installed."""
    rng = np.random.default_rng(12)
    probe = band_limit(_f32(rng.standard_normal(SAMPLE_RATE) * 0.2), 300.0, 3400.0)
    probe *= np.repeat(rng.random(20) < 0.6, SAMPLE_RATE // 20).astype(np.float32)
    return _lag(probe, _codec_raw(probe, codec, 0.5), int(0.03 * SAMPLE_RATE))


def codec_roundtrip(audio: Audio, codec: str, quality: float = 0.5) -> Audio:
    """Encode with ``codec`` (see :data:`CODECS`) and decode back to 16 kHz, with the codec's
    delay removed and the length kept, so phone labels stay aligned. ``quality`` 0..1 picks
    the bitrate where the codec has one (0 = the lowest used here)."""
    if audio.size == 0:
        return _f32(audio.copy())
    out = _codec_raw(audio, codec, quality)
    delay = _codec_delay(codec)
    out = out[delay:] if delay >= 0 else np.concatenate([np.zeros(-delay, np.float32), out])
    return _fit(out, len(audio))


def mu_law_roundtrip(audio: Audio, bits: int = 8) -> Audio:
    """G.711-like companding to ``bits`` and back (quantisation noise shaped like a codec)."""
    mu = float(2**bits - 1)
    x = np.clip(audio, -1.0, 1.0)
    encoded = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((encoded + 1) / 2 * mu) / mu * 2 - 1
    return _f32(np.sign(q) * np.expm1(np.abs(q) * np.log1p(mu)) / mu)


def gsm_roundtrip(audio: Audio) -> Audio:
    """GSM 06.10 at 8 kHz and back (sox, else libsndfile), delay removed, length kept."""
    return codec_roundtrip(audio, "gsm")


# ----------------------------------------------------------------------------- speaker and timing

_N_FFT, _HOP = 512, 128  # 32 ms frames, 75 % overlap: sqrt-Hann analysis x synthesis sums to 2
_SQRT_HANN = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(_N_FFT) / _N_FFT))


def _stft(x: Audio) -> npt.NDArray[np.complex128]:
    xp = np.concatenate([np.zeros(_N_FFT), x, np.zeros(_N_FFT + _HOP)])
    frames = np.lib.stride_tricks.sliding_window_view(xp, _N_FFT)[::_HOP]
    return np.fft.rfft(frames * _SQRT_HANN, axis=1)


def _istft(spec: npt.NDArray[np.complex128], n: int) -> Audio:
    frames = np.fft.irfft(spec, _N_FFT, axis=1) * _SQRT_HANN
    f = len(frames)
    parts = frames.reshape(f, _N_FFT // _HOP, _HOP)
    out = np.zeros((f + _N_FFT // _HOP - 1, _HOP))
    for k in range(_N_FFT // _HOP):
        out[k : k + f] += parts[:, k]
    return _f32(out.ravel()[_N_FFT : _N_FFT + n] / 2.0)


def _lpc_log_envelope(spec: npt.NDArray[np.complex128], order: int) -> npt.NDArray[np.float64]:
    """Per-frame log-magnitude LPC envelope (up to a gain), all frames at once: the
    autocorrelation is the inverse FFT of the power spectrum, then Levinson-Durbin.
    LPC follows formant peaks more closely than a cepstrally smoothed spectrum."""
    r = np.fft.irfft(np.abs(spec) ** 2, _N_FFT, axis=1)[:, : order + 1]
    r = r * np.exp(-0.5 * (2 * np.pi * 40.0 * np.arange(order + 1) / SAMPLE_RATE) ** 2)  # 40 Hz lag window
    r[:, 0] = r[:, 0] * (1 + 1e-6) + 1e-12  # white-noise floor: silent frames stay well-posed
    a = np.zeros((len(r), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1 : 0 : -1], axis=1)) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1 : 0 : -1]
        a[:, i] = k
        err = err * (1 - k * k)
    return -np.log(np.abs(np.fft.rfft(a, _N_FFT, axis=1)) + 1e-12)


def vtl_warp(audio: Audio, factor: float, order: int = 18) -> Audio:
    """Vocal-tract-length warp: move the spectral envelope (formants) by ``factor`` (> 1: a
    shorter tract, formants up) while keeping pitch and timing exactly.

    Per 32 ms frame, the envelope is an order-``order`` LPC fit; each bin is scaled by
    envelope(f / factor) / envelope(f), capped at +-26 dB, and the frame keeps its phase, so
    the harmonics stay where they were and only their weights follow the warped formants.
    The output keeps the input's RMS and exact length (phone labels stay valid).
    """
    if not 0.6 <= factor <= 1.6:
        raise ValueError(f"vtl factor must be in 0.6..1.6, got {factor}")
    if audio.size == 0 or factor == 1.0:
        return _f32(audio.copy())
    spec = _stft(audio)
    env = _lpc_log_envelope(spec, order)
    bins = spec.shape[1]
    src = np.minimum(np.arange(bins) / factor, bins - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, bins - 1)
    frac = src - i0
    warped = env[:, i0] * (1 - frac) + env[:, i1] * frac
    out = _istft(spec * np.exp(np.clip(warped - env, -3.0, 3.0)), len(audio))
    return _f32(out * (_rms(audio) / (_rms(out) + 1e-12)))


def _wsola(x: Audio, n_out: int, frame: int = 384, tolerance: int = 96) -> Audio:
    """Time-stretch to ``n_out`` samples without changing pitch (WSOLA: each output frame
    copies the input segment, within +-``tolerance`` of its nominal position, that best
    continues the previous one, so voiced periods line up instead of cancelling)."""
    hop = frame // 2
    if n_out <= 0:
        return np.zeros(0, np.float32)
    if len(x) < frame + 2 * tolerance or n_out < frame:  # too short to stretch: resample
        if len(x) == 0:
            return np.zeros(n_out, np.float32)
        return _f32(np.interp(np.linspace(0, len(x) - 1, n_out), np.arange(len(x)), x))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)
    alpha = len(x) / n_out
    pad = tolerance + frame
    xp = np.concatenate([np.zeros(tolerance), x, np.zeros(2 * pad + hop)]).astype(np.float64)
    frames = n_out // hop + 1
    out = np.zeros(frames * hop + frame)
    norm = np.zeros(frames * hop + frame)
    prev = 0
    for k in range(frames):
        nominal = min(int(round(k * hop * alpha)), len(x))
        if k == 0:
            best = 0
        else:
            template = xp[tolerance + prev + hop : tolerance + prev + hop + frame]
            region = xp[nominal : nominal + 2 * tolerance + frame]
            best = nominal - tolerance + int(np.argmax(np.correlate(region, template, "valid")))
        out[k * hop : k * hop + frame] += xp[tolerance + best : tolerance + best + frame] * window
        norm[k * hop : k * hop + frame] += window
        prev = best
    return _f32(out[:n_out] / np.maximum(norm[:n_out], 1e-3))


def tempo(audio: Audio, factor: float, phones: list[Span] | None = None) -> tuple[Audio, list[Span] | None]:
    """Speak ``factor`` times faster with the same pitch and formants (WSOLA); phone times
    are divided by ``factor`` (WSOLA follows that map to within +-6 ms)."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"tempo factor must be in 0.5..2.0, got {factor}")
    out = _wsola(audio, int(round(len(audio) / factor)))
    return out, None if phones is None else _scale_spans(phones, factor, len(out) / SAMPLE_RATE)


def speed(audio: Audio, factor: float, phones: list[Span] | None = None) -> tuple[Audio, list[Span] | None]:
    """Play ``factor`` times faster (pitch and formants rise too); phone times are divided by ``factor``."""
    if not 0.5 <= factor <= 2.0:
        raise ValueError(f"speed factor must be in 0.5..2.0, got {factor}")
    out = _f32(soxr.resample(audio, SAMPLE_RATE * factor, SAMPLE_RATE, quality="HQ"))
    return out, None if phones is None else _scale_spans(phones, factor, len(out) / SAMPLE_RATE)


def pitch_shift(audio: Audio, semitones: float, keep_formants: bool = False) -> Audio:
    """Shift pitch while keeping duration: resample, then WSOLA back to the length. That
    moves the formants with the pitch; ``keep_formants`` warps them back (:func:`vtl_warp`)."""
    if not -12.0 <= semitones <= 12.0:
        raise ValueError(f"semitones must be in -12..12, got {semitones}")
    ratio = 2 ** (semitones / 12)
    shifted = _wsola(_f32(soxr.resample(audio, SAMPLE_RATE * ratio, SAMPLE_RATE, quality="HQ")), len(audio))
    return vtl_warp(shifted, float(np.clip(1 / ratio, 0.6, 1.6))) if keep_formants else shifted


def gain(audio: Audio, db: float) -> Audio:
    """Scale by ``db`` decibels (may clip on purpose: real inputs clip too)."""
    return _f32(np.clip(audio * 10 ** (db / 20), -1.0, 1.0))


def pad_silence(audio: Audio, lead_s: float, trail_s: float, phones: list[Span] | None = None,
                noise_floor_db: float | None = None, rng: np.random.Generator | None = None
                ) -> tuple[Audio, list[Span] | None]:  # fmt: skip
    """Add (optionally faintly noisy) silence at both ends; shift phones, extending edge SIL."""
    if lead_s < 0 or trail_s < 0:
        raise ValueError("padding must be non-negative")
    lead, trail = round(lead_s * SAMPLE_RATE), round(trail_s * SAMPLE_RATE)
    out = np.concatenate([np.zeros(lead, np.float32), audio, np.zeros(trail, np.float32)])
    if noise_floor_db is not None:
        gen = rng if rng is not None else np.random.default_rng(0)
        out = out + _f32(gen.standard_normal(len(out)) * 10 ** (noise_floor_db / 20))
    if phones is None:
        return _f32(out), None
    shift, duration = lead / SAMPLE_RATE, len(out) / SAMPLE_RATE
    spans = [(s + shift, e + shift, p) for s, e, p in phones]
    if spans and shift > 0:
        spans = ([(0.0, spans[0][1], "SIL")] + spans[1:]) if spans[0][2] == "SIL" else [(0.0, shift, "SIL"), *spans]
    if spans and duration > spans[-1][1]:
        last = spans[-1]
        spans[-1:] = [(last[0], duration, "SIL")] if last[2] == "SIL" else [last, (last[1], duration, "SIL")]
    return _f32(out), spans
