import pytest

from skcal.utils.io import atomic_write


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with atomic_write(target) as stream:
        stream.write(b"first")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(target) as stream:
            stream.write(b"half of the sec")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"first"
    assert sorted(path.name for path in target.parent.iterdir()) == ["file.bin"]


def test_a_finished_write_replaces_the_file(tmp_path):
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")
    with atomic_write(target, prefix=".x-", suffix=".part") as stream:
        stream.write(b"new")
    assert target.read_bytes() == b"new"
    assert [path.name for path in tmp_path.iterdir()] == ["file.bin"]
