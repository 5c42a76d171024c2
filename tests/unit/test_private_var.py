import os
import stat
from pathlib import Path

from pipeline.cli import private_var


def test_var_is_closed_to_other_users_and_new_files_are_private(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    old = os.umask(0o022)
    try:
        private_var(var)
        assert stat.S_IMODE(var.stat().st_mode) == 0o700
        (var / "kafka").mkdir()
        (var / "kafka" / "segment.log").write_bytes(b"raw producer payload")
        assert stat.S_IMODE((var / "kafka").stat().st_mode) == 0o700
        assert stat.S_IMODE((var / "kafka" / "segment.log").stat().st_mode) == 0o600
    finally:
        os.umask(old)
