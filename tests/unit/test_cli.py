"""The ``moovolt`` command line and the dev server's command line."""

from pathlib import Path

import pytest

from moovolt.auth import Role, hash_token, new_token
from moovolt.cli import build_parser
from moovolt.settings import Settings
from temporal.devserver import DevServerConfig, split_address


def test_up_seeds_the_demo_unless_told_not_to() -> None:
    parser = build_parser()
    assert parser.parse_args(["up"]).demo is True
    assert parser.parse_args(["up", "--no-demo"]).demo is False


@pytest.mark.parametrize("command", ["gateway", "worker", "api", "migrate"])
def test_process_commands(command: str) -> None:
    assert build_parser().parse_args([command]).command == command


def test_operator_create() -> None:
    args = build_parser().parse_args(["operator", "create", "ana", "--role", "viewer"])
    assert (args.command, args.operator_command) == ("operator", "create")
    assert (args.name, args.role, args.password) == ("ana", "viewer", None)
    assert build_parser().parse_args(["operator", "create", "bo"]).role == "operator"


def test_operator_create_refuses_an_unknown_role(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(["operator", "create", "ana", "--role", "root"])
    assert exited.value.code == 2
    assert "invalid choice: 'root'" in capsys.readouterr().err


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args([])
    assert exited.value.code == 2


def test_demo_seed() -> None:
    args = build_parser().parse_args(["demo", "seed"])
    assert (args.command, args.demo_command) == ("demo", "seed")


def test_dev_server_command_line(tmp_path: Path) -> None:
    settings = Settings(
        temporal_address="127.0.0.1:7299",
        temporal_ui_port=8299,
        data_dir=str(tmp_path),
    )
    config = DevServerConfig.from_settings(settings, executable=Path("/x/temporal"))
    command = config.command()

    assert command[:3] == ["/x/temporal", "server", "start-dev"]
    flags = dict(zip(command[3::2], command[4::2], strict=False))
    assert flags["--ip"] == "127.0.0.1"
    assert flags["--port"] == "7299"
    assert flags["--ui-port"] == "8299"
    assert flags["--db-filename"] == str(tmp_path / "temporal.sqlite")
    attributes = [
        command[i + 1] for i, arg in enumerate(command) if arg == "--search-attribute"
    ]
    assert attributes == [
        "ChargerId=Keyword",
        "IdToken=Keyword",
        "SessionState=Keyword",
    ]
    assert "--namespace" not in command


def test_dev_server_creates_a_custom_namespace(tmp_path: Path) -> None:
    settings = Settings(temporal_namespace="moovolt", data_dir=str(tmp_path))
    command = DevServerConfig.from_settings(settings, Path("temporal")).command()
    assert command[command.index("--namespace") + 1] == "moovolt"


def test_dev_server_executable_comes_from_the_venv() -> None:
    config = DevServerConfig.from_settings(Settings())
    assert config.executable.name == "temporal"
    assert config.executable.is_file()


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("127.0.0.1:7233", ("127.0.0.1", 7233)),
        ("temporal:7233", ("temporal", 7233)),
        ("[::1]:7000", ("::1", 7000)),
        ("localhost", ("localhost", 7233)),
    ],
)
def test_split_address(address: str, parts: tuple[str, int]) -> None:
    assert split_address(address) == parts


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR)
    assert Role.OPERATOR.allows(Role.OPERATOR)
    assert not Role.VIEWER.allows(Role.OPERATOR)


def test_tokens_are_random_and_stored_hashed() -> None:
    first, second = new_token(), new_token()
    assert first != second
    assert len(first) >= 43  # 32 bytes, URL-safe base64
    assert len(hash_token(first)) == 64
    assert hash_token(first) == hash_token(first)
