"""The data-category taxonomy mappings are checked against: fideslang's default one.

Kept outside core/ so the domain does not depend on a third-party data package.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def data_categories() -> frozenset[str]:
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    return frozenset(str(c.fides_key) for c in DEFAULT_TAXONOMY.data_category)
