"""Racing the members of a critic family: stop training a member that can no longer be reported.

A family reports one member, chosen on the monitor split by the one-standard-error rule
(:meth:`~wgan_lip.w1.family.CriticFamily.select`): the simplest member whose best monitor
value is within one standard error of the best member's. Training a member costs a step
each time; a member the rule cannot pick is compute spent on nothing. The race retires it.

**When a member can still be picked.** Best values only grow during training, so the
other members' current bests are lower bounds of their final ones. Member ``k`` with final
best ``b`` is picked only if

* ``b`` beats every simpler member's best (otherwise the simpler one, also within the
  floor, is picked), and by ``k``'s own standard error when nothing more complex can end
  above it (``k`` is then the best, and the floor is ``b - se_k``);
* ``b >= best_j - se_j`` for every other member ``j`` (``k`` is within the floor).

The largest of these thresholds is ``k``'s *target*. When the largest value wins (an
in-sample run), the target is the best of the other members. Members the selection leaves
out (the ``transport`` potential when the monitor split is the fit split) are left out
here too.

**How far a member can still go.** The projection is its best value plus what it gained
over the second half of its training so far (``horizon`` times that gain). For a value that
approaches its limit like ``c / t`` the gain still to come is exactly the gain over
``[t/2, t]``; faster convergence gains less. A member whose projection is below its target
is retired; its best weights and best value stay as they were, so its certified value is
still reported and the selection among all members is unchanged. Closed-form members
(``linear``, ``transport``) are fitted before training and take part from the first check,
so a closed-form winner ends the run as soon as no trained member is closing in.

The decision uses only monitor values (never the held-out split), so the held-out estimate
stays honest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

MIN_STEPS = 100  # no member is retired before this many steps: early values say little
HORIZON = 1.0  # gain still to come, in units of the gain over the last half of training


class MemberRace:
    """Decide, at each monitor check, which trained members are out of the race.

    Args:
        names: the members' names.
        ranks: each member's complexity (:meth:`CriticFamily.complexity`); smaller is
            simpler, and the one-standard-error rule prefers it.
        trained: whether each member trains (closed-form members never retire: they cost
            nothing).
        horizon: the projected gain still to come, in units of the gain over the second
            half of the steps so far.
        min_steps: steps before any member may retire.
        one_se: the selection's rule: the one-standard-error rule (True) or the largest
            value (False), as :meth:`CriticFamily.select`.
        exclude: members the selection leaves out (they set no target).

    Example:
        >>> from wgan_lip.w1.race import MemberRace
        >>> race = MemberRace(["linear", "mlp"], [(0, 1), (2, 9)], [False, True])
        >>> race.update(50, [1.0, 0.50], [0.05, 0.05])
        []
        >>> race.update(100, [1.0, 0.60], [0.05, 0.05])  # 0.60 + 0.10 cannot reach 1.05
        [1]
        >>> race.finished, race.retired
        (True, {'mlp': 100})
    """

    def __init__(
        self,
        names: Sequence[str],
        ranks: Sequence[tuple],
        trained: Sequence[bool],
        horizon: float = HORIZON,
        min_steps: int = MIN_STEPS,
        one_se: bool = True,
        exclude: Sequence[str] = (),
    ) -> None:
        self.names, self.ranks, self.trained = list(names), list(ranks), list(trained)
        self.horizon, self.min_steps = horizon, min_steps
        self.one_se, self.exclude = one_se, set(exclude)
        self.live = list(self.trained)
        self.retired: dict[str, int] = {}  # member -> the step it retired at
        self.history: list[tuple[int, list[float]]] = []  # (step, best values)

    @property
    def finished(self) -> bool:
        """No trained member is left in the race (and there was one)."""
        return any(self.trained) and not any(self.live)

    def target(self, k: int, best: Sequence[float], stderr: Sequence[float]) -> float:
        """The best value member ``k`` must reach to be picked (see the module docstring)."""
        others = [
            j
            for j in range(len(best))
            if j != k and math.isfinite(best[j]) and self.names[j] not in self.exclude
        ]
        if not self.one_se:  # the largest value wins
            return max((best[j] for j in others), default=-math.inf)
        simpler = max((best[j] for j in others if self.ranks[j] < self.ranks[k]), default=-math.inf)
        # can something more complex end above k, and above every simpler member? A live
        # trained one may; a fixed one only if its floor is above the simpler members now
        above = any(
            self.ranks[j] > self.ranks[k]
            and ((self.trained[j] and self.live[j]) or best[j] - stderr[j] > simpler)
            for j in others
        )
        floors = max((best[j] - stderr[j] for j in others), default=-math.inf)
        return max(simpler + (0.0 if above else stderr[k]), floors)

    def projection(self, k: int, step: int, best: Sequence[float]) -> float | None:
        """Member ``k``'s best plus ``horizon`` times its gain since half the steps (None
        before it has a check at or before half of ``step``)."""
        earlier = [values for s, values in self.history if s <= step / 2]
        if not earlier or not math.isfinite(earlier[-1][k]):
            return None
        return best[k] + self.horizon * max(best[k] - earlier[-1][k], 0.0)

    def update(self, step: int, best: Sequence[float], stderr: Sequence[float]) -> list[int]:
        """Record a check's best values (each member's best so far) and retire the members
        that can no longer be picked.

        Args:
            step: the training step of the check.
            best: each member's best monitor value so far (a retired member's is frozen).
            stderr: the standard error of each of those values.

        Returns:
            The members retired at this check.
        """
        best, stderr = [float(b) for b in best], [float(s) for s in stderr]
        out = []
        if step >= self.min_steps:
            for k in range(len(best)):
                if not self.live[k]:
                    continue
                reach = self.projection(k, step, best)
                if reach is not None and reach < self.target(k, best, stderr):
                    out.append(k)
        self.history.append((step, best))
        for k in out:  # decided together: one retirement does not tip another's target
            self.live[k] = False
            self.retired[self.names[k]] = step
        return out
