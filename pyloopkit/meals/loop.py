"""Into the loop: a meal sentence's carb entries added to an ``update()`` input dictionary."""
from __future__ import annotations

from datetime import datetime

from ..errors import InvalidInputError, Problem
from .parser import MealParse, parse


def with_carb_entries(input_dict: dict, meal: MealParse) -> dict:
    """A copy of ``input_dict`` with ``meal``'s carb entries appended (sorted by date)."""
    entries = meal.to_carb_entries()
    out = dict(input_dict)
    rows = list(zip(input_dict.get("carb_dates", []), input_dict.get("carb_values", []),
                    input_dict.get("carb_absorption_times", [])))
    rows += list(zip(entries["carb_dates"], entries["carb_values"], entries["carb_absorption_times"]))
    rows.sort(key=lambda r: r[0])
    out["carb_dates"] = [r[0] for r in rows]
    out["carb_values"] = [r[1] for r in rows]
    out["carb_absorption_times"] = [r[2] for r in rows]
    out.setdefault("carb_value_units", "g")
    return out


def _summary(out: dict) -> dict:
    bolus = out["recommended_bolus"]
    temp = out["recommended_temp_basal"]
    return {"insulin_on_board_u": out["insulin_on_board"], "carbs_on_board_g": out["carbs_on_board"],
            "eventual_glucose_mg_dl": float(out["predicted_glucose_values"][-1]),
            "recommended_temp_basal": None if temp is None else {"rate_u_per_h": temp[0], "duration_min": temp[1]},
            "warnings": [str(w) for w in out.get("warnings", [])]}


def log(text: str, input_dict: dict, at: datetime | None = None) -> dict:
    """Parse ``text``, add its carb entries to ``input_dict`` and run ``update()``.

    Parameters
    ----------
    text : str
        The meal in plain words.
    input_dict : dict
        A PyLoopKit ``update()`` input dictionary (for example from ``History.to_input_dict``).
    at : datetime, optional
        Meal time (default: the dictionary's ``time_to_calculate_at``).

    Returns
    -------
    dict
        JSON-able: ``parse`` (:meth:`MealParse.to_dict`), ``carb_entries`` added (dates ISO 8601,
        g, minutes), ``predicted_peak_mg_dl`` with ``predicted_peak_at``, ``recommended_bolus_u``
        (each ``None`` when ``update()`` gives no prediction or recommendation) and ``update`` (a
        summary of the rest of the output).

    Raises
    ------
    InvalidInputError
        Garbage text, or an input dictionary without ``time_to_calculate_at`` when ``at`` is None.
    """
    from ..loop_data_manager import update

    if at is None:
        if "time_to_calculate_at" not in input_dict:
            raise InvalidInputError([Problem("time_to_calculate_at", None, None, "needed when at is not given")])
        at = input_dict["time_to_calculate_at"]
    meal = parse(text, at=at)
    out = update(with_carb_entries(input_dict, meal))
    values = [float(v) for v in out["predicted_glucose_values"]]
    peak = max(range(len(values)), key=values.__getitem__) if values else None
    bolus = out["recommended_bolus"]
    entries = meal.to_carb_entries()
    return {"parse": meal.to_dict(),
            "carb_entries": {"carb_dates": [d.isoformat() for d in entries["carb_dates"]],
                             "carb_values": entries["carb_values"],
                             "carb_absorption_times": entries["carb_absorption_times"]},
            "predicted_peak_mg_dl": None if peak is None else values[peak],
            "predicted_peak_at": None if peak is None else out["predicted_glucose_dates"][peak].isoformat(),
            "recommended_bolus_u": None if bolus is None else float(bolus[0]),
            "update": _summary(out)}
