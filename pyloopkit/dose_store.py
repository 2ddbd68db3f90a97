"""The dose store: pump history made ready for the insulin math (LoopKit ``DoseStore``, thin).

``update()`` hands the raw dose history here once per run; :func:`prepare_doses` does what
LoopKit's ``DoseStore`` does before computing IOB and insulin effects: reconcile the pump events,
keep the doses that overlap the wanted window, annotate them with the scheduled basal rate, and
stop basal delivery at ``end_s`` (``basalDosingEnd``: a running temp basal counts only until now).
"""
from __future__ import annotations

import numpy as np

from .dose import DoseArrays
from .insulin_math import annotate_with_basal, filter_date_range, reconcile, trim
from .schedule import DailySchedule


def prepare_doses(doses: DoseArrays, basal: DailySchedule, *, start_s: float | None,
                  end_s: float | None) -> DoseArrays:
    """Reconciled, basal-annotated doses overlapping ``[start_s, end_s]``, sorted by start.

    Parameters
    ----------
    doses : DoseArrays
        Raw history (any order; boluses in U, basal-like rates in U/h).
    basal : DailySchedule
        Scheduled basal rates (U/h).
    start_s, end_s : float or None
        Window in seconds since the reference date; ``None`` leaves that side open. Doses ending
        before ``start_s`` or starting after ``end_s`` are dropped; non-bolus doses are trimmed to
        end at ``end_s`` (boluses are kept whole, as LoopKit does).

    Notes
    -----
    Reconciliation runs on the whole history before filtering, so a temp basal cut short by a
    later one is cut even when the later one lies outside the window.
    """
    prepared = annotate_with_basal(filter_date_range(reconcile(doses), start_s, end_s), basal, validate=False)
    if end_s is not None:
        prepared = trim(prepared, None, np.where(prepared.is_bolus, np.inf, float(end_s)))
    return prepared.sorted()
