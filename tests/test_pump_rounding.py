"""Per-pump rounding (issue 8, item 3): each pump manager's supported values and direction, the rule
read from a report's pump and Loop version, and the explicit settings that override it.

Expected values are hand-computed from the pump managers' tables (docs/update.md, "Pump rounding")."""
import copy
import json
import warnings

import numpy as np
import pytest

from conftest import PROJECT_ROOT, load_reference
from pyloopkit import dose_math, update
from pyloopkit.errors import InvalidInputError
from pyloopkit.insulin_models import ExponentialInsulinModel
from pyloopkit.io import loop_report
from pyloopkit.pump_rounding import DEFAULT_RULE, PUMP_ROUNDING, Increments, rounders, rule_name
from pyloopkit.pyloop_parser import parse_report
from pyloopkit.schedule import DailySchedule

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

MARKDOWN = PROJECT_ROOT / "tests" / "data_io" / "data" / "loop_report.md"


# ------------------------------------------------------------------ each rule on hand-computed values

@pytest.mark.parametrize("rule, kind, value, expected", [
    # Omnipod Eros: 0.05 steps from 0.05 (0 is not in its rate table: Swift's `?? 0`), down, at most 30.
    ("omnipod_eros", "basal", 2.09, 2.05), ("omnipod_eros", "basal", 0.049, 0.0), ("omnipod_eros", "basal", 31.0, 30.0),
    ("omnipod_eros", "bolus", 1.437, 1.4), ("omnipod_eros", "bolus", 0.04, 0.0),
    # Omnipod DASH: 0 U/h is a supported rate; a value a hair under a step counts as on it (float noise).
    ("omnipod_dash", "basal", 0.04, 0.0), ("omnipod_dash", "basal", 0.15 - 1e-12, 0.15),
    ("omnipod_dash", "bolus", 0.999, 0.95),
    # Medtronic x23+: rates 0.025 below 1 U/h, 0.05 to 9.95, 0.1 to 35; boluses 0.025 to 1, 0.05 to 10, 0.1 to 25.
    ("minimed_x23", "basal", 0.9374, 0.925), ("minimed_x23", "basal", 0.99, 0.975),
    ("minimed_x23", "basal", 1.07, 1.05),
    ("minimed_x23", "basal", 9.99, 9.95), ("minimed_x23", "basal", 10.17, 10.1), ("minimed_x23", "basal", 40.0, 35.0),
    ("minimed_x23", "bolus", 0.99, 0.975), ("minimed_x23", "bolus", 1.04, 1.0), ("minimed_x23", "bolus", 1.07, 1.05),
    ("minimed_x23", "bolus", 10.05, 10.0), ("minimed_x23", "bolus", 10.17, 10.1), ("minimed_x23", "bolus", 30.0, 25.0),
    ("minimed_x23", "bolus", 0.02, 0.0),
    # Medtronic before x23: 0.05 U/h rates, 0.1 U boluses.
    ("minimed_x22", "basal", 0.9374, 0.9), ("minimed_x22", "bolus", 1.437, 1.4), ("minimed_x22", "bolus", 0.09, 0.0),
    ("medtrum", "basal", 26.0, 25.0), ("medtrum", "bolus", 1.437, 1.4),
    # Dana: 0.01 U/h rates, its table stops at 3 U/h; 0.05 U boluses.
    ("dana", "basal", 2.096, 2.09), ("dana", "basal", 4.0, 3.0), ("dana", "bolus", 1.437, 1.4),
    # Loop 1.x DoseMath: round(x * 40) / 40 for any pump (2.0874 * 40 = 83.496 -> 83; 2.0876 * 40 = 83.504 -> 84).
    ("loop1", "basal", 2.0874, 2.075), ("loop1", "basal", 2.0876, 2.1), ("loop1", "bolus", 1.437, 1.425),
    # Loop 2.2.5-3.2.x: boluses to the nearest supported volume or 0; rates still down.
    ("omnipod_eros_nearest_bolus", "bolus", 1.437, 1.45), ("omnipod_eros_nearest_bolus", "bolus", 1.42, 1.4),
    ("omnipod_eros_nearest_bolus", "bolus", 0.02, 0.0), ("omnipod_eros_nearest_bolus", "basal", 2.09, 2.05),
    ("minimed_x23_nearest_bolus", "bolus", 10.04, 10.0), ("minimed_x23_nearest_bolus", "bolus", 10.06, 10.1),
    ("minimed_x23_nearest_bolus", "bolus", 0.99, 1.0),
    (DEFAULT_RULE, "basal", 2.09, 2.05), (DEFAULT_RULE, "bolus", 1.437, 1.4),
])
def test_rule_rounds_like_the_pump_manager(rule, kind, value, expected):
    assert getattr(PUMP_ROUNDING[rule], kind).round(value) == pytest.approx(expected, abs=1e-12)


def test_medtronic_x23_tables_have_the_pump_model_sizes():
    """MinimedKit's x23 tables: 40 + 180 + 251 rates (0-0.975, 1-9.95, 10-35) and 40 + 180 + 150 boluses."""
    basal, bolus = PUMP_ROUNDING["minimed_x23"].basal.values, PUMP_ROUNDING["minimed_x23"].bolus.values
    assert basal.size == 471 and bolus.size == 370
    assert np.all(np.diff(basal) > 0) and np.all(np.diff(bolus) > 0)
    assert (basal[0], basal[39], basal[40], basal[-1]) == (0.0, 0.975, 1.0, 35.0)
    assert (bolus[0], bolus[40], bolus[-1]) == (0.025, 1.05, 25.0)


def test_down_never_exceeds_the_value_and_nearest_is_within_half_a_step():
    rng = np.random.default_rng(8)
    for name, rule in PUMP_ROUNDING.items():
        for inc in (rule.basal, rule.bolus):
            top = 35.0 if inc.values is None else float(inc.values[-1])
            for x in rng.uniform(0, top, 200):
                r = inc.round(x)
                if inc.mode == "down":
                    assert r <= x + 1e-9, (name, x, r)
                else:
                    assert abs(r - x) <= inc.step / 2 + 0.05 + 1e-9, (name, x, r)  # x23 steps reach 0.1


def test_at_most_is_the_largest_supported_value_within_a_limit():
    """A limit between supported values (max bolus 0.99 U on an x23 pump) rounds down to one of them."""
    assert PUMP_ROUNDING["minimed_x23"].bolus.at_most(0.99) == 0.975
    out = dose_math.recommended_bolus(
        [0.0, 21600.0], [400.0, 400.0], at_s=0.0, target=_flat(100.0, 110.0), suspend_threshold_mgdl=None,
        sensitivity=_flat(50.0), model=_model(), pending_insulin_u=0.0, max_bolus_u=0.99,
        volume_rounder=PUMP_ROUNDING["minimed_x23_nearest_bolus"].bolus)
    assert out["amount"] == 0.975  # nearest to 0.99 would be 1.0, above the limit


def _flat(*values):
    return DailySchedule(np.zeros(1), np.array([values if len(values) > 1 else values[0]]))


def _model():
    return ExponentialInsulinModel(360.0, 75.0)


# ------------------------------------------------------------------ the rule for a report

@pytest.mark.parametrize("manager, model, version, expected", [
    ("minimed", "723", "Loop v1.10.0dev", "minimed_x23"),
    ("minimed", "554", "Loop v3.4.4", "minimed_x23"),
    ("minimed", "522", "Loop v2.2.4", "minimed_x22"),
    ("minimed", None, "Loop v2.2.4", DEFAULT_RULE),  # Medtronic model unknown
    ("omnipod", None, "Loop v1.10.0dev", "omnipod_eros"),  # Tidepool's pump_manager_type
    ("OmnipodPumpManager", None, "Loop v2.2.9", "omnipod_eros_nearest_bolus"),
    ("OmniBLEPumpManager", None, "Loop v3.2.3", "omnipod_dash_nearest_bolus"),
    ("Omnipod-Dash", None, "Loop v3.4.4", "omnipod_dash"),
    ("MedtrumPumpManager", None, None, "medtrum"),
    ("Omnipod", None, "Loop v1.9.6", "loop1"),  # Loop 1.x rounds the same for every pump
    ("MockPumpManager", None, "Loop v3.4.4", DEFAULT_RULE),
    (None, None, None, DEFAULT_RULE),
    ("unknown", None, "Loop v1.10.0dev", DEFAULT_RULE),
])
def test_rule_name_from_pump_manager_model_and_version(manager, model, version, expected):
    assert rule_name(manager, model, version) == expected


def _report_1(**extra) -> dict:
    report = copy.deepcopy(load_reference("issue_reports/example_issue_report_1.json"))
    report.update(extra)
    return report


def _recommendations(input_dict: dict) -> tuple[float, float]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = update(input_dict)
    return out["recommended_temp_basal"][0], out["recommended_bolus"][0]


def test_reference_reports_have_no_pump_and_get_the_default():
    d = parse_report(_report_1())
    assert d["settings_dictionary"]["pump_rounding"] == DEFAULT_RULE
    assert _recommendations(d) == (1.2, 0.15)  # unrounded 1.2339 U/h and 0.1669 U, down to 0.05


def test_a_report_with_a_pump_gets_that_pumps_rounding():
    """Report 1 recommends 1.2339 U/h and 0.1669 U unrounded. Said to come from a Medtronic 723 on
    Loop 2.2.6 (rates down, boluses to the nearest 0.025 below 1 U): 1.2 U/h and 0.175 U; on Loop 1.9.6
    (nearest 0.025 for both): 1.225 U/h and 0.175 U."""
    unrounded = parse_report(_report_1())
    del unrounded["settings_dictionary"]["pump_rounding"]
    rate, bolus = _recommendations(unrounded)
    assert rate == pytest.approx(1.23387, abs=1e-5) and bolus == pytest.approx(0.16693, abs=1e-5)

    d = parse_report(_report_1(pump_manager_type="minimed", pump_model="723", loop_version="Loop v2.2.6"))
    assert d["settings_dictionary"]["pump_rounding"] == "minimed_x23_nearest_bolus"
    assert _recommendations(d) == (1.2, 0.175)
    d = parse_report(_report_1(pump_manager_type="minimed", pump_model="723", loop_version="Loop v1.9.6"))
    assert d["settings_dictionary"]["pump_rounding"] == "loop1"
    assert _recommendations(d) == (1.225, 0.175)


def test_explicit_rounding_and_rule_override_the_report():
    report = _report_1(pump_manager_type="omnipod")
    assert parse_report(report)["settings_dictionary"]["pump_rounding"] == "omnipod_eros"
    assert _recommendations(parse_report(report)) == (1.2, 0.15)
    # rounding="nearest" keeps Omnipod's 0.05 table but rounds to nearest: 1.2339 -> 1.25, 0.1669 -> 0.15.
    d = parse_report(report, rounding="nearest")
    assert d["settings_dictionary"]["rounding"] == "nearest"
    assert _recommendations(d) == (1.25, 0.15)
    # a named rule replaces the report's: Loop 1.x's nearest 0.025.
    assert _recommendations(parse_report(report, pump_rounding="loop1")) == (1.225, 0.175)
    # an explicit increment in the settings replaces the table (uniform 0.1, the rule's direction: down).
    d = parse_report(report)
    d["settings_dictionary"].update(rate_rounder=0.1, bolus_rounder=0.1)
    assert _recommendations(d) == (1.2, 0.1)
    with pytest.raises(ValueError, match="pump_rounding must be one of"):
        parse_report(report, pump_rounding="omnipod")
    with pytest.raises(ValueError, match="rounding must be one of"):
        parse_report(report, rounding="up")


def test_rounders_resolution():
    x23 = PUMP_ROUNDING["minimed_x23"]
    assert rounders("minimed_x23", None, None, None) == (x23.basal, x23.bolus)
    basal, bolus = rounders("minimed_x23", 0.1, None, None)
    assert basal == Increments(0.1, mode="down") and bolus == x23.bolus
    basal, bolus = rounders("minimed_x23", None, None, "nearest")
    assert basal.values is x23.basal.values or np.array_equal(basal.values, x23.basal.values)
    assert basal.mode == bolus.mode == "nearest" and basal.round(0.9374) == 0.925 and basal.round(0.95) == 0.95
    assert rounders(None, 0.05, None, None) == (Increments(0.05, mode="nearest"), None)
    assert rounders(None, None, None, "down") == (None, None)


def test_unknown_rule_name_is_an_input_error():
    from test_loop_data_manager import flat_input
    with pytest.raises(InvalidInputError) as e:
        update(flat_input(pump_rounding="omnipod"))
    assert [(p.field, p.value) for p in e.value.problems] == [("settings_dictionary.pump_rounding", "omnipod")]


def test_update_setting_pump_rounding_matches_the_rule():
    """A high flat input recommends max-basal-free rates: the pump rule's rounding of the unrounded rate."""
    from test_loop_data_manager import flat_input
    raw = update(flat_input(glucose=150.0, rate_rounder=None))["recommended_temp_basal"][0]
    for name in ("minimed_x23", "dana", "loop1", "omnipod_dash"):
        rounded = update(flat_input(glucose=150.0, rate_rounder=None, pump_rounding=name))["recommended_temp_basal"][0]
        assert rounded == PUMP_ROUNDING[name].basal.round(raw), name


# ------------------------------------------------------------------ the Markdown Loop Report

def _markdown(tmp_path, old: str, new: str):
    text = MARKDOWN.read_text()
    assert old in text
    path = tmp_path / "report.md"
    path.write_text(text.replace(old, new))
    return loop_report.read(path)


def test_markdown_report_pump_model_gives_the_rule(tmp_path):
    h = _markdown(tmp_path, "* pumpManager: Optional(MinimedPumpManager)",
                  "* pumpManager: Optional(MinimedPumpManager)\n* pumpModel: 723")
    assert h.settings["settings_dictionary"]["pump_rounding"] == "minimed_x23"
    h = _markdown(tmp_path, "Loop v2.2.4", "Loop v1.9.6")
    assert h.settings["settings_dictionary"]["pump_rounding"] == "loop1"
    h = _markdown(tmp_path, "## DeviceDataManager\n* pumpManager: Optional(MinimedPumpManager)",
                  "## DeviceDataManager\n\n## OmnipodPumpManager\n* podState: nil")
    assert h.settings["settings_dictionary"]["pump_rounding"] == "omnipod_eros"
    # the caller's settings still override the report's rule
    d = h.to_input_dict(settings={"settings_dictionary": {"pump_rounding": "loop1"}})
    assert d["settings_dictionary"]["pump_rounding"] == "loop1"


def test_docs_table_lists_every_rule():
    text = (PROJECT_ROOT / "docs" / "update.md").read_text()
    for name in PUMP_ROUNDING:
        if not name.endswith("_nearest_bolus"):
            assert f"`{name}`" in text, name
    json.dumps(sorted(PUMP_ROUNDING))  # names are plain strings (settings are JSON-friendly)


def test_a_rule_whose_smallest_value_exceeds_the_limit_is_an_error():
    """Medtronic x22 boluses start at 0.1 U: with max_bolus 0.05 U no bolus could ever be given (the
    rate_rounder > max_basal_rate hazard, for a pump rule)."""
    from test_loop_data_manager import flat_input
    with pytest.raises(InvalidInputError) as e:
        update(flat_input(max_bolus=0.05, pump_rounding="minimed_x22"))
    assert [(p.field, p.value) for p in e.value.problems] == [("settings_dictionary.pump_rounding", "minimed_x22")]
    assert "0.1 U" in e.value.problems[0].reason
    update(flat_input(max_bolus=0.05, pump_rounding="minimed_x22", bolus_rounder=0.05))  # explicit step wins
