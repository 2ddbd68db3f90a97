"""The Loop core's dose math as one compiled pass (``dose_math.loop_doses``) equals the numpy path
(``PYLOOPKIT_JIT=never``'s) bit for bit (issue 9):

- random corrections, temp basals and automatic boluses (models, schedules with several items and
  offsets, rounders, limits, running temp basals), every branch reached and counted;
- each safety branch built by hand: suspend, entirely below range, in range, above range, the
  minimum below target, the max basal clamp, the IOB headroom, rounding to the increment (never
  above the limit), the ``ifNecessary`` continuation and cancel, the automatic bolus limits;
- ``insulin_correction(validate=False)`` (the manual bolus's own prediction) by the same pass;
- what the pass does not cover runs the numpy path (checked prediction, mid-absorption ISF,
  unsorted or non-finite values, invalid settings, which still raise);
- the compiled insulin curve equals the model's numpy curve over the whole effect duration;
- the shared compiled scalar helpers equal their plain-Python selves.
"""
from __future__ import annotations

import numpy as np
import pytest

from pyloopkit import dose_math
from pyloopkit.dose import DoseType
from pyloopkit.errors import InvalidInputError
from pyloopkit.insulin_math import _curve_spec
from pyloopkit.insulin_models import PRESETS, ExponentialInsulinModel, WalshInsulinModel
from pyloopkit.jit import HAVE_NUMBA
from pyloopkit.pump_rounding import PUMP_ROUNDING, Increments
from pyloopkit.schedule import DailySchedule

needs_numba = pytest.mark.skipif(not HAVE_NUMBA, reason="needs numba (extra 'fast')")

AT = 1000.0 * 86400.0 + 8 * 3600.0  # 08:00 on day 1000
ADULT = PRESETS["adult"]
ROUNDERS = [None, 0.05, Increments(0.05), Increments(0.025, mode="nearest"), Increments(0.1, mode="down"),
            PUMP_ROUNDING["minimed_x23"].basal, PUMP_ROUNDING["minimed_x23_nearest_bolus"].bolus,
            PUMP_ROUNDING["omnipod_dash"].basal]


class LinearModel:
    """A model the compiled curve does not know: its numpy values are passed in."""

    effect_duration_min = 100.0

    @staticmethod
    def percent_effect_remaining(t_min):
        return np.clip(1.0 - np.asarray(t_min, dtype=float) / 100.0, 0.0, 1.0)


def _kwargs(glucose, *, minutes=None, model=ADULT, **overrides) -> dict:
    """``loop_doses`` arguments: the prediction every 5 min from ``AT`` (or at ``minutes``) and settings."""
    glucose = np.asarray(glucose, dtype=float)
    minutes = 5.0 * np.arange(glucose.size) if minutes is None else np.asarray(minutes, dtype=float)
    kw = dict(pred_dates_s=AT + minutes * 60.0, pred_mgdl=glucose, at_s=AT,
              target=DailySchedule.constant([100.0, 110.0]), suspend_threshold_mgdl=70.0,
              sensitivity=DailySchedule.constant(50.0), model=model, basal=DailySchedule.constant(1.0),
              max_basal_rate_u_per_h=4.0, last_temp_basal=None, rate_rounder=None, volume_rounder=None,
              max_iob_headroom_u=None, temp_basal=True, partial_application_factor=None,
              max_automatic_bolus_u=5.0, validate=False)
    kw.update(overrides)
    return kw


def _flat(value: float, model=ADULT) -> np.ndarray:
    """A flat prediction over the model's effect duration."""
    return np.full(int(model.effect_duration_min // 5) + 1, float(value))


def _numpy(kw: dict, monkeypatch):
    monkeypatch.setattr(dose_math, "HAVE_NUMBA", False)
    try:
        return dose_math.loop_doses(**kw)
    finally:
        monkeypatch.setattr(dose_math, "HAVE_NUMBA", HAVE_NUMBA)


def _spied(monkeypatch, name: str, call):
    """``call()`` with ``dose_math.<name>`` (a compiled pass returning ``(covered, ...)``) watched:
    its result and the list of ``covered`` flags of the calls."""
    real, covered = getattr(dose_math, name), []

    def spy(*args):
        out = real(*args)
        covered.append(out[0])
        return out

    monkeypatch.setattr(dose_math, name, spy)
    try:
        return call(), covered
    finally:
        monkeypatch.setattr(dose_math, name, real)


def _compiled(kw: dict, monkeypatch) -> tuple:
    """``loop_doses`` with numba on, and whether the compiled pass covered the inputs."""
    result, covered = _spied(monkeypatch, "_doses_compiled", lambda: dose_math.loop_doses(**kw))
    return result, bool(covered) and covered[-1]


def _bits(value):
    """A value with its floats as bit patterns (NaN, -0.0 and ulps all count)."""
    if isinstance(value, float):
        return np.float64(value).tobytes()
    if isinstance(value, dict):
        return {k: _bits(v) for k, v in value.items()}
    if isinstance(value, dose_math.InsulinCorrection):
        return (value.kind, *(_bits(float(x)) for x in (value.units, value.min_s, value.min_mgdl,
                                                         value.min_target_mgdl)))
    return value


def _assert_same(a: tuple, b: tuple) -> None:
    assert [_bits(x) for x in a] == [_bits(x) for x in b]


def _both(kw: dict, monkeypatch) -> tuple:
    """The compiled pass's result, after checking it covered the inputs and equals the numpy path."""
    compiled, covered = _compiled(kw, monkeypatch)
    assert covered
    _assert_same(compiled, _numpy(kw, monkeypatch))
    return compiled


def _correction_both(kw: dict, monkeypatch) -> dose_math.InsulinCorrection:
    """``insulin_correction(validate=False)`` (the manual bolus's own correction): the compiled pass
    covers the inputs and equals the numpy path."""
    args = {k: kw[k] for k in ("at_s", "target", "suspend_threshold_mgdl", "sensitivity", "model")}
    compiled, covered = _spied(monkeypatch, "_correction_compiled", lambda: dose_math.insulin_correction(
        kw["pred_dates_s"], kw["pred_mgdl"], validate=False, **args))
    monkeypatch.setattr(dose_math, "HAVE_NUMBA", False)
    plain = dose_math.insulin_correction(kw["pred_dates_s"], kw["pred_mgdl"], validate=False, **args)
    monkeypatch.setattr(dose_math, "HAVE_NUMBA", HAVE_NUMBA)
    assert covered == [True] and _bits(compiled) == _bits(plain)
    return compiled


# ---------------------------------------------------------------- random inputs


def _schedule(rng, values) -> DailySchedule:
    """One item, or several with random starts (and a random UTC offset)."""
    values = np.asarray(values, dtype=float)
    if values.shape[0] == 1 or rng.random() < 0.3:
        return DailySchedule(np.zeros(1), values[:1], float(rng.choice([0.0, -18000.0])))
    starts = np.concatenate(([0.0], np.sort(rng.choice(np.arange(1, 48) * 1800.0, values.shape[0] - 1,
                                                       replace=False))))
    return DailySchedule(starts, values, float(rng.choice([0.0, -18000.0, 3600.0])))


def _random_model(rng):
    kind = rng.integers(4)
    if kind == 0:
        return list(PRESETS.values())[rng.integers(len(PRESETS))]
    if kind == 1:
        return WalshInsulinModel(float(rng.choice([2.0, 3.0, 4.0, 4.5, 6.0, 7.0])), float(rng.choice([0.0, 10.0])))
    if kind == 2:
        return ExponentialInsulinModel(float(rng.uniform(240, 480)), float(rng.uniform(40, 100)),
                                       float(rng.uniform(0, 15)))
    return LinearModel()


def _random_prediction(rng, model) -> tuple[np.ndarray, np.ndarray]:
    """Like the core's: the last glucose (up to 5 min before ``AT``), then a 5-min grid past the effect
    end; sometimes starting late, ending early or with a repeated date."""
    first = AT - rng.uniform(0, 300) if rng.random() < 0.8 else AT + rng.choice([0.0, rng.uniform(0, 600)])
    end = first + model.effect_duration_min * 60.0 * rng.choice([1.0, 1.05, 0.7])
    dates = np.concatenate(([first], np.arange(np.ceil(first / 300.0) * 300.0, end + 300.0, 300.0)))
    if rng.random() < 0.1:
        dates = np.sort(np.append(dates, dates[rng.integers(dates.size)]))
    steps = np.arange(dates.size)
    glucose = (rng.uniform(40, 330) + rng.uniform(-3, 3) * steps + rng.uniform(-0.03, 0.03) * steps ** 2
               + rng.normal(0, rng.choice([0.0, 2.0]), dates.size))
    return dates, np.clip(glucose, 20.0, 600.0)


def _random_case(rng) -> dict:
    model = _random_model(rng)
    dates, glucose = _random_prediction(rng, model)
    n_target = int(rng.integers(1, 4))
    low = rng.choice([80.0, 90.0, 100.0, 110.0, 120.0, 5.5 * 18.0182, 6.1 * 18.0182], n_target)
    target = _schedule(rng, np.stack([low, low + rng.choice([0.0, 10.0, 20.0, 40.0], n_target)], axis=1))
    scheduled = rng.choice([0.0, 0.35, 0.8, 1.0, 1.45, 2.3], int(rng.integers(1, 4)))
    basal = _schedule(rng, scheduled)
    ltb = None
    if rng.random() < 0.6:
        rate = float(rng.choice([scheduled[0], 0.0, 1.5, rng.uniform(0, 4)]))
        kind = [DoseType.TEMP_BASAL, DoseType.BASAL, "tempbasal", DoseType.BOLUS][rng.integers(4)]
        ltb = (kind, AT - 600.0, AT + float(rng.choice([-60.0, 300.0, 660.0, 661.0, 1200.0])), rate)
    return dict(pred_dates_s=dates, pred_mgdl=glucose, at_s=AT, target=target,
                suspend_threshold_mgdl=None if rng.random() < 0.2 else float(rng.uniform(55, 95)),
                sensitivity=_schedule(rng, rng.uniform(15, 120, int(rng.integers(1, 4)))), model=model, basal=basal,
                max_basal_rate_u_per_h=float(rng.choice([0.0, 0.5, 1.0, 2.0, rng.uniform(0, 6)])),
                last_temp_basal=ltb, rate_rounder=ROUNDERS[rng.integers(len(ROUNDERS))],
                volume_rounder=ROUNDERS[rng.integers(len(ROUNDERS))],
                max_iob_headroom_u=[None, -1.0, 0.0, 0.3, float(rng.uniform(0, 6))][rng.integers(5)],
                temp_basal=bool(rng.random() < 0.7),
                partial_application_factor=[None, 0.4, float(rng.uniform(0, 1))][rng.integers(3)],
                max_automatic_bolus_u=float(rng.choice([0.0, 0.5, 3.0, 10.0])), validate=False)


@needs_numba
@pytest.mark.parametrize("curve", ["compiled", "model_values"])
def test_compiled_doses_equal_the_numpy_path_on_random_inputs(curve, monkeypatch):
    """600 random cases, bit for bit; every correction kind, every ``ifNecessary`` decision, the max
    basal clamp and automatic boluses occur. ``model_values``: the pass reads the model's values of
    the curve, as for a model without a compiled curve."""
    if curve == "model_values":
        monkeypatch.setattr(dose_math, "_curve_spec", lambda model: None)
    rng = np.random.default_rng(9)
    kinds, temps, clamped, boluses = set(), set(), 0, 0
    for _ in range(600):
        kw = _random_case(rng)
        correction, temp, automatic = _both(kw, monkeypatch)
        assert _bits(_correction_both(kw, monkeypatch)) == _bits(correction)
        kinds.add(correction.kind)
        if kw["temp_basal"]:
            temps.add(None if temp is None else ("cancel" if temp["duration"] == 0 else "set"))
            clamped += temp is not None and temp["rate"] == kw["max_basal_rate_u_per_h"] > 0
        boluses += automatic is not None and automatic["bolus_units"] > 0
    assert kinds == {"suspend", "in_range", "above_range", "entirely_below_range"}
    assert temps == {None, "cancel", "set"}
    assert clamped >= 10 and boluses >= 10


# ---------------------------------------------------------------- every branch by hand


@needs_numba
def test_suspend_when_a_prediction_is_below_the_threshold(monkeypatch):
    glucose = _flat(150.0)
    glucose[10] = 69.0
    correction, temp, _ = _both(_kwargs(glucose), monkeypatch)
    assert (correction.kind, correction.min_mgdl, correction.min_s) == ("suspend", 69.0, AT + 3000.0)
    assert temp == {"rate": 0.0, "duration": 30.0}


@needs_numba
def test_suspend_when_the_current_glucose_before_the_delivery_is_below_the_threshold(monkeypatch):
    glucose = _flat(150.0)
    glucose[0] = 65.0
    minutes = 5.0 * np.arange(glucose.size) - 2.0  # the current glucose 2 min before AT
    correction, temp, _ = _both(_kwargs(glucose, minutes=minutes), monkeypatch)
    assert (correction.kind, correction.min_s) == ("suspend", AT - 120.0)
    assert temp == {"rate": 0.0, "duration": 30.0}


@needs_numba
def test_entirely_below_range_lowers_the_rate(monkeypatch):
    correction, temp, _ = _both(_kwargs(_flat(90.0)), monkeypatch)
    assert correction.kind == "entirely_below_range" and correction.units < 0
    assert 0.0 <= temp["rate"] < 1.0


@needs_numba
def test_entirely_below_range_needs_the_minimum_below_its_own_range(monkeypatch):
    """The minimum (100 at 08:20, range 90-130) is in range, the eventual glucose (105) below its range
    (110-120 from 08:30): in range, not entirely below."""
    target = DailySchedule(np.array([0.0, 8.5 * 3600.0]), np.array([[90.0, 130.0], [110.0, 120.0]]))
    glucose = np.maximum(120.0 - 5.0 * np.arange(_flat(0.0).size), 105.0)
    glucose[4] = 100.0
    correction, temp, _ = _both(_kwargs(glucose, target=target), monkeypatch)
    assert (correction.kind, correction.min_mgdl, temp) == ("in_range", 100.0, None)
    correction, _, _ = _both(_kwargs(np.minimum(glucose, 89.0), target=target), monkeypatch)
    assert correction.kind == "entirely_below_range" and correction.min_target_mgdl == 90.0


@needs_numba
def test_in_range_keeps_or_cancels_at_the_scheduled_rate(monkeypatch):
    correction, temp, _ = _both(_kwargs(_flat(105.0)), monkeypatch)
    assert (correction.kind, temp) == ("in_range", None)
    running = (DoseType.TEMP_BASAL, AT - 600.0, AT + 1200.0, 3.0)
    _, temp, _ = _both(_kwargs(_flat(105.0), last_temp_basal=running), monkeypatch)
    assert temp == {"rate": 0.0, "duration": 0.0}  # cancel: back to the schedule


@needs_numba
def test_above_range_raises_the_rate_by_the_least_correction(monkeypatch):
    correction, temp, _ = _both(_kwargs(_flat(160.0)), monkeypatch)
    assert correction.kind == "above_range" and correction.units > 0
    assert temp == {"rate": 1.0 + correction.units * 2.0, "duration": 30.0}


@needs_numba
def test_minimum_below_target_caps_the_rate_at_the_scheduled_rate(monkeypatch):
    glucose = np.linspace(95.0, 300.0, _flat(0.0).size)
    correction, temp, automatic = _both(_kwargs(glucose, partial_application_factor=0.4), monkeypatch)
    assert correction.kind == "above_range" and correction.min_below_target
    assert temp is None and automatic is None  # the scheduled rate continues, no automatic bolus


@needs_numba
def test_max_basal_clamp(monkeypatch):
    _, temp, _ = _both(_kwargs(_flat(400.0), max_basal_rate_u_per_h=2.0), monkeypatch)
    assert temp == {"rate": 2.0, "duration": 30.0}


@needs_numba
def test_iob_headroom_limits_the_rate_and_the_automatic_bolus(monkeypatch):
    kw = _kwargs(_flat(400.0), max_iob_headroom_u=0.2, partial_application_factor=0.4)
    _, temp, automatic = _both(kw, monkeypatch)
    assert temp == {"rate": 1.0 + 0.2 * 2.0, "duration": 30.0}
    assert automatic["bolus_units"] == 0.4 * 0.2
    _, temp, automatic = _both({**kw, "max_iob_headroom_u": -1.0}, monkeypatch)
    assert temp is None and automatic is None  # at or above the limit: the scheduled rate continues


@pytest.mark.parametrize("rounder", ROUNDERS[1:])
@needs_numba
def test_rounding_to_the_increment_never_above_the_limit(rounder, monkeypatch):
    for glucose, max_basal in ((137.3, 4.0), (400.0, 2.3333), (400.0, 0.0249)):
        kw = _kwargs(_flat(glucose), max_basal_rate_u_per_h=max_basal, rate_rounder=rounder, volume_rounder=rounder,
                     partial_application_factor=0.4, max_automatic_bolus_u=0.1111)
        _, temp, automatic = _both(kw, monkeypatch)
        assert temp is not None and temp["rate"] <= max_basal
        assert automatic is None or automatic["bolus_units"] <= 0.1111
        for value in (temp["rate"], 0.0 if automatic is None else automatic["bolus_units"]):
            assert _on_increment(value, rounder)


def _on_increment(value: float, rounder) -> bool:
    """``value`` is 0, one of a pump's supported values, or a multiple of the step."""
    if value == 0:
        return True
    if getattr(rounder, "values", None) is not None:
        return value in rounder.values
    step = rounder if isinstance(rounder, float) else rounder.step
    return abs(value / step - round(value / step)) < 1e-9


@needs_numba
def test_if_necessary_continues_a_running_temp_basal_with_the_same_rate(monkeypatch):
    for end_min, expected in ((12.0, None), (11.0, {"rate": 2.0, "duration": 30.0})):
        running = ("basal", AT - 600.0, AT + end_min * 60.0, 2.0)  # Loop 1.x labels temp basals BASAL
        _, temp, _ = _both(_kwargs(_flat(400.0), max_basal_rate_u_per_h=2.0, last_temp_basal=running), monkeypatch)
        assert temp == expected


@needs_numba
def test_automatic_bolus_is_the_partial_correction_and_the_temp_basal_at_most_scheduled(monkeypatch):
    kw = _kwargs(_flat(160.0), partial_application_factor=0.4, temp_basal=False)
    correction, temp, automatic = _both(kw, monkeypatch)
    assert temp is None and automatic == {"basal_adjustment": None, "bolus_units": 0.4 * correction.units}
    _, _, automatic = _both({**kw, "max_automatic_bolus_u": 0.1}, monkeypatch)
    assert automatic["bolus_units"] == 0.1
    _, _, automatic = _both({**kw, "pred_mgdl": _flat(90.0)}, monkeypatch)
    assert automatic["bolus_units"] == 0.0 and automatic["basal_adjustment"]["rate"] < 1.0


@needs_numba
def test_a_model_without_a_compiled_curve_and_multi_item_schedules(monkeypatch):
    model = LinearModel()
    target = DailySchedule(np.array([0.0, 8 * 3600.0 + 1800.0]), np.array([[90.0, 100.0], [110.0, 130.0]]))
    kw = _kwargs(np.linspace(150.0, 200.0, 21), model=model, target=target,
                 sensitivity=DailySchedule(np.array([0.0, 3600.0]), np.array([40.0, 55.0])))
    correction, _, _ = _both(kw, monkeypatch)
    assert correction.kind == "above_range" and correction.min_target_mgdl == 110.0


@needs_numba
def test_a_model_refusing_negative_times_is_only_asked_inside_the_window(monkeypatch):
    """Predictions dated before ``at_s`` are outside the correction's window: neither path asks the model
    for a negative time (a model that refuses them still doses, the same on both paths)."""
    class StrictLinearModel(LinearModel):
        @staticmethod
        def percent_effect_remaining(t_min):
            assert np.all(np.asarray(t_min) >= 0.0), "asked for a time before the dose"
            return LinearModel.percent_effect_remaining(t_min)

    kw = _kwargs(np.linspace(160.0, 210.0, 24), minutes=5.0 * np.arange(-3, 21), model=StrictLinearModel())
    correction, _, _ = _both(kw, monkeypatch)
    assert correction.kind == "above_range" and correction.units > 0


# ---------------------------------------------------------------- what the pass does not cover


@pytest.mark.parametrize("change", [
    dict(validate=True),
    dict(effected_sensitivity=lambda t_min: np.full(np.shape(t_min), 10.0)),
    dict(pred_mgdl=np.where(np.arange(_flat(0.0).size) == 3, np.nan, 150.0)),
    dict(pred_dates_s=AT + 300.0 * np.arange(_flat(0.0).size)[::-1]),
    dict(suspend_threshold_mgdl=float("nan")),
    dict(pred_dates_s=AT + 9e4 + 300.0 * np.arange(_flat(0.0).size)),  # nothing within the effect duration
    dict(sensitivity=DailySchedule(np.zeros(1), np.array([50]), 0.0)),  # integer values
])
@needs_numba
def test_uncovered_inputs_take_the_numpy_path(change, monkeypatch):
    kw = {**_kwargs(_flat(150.0)), **change}
    compiled, covered = _compiled(kw, monkeypatch)
    assert not covered
    _assert_same(compiled, _numpy(kw, monkeypatch))


@pytest.mark.parametrize("change, field", [
    (dict(sensitivity=DailySchedule.constant(0.0)), "sensitivity"),
    (dict(basal=DailySchedule.constant(-1.0)), "basal"),
    (dict(max_basal_rate_u_per_h=None), "max_basal_rate_u_per_h"),
    (dict(max_basal_rate_u_per_h=np.inf), "max_basal_rate_u_per_h"),
    (dict(max_iob_headroom_u=np.nan), "max_iob_headroom_u"),
    (dict(temp_basal=False, partial_application_factor=0.4, max_basal_rate_u_per_h=np.nan), "max_basal_rate_u_per_h"),
    (dict(partial_application_factor=-0.1), "partial_application_factor"),
    (dict(partial_application_factor=0.4, max_automatic_bolus_u=None), "max_automatic_bolus_u"),
])
def test_invalid_settings_still_raise_naming_the_field(change, field, monkeypatch):
    kw = {**_kwargs(_flat(150.0)), **change}
    for numba_on in (HAVE_NUMBA, False):
        monkeypatch.setattr(dose_math, "HAVE_NUMBA", numba_on)
        with pytest.raises(InvalidInputError, match=field):
            dose_math.loop_doses(**kw)


# ---------------------------------------------------------------- the compiled pieces


def _models():
    return [*PRESETS.values(), *(WalshInsulinModel(h, d) for h in (2.0, 3.0, 4.0, 5.0, 6.0, 7.5) for d in (0.0, 10.0)),
            ExponentialInsulinModel(300.0, 55.0, 0.0), ExponentialInsulinModel(480.0, 100.0, 15.0)]


@needs_numba
@pytest.mark.parametrize("model", _models(), ids=repr)
def test_compiled_curve_equals_the_model_over_the_whole_effect_duration(model):
    """Every second from 10 min before the delivery to 20 min after the effect end, plus 20,000 random
    times, as the pass evaluates them (``min(t, duration) / 60`` minutes): bit for bit."""
    duration_s = model.effect_duration_min * 60.0
    rng = np.random.default_rng(int(duration_s))
    t_s = np.concatenate((np.arange(-600.0, duration_s + 1200.0), rng.uniform(0.0, duration_s, 20_000)))
    dates = AT + t_s
    curve = dose_math._curve(model, dates, AT, duration_s)
    assert curve[0] == _curve_spec(model)[0] >= 0  # the closed form, not the model's values
    compiled = np.array([dose_math._remaining_at(curve, i, d - AT, duration_s) for i, d in enumerate(dates)])
    expected = model.percent_effect_remaining(np.minimum(dates - AT, duration_s) / 60.0)
    assert compiled.tobytes() == expected.tobytes()


@needs_numba
def test_shared_scalar_helpers_equal_their_python_selves():
    """The helpers both paths call (rounding, temp basal rate, ifNecessary, headroom, the temp basal and
    automatic bolus steps) compiled and as plain Python (``PYLOOPKIT_JIT=never``), on random values
    including exact halves of increments and values on the limits."""
    rng = np.random.default_rng(3)
    specs = [dose_math._rounder_spec(r, mode) for r in ROUNDERS for mode in ("nearest", "down")]
    halves = (np.arange(200) + 0.5) * 0.025
    for value in np.concatenate((rng.uniform(-1, 8, 3000), halves, halves * 2, [0.0, -0.0, 1e-12])):
        spec = specs[rng.integers(len(specs))]
        upper = float(rng.choice([value, abs(value) + 0.01, rng.uniform(0, 8), 0.0]))
        upper = max(upper, abs(value)) if spec[0] == dose_math._NONE else upper  # (no step to round the limit to)
        step = float(rng.choice([0.025, 0.05, 0.1]))
        down = bool(rng.random() < 0.5)
        table = PUMP_ROUNDING["minimed_x23"].basal.values
        context = (float(rng.choice([0.0, 1.0, value])), 30.0, AT,
                   (bool(rng.random() < 0.5), AT + float(rng.choice([600.0, 660.0, 661.0])),
                    float(rng.choice([value, 1.0]))), 11.0, bool(rng.random() < 0.8))
        correction = (int(rng.integers(4)), float(value), float(rng.uniform(60, 200)), float(rng.uniform(60, 200)))
        headroom = float(rng.choice([np.nan, -1.0, 0.0, rng.uniform(0, 3)]))
        for helper, args in ((dose_math._rounded, (value, step, down)),
                             (dose_math.supported_value, (table, value, down)),
                             (dose_math._within, (abs(value), upper, spec)),
                             (dose_math._temp_rate, (value, down, 1.0, upper, 30.0, spec)),
                             (dose_math._continuation, (value, context)),
                             (dose_math._headroom_rate_limit, (1.0, headroom, 30.0)),
                             (dose_math._temp_basal, (correction, upper, headroom, context, spec)),
                             (dose_math._automatic, (correction, upper, 0.4, headroom, float(rng.choice([np.nan, 2.0])),
                                                     context, spec, spec))):
            assert _bits_all(helper(*args)) == _bits_all(helper.py_func(*args)), (helper.__name__, args)


def _bits_all(value):
    if isinstance(value, tuple):
        return tuple(_bits_all(v) for v in value)
    return np.float64(value).tobytes() if isinstance(value, (float, np.floating)) else value


@pytest.mark.parametrize("value, nearest, down", [(0.375, 0.25, 0.25), (0.125, 0.0, 0.0), (0.5, 0.5, 0.5),
                                                  (0.49, 0.5, 0.25), (2.6, 2.0, 2.0)])
def test_supported_values_nearest_takes_the_lower_on_a_tie(value, nearest, down):
    """Swift's ``min(by:)`` keeps the first of equal distances: 0.375 -> 0.25, 0.125 -> 0 (exact binary ties)."""
    table = Increments(0.25, mode="nearest", segments=((0.25, 2.0, 0.25),))
    assert table.round(value) == nearest and dose_math.supported_value(table.values, value, False) == nearest
    assert table.at_most(value) == down


@needs_numba
@pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")
@pytest.mark.parametrize("strategy", ["temp_basal", "automatic_bolus"])
def test_the_closed_loop_takes_the_compiled_pass_at_every_decision(strategy, monkeypatch):
    """Loop on a simulated patient (fast engine, 2 h, either strategy), every decision through ``core()``
    (the compiled decision off): every recommendation's dose math is the compiled pass (the prediction
    arrays, schedules and settings of the core are covered)."""
    from pyloopkit.control import LoopController
    from pyloopkit.control.trial import run_trial
    from pyloopkit.simulation import Simulator
    from tests.conftest import per_member_path

    real, covered = dose_math._doses_compiled, []

    def spy(*args):
        out = real(*args)
        covered.append(out[0])
        return out

    monkeypatch.setattr(dose_math, "_doses_compiled", spy)
    sim = Simulator(["adult#001"], sensor="Dexcom", pump="Insulet", scenario="random", seed=4)
    controller = LoopController.for_simulator(sim, dosing_strategy=strategy)
    per_member_path(controller)
    controller._plans = [None] * controller.n  # core() at every decision, whose dose math this test spies on
    run_trial(sim, controller, days=2 / 24, seed=4)
    assert len(covered) == 24 and all(covered)
