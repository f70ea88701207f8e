"""Which rule each kind of count is read under: one resolver for queries, reports and retag (pure).

A dataset may hold counts of one kind under several rules: text under `phrase` and the paper's
`lemmatized`, image and matched counts under every tagging threshold a `retag` recorded. Counts of
two rules are never added together, so every reader must pick one per kind, and all readers pick the
same way, from the same facts read from the store (`RuleFacts`):

1. a rule asked for by name wins (a strict reader checks that it was counted);
2. image and matched counts go by the dataset's active tagging rule, when one was recorded, even
   where it has no hits yet: falling back to another rule would pass its counts off as the active one's;
3. the only rule counted;
4. the preferred rules of the kind, in order: our text methods, then the paper's;
5. otherwise a lenient reader (a query, a table to look at) takes the rule that covers the most
   shards, and a strict one (a fit, a claim about the data) refuses to guess and asks for a rule.
   A strict reader prefers only the paper's rule: a trend is compared with the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from conceptfreq.core.counting import IMAGE, KINDS, MATCHED, PAPER_RULES, TEXT
from conceptfreq.errors import NotFoundError, UserError

# Our text methods (the default first: core/matching.py DEFAULT_METHOD), then the paper's.
PREFERRED_RULES = {TEXT: ("phrase", "phrase+pos", PAPER_RULES[TEXT]), IMAGE: (PAPER_RULES[IMAGE],), MATCHED: (PAPER_RULES[MATCHED],)}
TAGGED_KINDS = (IMAGE, MATCHED)


@dataclass(frozen=True)
class RuleFacts:
    """What the store knows: {kind: {rule: shards counted under it}}, and the active tagging rule."""

    counted: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    active_tagging_rule: str | None = None


def resolve_rule(kind: str, facts: RuleFacts, asked: str | None = None, *, strict: bool = False,
                 dataset: str = "the dataset") -> str | None:
    """The rule `kind` is read under (module docstring); None when nothing of the kind was counted
    and nothing decides it."""
    counted = facts.counted.get(kind, {})
    if asked:
        if strict and asked not in counted and asked != facts.active_tagging_rule:
            raise NotFoundError(f"{dataset} has no {kind} counts under rule {asked!r}: available: {', '.join(sorted(counted)) or 'none'}")
        return asked
    if kind in TAGGED_KINDS and facts.active_tagging_rule:
        return facts.active_tagging_rule
    if not counted:
        if strict:
            raise NotFoundError(f"{dataset} has no {kind} counts")
        return None
    if len(counted) == 1:
        return next(iter(counted))
    for rule in ((PAPER_RULES[kind],) if strict else PREFERRED_RULES.get(kind, ())):
        if rule in counted:
            return rule
    if strict:
        raise UserError(f"{dataset} has {kind} counts under several rules ({', '.join(sorted(counted))}): pick one with --rule")
    return max(counted, key=lambda rule: (counted[rule], rule))


def resolve_rules(facts: RuleFacts, asked: Mapping[str, str] | None = None) -> dict[str, str]:
    """{kind: rule} for every kind that has one, leniently: what queries show by default."""
    asked = asked or {}
    chosen = {kind: resolve_rule(kind, facts, asked.get(kind)) for kind in KINDS}
    return {kind: rule for kind, rule in chosen.items() if rule is not None}
