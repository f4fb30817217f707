"""``ours_in_cycles``: what of the project's own a piece of code leaves in reference cycles.

Tapes pause Python's cyclic collector while they record (engine.tape.collector), so under
load a cycle is freed long after its request: one that holds a gradient or a Hessian
piles up arrays (a closure calling itself once kept every 8 MB Hessian a server answered
alive, past 1 GiB under four clients). Reference counting must free all we make.
"""

from __future__ import annotations

import gc
import types
from collections.abc import Callable
from typing import Any

OURS = ("engine", "app")


def _ours(obj: Any) -> bool:
    if isinstance(obj, types.FunctionType | types.CodeType):
        module = getattr(obj, "__module__", None) or ""
    elif isinstance(obj, types.FrameType):
        module = obj.f_globals.get("__name__", "")
    else:
        module = type(obj).__module__
    return module.split(".", 1)[0] in OURS


def ours_in_cycles(work: Callable[[], Any]) -> list[str]:
    """Run ``work`` with the collector off and name our objects only a cycle kept alive
    (other threads' garbage meanwhile, such as the test runner's, is not ours)."""
    was = gc.isenabled()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        work()
        gc.collect()
        return sorted({
            getattr(o, "__qualname__", None) or type(o).__qualname__
            for o in gc.garbage if _ours(o)
        })
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if was:
            gc.enable()
