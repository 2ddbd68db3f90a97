"""update(): output contract, Loop behaviours where PyLoopKit differs, safety invariants."""
import copy
import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyloopkit import update
from pyloopkit.dose import DoseType
from pyloopkit.errors import InvalidInputError, LoopWarning
from pyloopkit.synthetic import dense_history

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

TZ = dt.timezone(dt.timedelta(hours=-5))
NOW = dt.datetime(2026, 3, 2, 12, 0, 20, tzinfo=TZ)


def flat_input(glucose=120.0, n=25, **settings) -> dict:
    """Two hours of flat CGM, no doses, no carbs, constant schedules (ISF 50, CR 10, basal 1)."""
    dates = [NOW - dt.timedelta(minutes=5 * (n - 1 - i), seconds=20) for i in range(n)]
    base = dense_history()
    d = {k: base[k] for k in base if k.startswith(("carb_ratio", "basal_rate", "target_range"))}
    d.update({
        "time_to_calculate_at": NOW, "glucose_dates": dates, "glucose_values": [glucose] * n,
        "dose_types": [], "dose_start_times": [], "dose_end_times": [], "dose_values": [],
        "carb_dates": [], "carb_values": [], "carb_absorption_times": [],
        "sensitivity_ratio_start_times": [dt.time(0)], "sensitivity_ratio_end_times": [dt.time(0)],
        "sensitivity_ratio_values": [50.0],
        "basal_rate_start_times": [dt.time(0)], "basal_rate_minutes": [1440.0], "basal_rate_values": [1.0],
        "settings_dictionary": {**base["settings_dictionary"], **settings},
    })
    return d


def with_bolus(d: dict, units: float, minutes_ago: float) -> dict:
    d = copy.deepcopy(d)
    start = NOW - dt.timedelta(minutes=minutes_ago)
    d.update(dose_types=[DoseType.BOLUS], dose_start_times=[start], dose_end_times=[start + dt.timedelta(seconds=30)],
             dose_values=[units])
    return d


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(_plain(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, (str, int, dt.datetime, DoseType))


def test_output_is_plain_python_and_finite():
    out = update(dense_history())
    assert _plain({k: v for k, v in out.items() if k != "input_data"})
    for key in ("predicted_glucose", "insulin_effect", "carb_effect", "momentum_effect", "retrospective_effect",
                "cob_timeline", "insulin_on_board_timeline"):
        assert len(out[f"{key}_dates"]) == len(out[f"{key}_values"])
    assert all(d.utcoffset() == TZ.utcoffset(None) for d in out["predicted_glucose_dates"])
    assert out["predicted_glucose_dates"][0] == dense_history()["glucose_dates"][-1]
    assert isinstance(out["insulin_on_board"], float) and isinstance(out["carbs_on_board"], float)


def test_no_doses_no_carbs_flat_glucose_predicts_flat():
    out = update(flat_input())
    assert out["insulin_effect_values"] == [] and out["carb_effect_values"] == []
    assert np.allclose(out["predicted_glucose_values"], 120.0)
    assert out["insulin_on_board"] == 0.0 and out["carbs_on_board"] == 0.0
    # 120 mg/dL is above the 100-110 target: a correction, at most max basal.
    rate, duration = out["recommended_temp_basal"]
    assert 1.0 < rate <= 4.0 and duration == 30


def test_single_glucose_sample_has_no_momentum():
    out = update(flat_input(n=1))
    assert out["momentum_effect_values"] == []
    assert out["predicted_glucose_values"][0] == 120.0


def test_bolus_effect_integrates_to_minus_isf_times_units():
    """A bolus 7 h ago has finished acting: its whole effect is -ISF x U = -50 x 2."""
    d = with_bolus(flat_input(), 2.0, minutes_ago=7 * 60)
    d["settings_dictionary"]["retrospective_correction_enabled"] = False
    out = update(d)
    assert out["insulin_on_board"] == pytest.approx(0.0, abs=1e-12)
    hist = update(with_bolus(flat_input(), 2.0, minutes_ago=1))
    assert hist["insulin_effect_values"][-1] - hist["insulin_effect_values"][0] == pytest.approx(-100.0, abs=0.5)
    assert hist["insulin_on_board"] == pytest.approx(2.0, abs=1e-9)


def test_zero_insulin_delay_is_honoured():
    """PyLoopKit's `or 10` turned 0 into 10; here 0 means no delay: the bolus acts at once."""
    d0 = with_bolus(flat_input(insulin_delay=0), 2.0, minutes_ago=10)
    d10 = with_bolus(flat_input(insulin_delay=10), 2.0, minutes_ago=10)
    iob0, iob10 = update(d0)["insulin_on_board"], update(d10)["insulin_on_board"]
    assert iob0 < iob10 == pytest.approx(2.0, abs=1e-9)


def test_retrospective_correction_without_carbs():
    """Glucose rising 2 mg/dL per 5 min, no carbs, basal at the scheduled rate (net zero insulin):
    RC projects the unexplained rise (PyLoopKit needed carb effects for RC)."""
    d = flat_input()
    d["glucose_values"] = [100.0 + 2.0 * i for i in range(25)]
    start = NOW - dt.timedelta(hours=3)
    d.update(dose_types=[DoseType.TEMP_BASAL], dose_start_times=[start], dose_end_times=[NOW], dose_values=[1.0])
    out = update(d)
    assert out["retrospective_effect_values"], "RC must run without carb effects"
    assert out["retrospective_effect_values"][-1] > out["retrospective_effect_values"][0]
    d["settings_dictionary"]["retrospective_correction_enabled"] = False
    assert update(d)["retrospective_effect_values"] == []


def test_stale_glucose_gives_no_recommendation_and_a_warning():
    d = flat_input()
    d["time_to_calculate_at"] = NOW + dt.timedelta(minutes=20)
    with pytest.warns(LoopWarning, match="stale|old"):
        out = update(d)
    assert out["recommended_temp_basal"] is None and out["recommended_bolus"] is None
    assert any("min" in w for w in out["warnings"])


def test_invalid_input_names_field_index_and_value():
    d = flat_input()
    d["glucose_values"][3] = float("nan")
    d["dose_values"] = [1.0]
    with pytest.raises(InvalidInputError) as err:
        update(d)
    fields = {(p.field, p.index) for p in err.value.problems}
    assert ("glucose_values", 3) in fields
    assert any(p.field.startswith("dose_") for p in err.value.problems)


def test_mmol_input_gives_the_mg_dl_result():
    mg = flat_input(glucose=180.0)
    mmol = copy.deepcopy(mg)
    mmol["glucose_values"] = [v / 18.01559 for v in mg["glucose_values"]]
    mmol["glucose_units"] = "mmol/L"
    mmol["settings_dictionary"]["suspend_threshold"] = 75.0 / 18.01559
    a, b = update(mg), update(mmol)
    assert np.allclose(a["predicted_glucose_values"], b["predicted_glucose_values"], atol=1e-9)
    assert a["recommended_temp_basal"] == b["recommended_temp_basal"]


def test_automatic_bolus_strategy_and_iob_limit():
    d = flat_input(glucose=250.0, dosing_strategy="automatic_bolus", partial_application_factor=0.4)
    out = update(d)
    assert out["recommended_autobolus"] > 0
    assert out["recommended_temp_basal"] is None or out["recommended_temp_basal"][0] <= 1.0
    limited = update(flat_input(glucose=250.0, dosing_strategy="automatic_bolus", partial_application_factor=0.4,
                                max_active_insulin=0.2))
    assert limited["recommended_autobolus"] <= 0.4 * 0.2 + 1e-12


def test_temp_basal_strategy_has_no_autobolus():
    assert update(flat_input(glucose=250.0))["recommended_autobolus"] is None


def test_down_rounding_never_exceeds_the_raw_rate():
    raw = update(flat_input(glucose=150.0, rate_rounder=None))["recommended_temp_basal"][0]
    down = update(flat_input(glucose=150.0, rate_rounder=0.05, rounding="down"))["recommended_temp_basal"][0]
    assert down <= raw < down + 0.05


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(glucose=st.floats(40.0, 400.0), slope=st.floats(-4.0, 4.0), max_basal=st.one_of(st.just(0.0), st.floats(0.05, 10.0)),
       max_bolus=st.floats(0.0, 20.0), suspend=st.floats(60.0, 100.0), bolus_u=st.floats(0.0, 10.0),
       carbs_g=st.floats(0.0, 150.0))
def test_recommendations_respect_limits(glucose, slope, max_basal, max_bolus, suspend, bolus_u, carbs_g):
    """(A maximum basal rate below the 0.05 U/h increment is invalid input: 0 or at least one increment.)"""
    d = with_bolus(flat_input(max_basal_rate=max_basal, max_bolus=max_bolus, suspend_threshold=suspend),
                   bolus_u, minutes_ago=60)
    d["glucose_values"] = [min(600.0, max(20.0, glucose + slope * 5.0 * (i - 24))) for i in range(25)]
    d.update(carb_dates=[NOW - dt.timedelta(minutes=30)], carb_values=[carbs_g], carb_absorption_times=[180.0])
    out = update(d)
    assert all(math.isfinite(v) for v in out["predicted_glucose_values"])
    temp, bolus = out["recommended_temp_basal"], out["recommended_bolus"]
    if temp is not None:
        assert 0.0 <= temp[0] <= max_basal + 1e-9
    assert 0.0 <= bolus[0] <= max_bolus + 1e-9
    horizon = NOW + dt.timedelta(minutes=370)
    if any(v < suspend for t, v in zip(out["predicted_glucose_dates"], out["predicted_glucose_values"])
           if NOW <= t <= horizon):
        assert bolus[0] == 0.0
        assert temp is None or temp[0] == 0.0


def _rising_with_basal(**settings) -> dict:
    """Glucose rising 2 mg/dL per 5 min for 2 h with net-zero basal: a steady positive discrepancy."""
    d = flat_input(**settings)
    d["glucose_values"] = [100.0 + 2.0 * i for i in range(25)]
    start = NOW - dt.timedelta(hours=3)
    d.update(dose_types=[DoseType.TEMP_BASAL], dose_start_times=[start], dose_end_times=[NOW], dose_values=[1.0])
    return d


def test_integral_retrospective_correction_setting():
    """A persistent discrepancy: integral RC (LoopAlgorithm) projects more than standard RC. Standard
    RC projects the discrepancy summed over Loop's 30 x 1.01-min grouping window: the seven 5-min
    counteraction intervals ending in it, 2 mg/dL each, 14 mg/dL in all."""
    standard = update(_rising_with_basal())["retrospective_effect_values"]
    integral = update(_rising_with_basal(retrospective_correction="integral"))["retrospective_effect_values"]
    assert standard[-1] - standard[0] == pytest.approx(14.0, abs=1e-6)
    assert integral[-1] - integral[0] > standard[-1] - standard[0]


@pytest.mark.parametrize("model", ["linear", "piecewise_linear", "adaptive"])
def test_carb_absorption_model_setting_changes_the_carb_effect(model):
    d = flat_input()
    d.update(carb_dates=[NOW - dt.timedelta(minutes=40)], carb_values=[40.0], carb_absorption_times=[180.0])
    base = update(d)
    d["settings_dictionary"] = {**d["settings_dictionary"], "carb_absorption_model": model}
    other = update(d)
    assert len(other["carb_effect_values"]) > 0
    assert other["carb_effect_values"] != base["carb_effect_values"]


def test_max_physiologic_slope_caps_rising_momentum():
    """Glucose rising 6 mg/dL/min: momentum is capped at 4 mg/dL/min (LoopAlgorithm's cap)."""
    d = flat_input(max_physiologic_slope=4.0)
    d["glucose_values"] = [100.0 + 30.0 * i for i in range(25)]
    d["glucose_values"] = [min(v, 400.0) if i < 22 else 250.0 + 30.0 * (i - 22) for i, v in enumerate(d["glucose_values"])]
    out = update(d)
    dates, values = out["momentum_effect_dates"], out["momentum_effect_values"]
    minutes = (dates[-1] - dates[0]).total_seconds() / 60.0
    assert values[-1] - values[0] <= 4.0 * minutes + 1e-9


def test_gradual_transition_check_drops_momentum_and_rc():
    """A +45 mg/dL jump between readings (threshold 40, LoopAlgorithm's) disables momentum and RC."""
    d = _rising_with_basal(gradual_transitions_threshold=40.0)
    d["glucose_values"][-1] = d["glucose_values"][-2] + 45.0
    out = update(d)
    assert out["momentum_effect_values"] == [] and out["retrospective_effect_values"] == []
    d["settings_dictionary"]["gradual_transitions_threshold"] = None
    out = update(d)
    assert out["momentum_effect_values"] and out["retrospective_effect_values"]


def test_mid_absorption_isf_only_matters_when_isf_changes():
    """With one ISF all day the two ISF rules agree; when the ISF halves during absorption,
    mid-absorption ISF (LoopAlgorithm) gives a smaller insulin effect than ISF-at-dose-start."""
    d = with_bolus(flat_input(), 2.0, minutes_ago=30)
    same = np.diff(update(d)["insulin_effect_values"])  # mid-absorption effects start at 0: compare steps
    mid_same = np.diff(update(with_bolus(flat_input(use_mid_absorption_isf=True), 2.0, minutes_ago=30))[
        "insulin_effect_values"])
    np.testing.assert_allclose(mid_same, same, rtol=0, atol=1e-9)
    change = (NOW + dt.timedelta(hours=1)).time().replace(second=0, microsecond=0)
    for key, value in (("sensitivity_ratio_start_times", [dt.time(0), change]),
                       ("sensitivity_ratio_end_times", [change, dt.time(0)]),
                       ("sensitivity_ratio_values", [50.0, 25.0])):
        d[key] = value
    start_isf = update(d)["insulin_effect_values"]
    d["settings_dictionary"]["use_mid_absorption_isf"] = True
    mid = update(d)["insulin_effect_values"]
    assert mid[-1] - mid[0] > start_isf[-1] - start_isf[0]  # less negative


def test_glucose_based_application_factor_for_automatic_bolus():
    """Loop's glucose-based factor: 0.2 up to 10 mg/dL above the lower target, 0.8 from 200 mg/dL."""
    low = update(flat_input(glucose=150.0, dosing_strategy="automatic_bolus", partial_application_factor=0.8))
    gbaf = update(flat_input(glucose=150.0, dosing_strategy="automatic_bolus",
                             use_glucose_based_application_factor=True))
    factor = 0.2 + (150.0 - 110.0) * 0.6 / (200.0 - 110.0)
    assert gbaf["recommended_autobolus"] == pytest.approx(low["recommended_autobolus"] * factor / 0.8, rel=1e-6)
