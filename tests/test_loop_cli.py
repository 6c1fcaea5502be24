"""`xrd-agent bench loop --sample PATH`: bad input is one line and exit status 2, before anything scans."""

from __future__ import annotations

from pathlib import Path

from cli.main import main


def test_sample_option_refuses_a_missing_file_and_other_benchmarks(tmp_path: Path, capsys) -> None:
    assert main(["bench", "loop", "--sample", str(tmp_path / "scan.xy")]) == 2
    assert "no such file" in capsys.readouterr().err
    existing = tmp_path / "scan.xy"
    existing.write_text("10 1\n11 2\n")
    assert main(["bench", "accuracy", "--sample", str(existing)]) == 2
    assert "applies to 'bench loop' only" in capsys.readouterr().err
