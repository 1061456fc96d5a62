"""Settings from the environment and .env: casts, defaults, and errors that name the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_runtime.config import ConfigError, DatabaseSettings, Env, Secret, ServerSettings, parse_env_file


def test_env_file_syntax() -> None:
    text = "# comment\n\nexport DB_HOST=db\nDB_PASSWORD='p#ss word'\nDB_NAME=\"x\"\nHTTP_PORT=8080 # inline\n"
    assert parse_env_file(text) == {"DB_HOST": "db", "DB_PASSWORD": "p#ss word", "DB_NAME": "x", "HTTP_PORT": "8080"}


def test_env_file_errors_give_the_line() -> None:
    with pytest.raises(ConfigError, match=r"\.env:2"):
        parse_env_file("A=1\nnot a pair\n")


def test_the_environment_wins_over_the_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("DB_HOST=from-file\nDB_PORT=6000\n")
    env = Env.load({"BUILD_WORKING_DIRECTORY": str(tmp_path), "DB_HOST": "from-env"})
    settings = DatabaseSettings.from_env(env, default_name="db")
    assert (settings.host, settings.port) == ("from-env", 6000)


def test_a_missing_explicit_env_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ENV_FILE"):
        Env.load({"ENV_FILE": str(tmp_path / "missing.env")})


def test_defaults() -> None:
    server = ServerSettings.from_env(Env({}), default_http_port=8082, default_grpc_port=9092)
    assert (server.host, server.http_port, server.grpc_port) == ("0.0.0.0", 8082, 9092)
    database = DatabaseSettings.from_env(Env({}), default_name="test_db_2")
    assert (database.host, database.port, database.user, database.name) == ("localhost", 5432, "postgres", "test_db_2")


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DB_PORT": "five"}, "DB_PORT"),
        ({"DB_PORT": "70000"}, "DB_PORT"),
        ({"DB_SSLMODE": "maybe"}, "DB_SSLMODE"),
        ({"DB_POOL_MIN_SIZE": "5", "DB_POOL_MAX_SIZE": "2"}, "DB_POOL_MAX_SIZE"),
        ({"DB_CONNECT_TIMEOUT": "nan"}, "DB_CONNECT_TIMEOUT"),
    ],
)
def test_malformed_values_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(ConfigError) as error:
        DatabaseSettings.from_env(Env(environ), default_name="db")
    assert str(error.value).startswith(variable)


def test_the_password_never_prints() -> None:
    settings = DatabaseSettings.from_env(Env({"DB_PASSWORD": "hunter2"}), default_name="db")
    assert "hunter2" not in repr(settings) and "hunter2" not in settings.describe()
    assert "hunter2" in settings.conninfo()
    assert repr(Secret("")) == "Secret('')"
