"""The fixed words of the reports: persona's models, its private mechanisms and every
audit-log action persona writes, each in a plain phrase."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["AUDIT_PHRASES", "MECHANISMS", "MODEL_DESCRIPTIONS", "MODEL_FAMILIES",
           "describe_action", "describe_mechanism"]

#: How each persona model turns data into suggestions, in plain words.
MODEL_DESCRIPTIONS = {
    "ALS": "Suggestions come from patterns in what many people chose together. Each item you "
           "chose adds to the match; the explanation lists how much each one added.",
    "BPR": "Suggestions come from patterns in what many people chose over what they did not "
           "choose. The explanation names similar items you chose; it is a likely reason, "
           "not an exact split.",
    "ItemKNN": "Each item is linked to the items most often chosen with it. Items linked to "
               "what you chose rank higher; the explanation lists each link's part.",
    "Popularity": "Everyone sees the same list: the items chosen by the most people. None "
                  "of your own data is used.",
}

#: The kind of model, in words.
MODEL_FAMILIES = {
    "ALS": "matrix factorisation: patterns of items that people choose together",
    "BPR": "matrix factorisation trained on pairs: which items people choose over others",
    "ItemKNN": "item-to-item similarity: items linked when the same people choose them",
    "Popularity": "popularity: the same list for everyone, the items most people chose",
}

#: What each private mechanism protects, in words.
MECHANISMS = {
    "dp-als": "the patterns the model learned from everyone (private matrix factorisation)",
    "dp-cooccurrence": "which items are chosen together (private co-occurrence counts)",
    "dp-item-counts": "how many people chose each item (private counts)",
    "dp-item-selection": "which items are listed at all (private item selection)",
}


def describe_mechanism(mechanism: str | None) -> str:
    """``"dp-als + dp-item-counts"`` in words (an unknown name is kept as it is)."""
    if not mechanism:
        return ""
    return "; ".join(MECHANISMS.get(m.strip(), m.strip()) for m in mechanism.split("+"))


#: Every action persona's own code writes to the audit log, in a plain phrase. A test reads
#: the source for every ``audit.append`` and fails when an action has no phrase here.
AUDIT_PHRASES: dict[str, str] = {
    "consent_grant": "You gave your consent",
    "consent_withdraw": "You withdrew your consent",
    "consent_decline": "You declined to give your consent",
    "feedback_not_interested": "You said you are not interested in an item",
    "feedback_dont_use": "You asked us not to use an item of your history",
    "feedback_cleared": "Your earlier feedback on items was cleared",
    "scoped_history_read": "Your data was read to make or explain your suggestions",
    "scoped_read": "The data of everyone who consented was read (for example to train "
                   "the model)",
    "scoped_export": "The data of everyone who consented was copied into files for "
                     "processing elsewhere (for example on a cluster)",
    "export": "A copy of your data was prepared for you",
    "erase": "Your data was erased",
    "explanation_shown": "You were shown why an item was suggested",
    "ingest": "New data was added",
    "apply_retention": "Data older than its retention period was deleted",
    "define_purpose": "A purpose of processing was defined",
    "redefine_purpose": "A purpose of processing was changed",
    "define_feature": "A kind of data was defined",
    "redefine_feature": "A kind of data was changed",
    "define_items": "The list of items on offer was declared",
    "label_items": "Titles of items were set",
    "migrate": "The data file was upgraded to a new format",
    "privacy_budget": "A privacy budget was set",
    "privacy_reservation": "Privacy budget was reserved for a private computation",
    "privacy_charge": "Privacy budget was spent on a private computation",
    "privacy_settlement": "A reservation of privacy budget was settled",
    "prefer_non_profiling": "You asked for suggestions that are not based on you",
    "allow_profiling": "You allowed suggestions based on what you did again",
    "shown_retention": "How long records of what people were shown are kept was set",
    "curation": "Our team pinned or blocked items in everyone's suggestions",
    "model_publish": "A new version of the recommendation model was published",
    "model_live": "The version of the recommendation model in use was changed",
}


def describe_action(action: str, detail: Mapping[str, Any] | None = None) -> str:
    """One audit entry in plain words, naming the purpose where the entry has one.

    >>> describe_action("scoped_history_read", {"purpose": "personalization"})
    "Your data was read to make or explain your suggestions (purpose: 'personalization')"
    >>> describe_action("app.curation")
    'An entry recorded by the service: curation'
    """
    if action.startswith("app."):
        name = action[4:].replace("_", " ").replace(".", " ").strip()
        return f"An entry recorded by the service: {name}"
    phrase = AUDIT_PHRASES.get(action)
    if phrase is None:  # an entry of a newer persona: say so rather than print its name
        return "Another kind of entry (written by a newer version of persona)"
    purpose = (detail or {}).get("purpose")
    return phrase if not isinstance(purpose, str) else f"{phrase} (purpose: {purpose!r})"
