"""Errors raised by pagelab.

Kernel outcomes (``-EAGAIN``, ``COMPACT_SKIPPED``, an allocation returning NULL) are return
values, as in the kernel. Misuse of the library and bad input raise a :class:`PagelabError`
subclass whose message says what is wrong and what to do. A violated kernel invariant raises
:class:`ModelBug` (the model's ``VM_BUG_ON_PAGE`` / ``bad_page``), naming the kernel check.
"""

from __future__ import annotations

__all__ = [
    "BadConfiguration",
    "BadInput",
    "InvalidArgument",
    "ModelBug",
    "PagelabError",
    "ParseError",
    "StateCheckFailed",
]


class PagelabError(Exception):
    """Root of every error pagelab raises on purpose."""


class InvalidArgument(PagelabError, ValueError):
    """A library call got an argument it cannot accept (order > 10, unknown GFP flag, ...)."""


class BadConfiguration(PagelabError, ValueError):
    """A machine or profile that cannot exist (zero memory, overlapping zones, ...)."""


class BadInput(PagelabError, ValueError):
    """A file or text given to pagelab is malformed."""


class ParseError(BadInput):
    """A /proc, debugfs or trace text could not be parsed; the message names the line."""


class ModelBug(PagelabError, AssertionError):
    """A kernel assertion fired: VM_BUG_ON_PAGE, BUG_ON, bad_page.

    The message names the kernel check and carries a dump of the page, as the kernel's
    ``dump_page()`` does.
    """


class StateCheckFailed(ModelBug):
    """``check_state()`` found the model's state inconsistent; the message lists what."""
