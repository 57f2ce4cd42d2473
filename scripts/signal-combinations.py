#!/usr/bin/env python3
"""Does any combination of the controller's signals rank verb errors better than entropy alone?

Fits each candidate on the calibration episodes and scores it on the evaluation episodes
(error-detection AUROC, decisions whose frames pass the checks), from the CSV dumps of
`mgpt eval controller --dump`:

  mgpt eval controller --seed 7 --episodes 200 --fault-episodes 0 --hazard-episodes 0 --offline-only --dump out/cal.csv
  mgpt eval controller --seed 5 --episodes 200 --fault-episodes 0 --hazard-episodes 0 --offline-only --dump out/eval.csv
  python3 scripts/signal-combinations.py out/cal.csv out/eval.csv

Candidates: logistic regressions (the model's signals; + the proposed verb; + verb × entropy /
probability interactions; + what the frame shows — nearest scanner range, route-hint bearing — alone
and per proposed verb, the feature set `mgpt calibrate` fits since issue 14's frame features) and fitting-free rank blends of entropy with
exit-head disagreement. Dumps made with `--second-opinion Models/robot` (a second, independently
trained model deciding beside the deployed one) add the ensemble candidates. Needs numpy only.
"""
import csv
import sys

import numpy as np

VERBS = ["DONE", "FORWARD", "STOP", "TURN_LEFT", "TURN_RIGHT"]


def load(path):
    rows = [r for r in csv.DictReader(open(path)) if r["set"] == "nominal" and r["sensor_flags"] == "0"]
    col = {k: np.array([float(r[k]) for r in rows]) for k in
           ["probability", "entropy", "margin", "grammar_mass", "exit_disagreement", "temporal_disagreement",
            "head_disagreement", "confidence"]}
    col["verb"] = np.array([r["proposal"].split("(")[0] for r in rows])
    # `--second-opinion DIR` fills this column (JS of the two models' verb distributions).
    if rows and rows[0].get("ensemble_disagreement"):
        col["ensemble"] = np.array([float(r["ensemble_disagreement"]) for r in rows])
    # What the frame shows (dumps since these columns were added): the nearest scanner range and
    # the route hint's bearing (inf without one), as DecisionSignals holds them.
    if rows and rows[0].get("nearest_range"):
        for k in ["nearest_range", "route_bearing"]:
            col[k] = np.array([float(r[k]) for r in rows])
    col["wrong_tolerant"] = np.array([int(r["wrong_tolerant"]) for r in rows])
    return col, np.array([int(r["wrong"]) for r in rows])


def ranks(x):
    """Average ranks (1-based), ties shared."""
    order = np.argsort(x, kind="mergesort")
    r = np.empty(len(x))
    sx = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sx[j + 1] == sx[i]:
            j += 1
        r[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return r


def auroc(score, y):
    r = ranks(score)
    n1 = y.sum()
    n0 = len(y) - n1
    return (r[y == 1].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)


def risk(score, y, coverage=0.9):
    """Error rate among the `coverage` share of decisions with the lowest score (accepted)."""
    keep = np.argsort(score, kind="mergesort")[: int(round(coverage * len(y)))]
    return y[keep].mean()


def logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def features(c, kind):
    base = np.c_[logit(c["probability"]), c["entropy"], c["margin"], logit(c["grammar_mass"]),
                 c["exit_disagreement"], c["temporal_disagreement"], c["head_disagreement"]]
    onehot = np.stack([(c["verb"] == v).astype(float) for v in VERBS[1:]], 1)
    if kind == "calibration features":
        return base
    if kind == "+ proposed verb":
        return np.c_[base, onehot]
    if kind in ("+ what the frame shows", "shipped: verb × (near obstacle, route ahead)"):
        # DecisionSignals.nearObstacle / routeAhead: e^(−r / 0.3 m), e^(−|b| / 0.2 rad), 0 when absent
        near = np.exp(-np.maximum(c["nearest_range"], 0) / 0.3)
        ahead = np.exp(-np.abs(c["route_bearing"]) / 0.2)
        if kind == "+ what the frame shows":
            return np.c_[base, near, ahead]
        return np.c_[base, onehot, onehot * near[:, None], onehot * ahead[:, None]]
    if kind == "+ second opinion":
        e = c["ensemble"]
        return np.c_[base, e, np.sqrt(e), e * c["entropy"]]
    return np.c_[base, onehot, onehot * c["entropy"][:, None], onehot * logit(c["probability"])[:, None]]


def fit(x, y, l2=1e-3, steps=30):
    """L2-regularised logistic regression by Newton's method (as mgpt calibrate fits)."""
    xb = np.c_[x, np.ones(len(x))]
    w = np.zeros(xb.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(xb @ w)))
        g = xb.T @ (p - y) / len(y) + l2 * w
        h = (xb * (p * (1 - p))[:, None]).T @ xb / len(y) + l2 * np.eye(len(w))
        w -= np.linalg.solve(h, g)
    return w[:-1]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    (cal, ycal), (ev, yev) = load(sys.argv[1]), load(sys.argv[2])
    print(f"calibration decisions={len(ycal)} errors={ycal.sum()}  evaluation decisions={len(yev)} errors={yev.sum()}")
    best = auroc(ev["entropy"], yev)
    print(f"candidate=entropy eval_auroc={best:.4f}")
    print(f"candidate=shipped_confidence eval_auroc={auroc(-ev['confidence'], yev):.4f}")
    kinds = ["calibration features", "+ proposed verb", "+ verb interactions"]
    if "ensemble" in cal and "ensemble" in ev:
        print(f"candidate=ensemble_disagreement eval_auroc={auroc(ev['ensemble'], yev):.4f}")
        kinds.append("+ second opinion")
    for kind in kinds:
        xc, xe = features(cal, kind), features(ev, kind)
        mu, sd = xc.mean(0), xc.std(0) + 1e-9
        w = fit((xc - mu) / sd, ycal)
        print(f"candidate=logistic({kind}) cal_auroc={auroc((xc - mu) / sd @ w, ycal):.4f} "
              f"eval_auroc={auroc((xe - mu) / sd @ w, yev):.4f}")
    if "nearest_range" in cal and "nearest_range" in ev:
        for kind in ["+ what the frame shows", "shipped: verb × (near obstacle, route ahead)"]:
            xc, xe = features(cal, kind), features(ev, kind)
            mu, sd = xc.mean(0), xc.std(0) + 1e-9
            w = fit((xc - mu) / sd, ycal)
            se = (xe - mu) / sd @ w
            print(f"candidate=logistic({kind}) cal_auroc={auroc((xc - mu) / sd @ w, ycal):.4f} eval_auroc={auroc(se, yev):.4f} "
                  f"risk_at_90={risk(se, yev):.4f} tolerant_risk_at_90={risk(se, ev['wrong_tolerant']):.4f}")
        print(f"candidate=entropy risk_at_90={risk(ev['entropy'], yev):.4f} tolerant_risk_at_90={risk(ev['entropy'], ev['wrong_tolerant']):.4f}")
    rh, rx = ranks(ev["entropy"]) / len(yev), ranks(ev["exit_disagreement"]) / len(yev)
    for a in [1.0, 0.3]:
        print(f"candidate=rank(entropy)+{a}*rank(exit_disagreement) eval_auroc={auroc(rh + a * rx, yev):.4f}")
    print(f"candidate=max(rank(entropy),rank(exit_disagreement)) eval_auroc={auroc(np.maximum(rh, rx), yev):.4f}")
    if "ensemble" in ev:
        re = ranks(ev["ensemble"]) / len(yev)
        for a in [1.0, 0.5, 0.3]:
            print(f"candidate=rank(entropy)+{a}*rank(ensemble_disagreement) eval_auroc={auroc(rh + a * re, yev):.4f}")


if __name__ == "__main__":
    main()
