"""The Dockerfile cannot be built here (no Docker engine): check it against the repo it packages."""
from __future__ import annotations

import re
import shlex

import pytest


@pytest.fixture(scope="module")
def lines(repo_root) -> list[str]:
    text = (repo_root / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _index(lines, pattern: str) -> int:
    hits = [i for i, line in enumerate(lines) if re.search(pattern, line)]
    assert hits, f"no Dockerfile line matches {pattern!r}"
    return hits[0]


def test_dependencies_are_installed_before_the_code_is_copied(lines):
    install = _index(lines, r"pip install .*-r requirements\.txt")
    assert _index(lines, r"^COPY requirements\.txt") < install < _index(lines, r"^COPY oanet ")


def test_torch_in_the_image_is_the_pinned_torch(lines, repo_root):
    pins = dict(re.findall(r"^(torch|torchvision)==(\S+)", (repo_root / "requirements.txt").read_text(), re.M))
    install = lines[_index(lines, r"pip install torch==")]
    assert pins and all(f"{name}=={version}" in install for name, version in pins.items())


def test_cpu_by_default_and_cuda_by_build_argument(lines):
    assert "ARG TORCH_FLAVOR=cpu" in lines
    install = lines[_index(lines, r"TORCH_FLAVOR")+1:]
    assert any('"$TORCH_FLAVOR" = "cpu"' in line for line in install)


def test_it_runs_as_a_non_root_user_with_the_oanet_cli_as_entry_point(lines, repo_root):
    user = lines[_index(lines, r"^USER ")].split()[1]
    assert user not in ("root", "0")
    assert _index(lines, r"^USER ") < _index(lines, r"^ENTRYPOINT")
    entry = lines[_index(lines, r"^ENTRYPOINT")]
    script = re.search(r"^oanet = ", (repo_root / "pyproject.toml").read_text(), re.M)
    assert entry == 'ENTRYPOINT ["oanet"]' and script


def test_every_copied_path_exists_and_the_runtime_files_are_copied(lines, repo_root):
    copied = [part for line in lines if line.startswith("COPY ") for part in shlex.split(line)[1:-1]]
    assert all((repo_root / path).exists() for path in copied), copied
    for needed in ("requirements.txt", "pyproject.toml", "params.yaml", "dvc.yaml", "prefect.yaml",
                   "oanet", "flows", "expectations"):
        assert needed in copied


def test_the_image_is_offline_like_every_entry_point(lines):
    from oanet.env import OFFLINE_DEFAULTS

    env = " ".join(line for line in lines if line.startswith("ENV "))
    for key, value in OFFLINE_DEFAULTS.items():
        assert f"{key}={value}" in env


def test_the_documented_docker_commands_use_this_image_and_real_subcommands(repo_root):
    """The docker commands of README.md and docs/*.md (the Docker section is in docs/operations.md)."""
    from typer.main import get_command

    from flows.cli import app

    docs = "\n".join(p.read_text() for p in [repo_root / "README.md", *sorted((repo_root / "docs").glob("*.md"))])
    builds = re.findall(r"^\s*docker build (.+)$", docs, re.M)
    runs = re.findall(r"^\s*docker run (.+)$", docs, re.M)
    assert builds and runs
    assert any("--build-arg TORCH_FLAVOR=cuda" in b for b in builds)
    commands = set(get_command(app).commands)
    for run in runs:
        words = shlex.split(run)
        image = next(w for w in words if w.startswith("oanet:"))
        assert any(f"-t {image}" in b for b in builds), f"{image} is never built in the docs"
        sub = words[words.index(image) + 1]
        assert sub in commands, f"the docs run `oanet {sub}`, which is no oanet command"
