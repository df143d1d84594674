"""Reference values of the threshold-free scores (src/ranking.rs) for tests/it/ranking.rs.

Run once, paste the output into the Rust test (the Rust tests never call Python):
    python3 -m venv /tmp/skenv && /tmp/skenv/bin/pip install scikit-learn
    /tmp/skenv/bin/python crates/halubench-score/tests/reference_ranking.py

AUROC, average precision and Brier score come from scikit-learn; scikit-learn has no
expected calibration error, so ECE is the plain NumPy computation below. The best balanced
accuracy is read off scikit-learn's ROC curve.
"""
import numpy as np
import sklearn.metrics as M

TASKS = ["DROP", "covidQA", "halueval"]
BINS = 10


# The same 300 (task, label, p_fail) rows as `reference_rows()` in tests/it/ranking.rs:
# p_fail = k / 20 takes 21 values, so there are many ties, and both 0.0 and 1.0 occur.
def row(i):
    task = TASKS[i % 3]
    fail = (7 * i + 3) % 5 < 2
    k = (11 * i + 4) % 17 + (4 if fail else 0)
    return task, fail, k / 20


def ece(y, p, bins=BINS):
    # Bin floor(p * bins), with 1.0 in the top bin; empty bins contribute nothing.
    b = np.minimum(np.floor(p * bins).astype(int), bins - 1)
    total = 0.0
    for k in range(bins):
        in_bin = b == k
        if in_bin.any():
            total += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return total


def best_balanced_accuracy(y, p):
    fpr, tpr, thresholds = M.roc_curve(y, p, drop_intermediate=False)
    ba = (tpr + 1 - fpr) / 2
    best = int(np.argmax(ba))  # the first, i.e. the highest threshold, on a tie
    return ba[best], thresholds[best]


rows = [row(i) for i in range(300)]
for task in TASKS + [None]:  # None: all rows
    sel = [r for r in rows if task in (None, r[0])]
    y = np.array([1 if r[1] else 0 for r in sel])
    p = np.array([r[2] for r in sel])
    ba, threshold = best_balanced_accuracy(y, p)
    print(task, len(sel), *(repr(float(x)) for x in (
        M.roc_auc_score(y, p), M.average_precision_score(y, p),
        M.brier_score_loss(y, p), ece(y, p), ba, threshold)))
