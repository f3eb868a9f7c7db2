"""Round AUC per rounded label (and W) against the spread vowels, per voice (as open_by_label.py).

    PYTHONPATH=. python benchmarks/results/session13/issue12/round_by_label.py CORPUS SPLIT VOICE[,VOICE...]
"""

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, 'benchmarks/quality')
import metrics as qm
import numpy as np
import run as qr
import systems as qs

from audio2face.engines.phonemes.phoneset import ROUNDED_VOWELS, SPREAD_VOWELS

corpus, split, voices = sys.argv[1], sys.argv[2], set(sys.argv[3].split(','))
system = qs.default_model()
clips = [c for c in qr.load_corpus(Path(f'{corpus}/{split}')) if c.meta['voice'] in voices]
for v in sorted(voices):
    means = defaultdict(list)
    for c in clips:
        if c.meta['voice'] != v or not c.phones:
            continue
        rd = qm.rounding(system(c.audio, 16000, 30.0, phones=c.phones))
        for p in ROUNDED_VOWELS | SPREAD_VOWELS | {"W"}:
            means[p] += qm.phone_means(rd, c.phones, 30.0, frozenset({p}))
    neg = [x for p in SPREAD_VOWELS for x in means[p]]
    pos = [x for p in ROUNDED_VOWELS | {"W"} for x in means[p]]
    print(v, 'round', round(qm.auc(pos, neg), 3))
    for p in sorted(ROUNDED_VOWELS | {"W"} | SPREAD_VOWELS):
        if means[p]:
            print('   ', p, len(means[p]), 'auc' if p not in SPREAD_VOWELS else 'neg', round(qm.auc(means[p], neg), 3) if p not in SPREAD_VOWELS else '', 'mean', round(float(np.mean(means[p])), 3))
