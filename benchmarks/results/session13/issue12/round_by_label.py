"""Round AUC per rounded label (and W) against the spread vowels, per voice (as open_by_label.py).

    PYTHONPATH=. python benchmarks/results/session13/issue12/round_by_label.py CORPUS SPLIT VOICE[,VOICE...]
"""

import numpy as np
from open_by_label import label_means, qm  # this folder is the script's own (sys.path[0])

from audio2face.engines.phonemes.phoneset import ROUNDED_VOWELS, SPREAD_VOWELS


def main() -> None:
    for v, means in label_means(qm.rounding, ROUNDED_VOWELS | SPREAD_VOWELS | {"W"}).items():
        neg = [x for p in SPREAD_VOWELS for x in means[p]]
        pos = [x for p in ROUNDED_VOWELS | {"W"} for x in means[p]]
        print(v, 'round', round(qm.auc(pos, neg), 3))
        for p in sorted(ROUNDED_VOWELS | {"W"} | SPREAD_VOWELS):
            if means[p]:
                print('   ', p, len(means[p]), 'auc' if p not in SPREAD_VOWELS else 'neg', round(qm.auc(means[p], neg), 3) if p not in SPREAD_VOWELS else '', 'mean', round(float(np.mean(means[p])), 3))


if __name__ == '__main__':
    main()
