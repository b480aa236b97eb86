"""The ``relay_anyio`` pytest plugin: its fixtures fail a test that leaves violations.

Each case runs a small test file in a pytester sandbox (in process), with the plugin
loaded through its entry point as in a user's project.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

_HEADER = """
import pytest

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"

"""


def _run(pytester: pytest.Pytester, body: str) -> pytest.RunResult:
    pytester.makepyfile(test_user=_HEADER + body)
    # --strict-markers: the plugin must register its marker.
    return pytester.runpytest("-p", "no:cacheprovider", "--strict-markers")


@pytest.mark.parametrize("fixture", ["relay_server", "relay_server_tls"])
def test_a_violation_fails_the_test_at_teardown(pytester: pytest.Pytester, fixture: str) -> None:
    result = _run(
        pytester,
        f"""
async def test_breaks_the_protocol({fixture}):
    {fixture}.violations.append("connection 1: sent something odd")
""",
    )
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_breaks_the_protocol*",
            "*the client broke the RELAY protocol (1 violation(s)*",
            "*connection 1: sent something odd*",
        ]
    )


def test_a_clean_test_passes(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
async def test_clean(relay_server):
    assert relay_server.violations == []
""",
    )
    result.assert_outcomes(passed=1)


def test_opting_out(pytester: pytest.Pytester) -> None:
    result = _run(
        pytester,
        """
@pytest.mark.relay_violations_allowed
async def test_any_allowed(relay_server):
    relay_server.violations.append("connection 1: anything")


@pytest.mark.relay_violations_allowed("sent unknown method")
async def test_matching_allowed(relay_server):
    relay_server.violations.append("connection 1: sent unknown method 'x'")


@pytest.mark.relay_violations_allowed("sent unknown method")
async def test_others_still_fail(relay_server):
    relay_server.violations.append("connection 1: sent unknown method 'x'")
    relay_server.violations.append("connection 1: sent calling.play before authenticating")


async def test_expect_violations(relay_server):
    relay_server.expect_violations = True
    relay_server.violations.append("connection 1: on purpose")
""",
    )
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_others_still_fail*", "*before authenticating*"]
    )
    result.stdout.no_fnmatch_line("*  connection 1: sent unknown method 'x'")
