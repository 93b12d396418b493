"""The client's progress bar for a running export: percentComplete as the bar, counts and rate beside it."""
from __future__ import annotations

import time
from typing import Any, Dict, List, Optional

from tqdm import tqdm

BAR_FORMAT = "{l_bar}{bar}| [{elapsed}<{remaining}] {postfix}"


def counts_line(state: Dict[str, Any], instances_per_second: Optional[float]) -> str:
    """`exported 40, skipped 2, 12.5 instances/s` (the rate once known)."""
    results = state.get("results") or {}
    line = f"exported {results.get('exported', 0)}, skipped {results.get('skipped', 0)}"
    return line if instances_per_second is None else f"{line}, {instances_per_second:.1f} instances/s"


def summary_lines(state: Dict[str, Any]) -> List[str]:
    """What the user reads at the end: status, counts, where errors.log and the manifest are, and any errors."""
    results = state.get("results") or {}
    lines = [f"Export {state.get('operationId')} {state.get('status')}: exported {results.get('exported', 0)}, "
             f"skipped {results.get('skipped', 0)}",
             f"  errors.log: {results.get('errorHref')}", f"  manifest:   {results.get('manifestHref')}"]
    if state.get("notification"):
        lines.append(f"  completion event: {state['notification']}")
    lines += [f"  error: {error}" for error in state.get("errors") or []]
    return lines


class ExportProgress:
    """A tqdm bar from 0 to 100 % that follows the status bodies it is given; tqdm's ETA follows percentComplete."""

    def __init__(self, operation_id: str, enabled: Optional[bool], clock=time.monotonic):
        self._clock = clock
        self._started = clock()
        self._bar = tqdm(total=100, desc=f"export {operation_id[:8]}", unit="%", bar_format=BAR_FORMAT,
                         disable=None if enabled is None else not enabled)

    def show(self, state: Dict[str, Any]) -> None:
        """Move the bar to the state's percentComplete and refresh the counts and the rate."""
        results = state.get("results") or {}
        done = results.get("exported", 0) + results.get("skipped", 0)
        elapsed = self._clock() - self._started
        percent = state.get("percentComplete")
        if isinstance(percent, int) and percent > self._bar.n:
            self._bar.update(percent - self._bar.n)
        self._bar.set_postfix_str(counts_line(state, done / elapsed if done and elapsed > 0 else None))

    def close(self) -> None:
        """Leave the bar as it is."""
        self._bar.close()
