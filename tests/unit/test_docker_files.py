"""Static checks of the container files in docker/ (no Docker engine needed).

Every command the Dockerfiles and compose files run is checked against the code: console
scripts exist in pyproject's [project.scripts], their flags are accepted by the click
commands (parsed with ``make_context``, so a renamed flag or a wrong value type fails),
``python -m``/``python -c`` modules exist, and every repository path they reference exists
and is not excluded from the build context by .dockerignore. Structural invariants
(multi-stage, non-root user, health checks, loopback-only ports, the GPU reservation) and a
schema-style check of the compose files are tested as well.
"""

from __future__ import annotations

import ast
import fnmatch
import functools
import importlib
import importlib.util
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from cli_commands import click_command, console_scripts

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - black and mypy bring tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
DOCKERFILES = {name: DOCKER / f"Dockerfile.{name}" for name in ("cpu", "cuda", "dev")}
COMPOSE_FILES = {
    "production": DOCKER / "docker-compose.yml",
    "development": DOCKER / "docker-compose.dev.yml",
}
SCRIPTS = [DOCKER / "scripts" / "build.sh", DOCKER / "scripts" / "run.sh", DOCKER / "lint.sh"]
DOCS = [DOCKER / "README.md", ROOT / "docs" / "deployment" / "docker.md"]

APP_DIR = "/app"  # WORKDIR of the cpu/cuda images
JUPYTER_FLAGS = {"--ip", "--port", "--no-browser", "--ServerApp.root_dir", "--ServerApp.token"}


# --------------------------------------------------------------------------- helpers


@functools.lru_cache(maxsize=1)
def run_root() -> str:
    cfg = yaml.safe_load((ROOT / "configs" / "training" / "default.yaml").read_text("utf-8"))
    return str(cfg["run_root"])


@functools.lru_cache(maxsize=1)
def tensorboard_help() -> str:
    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("tensorboard is not installed")
    out = subprocess.run(
        [sys.executable, "-m", "tensorboard.main", "--helpfull"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return out.stdout + out.stderr


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def interpolate(value: str) -> str:
    """Compose/shell ``${VAR:-default}`` with the default (the environment is ignored)."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", value)


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def is_dockerignored(rel: str) -> bool:
    rel = rel.strip("/").removeprefix("./")
    if rel in ("", "."):
        return False
    parts = rel.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in dockerignore_patterns():
        if pattern.startswith("!"):
            continue
        pat = pattern.strip("/")
        for p in prefixes:
            if fnmatch.fnmatch(p, pat) or fnmatch.fnmatch(p, pat.replace("**/", "")):
                return True
    return False


def python_c_modules(code: str) -> list[str]:
    tree = ast.parse(code)
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def module_exists(name: str) -> bool:
    if name.split(".")[0] == "hhml":
        path = ROOT / "src" / Path(*name.split("."))
        return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()
    return importlib.util.find_spec(name.split(".")[0]) is not None


def urls_in(code: str) -> list[str]:
    return re.findall(r"https?://[^'\"\s]+", code)


def check_command(argv: list[str], where: str) -> None:
    """Check one command line (exec form) against the code it calls."""
    assert argv, f"{where}: empty command"
    prog, args = argv[0], argv[1:]
    if prog in console_scripts():
        command = click_command(prog)
        known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
        for arg in args:
            if arg.startswith("-"):
                flag = arg.split("=", 1)[0]
                assert flag in known, f"{where}: {prog} has no option {flag} (has {known})"
        for i, arg in enumerate(args[:-1]):
            if arg == "--config":
                cfg = args[i + 1]
                assert (ROOT / cfg).is_file(), f"{where}: config {cfg} does not exist"
                assert not is_dockerignored(cfg), f"{where}: {cfg} is in .dockerignore"
        cwd = Path.cwd()
        try:  # relative paths (--config FILE) are resolved from the repository root
            os.chdir(ROOT)
            command.make_context(prog, list(args))  # parses and validates, runs nothing
        except click.UsageError as exc:
            pytest.fail(f"{where}: {prog} rejects {args}: {exc.format_message()}")
        finally:
            os.chdir(cwd)
    elif prog in ("python", "python3"):
        assert len(args) >= 2 and args[0] in ("-m", "-c"), f"{where}: unexpected {argv}"
        if args[0] == "-m":
            assert module_exists(args[1]), f"{where}: no module {args[1]}"
        else:
            for name in python_c_modules(args[1]):
                assert module_exists(name), f"{where}: python -c imports missing {name}"
    elif prog == "tensorboard":
        helptext = tensorboard_help()
        for arg in args:
            if arg.startswith("--"):
                flag = arg.split("=", 1)[0]
                assert re.search(
                    rf"^\s+{re.escape(flag)}\b", helptext, re.M
                ), f"{where}: tensorboard has no flag {flag}"
    elif prog == "jupyter":
        assert args[:1] == ["lab"], f"{where}: expected `jupyter lab`"
        for arg in args[1:]:
            assert arg.split("=", 1)[0] in JUPYTER_FLAGS, f"{where}: unexpected {arg}"
    else:
        pytest.fail(f"{where}: unknown program {prog!r}")


# --------------------------------------------------------------------------- Dockerfiles


@dataclass
class Instruction:
    keyword: str
    args: str
    stage: int


@dataclass
class Dockerfile:
    path: Path
    instructions: list[Instruction] = field(default_factory=list)
    args: dict[str, str] = field(default_factory=dict)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def final(self, keyword: str) -> list[Instruction]:
        last = max(i.stage for i in self.instructions)
        return [i for i in self.all(keyword) if i.stage == last]

    def expand(self, text: str) -> str:
        def value(m: re.Match[str]) -> str:
            name = m.group(1) or m.group(3)
            return self.args.get(name, m.group(2) or m.group(0))

        return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}|\$(\w+)", value, text)


def parse_dockerfile(path: Path) -> Dockerfile:
    df = Dockerfile(path)
    logical: list[str] = []
    buf = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buf):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        logical.append(buf + line)
        buf = ""
    assert not buf, f"{path}: dangling line continuation"
    stage = -1
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        if keyword == "ARG" and "=" in rest:
            name, _, default = rest.strip().partition("=")
            df.args[name] = default.strip('"')
        df.instructions.append(Instruction(keyword, rest.strip(), stage))
    return df


def exec_form(text: str, where: str) -> list[str]:
    assert text.startswith("["), f"{where}: use the exec (JSON) form, got {text!r}"
    value = yaml.safe_load(text)  # a JSON array is YAML
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    return value


def healthcheck_command(df: Dockerfile) -> list[str]:
    checks = df.final("HEALTHCHECK")
    assert len(checks) == 1, f"{df.path.name}: exactly one HEALTHCHECK in the final stage"
    text = checks[0].args
    assert "CMD" in text and not text.startswith("NONE"), df.path.name
    return exec_form(text[text.index("CMD") + 3 :].strip(), f"{df.path.name} HEALTHCHECK")


@pytest.fixture(params=sorted(DOCKERFILES), ids=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> Dockerfile:
    path = DOCKERFILES[request.param]
    assert path.is_file(), f"{path} is missing"
    return parse_dockerfile(path)


def test_multi_stage_with_pinned_bases(dockerfile: Dockerfile) -> None:
    froms = dockerfile.all("FROM")
    assert len(froms) >= 2, f"{dockerfile.path.name}: needs a builder and a runtime stage"
    stages = set()
    for f in froms:
        image, *alias = f.args.split()
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"{dockerfile.path.name}: pin {image} by tag"
        if alias:
            assert alias[0].upper() == "AS", f.args
            stages.add(alias[1])
    copies_from = [c for c in dockerfile.final("COPY") if "--from=" in c.args]
    assert copies_from, f"{dockerfile.path.name}: the runtime stage copies nothing from a build"
    for c in copies_from:
        src_stage = re.search(r"--from=(\S+)", c.args)
        assert src_stage and src_stage.group(1) in stages, c.args


def test_non_root_user(dockerfile: Dockerfile) -> None:
    users = dockerfile.final("USER")
    assert users, f"{dockerfile.path.name}: no USER in the final stage"
    user = dockerfile.expand(users[-1].args).split(":")[0]
    assert user not in ("root", "0", ""), f"{dockerfile.path.name}: runs as {user!r}"
    runs = " ".join(r.args for r in dockerfile.final("RUN"))
    assert "useradd" in runs, f"{dockerfile.path.name}: the user is never created"


def test_healthcheck_is_meaningful(dockerfile: Dockerfile) -> None:
    argv = healthcheck_command(dockerfile)
    check_command(argv, f"{dockerfile.path.name} HEALTHCHECK")
    assert argv[:2] == ["python", "-c"], "health checks run python (slim images have no curl)"
    code = argv[2]
    compile(code, "<healthcheck>", "exec")
    mods = python_c_modules(code)
    assert any(m.startswith("hhml") for m in mods) or urls_in(
        code
    ), f"{dockerfile.path.name}: the health check neither imports hhml nor probes a URL"
    if "cuda" in dockerfile.path.name:
        assert "cuda.is_available" in code, "the CUDA image must check the GPU"


def test_copy_sources_exist_and_are_in_context(dockerfile: Dockerfile) -> None:
    for c in dockerfile.all("COPY"):
        if "--from=" in c.args:
            continue
        parts = [p for p in shlex.split(c.args) if not p.startswith("--")]
        assert len(parts) >= 2, c.args
        for src in parts[:-1]:
            assert (ROOT / src).exists(), f"{dockerfile.path.name}: COPY {src}: no such path"
            assert not is_dockerignored(src), f"{dockerfile.path.name}: {src} is dockerignored"


def test_cmd_and_run_reference_real_things(dockerfile: Dockerfile) -> None:
    name = dockerfile.path.name
    for keyword in ("CMD", "ENTRYPOINT"):
        for ins in dockerfile.final(keyword):
            check_command(exec_form(ins.args, f"{name} {keyword}"), f"{name} {keyword}")
    assert dockerfile.final("CMD"), f"{name}: no CMD"
    for ins in dockerfile.all("RUN"):
        text = dockerfile.expand(ins.args)
        for script in re.findall(r"\bhhml-[a-z]+\b", text):
            assert script in console_scripts(), f"{name}: RUN uses unknown {script}"
        for module in re.findall(r"python3? -m (\S+)", text):
            assert module in ("venv", "pip") or module_exists(module), f"{name}: -m {module}"
        for code in re.findall(r"python3? -c \"([^\"]+)\"", text):
            for mod in python_c_modules(code):
                assert module_exists(mod) or mod in ("jupyterlab",), f"{name}: imports {mod}"
        for extra in re.findall(r"\.\[(\w+)\]", text):
            data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
            assert extra in data["project"]["optional-dependencies"], f"{name}: no [{extra}]"


def test_cpu_and_cuda_images_pin_matching_torch() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"TORCH_SPEC\s*\?=\s*torch==(\S+)", makefile)
    for name in ("cpu", "cuda"):
        df = parse_dockerfile(DOCKERFILES[name])
        assert "torch==${TORCH_VERSION}" in " ".join(r.args for r in df.all("RUN"))
        if pinned:
            assert df.args["TORCH_VERSION"] == pinned.group(1), f"{name}: torch != Makefile"
        index = df.args["TORCH_INDEX_URL"]
        assert index.startswith("https://download.pytorch.org/whl/")
        assert index.endswith("/cpu") == (name == "cpu")
    cuda = parse_dockerfile(DOCKERFILES["cuda"])
    assert all(f.args.startswith("nvidia/cuda:12.") for f in cuda.all("FROM"))


# --------------------------------------------------------------------------- compose files

SERVICE_KEYS = {
    "image": str,
    "build": (str, dict),
    "command": (list, str),
    "entrypoint": (list, str),
    "ports": list,
    "volumes": list,
    "environment": (dict, list),
    "env_file": (str, list),
    "healthcheck": dict,
    "deploy": dict,
    "restart": str,
    "init": bool,
    "shm_size": (str, int),
    "ulimits": dict,
    "stop_grace_period": str,
    "depends_on": (list, dict),
    "working_dir": str,
    "user": str,
    "ipc": str,
}
TOP_LEVEL_KEYS = {"version", "name", "services", "volumes", "networks", "configs", "secrets"}
DURATION = re.compile(r"^(\d+(\.\d+)?(us|ms|s|m|h))+$")
RESTART = {"no", "always", "on-failure", "unless-stopped"}


def load_compose(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{path.name}: not a mapping"
    return data


@pytest.fixture(params=sorted(COMPOSE_FILES), ids=sorted(COMPOSE_FILES))
def compose(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    path = COMPOSE_FILES[request.param]
    assert path.is_file(), f"{path} is missing"
    return path.name, load_compose(path)


def command_of(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    argv = shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]
    return [interpolate(a) for a in argv]


def option(argv: list[str], flag: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def test_compose_schema(compose: tuple[str, dict[str, Any]]) -> None:
    name, data = compose
    for key in data:
        assert key in TOP_LEVEL_KEYS or key.startswith("x-"), f"{name}: unknown key {key}"
    services = data["services"]
    assert isinstance(services, dict) and services, f"{name}: no services"
    for sname, svc in services.items():
        where = f"{name}:{sname}"
        assert isinstance(svc, dict), where
        assert "image" in svc or "build" in svc, f"{where}: needs image or build"
        for key, value in svc.items():
            assert key in SERVICE_KEYS, f"{where}: unknown key {key}"
            assert isinstance(value, SERVICE_KEYS[key]), f"{where}: {key} has type {type(value)}"
        if isinstance(svc.get("build"), dict):
            assert set(svc["build"]) <= {"context", "dockerfile", "args", "target"}, where
            assert isinstance(svc["build"].get("args", {}), dict), where
        if isinstance(svc.get("command"), list):
            assert all(isinstance(c, str) for c in svc["command"]), f"{where}: quote numbers"
        for port in svc.get("ports", []):
            assert isinstance(port, str), f"{where}: write ports as strings ({port!r})"
            assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", port), f"{where}: {port}"
        for vol in svc.get("volumes", []):
            assert isinstance(vol, str) and len(vol.split(":")) in (2, 3), f"{where}: {vol}"
        if "restart" in svc:
            assert svc["restart"] in RESTART, where
        if "stop_grace_period" in svc:
            assert DURATION.match(svc["stop_grace_period"]), where
        hc = svc.get("healthcheck")
        if hc is not None:
            assert set(hc) <= {"test", "interval", "timeout", "retries", "start_period"}, where
            assert isinstance(hc["test"], list) and hc["test"][0] in ("CMD", "CMD-SHELL"), where
            for key in ("interval", "timeout", "start_period"):
                if key in hc:
                    assert DURATION.match(str(hc[key])), f"{where}: {key}={hc[key]}"
            assert isinstance(hc.get("retries", 1), int), where


def test_compose_builds_and_mounts_resolve(compose: tuple[str, dict[str, Any]]) -> None:
    name, data = compose
    for sname, svc in data["services"].items():
        where = f"{name}:{sname}"
        build = svc.get("build")
        if build is not None:
            ctx = (DOCKER / (build if isinstance(build, str) else build["context"])).resolve()
            assert ctx == ROOT, f"{where}: the build context must be the repository root"
            dockerfile = build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else ""
            assert (ctx / dockerfile).is_file(), f"{where}: no {dockerfile}"
        for vol in svc.get("volumes", []):
            host, container = interpolate(vol).split(":")[:2]
            assert host.startswith("."), f"{where}: use a path relative to docker/ ({host})"
            host_path = (DOCKER / host).resolve()
            assert host_path == ROOT or ROOT in host_path.parents, f"{where}: {host}"
            rel = host_path.relative_to(ROOT).as_posix()
            if rel == "results":  # created at run time (run.sh makes it)
                assert container == f"{APP_DIR}/results", f"{where}: {vol}"
            elif rel != ".":
                assert host_path.exists(), f"{where}: {host} does not exist"


def test_compose_commands_are_valid(compose: tuple[str, dict[str, Any]]) -> None:
    name, data = compose
    for sname, svc in data["services"].items():
        where = f"{name}:{sname}"
        if "command" in svc:
            check_command(command_of(svc), f"{where} command")
        if "entrypoint" in svc:
            ep = svc["entrypoint"]
            check_command(shlex.split(ep) if isinstance(ep, str) else ep, f"{where} entrypoint")
        hc = svc.get("healthcheck")
        if hc is not None:
            assert hc["test"][0] == "CMD", f"{where}: use the CMD form"
            check_command(hc["test"][1:], f"{where} healthcheck")


def published(service: dict[str, Any]) -> list[tuple[str, int, int]]:
    out = []
    for port in service.get("ports", []):
        *ip, host, container = port.split(":")
        out.append((ip[0] if ip else "0.0.0.0", int(host), int(container)))
    return out


def test_production_services() -> None:
    services = load_compose(COMPOSE_FILES["production"])["services"]
    assert {"train", "monitor", "tensorboard"} <= set(services)

    train = services["train"]
    assert train["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    devices = train["deploy"]["resources"]["reservations"]["devices"]
    assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices)
    argv = command_of(train)
    assert argv[0] == "hhml-train" and option(argv, "--device") == "cuda"
    assert any(v.endswith(f":{APP_DIR}/results") for v in train["volumes"]), "results not kept"

    expected = {"monitor": ("hhml-monitor", 8000), "tensorboard": ("tensorboard", 6006)}
    for sname, (prog, port) in expected.items():
        svc = services[sname]
        argv = command_of(svc)
        assert argv[0] == prog, sname
        assert published(svc) == [("127.0.0.1", port, port)], f"{sname}: loopback on the host"
        assert option(argv, "--port") == str(port), sname
        assert argv[-1] == run_root() or option(argv, "--logdir") == run_root(), sname
        url = urls_in(svc["healthcheck"]["test"][-1])
        assert url and f":{port}/" in url[0], f"{sname}: the health check probes {url}"
        assert svc["build"]["dockerfile"] == "docker/Dockerfile.cpu", sname
        assert all(v.endswith(":ro") for v in svc["volumes"]), f"{sname}: mount read-only"
    assert option(command_of(services["monitor"]), "--host") == "0.0.0.0"
    assert "--bind_all" in command_of(services["tensorboard"])


def test_monitor_health_check_probes_a_real_dashboard_route(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    from hhml.monitoring.server import create_app

    svc = load_compose(COMPOSE_FILES["production"])["services"]["monitor"]
    url = urls_in(svc["healthcheck"]["test"][-1])[0]
    path = "/" + url.split("://", 1)[1].split("/", 1)[1]
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("training: {}\n")
    app, _ = create_app([run])
    with TestClient(app) as client:
        assert client.get(path).status_code == 200, path


def test_development_services() -> None:
    services = load_compose(COMPOSE_FILES["development"])["services"]
    dev = services["dev"]
    assert dev["build"]["dockerfile"] == "docker/Dockerfile.dev"
    assert published(dev) == [("127.0.0.1", 8888, 8888)]
    assert "..:/workspace" in dev["volumes"], "the source tree is bind-mounted"
    cpu_train = [
        s
        for s in services.values()
        if s.get("command")
        and command_of(s)[0] == "hhml-train"
        and option(command_of(s), "--device") == "cpu"
    ]
    assert cpu_train, "no CPU training service"
    assert all(s["build"]["dockerfile"] == "docker/Dockerfile.cpu" for s in cpu_train)


# --------------------------------------------------------------------------- scripts, docs


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_header_and_mode(script: Path) -> None:
    text = script.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n"), script.name
    assert "set -euo pipefail" in text, script.name
    assert script.stat().st_mode & stat.S_IXUSR, f"{script.name} is not executable"


@pytest.mark.parametrize("script", SCRIPTS[:2], ids=lambda p: p.name)
def test_script_rejects_bad_argument(script: Path) -> None:
    out = subprocess.run(
        ["bash", str(script), "no-such-target"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 2 and "usage:" in out.stderr, out.stderr


@pytest.mark.parametrize("script", SCRIPTS[:2], ids=lambda p: p.name)
def test_script_reports_missing_docker(script: Path, tmp_path: Path) -> None:
    for tool in ("dirname", "basename", "id", "mkdir"):  # a PATH without docker
        found = shutil.which(tool)
        if found is not None:
            (tmp_path / tool).symlink_to(found)
    arg = "cpu" if script.name == "build.sh" else "stop"
    bash = shutil.which("bash")
    assert bash is not None
    out = subprocess.run(
        [bash, str(script), arg],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": str(tmp_path), "HOME": str(tmp_path)},
    )
    assert out.returncode == 1 and "'docker' not found" in out.stderr, out.stderr


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_reference_existing_files(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    for ref in set(re.findall(r"`((?:docker|configs|docs)/[\w./-]+\.\w+)", text)):
        assert (ROOT / ref).exists(), f"{doc.name} mentions {ref}, which does not exist"
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if re.match(r"[a-z]+://", target):
            continue
        resolved = (doc.parent / target).resolve()
        assert resolved.exists(), f"{doc.name}: broken link {target}"
        if doc.parent.name == "deployment":  # MkDocs: links must stay inside docs/
            assert ROOT / "docs" in resolved.parents, f"{doc.name}: link {target} leaves docs/"
