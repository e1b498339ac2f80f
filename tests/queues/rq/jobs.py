"""Job functions of the RQ scenario."""
import time


def long(seconds):
    time.sleep(seconds)
    return seconds


def quick():
    return 1


def fail():
    raise ValueError("boom")
