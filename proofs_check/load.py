r"""A CPU burner for load-independence checks (issue 9 item 3, spec §0.5 item 7): ``k`` busy-loop processes that
keep every core busy while a block runs. The one home of the burner of ``benchmarks/load_repeat.py`` and
``tests/test_asym_load.py``; it measures nothing and decides nothing.

    with Burner(os.cpu_count() or 2):
        ...  # run the quick profile under full load
"""

from __future__ import annotations

import multiprocessing


def _burn(stop) -> None:  # pragma: no cover - runs in a child process
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x = (x * 1103515245 + 12345) & 0x7FFFFFFF


class Burner:
    """``k`` busy-loop processes (a context manager): every core busy while the block runs."""

    def __init__(self, k: int) -> None:
        if k < 1:
            raise ValueError(f"burners: expected at least 1 process, got {k}")
        self.k = k
        self.stop = multiprocessing.Event()
        self.procs: list[multiprocessing.Process] = []

    def __enter__(self) -> Burner:
        self.procs = [multiprocessing.Process(target=_burn, args=(self.stop,), daemon=True) for _ in range(self.k)]
        for p in self.procs:
            p.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for p in self.procs:
            p.join(timeout=10)
            if p.is_alive():
                p.terminate()
                p.join()


__all__ = ["Burner"]
