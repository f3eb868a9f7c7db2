"""Bilabial closure by phone and context, per voice.

    PYTHONPATH=. python benchmarks/results/session13/issue12/closure_by_context.py CORPUS SPLIT VOICE[,VOICE...]

The default model (or ``AUDIO2FACE_DEFAULT_MODEL``) on the clips of those voices, scored by
the quality metric's closure rule, with the bilabials split into P, M, B after a nasal or
a pause (a stop [b]) and B elsewhere: in espeak-ng's Spanish that B is the approximant [β]
(``la boca`` is read ``la βˈoka``), which espeak_phones.json maps to B.
"""
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, 'benchmarks/quality')
import metrics as qm
import run as qr
import systems as qs

corpus, split, voices = sys.argv[1], sys.argv[2], set(sys.argv[3].split(','))
clips = [c for c in qr.load_corpus(Path(f'{corpus}/{split}')) if c.meta['voice'] in voices]
system = qs.default_model()
stats = defaultdict(lambda: [0, 0])
for c in clips:
    fr = system(c.audio, 16000, 30.0, phones=c.phones)
    ap = qm.aperture(fr)
    ph = c.phones
    p90 = qm._speech_p90(ap, ph, 30.0)
    for i, (s, e, p) in enumerate(ph):
        if p not in ('P', 'B', 'M') or e - s < qm.MIN_BILABIAL_S - 1e-9:
            continue
        prev = ph[i - 1][2] if i else 'SIL'
        kind = p
        if p == 'B':
            kind = 'B-stop' if prev in ('M', 'N', 'NG', 'SIL') else 'B-approx'
        closed = p90 >= 0.05 and float(ap[qm._frames_in(s, e, 30.0, ap.size, 1)].min()) <= 0.25 * p90
        stats[(c.meta['voice'], kind)][0] += closed
        stats[(c.meta['voice'], kind)][1] += 1
for k in sorted(stats):
    a, n = stats[k]
    print(f"{k[0]:14s} {k[1]:9s} {a:3d}/{n:3d} = {a/n:.2f}")
