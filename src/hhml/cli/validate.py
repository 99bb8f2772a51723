"""``hhml-validate``: run the physics validation checks and print a table.

Exit code 0 if every selected check passes, 1 if any fails, 2 for usage
errors (unknown check name, an ``--only`` naming no check, unavailable device,
unwritable --json path or one that is not a regular file).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from hhml import __version__
from hhml.cli.common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    common_options,
    exit_codes_epilog,
    fail,
    say,
    verbosity,
)
from hhml.errors import HHmLError

# The checks (torch, scipy) are imported inside the functions: --help stays fast.
if TYPE_CHECKING:
    from hhml.validation import CheckResult

__all__ = ["main"]

_PROG = "hhml-validate"
#: The groups of ``hhml.validation.checks.GROUPS``, named in --help without importing
#: the checks (a test checks that both agree).
_GROUP_NAMES = ("physics", "tensor-networks", "gft", "cgl")

_HELP = f"""Run HHmL's physics validation checks. Each check compares a measured number
with an independent reference (analytic result or separate implementation) and prints
the measured value, the reference, the criterion and PASS/FAIL as it finishes.

--only takes check or group names; the groups are {", ".join(_GROUP_NAMES)}, and
--list prints every check of each group with its description.

-q prints only the failed checks and the 'N/M checks passed' line; -v adds the debug
log of the hhml library. There is no progress bar (each check prints its row when it
finishes), so --no-progress changes nothing.

\b
Examples:
  hhml-validate --quick
  hhml-validate --list
  hhml-validate --quick --only physics --json results/validation.json
"""

_EPILOG = exit_codes_epilog(
    {
        0: "every selected check passed",
        1: "a check failed or could not run",
        2: "invalid invocation (unknown check, unavailable device, unusable --json path)",
    }
)


def _parse_only(only: tuple[str, ...]) -> list[str] | None:
    """The checks selected by the ``--only`` values (``None``: the option was not given).

    Raises
    ------
    click.BadParameter
        A value names no check at all (``--only ""``, ``--only ",,"``) or an unknown
        check or group; the message lists the valid names.
    """
    from hhml.validation.checks import CHECKS, GROUPS, expand_names

    if not only:
        return None
    names = [n.strip() for item in only for n in item.split(",") if n.strip()]
    if not names:
        given = ", ".join(repr(item) for item in only)
        raise click.BadParameter(
            f"{given} names no check; valid groups: {', '.join(GROUPS)}; valid checks: "
            + ", ".join(CHECKS),
            param_hint="--only",
        )
    try:
        return expand_names(names)
    except HHmLError as exc:
        raise click.BadParameter(str(exc), param_hint="--only") from None


def _row(r: CheckResult, seconds: float) -> str:
    status = click.style("PASS", fg="green") if r.passed else click.style("FAIL", fg="red")
    return (
        f"{status}  {r.name:<22} measured {r.measured:<11.4g} reference {r.reference}\n"
        f"      {r.description}\n      criterion: {r.tolerance}  ({seconds:.1f} s)"
    )


@click.command(help=_HELP, epilog=_EPILOG, context_settings=CONTEXT_SETTINGS)
@click.option(
    "--quick", is_flag=True, help="Smaller lattices (seconds instead of minutes); for CI."
)
@click.option(
    "--only",
    multiple=True,
    metavar="NAME[,NAME...]",
    help="Run only these checks or groups (repeat or comma-separate), e.g. "
    "--only tensor-networks,gft.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the results (with per-case details) to this JSON file.",
)
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="auto | cpu | cuda | cuda:N — where the simulations run.",
)
@click.option("--list", "list_only", is_flag=True, help="List the check names and exit.")
@common_options(_PROG)
def main(
    quick: bool, only: tuple[str, ...], json_path: Path | None, device: str, list_only: bool
) -> None:
    """Entry point of ``hhml-validate``."""
    from hhml.utils import resolve_device
    from hhml.utils.atomic_io import atomic_write_text, resolve_write_target
    from hhml.validation.checks import CHECKS, GROUPS, run_checks

    if list_only:
        for group, members in GROUPS.items():
            click.echo(f"[{group}]")
            for name in members:
                doc = (CHECKS[name].__doc__ or "").strip().splitlines()
                click.echo(f"  {name:<32}{doc[0] if doc else ''}")
        return
    names = _parse_only(only)
    try:
        dev = resolve_device(device)
    except HHmLError as exc:
        fail(_PROG, f"--device {device}: {exc}", EXIT_USAGE)
    if json_path is not None:
        if not json_path.parent.exists():
            fail(_PROG, f"--json {json_path}: directory {json_path.parent} does not exist")
        try:
            resolve_write_target(json_path)
        except (HHmLError, OSError) as exc:
            fail(_PROG, f"--json {json_path}: {exc}")
    results: list[dict[str, object]] = []
    failed = 0
    say(f"hhml-validate {__version__} ({'quick' if quick else 'full'}, device {dev})")
    for name in names or list(CHECKS):
        start = time.perf_counter()
        try:
            (result,) = run_checks([name], quick=quick, device=dev)
        except HHmLError as exc:
            click.echo(f"ERROR {name}: {exc}", err=True)
            sys.exit(EXIT_ERROR)
        elapsed = time.perf_counter() - start
        failed += not result.passed
        if not result.passed or verbosity() >= 0:
            click.echo(_row(result, elapsed))
        results.append({**result.as_dict(), "seconds": elapsed})
    total = len(results)
    if verbosity() >= 0:
        click.echo()
    click.echo(f"{total - failed}/{total} checks passed")
    if json_path is not None:
        payload = {"version": __version__, "quick": quick, "device": str(dev), "checks": results}
        try:
            atomic_write_text(json_path, json.dumps(payload, indent=2, default=float) + "\n")
        except (HHmLError, OSError) as exc:
            fail(_PROG, f"--json {json_path}: {exc}")
        say(f"wrote {json_path}")
    sys.exit(EXIT_ERROR if failed else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
