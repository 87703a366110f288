"""pagelab: an executable, fast and faithful model of Linux physical memory.

>>> from pagelab import Machine
>>> m = Machine.build(memory="256M")
>>> m.alloc_pages(order=3, gfp="GFP_KERNEL") is not None
True
"""

from pagelab.errors import PagelabError
from pagelab.machine import Machine
from pagelab.profile import KernelProfile

__all__ = ["KernelProfile", "Machine", "PagelabError", "__version__"]
__version__ = "0.1.0"
