"""Hazards an adversarial run found in update() and the issue-report parser (issue 8): each is now a
clear InvalidInputError / MissingDataError naming field, index and value, or a correct result."""
import copy
import datetime as dt
import warnings

import numpy as np
import pytest

from pyloopkit import update
from pyloopkit.errors import InvalidInputError, LoopWarning, MissingDataError
from pyloopkit.input_validation import MMOL_TO_MGDL, NUMERIC_SETTINGS
from pyloopkit.pyloop_parser import parse_report
from tests.conftest import PROJECT_ROOT
from tests.test_loop_data_manager import NOW, flat_input, with_bolus

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

SYNTHETIC_REPORT = PROJECT_ROOT / "example_files" / "synthetic_issue_report.json"


def problems(d: dict) -> list:
    with pytest.raises(InvalidInputError) as err:
        update(d)
    return [(p.field, p.index, p.value) for p in err.value.problems]


def in_mmol(d: dict) -> dict:
    d = copy.deepcopy(d)
    d["glucose_values"] = [v / MMOL_TO_MGDL for v in d["glucose_values"]]
    d["glucose_units"] = "mmol/L"
    s = d["settings_dictionary"]
    s["suspend_threshold"] = s["suspend_threshold"] / MMOL_TO_MGDL
    return d


# --------------------------------------------------------------------------- suspend threshold units

def test_suspend_threshold_follows_glucose_units_in_mmol():
    """Rule: ``suspend_threshold`` is in ``suspend_threshold_units`` when given, else in ``glucose_units``."""
    mg = flat_input(glucose=139.0, suspend_threshold=70.0)
    mmol = in_mmol(mg)
    assert mmol["settings_dictionary"]["suspend_threshold"] == 70.0 / MMOL_TO_MGDL
    a, b = update(mg), update(mmol)
    assert a["recommended_temp_basal"][0] > 1.0  # 139 mg/dL over a 100-110 target: more insulin
    assert b["recommended_temp_basal"] == pytest.approx(a["recommended_temp_basal"])


def test_suspend_threshold_in_mg_dl_with_mmol_glucose_is_an_error_naming_the_unit():
    """The hazard: 70 (meant as mg/dL) with mmol/L glucose became 1,261 mg/dL and 139 mg/dL suspended."""
    d = in_mmol(flat_input(glucose=139.0))
    d["settings_dictionary"]["suspend_threshold"] = 70.0
    [(field, index, value)] = problems(d)
    assert (field, index, value) == ("settings_dictionary.suspend_threshold", None, 70.0)
    d["settings_dictionary"]["suspend_threshold_units"] = "mg/dL"
    out = update(d)
    assert out["recommended_temp_basal"][0] > 1.0  # 139 mg/dL: no suspension
    assert update(flat_input(glucose=139.0, suspend_threshold=70.0))["recommended_temp_basal"] == pytest.approx(
        out["recommended_temp_basal"])


def test_suspend_threshold_in_mmol_with_mg_dl_glucose():
    d = flat_input(glucose=139.0, suspend_threshold=4.2)
    assert problems(d) == [("settings_dictionary.suspend_threshold", None, 4.2)]
    d["settings_dictionary"]["suspend_threshold_units"] = "mmol/L"
    ref = update(flat_input(glucose=139.0, suspend_threshold=4.2 * MMOL_TO_MGDL))
    assert update(d)["recommended_temp_basal"] == pytest.approx(ref["recommended_temp_basal"])


# --------------------------------------------------------------------------- plausible glucose

@pytest.mark.parametrize("value,units", [(140.0, "mmol/L"), (7.0, None), (1e6, None), (19.9, None), (600.1, None)])
def test_impossible_glucose_is_an_error(value, units):
    d = flat_input()
    if units:
        d = in_mmol(d)
    d["glucose_values"][24] = value
    found = problems(d)
    assert found == [("glucose_values", 24, value)]


def test_glucose_at_the_cgm_edges_warns_once():
    d = flat_input()
    d["glucose_values"][3] = 39.0
    d["glucose_values"][5] = 39.0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = update(d)
    edge = [str(w.message) for w in caught if "CGM reports" in str(w.message)]
    assert len(edge) == 1 and "2 reading(s)" in edge[0] and "glucose_values[3] = 39" in edge[0]
    assert out["warnings"].count(edge[0]) == 1
    d["glucose_values"][3] = d["glucose_values"][5] = 20.0
    update(d)  # the limits themselves are possible
    d["glucose_values"][3] = 600.0
    update(d)


# --------------------------------------------------------------------------- missing and empty lists

def test_empty_glucose_is_an_error_not_an_index_error():
    d = flat_input()
    d["glucose_dates"], d["glucose_values"] = [], []
    assert ("glucose_values", None, []) in problems(d)


@pytest.mark.parametrize("key", ["dose_types", "dose_values", "dose_start_times", "dose_end_times"])
def test_a_missing_dose_list_is_named(key):
    d = with_bolus(flat_input(), 1.0, minutes_ago=30)
    del d[key]
    assert problems(d) == [(key, None, None)]


@pytest.mark.parametrize("key", ["carb_values", "carb_absorption_times", "carb_dates"])
def test_a_missing_carb_list_is_named(key):
    d = flat_input()
    d.update(carb_dates=[NOW - dt.timedelta(minutes=30)], carb_values=[30.0], carb_absorption_times=[180.0])
    del d[key]
    assert problems(d) == [(key, None, None)]


# --------------------------------------------------------------------------- settings ranges

def test_rate_rounder_above_max_basal_rate_is_an_error():
    """The hazard: with rate_rounder 0.5 > max_basal_rate 0.4 every rate rounded to 0: suspended at
    285 mg/dL and rising."""
    d = flat_input(glucose=285.0, max_basal_rate=0.4, rate_rounder=0.5)
    d["glucose_values"] = [200.0 + 3.5 * i for i in range(25)]
    assert problems(d) == [("settings_dictionary.rate_rounder", None, 0.5)]
    d["settings_dictionary"]["rate_rounder"] = 0.05
    assert update(d)["recommended_temp_basal"][0] == pytest.approx(0.4)


def test_bolus_rounder_above_max_bolus_is_an_error():
    d = flat_input(max_bolus=0.5, bolus_rounder=1.0)
    assert problems(d) == [("settings_dictionary.bolus_rounder", None, 1.0)]


@pytest.mark.parametrize("key,value", [("retrospective_correction_grouping_interval", 1e-6),
                                       ("momentum_data_interval", 1e-3), ("recency_interval", 1e4),
                                       ("retrospective_correction_integration_interval", 0.01),
                                       ("insulin_delay", 600.0), ("max_basal_rate", 1e6), ("max_bolus", 1e3),
                                       ("max_physiologic_slope", 1e9), ("gradual_transitions_threshold", 1e9)])
def test_settings_outside_their_plausible_range_are_errors(key, value):
    """The hazard: a grouping interval of 1e-6 min was accepted and predicted -1,353,562 mg/dL."""
    d = flat_input(**{key: value})
    assert ("settings_dictionary." + key, None, value) in problems(d)


def test_every_numeric_setting_has_a_documented_range():
    text = (PROJECT_ROOT / "docs" / "update.md").read_text()
    table = text[text.index("### Plausible ranges"):]
    for key, (low, _, high, _) in NUMERIC_SETTINGS.items():
        assert f"| `{key}` |" in table, key


@pytest.mark.parametrize("model", [[360.0], [6.0, 1.25]])
def test_model_durations_in_the_wrong_unit_are_errors(model):
    """[360] would be a 360-hour Walsh DIA; [6, 1.25] a 6-minute exponential DIA."""
    d = flat_input(model=model)
    assert [f for f, _, _ in problems(d)] == ["settings_dictionary.model"]


# --------------------------------------------------------------------------- Walsh with mid-absorption ISF

@pytest.mark.parametrize("dia_h", [2.5, 3.0, 3.3])
def test_short_walsh_with_mid_absorption_isf_runs(dia_h):
    """Loop's Walsh curve for DIA <= 3.3 h leaves a remaining fraction above 1 near t = 0 (1.00075 at
    12.5 min for 3 h); the valid settings were rejected with an internal field name. With one ISF the
    mid-absorption sensitivity equals the plain one, so both give the same recommendation."""
    plain = with_bolus(flat_input(glucose=180.0, model=[dia_h]), 1.0, minutes_ago=40)
    mid = copy.deepcopy(plain)
    mid["settings_dictionary"]["use_mid_absorption_isf"] = True
    a, b = update(plain), update(mid)
    assert b["recommended_temp_basal"] == pytest.approx(a["recommended_temp_basal"])
    assert b["recommended_bolus"][0] == pytest.approx(a["recommended_bolus"][0], abs=1e-9)


# --------------------------------------------------------------------------- issue report without doses

def _report_without_doses() -> dict:
    import json
    report = json.loads(SYNTHETIC_REPORT.read_text())
    for key in ("get_normalized_pump_event_dose", "get_normalized_dose_entries", "cached_dose_entries"):
        report.pop(key, None)
    return report


def test_issue_report_without_its_dose_section_is_an_error():
    """The hazard: it parsed as "no insulin": IOB 0, maximal temp basal and a large bolus."""
    with pytest.raises(MissingDataError, match="get_normalized_pump_event_dose"):
        parse_report(_report_without_doses())


def test_issue_report_without_doses_runs_only_by_explicit_opt_in():
    with pytest.warns(LoopWarning, match="no dose section"):
        d = parse_report(_report_without_doses(), allow_missing_doses=True)
    assert d["dose_types"] == []
    assert update(d)["insulin_on_board"] == 0.0
    assert update(parse_report(SYNTHETIC_REPORT))["insulin_on_board"] > 0.0
