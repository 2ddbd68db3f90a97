"""The Loop report as Loop 1, 2 and 3 write it: hand-written reports in each layout (values made up).

Layouts checked against public issue reports (see docs/data.md): Loop 2 and 3 list glucose samples
without a bullet, put a blank line after each ``###`` heading, write carb entries and predicted
glucose as a column header and rows; Loop 1 wrote lists on one line and arrays over several lines.
"""
import pytest

from pyloopkit.io import ImportFormatError, read
from pyloopkit.io._build import MMOL_TO_MG_DL

pytestmark = pytest.mark.filterwarnings("ignore::pyloopkit.errors.LoopWarning")

LOOP2 = """\
Generated: 2026-01-10 18:00:00 +0000

Loop v2.2.9

## LoopDataManager
settings: LoopCore.LoopSettings(dosingEnabled: true, glucoseTargetRangeSchedule: Optional(LoopKit.GlucoseRangeSchedule(override: nil, rangeSchedule: ["unit": "mg/dL", "items": [["value": [95.0, 105.0], "startTime": 0.0], ["startTime": 28800.0, "value": [100.0, 115.0]]], "timeZone": -21600])), maximumBasalRatePerHour: Optional(3.5), maximumBolus: Optional(8.0), suspendThreshold: Optional(LoopCore.GlucoseThreshold(value: 75.0, unit: mg/dL)), retrospectiveCorrectionEnabled: true)
insulinCounteractionEffects: [
* GlucoseEffectVelocity(start, end, mg/dL/min)
* 2026-01-10 17:45:00 +0000, 2026-01-10 17:50:00 +0000, 0.25
]
predictedGlucose: [
* PredictedGlucoseValue(start, mg/dL)
* 2026-01-10 17:55:00 +0000, 142.0
* 2026-01-10 18:00:00 +0000, 140.5

]
recommendedTempBasal: nil

## GlucoseStore

* latestGlucoseValue: nil

### cachedGlucoseSamples
StoredGlucoseSample(sampleUUID: G-1, syncIdentifier: "g1", syncVersion: 1, startDate: 2026-01-10 17:50:00 +0000, quantity: 145 mg/dL, isDisplayOnly: false, provenanceIdentifier: "")
StoredGlucoseSample(sampleUUID: G-2, syncIdentifier: "g2", syncVersion: 1, startDate: 2026-01-10 17:55:00 +0000, quantity: 143 mg/dL, isDisplayOnly: false, provenanceIdentifier: "")

## CarbStore

* carbRatioSchedule: 
* defaultAbsorptionTimes: (fast: 7200.0, medium: 10800.0, slow: 14400.0)
* insulinSensitivitySchedule: ["items": [["startTime": 0.0, "value": 55.0]], "unit": "mg/dL", "timeZone": -21600]

cachedCarbEntries: [
\tStoredCarbEntry(sampleUUID, syncIdentifier, syncVersion, startDate, quantity, foodType, absorptionTime, createdByCurrentApp, externalID, isUploaded)
\t, C-1, c1, 1, 2026-01-10 17:30:00 +0000, 25 g, toast, jam, 7200.0, true, , false
\t, C-2, c2, 1, 2026-01-10 17:40:00 +0000, 12.5 g, , 10800.0, true, , false
]

## DoseStore

* insulinModel: Optional(humalogNovologAdult(ExponentialInsulinModel(actionDuration: 21600.0, peakActivityTime: 4500.0))
* basalProfile: ["items": [["startTime": 0.0, "value": 0.9]], "timeZone": -21600]

### getNormalizedDoseEntries

* DoseEntry(type: LoopKit.DoseType.tempBasal, startDate: 2026-01-10 17:00:00 +0000, endDate: 2026-01-10 17:30:00 +0000, value: 0.6, unit: LoopKit.DoseUnit.units, deliveredUnits: Optional(0.55), description: nil, syncIdentifier: Optional("t1"), scheduledBasalRate: Optional(0.9 IU/hr))
* DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-01-10 17:31:00 +0000, endDate: 2026-01-10 17:32:00 +0000, value: 2.5, unit: LoopKit.DoseUnit.units, deliveredUnits: nil, description: nil, syncIdentifier: Optional("b1"), scheduledBasalRate: nil)
"""

LOOP3 = """\
Generated: 2026-02-01 09:00:00 +0000

Loop v3.4.1

## LoopDataManager
settings: LoopCore.LoopSettings(dosingEnabled: true, glucoseTargetRangeSchedule: Optional(["unit": "mmol/L", "items": [["startTime": 0.0, "value": [5.5, 6.0]]], "timeZone": 3600]), insulinSensitivitySchedule: Optional(["unit": "mmol/L", "items": [["startTime": 0.0, "value": 2.5]], "timeZone": 3600]), basalRateSchedule: Optional(["items": [["startTime": 0.0, "value": 0.7], ["startTime": 21600.0, "value": 0.85]], "timeZone": 3600]), carbRatioSchedule: Optional(["unit": "g", "items": [["startTime": 0.0, "value": 11.0]], "timeZone": 3600]), maximumBasalRatePerHour: Optional(2.8), maximumBolus: Optional(6.0), suspendThreshold: Optional(LoopCore.GlucoseThreshold(value: 4.0, unit: mmol/L)), automaticDosingStrategy: LoopKit.AutomaticDosingStrategy.automaticBolus, defaultRapidActingModel: Optional(LoopKit.ExponentialInsulinModelPreset.rapidActingChild))
recommendedAutomaticDose: Optional((recommendation: LoopKit.AutomaticDoseRecommendation(basalAdjustment: Optional(LoopKit.TempBasalRecommendation(unitsPerHour: 0.4, duration: 1800.0)), bolusUnits: Optional(0.15)), date: 2026-02-01 08:58:00 +0000))

## GlucoseStore

### cachedGlucoseSamples
StoredGlucoseSample(uuid: nil, provenanceIdentifier: "", syncIdentifier: "x1", syncVersion: 1, startDate: 2026-02-01 08:55:00 +0000, quantity: 6.8 mmol/L, isDisplayOnly: false, wasUserEntered: false)

## CarbStore

* carbRatioSchedule: 

cachedCarbEntries:
[
\tStoredCarbEntry(uuid, provenanceIdentifier, syncIdentifier, syncVersion, startDate, quantity, foodType, absorptionTime, createdByCurrentApp, userCreatedDate, userUpdatedDate)
\t, U-1, com.loopkit.Loop, s1, 1, 2026-02-01 07:30:00 +0000, 40 g, pasta, 14400.0, true, 2026-02-01 07:30:05 +0000, 
]

## DoseStore

* insulinModelProvider: PresetInsulinModelProvider(defaultRapidActingModel: nil)
* basalProfile: 

### getNormalizedDoseEntries

* DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-02-01 07:31:00 +0000, endDate: 2026-02-01 07:32:00 +0000, value: 3.0, unit: LoopKit.DoseUnit.units, deliveredUnits: Optional(3.0), description: nil, insulinType: Optional(LoopKit.InsulinType.novolog), automatic: Optional(false), manuallyEntered: false, syncIdentifier: Optional("b2"), isMutable: false, wasProgrammedByPumpUI: false, scheduledBasalRate: nil)
* DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-02-01 08:00:00 +0000, endDate: 2026-02-01 08:00:00 +0000, value: 1.0, unit: LoopKit.DoseUnit.units, deliveredUnits: nil, description: nil, insulinType: Optional(LoopKit.InsulinType.novolog), automatic: nil, manuallyEntered: true, syncIdentifier: Optional("pen1"), isMutable: false, wasProgrammedByPumpUI: false, scheduledBasalRate: nil)

### getManuallyEnteredDoses

* DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-02-01 08:00:00 +0000, endDate: 2026-02-01 08:00:00 +0000, value: 1.0, unit: LoopKit.DoseUnit.units, deliveredUnits: nil, description: nil, insulinType: Optional(LoopKit.InsulinType.novolog), automatic: nil, manuallyEntered: true, syncIdentifier: Optional("pen1"), isMutable: false, wasProgrammedByPumpUI: false, scheduledBasalRate: nil)
* DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-02-01 06:00:00 +0000, endDate: 2026-02-01 06:00:00 +0000, value: 2.0, unit: LoopKit.DoseUnit.units, deliveredUnits: nil, description: nil, insulinType: Optional(LoopKit.InsulinType.novolog), automatic: nil, manuallyEntered: true, syncIdentifier: Optional("pen2"), isMutable: false, wasProgrammedByPumpUI: false, scheduledBasalRate: nil)

### InsulinDeliveryStore
* cacheLength: 86400.0

#### cachedDoseEntries
DoseEntry(type: LoopKit.DoseType.bolus, startDate: 2026-02-01 07:31:00 +0000, endDate: 2026-02-01 07:32:00 +0000, value: 3.0, unit: LoopKit.DoseUnit.units, deliveredUnits: Optional(3.0), description: nil, syncIdentifier: Optional("b2"), scheduledBasalRate: nil)
"""

LOOP1 = """\
## LoopDataManager
settings: Loop.LoopSettings(dosingEnabled: true, glucoseTargetRangeSchedule: Optional(["items": [["startTime": 0.0, "value": <__NSArrayI 0x1700aa000>(
100,
115
)
], ["startTime": 21600.0, "value": <__NSArrayI 0x1700bb000>(
90,
100
)
]], "timeZone": -14400, "unit": "mg/dL"]), maximumBasalRatePerHour: Optional(5.0), maximumBolus: Optional(10.0), minimumBGGuard: Optional(Loop.GlucoseThreshold(value: 70.0, unit: mg/dL)), retrospectiveCorrectionEnabled: true)
predictedGlucose: [LoopKit.PredictedGlucoseValue(startDate: 2017-06-02 00:45:00 +0000, quantity: 150 mg/dL), LoopKit.PredictedGlucoseValue(startDate: 2017-06-02 00:50:00 +0000, quantity: 148.5 mg/dL)]
"""


def _write(tmp_path, text, name="report.md"):
    path = tmp_path / name
    path.write_text(text)
    return path


def iso(series):
    return [t.isoformat() for t in series]


def test_loop2_layout(tmp_path):
    h = read(_write(tmp_path, LOOP2))
    assert str(h.tz) == "UTC-06:00"
    # bare StoredGlucoseSample lines
    assert iso(h.glucose["time"]) == ["2026-01-10T11:50:00-06:00", "2026-01-10T11:55:00-06:00"]
    assert h.glucose["glucose_mg_dl"].tolist() == [145.0, 143.0]
    # the blank line after "### getNormalizedDoseEntries"; deliveredUnits 0.55 U over 30 min = 1.1 U/h
    assert h.doses["type"].tolist() == ["TEMP_BASAL", "BOLUS"]
    assert h.doses["value"].tolist() == pytest.approx([1.1, 2.5], abs=1e-12)
    # carb rows under their header; "toast, jam" is one foodType
    assert h.carbs["grams"].tolist() == [25.0, 12.5] and h.carbs["absorption_min"].tolist() == [120.0, 180.0]
    s = h.settings
    assert s["target_range_start_times"] == ["00:00:00", "08:00:00"]
    assert s["target_range_minimum_values"] == [95.0, 100.0] and s["target_range_maximum_values"] == [105.0, 115.0]
    assert s["sensitivity_ratio_values"] == [55.0] and s["basal_rate_values"] == [0.9]
    assert "carb_ratio_values" not in s
    assert s["settings_dictionary"] == {"model": [360.0, 75.0], "default_absorption_times": [120.0, 180.0, 240.0],
                                        "max_basal_rate": 3.5, "max_bolus": 8.0, "suspend_threshold": 75.0,
                                        "retrospective_correction_enabled": True, "pump_rounding": "default"}
    skipped = dict(zip(h.skipped["field"], h.skipped["reason"]))
    assert skipped == {"carbRatioSchedule": "empty in the report (not set in Loop)"}
    assert h.app_output["predicted_glucose"] == [["2026-01-10T17:55:00+00:00", 142.0],
                                                 ["2026-01-10T18:00:00+00:00", 140.5]]
    assert h.app_output["loop_version"] == "Loop v2.2.9"


def test_loop3_layout(tmp_path):
    h = read(_write(tmp_path, LOOP3))
    assert str(h.tz) == "UTC+01:00"  # from LoopSettings' basal schedule: the DoseStore's is empty
    assert h.glucose["glucose_mg_dl"].tolist() == [6.8 * MMOL_TO_MG_DL]
    # "cachedCarbEntries:" and "[" on separate lines, Loop 3's columns
    assert h.carbs["grams"].tolist() == [40.0] and h.carbs["absorption_min"].tolist() == [240.0]
    # the normalized list plus the logged pen dose at 06:00; the logged 08:00 dose is the same as a normalized one
    assert iso(h.doses["start"]) == ["2026-02-01T07:00:00+01:00", "2026-02-01T08:31:00+01:00",
                                     "2026-02-01T09:00:00+01:00"]
    assert h.doses["value"].tolist() == [2.0, 3.0, 1.0]
    reasons = h.skipped["reason"].tolist()
    assert sum(r.startswith("duplicate dose") for r in reasons) == 1
    assert sum(r.startswith("another dose list is used") for r in reasons) == 1  # InsulinDeliveryStore's
    assert reasons.count("empty in the report (not set in Loop)") == 2  # carbRatioSchedule, basalProfile
    s = h.settings
    assert s["basal_rate_start_times"] == ["00:00:00", "06:00:00"] and s["basal_rate_values"] == [0.7, 0.85]
    assert s["carb_ratio_values"] == [11.0]
    assert s["sensitivity_ratio_values"] == [2.5 * MMOL_TO_MG_DL]
    assert s["target_range_minimum_values"] == [5.5 * MMOL_TO_MG_DL]
    assert s["target_range_maximum_values"] == [6.0 * MMOL_TO_MG_DL]
    sd = s["settings_dictionary"]
    assert sd["model"] == [360.0, 65.0]  # the rapid-acting child preset: peak 65 min
    assert sd["suspend_threshold"] == 4.0 * MMOL_TO_MG_DL and sd["max_basal_rate"] == 2.8 and sd["max_bolus"] == 6.0
    out = h.app_output
    assert out["recommended_temp_basal"] == {"rate_u_per_h": 0.4, "duration_min": 30.0,
                                             "date": "2026-02-01T08:58:00+00:00"}
    assert out["recommended_automatic_bolus"] == {"amount_u": 0.15, "date": "2026-02-01T08:58:00+00:00"}


def test_loop1_layout(tmp_path):
    h = read(_write(tmp_path, LOOP1))
    s = h.settings
    assert s["target_range_start_times"] == ["00:00:00", "06:00:00"]
    assert s["target_range_minimum_values"] == [100.0, 90.0] and s["target_range_maximum_values"] == [115.0, 100.0]
    sd = s["settings_dictionary"]
    assert sd["suspend_threshold"] == 70.0 and sd["max_basal_rate"] == 5.0 and sd["max_bolus"] == 10.0
    assert h.app_output["predicted_glucose"] == [["2017-06-02T00:45:00+00:00", 150.0],
                                                 ["2017-06-02T00:50:00+00:00", 148.5]]


def test_carb_row_with_missing_fields_names_the_line(tmp_path):
    text = LOOP2.replace("\t, C-2, c2, 1, 2026-01-10 17:40:00 +0000, 12.5 g, , 10800.0, true, , false",
                         "\t, C-2, c2, 1, 2026-01-10 17:40:00 +0000")
    line = text.splitlines().index("\t, C-2, c2, 1, 2026-01-10 17:40:00 +0000") + 1
    with pytest.raises(ImportFormatError, match=rf"line {line}, field 'row'.*4 fields for 10 columns"):
        read(_write(tmp_path, text))


def test_schedule_in_an_unknown_form_is_skipped_with_the_reason(tmp_path):
    text = LOOP2.replace('* insulinSensitivitySchedule: ["items": [["startTime": 0.0, "value": 55.0]], "unit": '
                         '"mg/dL", "timeZone": -21600]',
                         "* insulinSensitivitySchedule: LoopKit.DailyQuantitySchedule<Double>(unit: mg/dL)")
    h = read(_write(tmp_path, text))
    assert "sensitivity_ratio_values" not in h.settings
    row = h.skipped[h.skipped["field"] == "insulinSensitivitySchedule"]
    assert row["reason"].tolist() == ["schedule not written as a dictionary literal (a form this reader does not know)"]
