"""`make demo` runs the main job on the embedded default and exits 0."""

from __future__ import annotations

from api.demo import run_demo


def test_the_demo_shows_every_system_catching_up_and_exits_0(capsys):  # type: ignore[no-untyped-def]
    assert run_demo(2) == 0
    out = capsys.readouterr().out
    for system in ("Salesforce", "Mailchimp", "Partner"):
        assert any(line.strip().startswith(f"✔ {system}") and "caught up after" in line
                   for line in out.splitlines()), system
    assert "caused 0 new job(s)" in out and "chain verified" in out
    assert "customer1@example.com" not in out  # the demo masks addresses
