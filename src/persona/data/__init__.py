"""Interaction matrices, their builders and train/test splits."""

from persona.data._interactions import Interactions, Scaling
from persona.data._splits import leave_k_out, time_split

__all__ = [
    "Interactions",
    "Scaling",
    "leave_k_out",
    "time_split",
]
