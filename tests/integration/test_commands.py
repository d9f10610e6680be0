"""``invoke``, ``warmup``, ``kv`` and ``token``, against a running serve and on their own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.serve import exposure_warning
from tests.integration.conftest import FIXTURE_TEMPLATE, LocalServe, run_cli

pytestmark = pytest.mark.integration


def test_invoke_prints_the_result_of_one_invocation_in_the_running_serve(
    fixture_app: LocalServe, tmp_path: Path
) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"hello": "invoke"}))

    result = fixture_app.cli("invoke", "EchoFunction", "-e", str(event))

    assert json.loads(result.stdout)["event"] == {"hello": "invoke"}


def test_invoke_reports_a_function_error_with_a_failing_exit_status(fixture_app: LocalServe) -> None:
    result = fixture_app.cli(
        "invoke", "CrashFunction", "-e", "-", stdin=b'{"pathParameters": {"mode": "raise"}}', check=False
    )

    assert result.returncode == 1
    assert json.loads(result.stdout)["errorType"] == "ValueError"


def test_warmup_fires_every_enabled_schedule_once(fixture_app: LocalServe) -> None:
    before = fixture_app.get_json("/ticks")["counts"].get("cron_input", 0)

    result = fixture_app.cli("warmup")

    assert result.stdout.count(": ok in ") == 2
    assert fixture_app.get_json("/ticks")["counts"]["cron_input"] >= before + 1


def test_kv_commands_work_on_the_running_serves_namespace(fixture_app: LocalServe) -> None:
    fixture_app.cli("kv", "put", "cli:greeting", "hello")

    assert fixture_app.cli("kv", "get", "cli:greeting").stdout == "hello\n"
    listed = json.loads(fixture_app.cli("kv", "list", "--prefix", "cli:", "--json").stdout)
    assert listed == [{"name": "cli:greeting"}]
    fixture_app.cli("kv", "delete", "cli:greeting")
    assert fixture_app.cli("kv", "get", "cli:greeting", check=False).returncode == 1


def test_the_app_is_seeded_with_the_three_users(app: LocalServe) -> None:
    document = json.loads(app.cli("kv", "get", "data:user-roles").stdout)

    assert {email: user["role"] for email, user in document["users"].items()} == {
        "admin@example.com": "admin",
        "member@example.com": "member",
        "demo@example.com": "demo",
    }


def test_data_survives_a_restart_and_commands_without_a_serve_use_it(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    where = ["--template", str(FIXTURE_TEMPLATE), "--data-dir", str(data_dir)]
    server = LocalServe(FIXTURE_TEMPLATE, data_dir).start()
    try:
        server.cli("kv", "put", "kept", "across restarts")
        server.cli("kv", "delete", "data:user-roles")
    finally:
        assert server.stop() == 0
    assert "data saved" in server.log()

    offline = run_cli("kv", "get", "kept", *where).stdout
    invoked = json.loads(run_cli("invoke", "EchoFunction", *where).stdout)
    restarted = LocalServe(FIXTURE_TEMPLATE, data_dir).start()
    try:
        online = restarted.cli("kv", "get", "kept").stdout
        seed = restarted.cli("kv", "get", "data:user-roles", check=False)
    finally:
        restarted.stop()

    assert offline == online == "across restarts\n"
    assert invoked["env"]["AWS_LAMBDA_FUNCTION_NAME"] == "EchoFunction"
    assert seed.returncode == 1, "the seed is written on a data directory's first start only"


def test_token_prints_the_token_on_its_last_line(fixture_app: LocalServe) -> None:
    lines = fixture_app.cli("token", "--email", "demo@example.com").stdout.splitlines()

    assert lines[-1].count(".") == 2


@pytest.mark.parametrize(
    ("host", "lines"),
    [("127.0.0.1", 0), ("localhost", 0), ("172.17.0.1", 1), ("0.0.0.0", 5), ("::", 5)],
)
def test_an_embedded_aws_off_loopback_is_announced_and_on_every_interface_loudly(
    host: str, lines: int
) -> None:
    warning = exposure_warning(host, "4566")

    assert len(warning) == lines
    assert all("NO authentication" in line for line in warning if host in line)


def test_kv_list_shows_people_a_table_with_the_time_left_and_the_metadata(fixture_app: LocalServe) -> None:
    fixture_app.cli("kv", "put", "table:plain", "x")
    fixture_app.cli("kv", "put", "table:expiring", "x", "--ttl", "7200")

    lines = fixture_app.cli("kv", "list", "--prefix", "table:").stdout.splitlines()

    assert lines[0].split() == ["KEY", "EXPIRES", "IN", "METADATA"]
    assert lines[1].split()[:3] in (["table:expiring", "1", "h"], ["table:expiring", "2", "h"])
    assert lines[2].split() == ["table:plain", "-", "-"]
    assert lines[-1] == "(2 keys)"
