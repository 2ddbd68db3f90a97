"""oref0 autotune's method (``lib/autotune-prep/categorize.js`` and ``lib/autotune/index.js``) on
the 5-minute grid, one day at a time, each day starting from the previous day's result and capped
against the current ("pump") settings. Formula by formula in ``docs/tune.md``; in short:

* insulin is counted net of the basal being tuned; ``BGI = -activity * ISF`` (mg/dL per 5 min),
  ``avgDelta = (BG_i - BG_{i-4}) / 4``, ``deviation = avgDelta - BGI`` (0 when BG < 80 and > 0);
* carbs on board fall by ``max(deviation, 8) * CR / ISF`` per 5 minutes; while they are on board
  (or deviations stay positive with IOB above half the basal) a point is *carb absorption*;
  otherwise it is *unannounced meal* when IOB > 2 x basal, deviation > 6 or the previous was,
  *basal* when ``basal * ISF / 12 > -4 BGI`` or ``avgDelta > max(0, -2 BGI)``, else *ISF*;
* basal: each hour's summed basal deviations give ``0.2 * sum / ISF`` U/h spread over the three
  hours before; ISF: the median of ``1 + deviation / BGI`` over ISF points (>= 10) scales ISF,
  then ``0.8 old + 0.2 new``; CR: total carbs / (IOB at start + insulin dosed + dBG / ISF) over
  meal periods, then ``0.8 old + 0.2 new``; all capped to ``[0.7, 1.2]`` x current (ISF inversely).

oref0 tunes one ISF and one CR; here their single factor scales the whole hourly schedule.
"""
from __future__ import annotations

import numpy as np

from .data import BIN_MIN, Stream

MIN_5M_CARBIMPACT = 8.0
MIN_READINGS_PER_DAY = 12
"""Days (local dates) with fewer readings are skipped and listed in ``details["skipped_days"]``."""
AUTOSENS_MIN, AUTOSENS_MAX = 0.7, 1.2
CSF, UAM, BASAL, ISF = 1, 2, 3, 4


def _day_index(hour: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(hour[1:] < hour[:-1])))


def categorize(bg, net_activity, iob, carbs_g, hour, isf, cr, basal, pump_basal):
    """Categorise each 5-minute point; returns (category, deviation, bgi, avg_delta, cr_periods).

    ``cr_periods`` is a list of (start bin, end bin, carbs g) meal periods of at least an hour.
    """
    n = bg.size
    cat = np.zeros(n, dtype=int)
    dev, bgi, avg = np.full(n, np.nan), np.full(n, np.nan), np.full(n, np.nan)
    current_basal = np.mean([pump_basal[(hour - k) % 24] for k in range(4)], axis=0)
    meal_cob = meal_carbs = 0.0
    absorbing = uam = calculating = False
    kind = 0
    periods, cr_carbs, cr_start = [], 0.0, 0
    for i in range(4, n):
        meal_cob += carbs_g[i]
        meal_carbs += carbs_g[i]
        my_carbs = carbs_g[i]
        if not (np.isfinite(bg[i]) and np.isfinite(bg[i - 4])) or bg[i] < 40 or bg[i - 4] < 40:
            continue
        h = hour[i]
        a = (bg[i] - bg[i - 4]) / 4.0
        b = -net_activity[i] * isf[h]
        d = a - b
        if bg[i] < 80 and d > 0:
            d = 0.0
        avg[i], bgi[i], dev[i] = a, b, d
        if meal_cob > 0:
            meal_cob = max(0.0, meal_cob - max(d, MIN_5M_CARBIMPACT) * cr[h] / isf[h])
        if meal_cob > 0 or calculating:
            cr_carbs += my_carbs
            if not calculating:
                cr_start = i
            if meal_cob > 0 or iob[i] > current_basal[i] / 2:
                calculating = True
            else:
                if (i - cr_start) * BIN_MIN >= 60:
                    periods.append((cr_start, i, cr_carbs))
                cr_carbs, calculating = 0.0, False
        if meal_cob > 0 or absorbing or meal_carbs > 0:
            absorbing = iob[i] >= current_basal[i] / 2 and d > 0
            if not absorbing and not meal_cob:
                meal_carbs = 0.0
            kind = CSF
        elif iob[i] > 2 * current_basal[i] or d > 6 or uam:
            uam = d > 0
            kind = UAM
        elif basal[h] * isf[h] / 60.0 * 5.0 > -4.0 * b or (a > 0 and a > -2.0 * b):
            kind = BASAL
        else:
            kind = ISF
        cat[i] = kind
    return cat, dev, bgi, avg, periods


def _reassign(cat: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """oref0's use of unannounced-meal points when other categories are thin."""
    cat = cat.copy()
    n_csf, n_uam = np.sum(cat == CSF), np.sum(cat == UAM)
    n_basal, n_isf = np.sum(cat == BASAL), np.sum(cat == ISF)
    if n_csf > 12:
        cat[cat == UAM] = BASAL
    else:
        if 2 * n_basal < n_uam:
            pool = np.flatnonzero((cat == BASAL) | (cat == UAM))
            keep = pool[np.argsort(dev[pool], kind="stable")[: pool.size // 2]]
            cat[pool] = 0
            cat[keep] = BASAL
        if 2 * n_isf < n_uam and n_isf < 10:
            pool = np.flatnonzero((cat == ISF) | (cat == UAM))
            keep = pool[np.argsort(dev[pool], kind="stable")[: pool.size // 2]]
            cat[pool[cat[pool] == UAM]] = 0
            cat[keep] = ISF
    n_basal, n_isf, n_csf = np.sum(cat == BASAL), np.sum(cat == ISF), np.sum(cat == CSF)
    if 4 * n_basal + n_isf < n_csf and n_isf < 10:
        cat[cat == CSF] = ISF
    return cat


def tune_basal(basal, cat, dev, hour, isf, pump_basal, lo, hi):
    """New hourly basal: ``0.2 * sum(deviation) / ISF`` per hour over the three hours before, capped;
    hours left unchanged become ``0.8 old + 0.1 (last tuned) + 0.1 (next tuned)``."""
    new = basal.copy()
    for h in range(24):
        sel = (cat == BASAL) & (hour == h)
        needed = 0.2 * float(np.sum(dev[sel])) / isf[h]
        before = [(h + k) % 24 for k in (-3, -2, -1)]
        if needed > 0:
            new[before] += needed / 3.0
        elif needed < 0:
            new[before] *= 1.0 + needed / float(np.sum(new[before]))
    new = np.clip(new, pump_basal * lo, pump_basal * hi)
    tuned = new != basal
    out = new.copy()
    last = 0
    for h in range(24):
        if not tuned[h]:
            nxt = next((k for k in range(h, 24) if tuned[k]), 23)
            out[h] = 0.8 * basal[h] + 0.1 * new[last] + 0.1 * new[nxt]
        else:
            last = h
    # oref0 smooths after capping, so a smoothed hour can pass its own cap when the current basal
    # schedule varies; here the caps hold for every hour.
    return np.clip(out, pump_basal * lo, pump_basal * hi)


def tune_isf(isf_mean, cat, dev, bgi, pump_isf, lo, hi):
    """New ISF (one factor): median of ``1 + deviation / BGI`` over ISF points, 20% of the way, capped."""
    sel = cat == ISF
    full = isf_mean * float(np.median(1.0 + dev[sel] / bgi[sel])) if np.sum(sel) >= 10 else isf_mean
    adjusted = isf_mean if full < 0 else min(max(full, pump_isf / hi), pump_isf / lo)
    return min(max(0.8 * isf_mean + 0.2 * adjusted, pump_isf / hi), pump_isf / lo), full


def tune_cr(cr_mean, isf_mean, periods, bg, iob, net_insulin, pump_cr, lo, hi):
    """New CR (one factor): total carbs / total insulin over meal periods, 20% of the way, capped."""
    carbs = insulin = 0.0
    for start, end, grams in periods:
        total = iob[start] + float(np.sum(net_insulin[start:end])) + (bg[end] - bg[start]) / isf_mean
        if total > 0:
            carbs += grams
            insulin += total
    full = carbs / insulin if insulin > 0 and carbs > 0 else cr_mean
    full = min(max(full, max(pump_cr * lo, 3.0)), min(pump_cr * hi, 150.0))
    new = min(max(0.8 * cr_mean + 0.2 * full, max(pump_cr * lo, 3.0)), min(pump_cr * hi, 150.0))
    return new, full


def autotune(obs, current: np.ndarray, free: np.ndarray, tuning_limit: float | None):
    """Run autotune day by day; returns ((3, 24) hourly ISF, CR, basal, not_estimable, details)."""
    lo, hi = (1.0 - tuning_limit, 1.0 + tuning_limit) if tuning_limit else (AUTOSENS_MIN, AUTOSENS_MAX)
    pump_isf, pump_cr, pump_basal = current
    isf, cr, basal = (c.copy() for c in current)
    delivered = obs.insulin_delivered()
    carbs = obs.carbs_entered()
    model = obs.insulin[0].insulin_model
    days = _day_index(obs.hour)
    per_day = []
    counts, raw_counts = np.zeros(5, dtype=int), np.zeros(5, dtype=int)
    skipped = []
    for day in np.unique(days):
        if np.sum(np.isfinite(obs.glucose[days == day])) < MIN_READINGS_PER_DAY:
            skipped.append(int(day))
            continue
        net = delivered - basal[obs.hour] * BIN_MIN / 60.0
        stream = Stream(net, insulin_model=model)
        activity, iob = stream.activity(), stream.on_board()
        sel = days == day
        cat, dev, bgi, _, periods = categorize(obs.glucose[sel], activity[sel], iob[sel], carbs[sel], obs.hour[sel],
                                               isf, cr, basal, pump_basal)
        raw_counts += np.bincount(cat, minlength=5)
        cat = _reassign(cat, dev)
        counts += np.bincount(cat, minlength=5)
        day_record = {"day": int(day)}
        if free[2].any():
            basal = np.where(free[2], tune_basal(basal, cat, dev, obs.hour[sel], isf, pump_basal, lo, hi), basal)
        if free[0].any():
            new, full = tune_isf(float(isf.mean()), cat, dev, bgi, float(pump_isf.mean()), lo, hi)
            isf = isf * new / isf.mean()
            day_record["isf_full"] = full
        if free[1].any():
            new, full = tune_cr(float(cr.mean()), float(isf.mean()), periods, obs.glucose[sel], iob[sel], net[sel],
                                float(pump_cr.mean()), lo, hi)
            cr = cr * new / cr.mean()
            day_record["cr_full"] = full
        per_day.append(day_record)
    not_estimable = []
    if counts[ISF] < 10:
        not_estimable.append({"parameter": "isf", "hour": None, "reason": f"only {counts[ISF]} ISF points"})
    if not obs.carb_entries:
        not_estimable.append({"parameter": "cr", "hour": None, "reason": "no carb entries"})
    def named(c):
        return {"carb_absorption": int(c[CSF]), "unannounced_meal": int(c[UAM]), "basal": int(c[BASAL]),
                "isf": int(c[ISF])}
    details = {"points": named(raw_counts), "points_used": named(counts), "days": per_day,
               "skipped_days": skipped}
    return np.array([isf, cr, basal]), not_estimable, details
