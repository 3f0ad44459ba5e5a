"""Run one of the binding's pytest files as a ctest test.

usage: run_pytest.py TEST_FILE [pytest arguments]

Exit status: pytest's, except 77 (ctest's SKIP_RETURN_CODE) when there is
nothing to test here: python3-pytest is not installed, or every test of
the file was skipped (an optional module such as PyAV or numpy is absent:
the reasons are in the summary pytest prints, -rs). A file with one test
passed and others skipped is a pass: its skips are counted in the summary.
"""

import sys

SKIP = 77


class AllSkipped:
    """pytest plugin: counts outcomes, turns "all skipped" into SKIP."""

    def __init__(self):
        self.ran = 0
        self.skipped = 0

    def pytest_runtest_logreport(self, report):
        if report.skipped:
            self.skipped += 1
        elif report.when == "call":
            self.ran += 1

    def pytest_collectreport(self, report):
        # A module-level importorskip skips the whole file at collection.
        if report.skipped:
            self.skipped += 1

    def pytest_sessionfinish(self, session, exitstatus):
        if exitstatus in (0, 5) and self.ran == 0 and self.skipped:
            session.exitstatus = SKIP


def main():
    try:
        import pytest
    except ImportError:
        print("SKIP: python3-pytest is not installed for %s" % sys.executable)
        return SKIP
    return int(pytest.main(["-q", "-rs", "-p", "no:cacheprovider",
                            "-o", "console_output_style=classic",
                            *sys.argv[1:]], plugins=[AllSkipped()]))


if __name__ == "__main__":
    sys.exit(main())
