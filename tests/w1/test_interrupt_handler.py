"""StopOnInterrupt puts back exactly the SIGINT handler it found, and leaves an ignored
Ctrl-C ignored."""

import signal
from types import SimpleNamespace

import pytest

from wgan_lip.w1.callbacks import StopOnInterrupt


@pytest.fixture
def saved_sigint():
    before = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, before)


def _trainer() -> SimpleNamespace:
    return SimpleNamespace(world_size=1, should_stop=False)


@pytest.mark.parametrize("previous", [signal.SIG_DFL, signal.default_int_handler])
def test_the_previous_handler_comes_back_exactly(saved_sigint, previous) -> None:
    signal.signal(signal.SIGINT, previous)
    cb = StopOnInterrupt()
    cb.on_fit_start(_trainer(), None)
    assert signal.getsignal(signal.SIGINT) == cb._handler
    cb.on_fit_end(None, None)
    assert signal.getsignal(signal.SIGINT) == previous  # SIG_DFL is not swapped for another


def test_first_ctrl_c_stops_cleanly_and_the_second_raises(saved_sigint) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    cb, trainer = StopOnInterrupt(), _trainer()
    cb.on_fit_start(trainer, None)
    cb._handler(signal.SIGINT, None)
    assert cb.interrupted and trainer.should_stop
    # the second Ctrl-C must reach the trainer as KeyboardInterrupt, not kill the process
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler
    cb.on_fit_end(None, None)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_DFL


def test_an_ignored_ctrl_c_stays_ignored(saved_sigint) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    cb = StopOnInterrupt()
    cb.on_fit_start(_trainer(), None)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    cb.on_fit_end(None, None)
    assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN and not cb.interrupted


def test_a_second_ctrl_c_does_not_leave_ctrl_c_ignored(saved_sigint) -> None:
    """Lightning sets SIG_IGN while it tears an interrupted fit down, then calls
    on_exception: the handler found at the start must still come back."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    cb = StopOnInterrupt()
    cb.on_fit_start(_trainer(), None)
    cb._handler(signal.SIGINT, None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # what Lightning does on the second one
    cb.on_exception(None, None, KeyboardInterrupt())
    assert cb.aborted
    assert signal.getsignal(signal.SIGINT) == signal.default_int_handler
