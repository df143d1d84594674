"""Reference values for tests/it/main.rs, computed with scikit-learn and SciPy.

Run once, paste the output into the Rust test (the Rust tests never call Python):
    python3 -m venv /tmp/skenv && /tmp/skenv/bin/pip install scikit-learn scipy
    /tmp/skenv/bin/python crates/halubench-score/tests/reference_values.py
"""
import warnings

import sklearn.metrics as M
from scipy.stats import binomtest

warnings.simplefilter("ignore")  # balanced_accuracy_score warns that INVALID is no label

# The same 210 judgements as `reference_judgements()` in tests/it/main.rs.
def row(i):
    task = ["DROP", "covidQA", "halueval"][i % 3]
    label = "FAIL" if (7 * i + 3) % 5 < 2 else "PASS"
    h = (13 * i + 5) % 17
    wrong = "PASS" if label == "FAIL" else "FAIL"
    verdict = "INVALID" if h < 2 else label if h < 9 + 2 * (i % 3) else wrong
    return task, label, verdict

rows = [row(i) for i in range(210)]
for task in ["DROP", "covidQA", "halueval", None]:  # None: all rows
    sel = [r for r in rows if task in (None, r[0])]
    y, v = [r[1] for r in sel], [r[2] for r in sel]
    b = ["PASS" if p == "INVALID" else p for p in v]  # INVALID = not flagged
    print(task, M.confusion_matrix(y, v, labels=["PASS", "FAIL", "INVALID"])[:2].tolist(),
          *(repr(float(x)) for x in (
              M.accuracy_score(y, v), M.balanced_accuracy_score(y, v),
              M.precision_score(y, b, pos_label="FAIL"), M.recall_score(y, b, pos_label="FAIL"),
              M.f1_score(y, b, pos_label="FAIL"), M.matthews_corrcoef(y, b))))

# Exact McNemar: min(1, 2 * P(X <= min(b, c))), X ~ Binomial(b + c, 1/2).
for b, c in [(1, 4), (3, 7), (10, 3), (40, 65), (400, 480), (5, 60), (1000, 1100)]:
    p = binomtest(min(b, c), b + c, 0.5, alternative="less").pvalue
    print(b, c, repr(min(1.0, 2 * float(p))))
