"""Open AUC per open-vowel label against spread + rounded vowels, per voice.

    PYTHONPATH=. python benchmarks/results/session13/issue12/open_by_label.py CORPUS SPLIT VOICE[,VOICE...]

The default model (or ``AUDIO2FACE_DEFAULT_MODEL``; ``ORACLE=1``: the phone synthesiser) on
the clips of those voices; per open label, its AUC against all spread and rounded vowels,
and the AUC without AH (and, on labels with schwa apart, with AX counted as open, as the
metric did before). Session 13 ran it on data/corpus7's held-out split (labels before
schwa was AX), where every open-AUC miss was AH.
"""
import os
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, 'benchmarks/quality')
import metrics as qm
import numpy as np
import run as qr
import systems as qs

from audio2face.engines.phonemes.phoneset import OPEN_VOWELS, ROUNDED_VOWELS, SPREAD_VOWELS


def label_means(curve: Callable[[np.ndarray], np.ndarray], labels: set[str]) -> dict[str, dict[str, list[float]]]:
    """Per voice named on the command line (``CORPUS SPLIT VOICE[,VOICE...]``), per label: the
    per-phone means of ``curve`` (of the model's frames) over that voice's labelled clips.
    ``ORACLE=1``: the phone synthesiser instead of the model."""
    corpus, split, voices = sys.argv[1], sys.argv[2], set(sys.argv[3].split(','))
    system = qs.oracle if os.environ.get('ORACLE') else qs.default_model()
    clips = [c for c in qr.load_corpus(Path(f'{corpus}/{split}')) if c.meta['voice'] in voices]
    out: dict[str, dict[str, list[float]]] = {}
    for v in sorted(voices):
        means: dict[str, list[float]] = defaultdict(list)
        for c in clips:
            if c.meta['voice'] != v or not c.phones:
                continue
            values = curve(system(c.audio, 16000, 30.0, phones=c.phones))
            for p in labels:
                means[p] += qm.phone_means(values, c.phones, 30.0, frozenset({p}))
        out[v] = means
    return out


def main() -> None:
    for v, means in label_means(qm.aperture, OPEN_VOWELS | SPREAD_VOWELS | ROUNDED_VOWELS | {"AX"}).items():
        neg = [x for p in SPREAD_VOWELS | ROUNDED_VOWELS for x in means[p]]
        pos = [x for p in OPEN_VOWELS for x in means[p]]
        print(v, 'all-open', round(qm.auc(pos, neg), 3), 'n', len(pos), len(neg))
        for p in sorted(OPEN_VOWELS):
            if means[p]:
                print('   ', p, len(means[p]), round(qm.auc(means[p], neg), 3), 'mean ap', round(float(np.mean(means[p])), 3))
        posx = [x for p in OPEN_VOWELS - {'AH'} for x in means[p]]
        print('   without AH', round(qm.auc(posx, neg), 3))
        if means['AX']:  # labels with schwa apart (data/corpus9 on): the metric before it
            print('   AX', len(means['AX']), 'mean ap', round(float(np.mean(means['AX'])), 3),
                  '| AX counted as open (the old metric):', round(qm.auc(pos + means['AX'], neg), 3))
        for p in sorted(SPREAD_VOWELS | ROUNDED_VOWELS):
            if means[p]:
                print('   neg', p, len(means[p]), 'mean ap', round(float(np.mean(means[p])), 3))


if __name__ == '__main__':
    main()
