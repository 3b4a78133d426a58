"""The privacy rules of a digest, in one place.

1. No figure about people for a group smaller than k (`min_group`, default 5): the leader's
   whole scope included. Figures about the public's questions are about questions, and stay.
2. A breakdown row only for a group of at least k people, and never one that would let a small
   group be worked out by subtraction: if the people left out of the shown rows number fewer
   than k (but more than none), the smallest shown rows are folded in with them until they
   number at least k.
3. Names only of people who agreed to be named; everyone else who stepped up is a count.
4. Never a list of who did not take part: no code path here produces one.
"""

from __future__ import annotations

from collections.abc import Sequence


def shown_groups(
    people: frozenset[int], groups: Sequence[tuple[str, frozenset[int]]], k: int
) -> tuple[list[tuple[str, frozenset[int]]], int]:
    """The breakdown rows that may be shown, and how many candidate rows were held back."""
    if len(people) < k:
        return [], len(groups)
    shown = [g for g in groups if len(g[1]) >= k]
    while shown:
        covered = frozenset().union(*(members for _, members in shown))
        left = len(people - covered)
        if left == 0 or left >= k:
            break
        # Taking the smallest shown row out makes the rest bigger, never smaller.
        shown.remove(min(shown, key=lambda g: (len(g[1]), g[0])))
    if len(shown) == 1 and shown[0][1] == people:
        # One row equal to the whole says nothing new; what is held back is only the small.
        return [], sum(1 for _, members in groups if len(members) < k)
    return sorted(shown, key=lambda g: g[0]), len(groups) - len(shown)


def may_describe(people: int, k: int) -> bool:
    """Whether figures about this many people may be shown at all."""
    return people >= k
