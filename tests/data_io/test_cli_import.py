"""``pyloopkit import``: summary, skipped counts, --out, and error exit codes naming the file."""
from pathlib import Path

from pyloopkit.cli import EXIT_INVALID, EXIT_OK, EXIT_UNREADABLE, main
from pyloopkit.io import History

DATA = Path(__file__).parent / "data"


def test_import_prints_summary_and_writes_history(tmp_path, capsys):
    out = tmp_path / "h"
    assert main(["import", str(DATA / "tidepool.json"), "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "(tidepool), zone America/New_York" in printed
    assert "glucose: 3 readings (2 cgm, 1 smbg)" in printed and "boluses 4.50 U" in printed
    assert "skipped: 5" in printed and "2 settings in the timeline" in printed and "     2  item type not imported" in printed
    assert len(History.from_csv(out).doses) == 6


def test_import_options_reach_the_reader(capsys):
    assert main(["import", str(DATA / "clarity.csv"), "--tz", "America/New_York", "--low-high", "limit"]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "glucose: 5 readings (4 cgm, 1 smbg)" in printed and "skipped: 5" in printed


def test_import_missing_file_names_it(tmp_path, capsys):
    assert main(["import", str(tmp_path / "nope.csv")]) == EXIT_UNREADABLE
    assert "nope.csv" in capsys.readouterr().err


def test_import_unreadable_value_names_file_line_and_field(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("time,type,value,unit\n2026-03-01T08:00:00+00:00,cgm,x,mg/dL\n")
    assert main(["import", str(bad)]) == EXIT_INVALID
    assert "bad.csv, line 2, field 'value': 'x': not a number" in capsys.readouterr().err


def test_import_without_a_source_is_a_usage_error(capsys):
    assert main(["import"]) == 2
    assert "give a FILE or --nightscout URL" in capsys.readouterr().err


def test_import_from_a_nightscout_site(site, tmp_path, capsys):
    out = tmp_path / "h"
    assert main(["import", "--nightscout", site.url, "--token", "secret-1", "--days", "3", "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert f"{site.url} (nightscout), zone Europe/Berlin" in printed and "glucose: 5 readings (3 cgm, 2 smbg)" in printed
    assert History.from_csv(out).settings["basal_rate_values"] == [0.9, 1.1]


def test_import_from_a_site_with_a_wrong_token_names_the_url(site, capsys):
    assert main(["import", site.url, "--token", "nope"]) == EXIT_INVALID
    assert "HTTP 401" in capsys.readouterr().err
