"""A spy on the greedy loop's partial re-fits, shared by the host and the CuPy stand-in tests."""

from __future__ import annotations


def spy_partial_refits(monkeypatch, working_set: int) -> list:
    """Set ``boostnet._greedy._WORKING_SET`` for the test and return the list that the name of
    every :class:`boostnet._greedy.PartialRefit` called during it is appended to."""
    from boostnet import _greedy

    monkeypatch.setattr(_greedy, "_WORKING_SET", working_set)
    names = []
    call = _greedy.PartialRefit.__call__

    def spy(self, *args, **kwargs):
        names.append(self.name)
        return call(self, *args, **kwargs)

    monkeypatch.setattr(_greedy.PartialRefit, "__call__", spy)
    return names
