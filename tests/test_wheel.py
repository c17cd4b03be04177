"""The wheel stands alone: built from the sdist, installed in a fresh virtualenv, run from outside the repository.

Also the command line's packaging: ``skcal --version``, extras checked before any work, help that links to
the documentation site rather than to files a wheel does not have.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import skcal
from skcal.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTATION = "https://skcal.github.io/skcal/"
#: What a source checkout holds that is no part of the source (virtualenvs, builds, caches, results).
NOT_SOURCE = (".git", ".venv*", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis", "results")


def source_files():
    """The repository's files: git's list (tracked, and new files it does not ignore), else the folder tree."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        return None
    return [name for name in listed if (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """Build the sdist, then the wheel from it (as pip does), from a copy of the repository; no network."""
    source = tmp_path_factory.mktemp("source") / "skcal"
    files = source_files()
    if files is None:
        shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(*NOT_SOURCE))
    else:
        for name in files:
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    build = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("skcal-*.whl")
    (sdist,) = out.glob("skcal-*.tar.gz")
    return wheel, sdist, build.stdout + build.stderr


def test_the_build_warns_of_nothing_deprecated(dist):
    _, _, output = dist
    assert "deprecat" not in output.lower(), output  # e.g. setuptools on a `license = {text = ...}` table


def test_the_wheel_and_the_sdist_carry_the_license_and_the_type_hints_and_no_tests(dist):
    wheel, sdist, _ = dist
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(name for name in names if name.endswith(".dist-info/METADATA"))).decode()
        licence = next(name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
        assert "BSD 3-Clause License" in archive.read(licence).decode()
    assert "skcal/py.typed" in names and "skcal/cli.py" in names
    assert not [name for name in names if name.startswith(("tests/", "examples/", "benchmarks/", "docs/"))]
    with tarfile.open(sdist) as archive:
        members = [name.split("/", 1)[-1] for name in archive.getnames()]
    assert "LICENSE" in members and "skcal/py.typed" in members

    headers, _, description = metadata.partition("\n\n")
    assert "License-Expression: BSD-3-Clause" in headers and "License-File: LICENSE" in headers
    classifiers = re.findall(r"^Classifier: (.+)$", headers, re.MULTILINE)
    assert {f"Programming Language :: Python :: 3.{minor}" for minor in range(10, 14)} <= set(classifiers)
    assert {"Typing :: Typed", "Operating System :: OS Independent"} <= set(classifiers)
    assert any(c.startswith("Development Status ::") for c in classifiers)
    assert any(c.startswith("Topic ::") for c in classifiers)
    urls = dict(re.findall(r"^Project-URL: ([^,]+), (.+)$", headers, re.MULTILINE))
    assert {"Homepage", "Documentation", "Source", "Issues"} <= set(urls)
    assert urls["Documentation"] == DOCUMENTATION and all(url.startswith("https://") for url in urls.values())
    links = re.findall(r"\]\(([^)]+)\)", description)  # the README, as the package index shows it
    assert links and all(link.startswith("https://") for link in links), links


@pytest.mark.slow
def test_the_wheel_runs_in_a_fresh_virtualenv_outside_the_repository(dist, tmp_path):
    wheel, _, _ = dist
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The third-party packages come from this environment: a path line in a .pth file puts its site-packages
    # after the fresh one on sys.path without running the .pth files there, among them the editable skcal's.
    (Path(site) / "skcal_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    environment["OMP_NUM_THREADS"] = "1"

    def run(*command):
        result = subprocess.run(command, cwd=elsewhere, env=environment, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    where = run(str(python), "-c", "import skcal; print(skcal.__file__)").strip()
    assert Path(where).is_relative_to(venv) and Path(where).with_name("py.typed").exists(), where
    assert run(str(venv / "bin" / "skcal"), "--version").strip() == f"skcal {skcal.__version__}"

    readme = (ROOT / "README.md").read_text()
    quick_start = re.search(r"## Quick start\n.*?```python\n(.*?)```", readme, re.DOTALL).group(1)
    (elsewhere / "quick_start.py").write_text(quick_start)
    printed = run(str(python), "quick_start.py")
    assert float(printed.split()[0]) > 0.7, printed  # the accuracy the README's last line prints

    run(str(venv / "bin" / "skcal"), "bench", "--quick", "--dataset", "digits", "--threads", "1", "--out", "results")
    written = {path.name for path in (elsewhere / "results" / "digits").iterdir()}
    assert {"table.txt", "summary.json", "speedup_vs_budget.png"} <= written


# -- the command line


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"skcal {skcal.__version__}"


def test_bench_without_its_extra_stops_before_any_work(monkeypatch, capsys, tmp_path):
    import skcal.bench.cli

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the extras were checked")

    monkeypatch.setattr(skcal.bench.cli, "load_benchmark_data", no_loading)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # not installed, as far as imports go
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--quick", "--dataset", "digits", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in error
    assert "skcal bench needs matplotlib" in error and "pip install 'skcal[bench]'" in error
    assert not (tmp_path / "out").exists()


def test_bench_names_every_extra_its_datasets_need(monkeypatch, capsys, tmp_path):
    for module in ("matplotlib", "scanpy", "medmnist", "transformers"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "--dataset", "pbmc68k,medmnist,sentiment", "--out", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert exit_.value.code == 2
    assert "needs matplotlib, scanpy, medmnist, transformers" in error
    assert "pip install 'skcal[bench,medmnist,text]'" in error


def test_help_points_to_the_documentation_site_not_to_repository_files():
    parser = build_parser()
    for command in (parser, parser.bench_parser, parser.serve_parser):
        text = " ".join(command.format_help().split())  # argparse wraps long URLs onto lines of their own
        assert DOCUMENTATION in text and not re.search(r"docs/\S*\.md", text), command.prog
    bench = " ".join(parser.bench_parser.format_help().split())
    assert f"{DOCUMENTATION}protocol.html" in bench
