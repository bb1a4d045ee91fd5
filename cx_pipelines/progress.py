"""Progress bars for long `cx` work, shown only when stderr is a terminal.

Plain code reports progress through callbacks (``on_progress(done, total)``) and never
imports this module; the `cx` command passes a :class:`ProgressBar` as the callback.
"""

from __future__ import annotations

import shutil
import sys

from tqdm import tqdm


def interactive() -> bool:
    """Whether progress bars are shown: both stdout and stderr are terminals."""
    return sys.stdout.isatty() and sys.stderr.isatty()


class ProgressBar:
    """A tqdm bar on stderr; silent (no output at all) when not :func:`interactive`."""

    def __init__(self, description: str, *, unit: str) -> None:
        self.description = description
        self.unit = unit
        self._bar: tqdm | None = None
        self.enabled = interactive()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self, total: int) -> None:
        if self.enabled and self._bar is None:
            self._bar = tqdm(
                total=total,
                desc=self.description,
                unit=self.unit,
                file=sys.stderr,
                leave=False,
                # A terminal that reports no size (a fresh pty) gets 80x24, not nothing.
                ncols=shutil.get_terminal_size().columns,
                nrows=shutil.get_terminal_size().lines,
            )

    def __call__(self, done: int, total: int) -> None:
        """Callback form: ``done`` of ``total`` units finished."""
        self.start(total)
        if self._bar is not None:
            self._bar.update(done - self._bar.n)

    def step_finished(self, step: str, outcome: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"{step} {outcome}", refresh=False)
            self._bar.update(1)

    def message(self, text: str) -> None:
        """A line above the bar (or just the line, on stderr, when there is no bar)."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
