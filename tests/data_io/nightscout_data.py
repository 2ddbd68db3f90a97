"""Recorded Nightscout collections (hand-made): entries newest first, treatments, two profiles."""

ENTRIES = [  # newest first, as Nightscout answers; one duplicate, one calibration record
    {"type": "sgv", "sgv": 140, "date": 1774747500000, "dateString": "2026-03-29T01:25:00.000Z"},
    {"type": "sgv", "sgv": 135, "date": 1774746900000, "dateString": "2026-03-29T01:15:00.000Z"},
    {"type": "sgv", "sgv": 135, "date": 1774746900000, "dateString": "2026-03-29T01:15:00.000Z"},
    {"type": "cal", "slope": 1000, "date": 1774746600000},
    {"type": "mbg", "mbg": 128, "date": 1774746300000},
    {"type": "sgv", "sgv": 130, "date": 1774742400000, "dateString": "2026-03-29T00:00:00.000Z"},
]
TREATMENTS = [
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:00:00.000Z", "absolute": 1.2, "rate": 1.2, "duration": 30},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:20:00.000Z", "absolute": 0.4, "duration": 30},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:40:00.000Z", "absolute": 0, "duration": 0},
    {"eventType": "Temp Basal", "created_at": "2026-03-29T00:45:00.000Z", "percent": -50, "duration": 30},
    {"eventType": "Correction Bolus", "created_at": "2026-03-29T00:05:00.000Z", "insulin": 1.5},
    {"eventType": "Meal Bolus", "created_at": "2026-03-29T01:00:00.000Z", "insulin": 4.0, "carbs": 45,
     "absorptionTime": 180},
    {"eventType": "Combo Bolus", "created_at": "2026-03-29T01:30:00.000Z", "insulin": 2.0, "relative": 1.2,
     "duration": 60},
    {"eventType": "Carb Correction", "created_at": "2026-03-29T01:40:00.000Z", "carbs": 15},
    {"eventType": "BG Check", "created_at": "2026-03-29T01:45:00.000Z", "glucose": 7.5, "units": "mmol"},
    {"eventType": "Suspend Pump", "created_at": "2026-03-29T02:00:00.000Z", "duration": 15},
    {"eventType": "Site Change", "created_at": "2026-03-29T02:30:00.000Z"},
    {"eventType": "Mystery", "created_at": "2026-03-29T02:35:00.000Z"},
]
PROFILE = [
    {"defaultProfile": "Default", "startDate": "2026-01-01T00:00:00.000Z", "store": {"Default": {
        "dia": 5, "units": "mmol", "timezone": "Europe/Berlin",
        "basal": [{"time": "00:00", "value": 0.9, "timeAsSeconds": 0}, {"time": "06:30", "value": 1.1}],
        "carbratio": [{"time": "00:00", "value": 11}],
        "sens": [{"time": "00:00", "value": 2.5}],
        "target_low": [{"time": "00:00", "value": 5.5}], "target_high": [{"time": "00:00", "value": 6.0}]}},
     "loopSettings": {"maximumBasalRatePerHour": 3.5, "maximumBolus": 8, "minimumBGGuard": 4.0}},
    {"defaultProfile": "Old", "startDate": "2025-01-01T00:00:00.000Z", "store": {"Old": {"dia": 4}}},
]
