"""What the Python test scripts (test_service.py, test_ops.py) share: named
checks counted as they pass or fail, and bounded waits for a condition."""
import time

failures = []
passed = [0]


def check(cond, what):
    """Count and print one named check."""
    if cond:
        passed[0] += 1
        print("PASS", what)
    else:
        failures.append(what)
        print("FAIL", what)
    return cond


def until(pred, timeout, step=0.05):
    """Poll pred() until it holds or the deadline passes (a bounded wait
    for a condition, not a sleep standing in for one); its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)
